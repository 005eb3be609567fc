//! The task model (SPEC §5): what a task is once validated — type, trigger, policies — and its
//! JSON shape. Plain data: it never validates raw input (see `validate`), never touches SQL and
//! never runs anything.

use super::runs::TriggerKind;
use crate::util::rfc3339;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    Bash,
    Subagent,
}

impl TaskType {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Bash => "bash",
            TaskType::Subagent => "subagent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Runner {
    #[serde(rename = "claude-code")]
    ClaudeCode,
    #[serde(rename = "api")]
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    #[default]
    Skip,
    Queue,
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    #[default]
    Skip,
    Once,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AfterOn {
    #[default]
    Success,
    Failure,
    Always,
}

/// When a run's end is notified: `failure` (any end but success), `success`, `always`,
/// `recovered` (a success after a failed run), `changed` (output differs from the previous
/// run's); and two task events: `missed` (fire times missed), `paused` (auto-pause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    #[default]
    Failure,
    Success,
    Always,
    Recovered,
    Changed,
    Missed,
    Paused,
}

/// The shape of a notification: a chat service's incoming webhook or today's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotifyPreset {
    /// SPEC §9 calls it `webhook`; both names are accepted.
    #[default]
    #[serde(alias = "webhook")]
    Generic,
    Slack,
    Discord,
    Telegram,
    Ntfy,
}

impl NotifyPreset {
    pub const NAMES: &'static [&'static str] = &["generic", "slack", "discord", "telegram", "ntfy"];

    pub fn parse(text: &str) -> Option<NotifyPreset> {
        Some(match text {
            "generic" | "webhook" => NotifyPreset::Generic,
            "slack" => NotifyPreset::Slack,
            "discord" => NotifyPreset::Discord,
            "telegram" => NotifyPreset::Telegram,
            "ntfy" => NotifyPreset::Ntfy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn is_generic(&self) -> bool {
        *self == NotifyPreset::Generic
    }
}

/// `on` as stored before the event list: one word.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<NotifyOn>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(NotifyOn),
        Many(Vec<NotifyOn>),
    }
    Ok(match Form::deserialize(d)? {
        Form::One(on) => vec![on],
        Form::Many(on) => on,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileEvent {
    Create,
    Modify,
    Remove,
}

/// What fires a task. `timezone` lives on the task, not here, so every trigger can show times in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Trigger {
    #[serde(rename = "cron")]
    Cron { schedule: String },
    #[serde(rename = "file-watch")]
    FileWatch {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        recursive: bool,
        events: Vec<FileEvent>,
        debounce_ms: u64,
    },
    #[serde(rename = "hook")]
    Hook {
        event: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        matcher: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        file_pattern: Option<String>,
        debounce_ms: u64,
    },
    #[serde(rename = "interval")]
    Interval {
        every: String,
        every_seconds: u64,
        /// RFC 3339, UTC.
        start_at: String,
    },
    #[serde(rename = "once")]
    Once {
        /// RFC 3339, UTC.
        at: String,
    },
    #[serde(rename = "after")]
    After {
        /// The upstream task's id (names are resolved at validation).
        task: String,
        on: AfterOn,
    },
    #[serde(rename = "manual")]
    Manual,
    /// `POST /trigger/{token}` with the task's own random token (only its SHA-256 is stored).
    #[serde(rename = "webhook")]
    Webhook,
}

impl Trigger {
    /// What fires this task, as a run's trigger kind.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Cron { .. } => TriggerKind::Cron,
            Trigger::FileWatch { .. } => TriggerKind::FileWatch,
            Trigger::Hook { .. } => TriggerKind::Hook,
            Trigger::Interval { .. } => TriggerKind::Interval,
            Trigger::Once { .. } => TriggerKind::Once,
            Trigger::After { .. } => TriggerKind::After,
            Trigger::Manual => TriggerKind::Manual,
            Trigger::Webhook => TriggerKind::Webhook,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pub max_attempts: u32,
    pub backoff_seconds: u64,
    pub doubling: bool,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_attempts: 0,
            backoff_seconds: 30,
            doubling: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notify {
    /// Where to POST; empty when `channel` names a configured channel instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// A `[[notify_channels]]` name from the server's config (its url, preset, secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub on: Vec<NotifyOn>,
    #[serde(default, skip_serializing_if = "NotifyPreset::is_generic")]
    pub preset: NotifyPreset,
    /// Telegram: the chat the bot writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
}

/// One `env` value of a task: the text itself, or a reference to a secret the owner set on the
/// host (`claudecron secret set NAME`), shown and stored as `{"secret": NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Text(String),
    Secret { secret: String },
}

/// A dead-man expectation: a successful run at least every `within` (any task but `once`), or
/// within `grace` of each scheduled fire time (cron and interval tasks). Exactly one is set, a
/// duration such as `26h` (1s to 366d). The engine sends `missed` once when it is not met and
/// `recovered` at the next success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
}

/// A validated task definition: everything a user sets. Stored as JSON by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    pub trigger: Trigger,
    /// IANA zone in which schedules fire and times are shown.
    pub timezone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Values, or `{"secret": NAME}` references resolved from the host's secrets store at run
    /// time (the value itself is never part of the task).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, EnvValue>,
    /// None: the config's `task_timeout_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// `api` runner: the response token limit (default 4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// `api` runner: the system prompt; `claude-code`: appended to Claude Code's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub retries: Retries,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// Dead-man alert: how often a successful run is expected (see `Expect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// Unattended-run fields (precheck, tool and MCP limits, spend caps), at the top level of
    /// the task's JSON.
    #[serde(flatten)]
    pub guards: Guards,
}

/// What keeps an unattended run safe and cheap (SPEC §9): a precondition, what the agent may
/// reach, what it may spend. Empty by default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Guards {
    /// A shell command run before the run: exit 0 → the run goes ahead with its output as
    /// context; non-zero → the run is recorded `skipped` (reason `precheck`). Bash and subagent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precheck: Option<String>,
    /// Subagent (claude-code): tools Claude may not use (`--disallowedTools`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disallowed_tools: Vec<String>,
    /// Subagent (claude-code): `{"mcpServers": {…}}`, the only MCP servers the run gets
    /// (`--mcp-config FILE --strict-mcp-config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_config: Option<serde_json::Value>,
    /// Subagent (claude-code): more directories Claude may work in (`--add-dir`), absolute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_dirs: Vec<String>,
    /// Subagent: the most one run may spend, in USD (`--max-budget-usd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    /// Subagent: the most this task's runs may spend per UTC day; a fire past it is `skipped`
    /// (reason `budget`) and nothing starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget_usd: Option<f64>,
    /// Subagent: each run works in a fresh `git worktree` of `cwd`'s repository on a branch
    /// named after the run, left for review; the live checkout is never touched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worktree: bool,
    /// After this many failed or timed-out runs in a row the task is disabled with a
    /// `paused_reason` (0: never; absent: the config's `pause_after_failures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<u32>,
}

/// A stored task: its id and timestamps around the definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub spec: TaskSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// The task as one JSON object: `id`, the definition's fields, and the timestamps.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_with(serde_json::Map::new()))
            .unwrap_or(serde_json::Value::Null)
    }

    /// The object [`Task::to_json`] builds, with `more` fields after the timestamps, ready to be
    /// serialized as it is (written straight as JSON, no value tree in between).
    pub fn json_with(&self, more: serde_json::Map<String, serde_json::Value>) -> TaskJson<'_> {
        TaskJson {
            id: &self.id,
            spec: &self.spec,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            more,
        }
    }
}

/// A task as one JSON object: `id`, the definition's fields, the timestamps, then a view's
/// own fields (`more`, whose keys are none of the others').
#[derive(Serialize)]
pub struct TaskJson<'a> {
    id: &'a str,
    #[serde(flatten)]
    spec: &'a TaskSpec,
    created_at: String,
    updated_at: String,
    #[serde(flatten)]
    more: serde_json::Map<String, serde_json::Value>,
}
