//! The bearer token file: created 0600 with 256 random bits on first need, read back, rotated.
//! Owns nothing else; never prints or logs a token except where the user asked (`claudecron token`).

use crate::config::{AuthMode, Config};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The tokens the server accepts: `auth_tokens` when set, else the token file (created if absent).
/// Empty when `auth = "none"`.
pub fn accepted_tokens(config: &Config) -> Result<Vec<String>, String> {
    if config.auth == AuthMode::None {
        return Ok(Vec::new());
    }
    if !config.auth_tokens.is_empty() {
        return Ok(config.auth_tokens.clone());
    }
    Ok(vec![read_or_create(&config.token_file)?])
}

/// Read the token file, creating it with a fresh token when it does not exist.
pub fn read_or_create(path: &Path) -> Result<String, String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 || token.chars().any(|c| !c.is_ascii_graphic()) {
                return Err(format!(
                    "token file {} does not hold a valid token (at least 16 visible ASCII characters); delete it or run `claudecron token --rotate`",
                    path.display()
                ));
            }
            check_permissions(path)?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new(path),
        Err(e) => Err(format!("cannot read token file {}: {e}", path.display())),
    }
}

/// Replace the token file's token with a new one and return it.
pub fn rotate(path: &Path) -> Result<String, String> {
    write_new(path)
}

fn check_permissions(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path)
        .map_err(|e| format!("cannot stat token file {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "token file {} is readable by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        ));
    }
    Ok(())
}

fn write_new(path: &Path) -> Result<String, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let token = crate::ids::bearer_token()
        .map_err(|e| format!("cannot get random bytes for a token: {e}"))?;
    // Write to a temporary file with mode 0600, then rename over the old one atomically.
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create token file {}: {e}", tmp.display()))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write token file {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move token file into {}: {e}", path.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_then_reused_and_rotated() {
        let dir = std::env::temp_dir().join(format!("cc-token-{}", std::process::id()));
        let path = dir.join("token");
        let first = read_or_create(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_or_create(&path).unwrap(), first);
        let second = rotate(&path).unwrap();
        assert_ne!(first, second);
        assert_eq!(read_or_create(&path).unwrap(), second);
        fs::remove_dir_all(&dir).unwrap();
    }
}
