//! Owner approval of model-written tasks (`require_approval`), the pure part: the SHA-256 of the
//! fields that decide what a task runs, where and when (its content), the Ed25519-signed text
//! that approves one task's content, and whether a task may run given the signature stored for
//! it and the owner's public key. An approval is bound to the content: any change of those
//! fields makes the task pending again without anyone having to remember to revoke it; a row
//! without a valid signature (anything a run could write into the database) approves nothing.
//! No I/O, no clock; the store keeps approvals, only the holder of the private key signs them.

use super::model::TaskSpec;
use serde_json::Value;

/// Fields that do not change what a task runs, with what or where its output goes: editing them
/// keeps an approval. Every other field (type, command, prompt, trigger, timezone, env, cwd,
/// runner, model, tools, permission mode, MCP servers, directories, precheck, worktree, spend
/// caps, turns, notify) is bound by it, and so is any field added later unless listed here.
pub const UNBOUND_FIELDS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "overlap",
    "catch_up",
    "retries",
    "timeout_seconds",
    "pause_after_failures",
    "expect",
];

/// What a signature approves: this prefix, the task id and the full content hash, one a line.
pub const SIGNED_PREFIX: &str = "claudecron-approval-v1";

/// Hex digits of a content hash `approve --content` accepts at least (128 bits; the full hash
/// has 64).
pub const MIN_CONTENT_HEX: usize = 32;

/// The owner's Ed25519 public key (its file holds the 32 bytes as 64 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key from its file's text (64 hex digits; surrounding white space ignored).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let bytes = unhex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or("not an approval public key: expected 64 hex digits (written by `claudecron approve --init-key`)")?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(PublicKey(key))
    }

    /// The file text of the key.
    pub fn to_text(&self) -> String {
        format!("{}\n", hex(&self.0))
    }
}

/// The text a signature approves: the task's content as it is, for that task only.
pub fn signed_text(task_id: &str, content_sha256: &str) -> String {
    format!("{SIGNED_PREFIX}\n{task_id}\n{content_sha256}")
}

/// Whether `signature` (hex) is the owner's signature of the task's content `content_sha256`.
pub fn verify(key: &PublicKey, task_id: &str, content_sha256: &str, signature: &str) -> bool {
    let Some(sig) = unhex(signature) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key.0)
        .verify(signed_text(task_id, content_sha256).as_bytes(), &sig)
        .is_ok()
}

/// The owner's private key, from its file's text (PKCS#8 in hex).
pub struct PrivateKey(ring::signature::Ed25519KeyPair);

impl PrivateKey {
    pub fn parse(text: &str) -> Result<PrivateKey, String> {
        unhex(text.trim())
            .and_then(|der| ring::signature::Ed25519KeyPair::from_pkcs8(&der).ok())
            .map(PrivateKey)
            .ok_or_else(|| "not an approval private key: expected the PKCS#8 hex text `claudecron approve --init-key` writes".into())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        use ring::signature::KeyPair;
        let mut key = [0u8; 32];
        key.copy_from_slice(self.0.public_key().as_ref());
        PublicKey(key)
    }

    /// The signature (hex) approving the task's content `content_sha256`.
    pub fn sign(&self, task_id: &str, content_sha256: &str) -> String {
        hex(self
            .0
            .sign(signed_text(task_id, content_sha256).as_bytes())
            .as_ref())
    }
}

/// A new private key's file text, from a PKCS#8 document.
pub fn private_key_text(pkcs8: &[u8]) -> String {
    format!("{}\n", hex(pkcs8))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Whether a task may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// `require_approval` is off.
    NotRequired,
    /// The stored approval is for the task's current content.
    Approved,
    /// Never approved, changed since, no valid signature, or no public key to check it with:
    /// waits for `claudecron approve` on the host.
    PendingApproval,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::NotRequired => "not_required",
            ApprovalState::Approved => "approved",
            ApprovalState::PendingApproval => "pending_approval",
        }
    }

    pub fn may_run(self) -> bool {
        self != ApprovalState::PendingApproval
    }
}

/// The state of task `task_id` with `spec` whose stored approval carries `signature`, under
/// `require`, checked with the owner's public `key` (none: nothing is approved).
pub fn state(
    require: bool,
    key: Option<&PublicKey>,
    task_id: &str,
    spec: &TaskSpec,
    signature: Option<&str>,
) -> ApprovalState {
    if !require {
        return ApprovalState::NotRequired;
    }
    match (key, signature) {
        (Some(key), Some(sig)) if verify(key, task_id, &content_hash(spec), sig) => {
            ApprovalState::Approved
        }
        _ => ApprovalState::PendingApproval,
    }
}

/// SHA-256 (hex) of the task's bound fields as canonical JSON (keys sorted at every level).
pub fn content_hash(spec: &TaskSpec) -> String {
    let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Some(obj) = value.as_object_mut() {
        for field in UNBOUND_FIELDS {
            obj.remove(*field);
        }
    }
    let mut text = String::new();
    canonical(&value, &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What the owner does to approve a task, for tool results and views.
pub fn how_to_approve(task_id: &str) -> String {
    format!(
        "this task does not run (no timer, hook, file-watch, webhook or manual run) until the server's owner approves it on the host: `claudecron pending` shows its content and full content hash, then `claudecron approve {task_id} --content <full hash>`, run by the holder of the approval key (e.g. with sudo), signs that content; any later change of its command, prompt, trigger, env or other run-defining field needs approval again. The approval cannot be given over MCP."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::model::{EnvValue, TaskSpec};

    fn spec() -> TaskSpec {
        serde_json::from_value(serde_json::json!({
            "name": "t", "type": "bash", "enabled": true, "trigger": {"type": "manual"},
            "timezone": "UTC", "command": "echo hi", "overlap": "skip", "catch_up": "skip",
            "retries": {"max_attempts": 0, "backoff_seconds": 30, "doubling": true}
        }))
        .unwrap()
    }

    fn key() -> PrivateKey {
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        PrivateKey::parse(&private_key_text(der.as_ref())).unwrap()
    }

    #[test]
    fn an_approval_binds_the_content_not_the_name_or_policies() {
        let s = spec();
        let h = content_hash(&s);
        assert_eq!(h.len(), 64);
        let mut renamed = s.clone();
        renamed.name = "other".into();
        renamed.enabled = false;
        renamed.timeout_seconds = Some(5);
        assert_eq!(content_hash(&renamed), h);
        let mut changed = s.clone();
        changed.command = Some("echo pwned".into());
        assert_ne!(content_hash(&changed), h);
        let mut env = s.clone();
        env.env.insert(
            "T".into(),
            EnvValue::Secret {
                secret: "gh".into(),
            },
        );
        assert_ne!(content_hash(&env), h);
        let mut tz = s;
        tz.timezone = "Europe/Moscow".into();
        assert_ne!(content_hash(&tz), h);
    }

    #[test]
    fn the_signed_text_names_the_version_the_task_and_the_full_hash() {
        assert_eq!(
            signed_text("t1", &"ab".repeat(32)),
            format!("claudecron-approval-v1\nt1\n{}", "ab".repeat(32))
        );
    }

    /// Only the owner's signature of this task's current content approves it: not a hash, not
    /// a mark, not another task's signature, not another key's, not without the public key.
    #[test]
    fn only_a_valid_signature_of_the_current_content_approves() {
        let owner = key();
        let public = owner.public();
        assert_eq!(PublicKey::parse(&public.to_text()), Ok(public));
        let s = spec();
        let h = content_hash(&s);
        let sig = owner.sign("t1", &h);
        assert_eq!(sig.len(), 128);
        assert!(verify(&public, "t1", &h, &sig));
        let st = |key: Option<&PublicKey>, id: &str, spec: &TaskSpec, sig: Option<&str>| {
            state(true, key, id, spec, sig)
        };
        assert_eq!(
            st(Some(&public), "t1", &s, Some(&sig)),
            ApprovalState::Approved
        );
        assert_eq!(
            state(false, None, "t1", &s, None),
            ApprovalState::NotRequired
        );
        let pending = ApprovalState::PendingApproval;
        assert_eq!(st(Some(&public), "t1", &s, None), pending);
        assert_eq!(
            st(None, "t1", &s, Some(&sig)),
            pending,
            "no key: nothing runs"
        );
        assert_eq!(
            st(Some(&public), "t2", &s, Some(&sig)),
            pending,
            "another task"
        );
        for forged in [
            h.as_str(),
            "existing-before-approvals",
            "",
            "zz",
            &sig[..126],
        ] {
            assert_eq!(
                st(Some(&public), "t1", &s, Some(forged)),
                pending,
                "{forged}"
            );
        }
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(st(Some(&public), "t1", &s, Some(&flipped)), pending);
        let mut changed = s.clone();
        changed.command = Some("echo pwned".into());
        assert_eq!(st(Some(&public), "t1", &changed, Some(&sig)), pending);
        let mut renamed = s.clone();
        renamed.name = "renamed".into();
        assert_eq!(
            st(Some(&public), "t1", &renamed, Some(&sig)),
            ApprovalState::Approved
        );
        let stranger = key();
        let theirs = stranger.sign("t1", &h);
        assert_eq!(st(Some(&public), "t1", &s, Some(&theirs)), pending);
        assert!(PublicKey::parse("abc").is_err());
        assert!(PrivateKey::parse(&"00".repeat(40)).is_err());
    }
}
