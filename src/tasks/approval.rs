//! Owner approval of model-written tasks (`require_approval`), the pure part: the SHA-256 of the
//! fields that decide what a task runs, where and when (its content), and whether a task may run
//! given the approved hash stored for it. An approval is bound to the content: any change of
//! those fields makes the task pending again without anyone having to remember to revoke it.
//! No I/O, no clock; the store keeps approvals, only the host's CLI gives them.

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

/// The approval recorded for tasks that existed when approvals were introduced (migration 10):
/// they keep running; their first edit replaces it with the hash of the content they had.
pub const EXISTING_BEFORE_APPROVALS: &str = "existing-before-approvals";

/// Whether a task may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// `require_approval` is off.
    NotRequired,
    /// The stored approval is for the task's current content.
    Approved,
    /// Never approved, or changed since: waits for `claudecron approve` on the host.
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

/// The state of a task whose stored approval is `approved` (its hash), under `require`.
pub fn state(require: bool, spec: &TaskSpec, approved: Option<&str>) -> ApprovalState {
    if !require {
        return ApprovalState::NotRequired;
    }
    match approved {
        Some(EXISTING_BEFORE_APPROVALS) => ApprovalState::Approved,
        Some(hash) if hash == content_hash(spec) => ApprovalState::Approved,
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
        "this task does not run (no timer, hook, file-watch, webhook or manual run) until the server's owner approves it on the host: `claudecron approve {task_id}` (`claudecron pending` lists what waits); any later change of its command, prompt, trigger, env or other run-defining field needs approval again. The approval cannot be given over MCP."
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

    #[test]
    fn an_approval_binds_the_content_not_the_name_or_policies() {
        let s = spec();
        let h = content_hash(&s);
        assert_eq!(h.len(), 64);
        assert_eq!(state(true, &s, Some(&h)), ApprovalState::Approved);
        assert_eq!(state(true, &s, None), ApprovalState::PendingApproval);
        assert_eq!(state(false, &s, None), ApprovalState::NotRequired);
        assert_eq!(
            state(true, &s, Some(EXISTING_BEFORE_APPROVALS)),
            ApprovalState::Approved
        );
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
}
