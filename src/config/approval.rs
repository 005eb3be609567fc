//! The owner's approval key pair (`require_approval`): the `approval_key` / `approval_public_key`
//! config keys (default: next to the config file, else in the data directory) and their files —
//! reading the public key (the server), reading the private key (`claudecron approve`), making
//! a new pair (refusing to replace one) and whether this process can read the private key. It
//! never shows or logs the private key; signing and checking are `tasks::approval`'s.

use super::{Kind, Typed};
use crate::tasks::approval::{private_key_text, PrivateKey, PublicKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The key-pair keys (next to `config::KEYS`): name, type, default (see [`build`]).
pub(super) const KEYS: &[(&str, Kind, Option<&str>)] = &[
    ("approval_key", Kind::OptPath, None),
    ("approval_public_key", Kind::OptPath, None),
];

/// Where the approval key pair lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalKeyFiles {
    /// The private key (root:root 0600 in the service layout; the server never reads it).
    pub private: PathBuf,
    /// The public key the server checks approvals with (0644).
    pub public: PathBuf,
}

/// The paths: as set, else `approval.key` / `approval.pub` in the config file's directory (or
/// the data directory without a config file).
pub(super) fn build(
    take: &mut impl FnMut(&str) -> Typed,
    config_file: Option<&Path>,
    data_dir: &Path,
    home: Option<&Path>,
) -> ApprovalKeyFiles {
    let dir = match config_file.map(Path::parent) {
        Some(Some(p)) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => data_dir,
    };
    let mut path = |key: &str, default: &str| match take(key) {
        Typed::Str(s) if !s.trim().is_empty() => super::expand_tilde(s.trim(), home),
        _ => dir.join(default),
    };
    ApprovalKeyFiles {
        private: path("approval_key", "approval.key"),
        public: path("approval_public_key", "approval.pub"),
    }
}

impl ApprovalKeyFiles {
    /// The lines `claudecron check` shows.
    pub(super) fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("approval_key".into(), self.private.display().to_string()),
            (
                "approval_public_key".into(),
                self.public.display().to_string(),
            ),
        ]
    }

    /// The public key, or why it cannot be used.
    pub fn load_public(&self) -> Result<PublicKey, String> {
        let text = std::fs::read_to_string(&self.public).map_err(|e| {
            format!(
                "approval public key {} cannot be read ({e}); create the pair with `claudecron approve --init-key` (as root in the service layout) and restart the server",
                self.public.display()
            )
        })?;
        PublicKey::parse(&text).map_err(|e| format!("{}: {e}", self.public.display()))
    }

    /// Whether this process can open the private key: then anything it runs could sign.
    pub fn private_readable(&self) -> bool {
        std::fs::File::open(&self.private).is_ok()
    }

    /// The private key, or why it cannot be used (never its content).
    pub fn load_private(&self) -> Result<PrivateKey, String> {
        let text = std::fs::read_to_string(&self.private).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "create the pair once with `claudecron approve --init-key`"
            } else {
                "approve as the key's owner (root in the service layout: sudo claudecron approve …)"
            };
            format!(
                "approval key {} cannot be read ({e}); {hint}",
                self.private.display()
            )
        })?;
        PrivateKey::parse(&text).map_err(|e| format!("{}: {e}", self.private.display()))
    }

    /// Make a new pair: the private key 0600, the public key 0644. Refuses when either file
    /// exists (a new key would void every approval signed with the old one).
    pub fn create(&self) -> Result<PublicKey, String> {
        for path in [&self.private, &self.public] {
            if path.exists() {
                return Err(format!(
                    "{} exists; refusing to replace the approval key pair (remove both files first to start over: every approval must then be given again)",
                    path.display()
                ));
            }
        }
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "no randomness for a new key".to_string())?;
        let text = private_key_text(der.as_ref());
        let public = PrivateKey::parse(&text)?.public();
        write_new(&self.private, &text, 0o600)?;
        if let Err(e) = write_new(&self.public, &public.to_text(), 0o644) {
            let _ = std::fs::remove_file(&self.private);
            return Err(e);
        }
        Ok(public)
    }
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // The mode asked for, whatever the umask took away (0644 for the public key).
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}
