//! The run vocabulary: a run's status, what fired it, and the event context it carries. Plain
//! data with the spellings the database and the tools use; no SQL, no I/O, no clock.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a run stands (SPEC §5). The default is `Failed`: nothing counts as a success unless
/// it is said to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Success,
    #[default]
    Failed,
    Timeout,
    Cancelled,
    Skipped,
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Timeout,
        RunStatus::Cancelled,
        RunStatus::Skipped,
        RunStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Nothing changes after these.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// A run that ended this way is retried while the task has attempts left.
    pub fn is_retryable(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::Timeout)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What fired a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TriggerKind {
    #[serde(rename = "cron")]
    Cron,
    #[serde(rename = "interval")]
    Interval,
    #[serde(rename = "once")]
    Once,
    #[serde(rename = "after")]
    After,
    #[serde(rename = "manual")]
    Manual,
    #[serde(rename = "file-watch")]
    FileWatch,
    #[serde(rename = "hook")]
    Hook,
    /// `POST /trigger/{token}`.
    #[serde(rename = "webhook")]
    Webhook,
    /// The one run `catch_up = once` makes for missed fires.
    #[serde(rename = "catch-up")]
    CatchUp,
    /// A later attempt of a failed run.
    #[serde(rename = "retry")]
    Retry,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 10] = [
        TriggerKind::Cron,
        TriggerKind::Interval,
        TriggerKind::Once,
        TriggerKind::After,
        TriggerKind::Manual,
        TriggerKind::FileWatch,
        TriggerKind::Hook,
        TriggerKind::Webhook,
        TriggerKind::CatchUp,
        TriggerKind::Retry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Cron => "cron",
            TriggerKind::Interval => "interval",
            TriggerKind::Once => "once",
            TriggerKind::After => "after",
            TriggerKind::Manual => "manual",
            TriggerKind::FileWatch => "file-watch",
            TriggerKind::Hook => "hook",
            TriggerKind::Webhook => "webhook",
            TriggerKind::CatchUp => "catch-up",
            TriggerKind::Retry => "retry",
        }
    }

    pub fn parse(text: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The upstream run an `after` run follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterContext {
    pub task_id: String,
    pub task_name: String,
    pub run_id: i64,
    pub status: RunStatus,
}

/// The event data a run carries (stored with the run as JSON): environment variables for the
/// process, bytes for its stdin, the hook payload, the upstream run of an `after` task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<AfterContext>,
}

impl RunContext {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// A stored context; None when it cannot be read (the run then goes without it).
    pub fn from_json(text: &str) -> Option<RunContext> {
        serde_json::from_str(text).ok()
    }

    /// The environment a run gets from its event: the event's own variables, then for `after`
    /// runs the upstream run's id and status.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(after) = &self.after {
            vars.push(("CLAUDECRON_AFTER_RUN_ID".into(), after.run_id.to_string()));
            vars.push((
                "CLAUDECRON_AFTER_STATUS".into(),
                after.status.as_str().into(),
            ));
        }
        vars
    }

    /// The event as JSON for a subagent's prompt: the hook payload, else the upstream run, else
    /// the environment (file changes); None without an event.
    pub fn event_for_prompt(&self) -> Option<Value> {
        if let Some(hook) = &self.hook {
            return Some(hook.clone());
        }
        if let Some(after) = &self.after {
            return Some(serde_json::json!({ "after": after }));
        }
        (!self.env.is_empty()).then(|| serde_json::json!(self.env))
    }
}

/// A run was recorded as finished (for session notifications and the file watcher).
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub run_id: i64,
    pub task_id: String,
    pub task_name: String,
    pub status: RunStatus,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for k in TriggerKind::ALL {
            assert_eq!(TriggerKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(RunStatus::parse("done"), None);
        assert!(RunStatus::Skipped.is_terminal() && !RunStatus::Queued.is_terminal());
        assert!(RunStatus::Timeout.is_retryable() && !RunStatus::Cancelled.is_retryable());
    }

    #[test]
    fn contexts_stored_by_earlier_versions_still_read() {
        let hook = r#"{"env":{"CLAUDECRON_HOOK_EVENT":"Stop"},"stdin":"{}","hook":{"hook_event_name":"Stop"}}"#;
        let ctx = RunContext::from_json(hook).unwrap();
        assert_eq!(ctx.stdin.as_deref(), Some("{}"));
        assert_eq!(ctx.env["CLAUDECRON_HOOK_EVENT"], "Stop");
        let after = r#"{"after":{"task_id":"a","task_name":"up","run_id":7,"status":"failed"}}"#;
        let ctx = RunContext::from_json(after).unwrap();
        assert_eq!(
            ctx.env_vars(),
            [
                ("CLAUDECRON_AFTER_RUN_ID".to_string(), "7".to_string()),
                ("CLAUDECRON_AFTER_STATUS".to_string(), "failed".to_string())
            ]
        );
        assert_eq!(RunContext::from_json(&ctx.to_json()), Some(ctx));
    }
}
