//! Validation of task input (the `add_task` / `update_task` arguments) into a `TaskSpec`.
//! Every rejection names the field and what is accepted. Pure: it asks the caller (through
//! `TaskLookup`) about other tasks and never touches SQL, the clock or the file system.

mod agent;
mod expect;
mod fields;
mod trigger;
use agent::*;
pub use agent::{PERMISSION_MODES, SUBAGENT_ONLY};
use fields::*;
pub use fields::{parse_duration, parse_time};
use trigger::*;

use crate::tasks::model::{
    AfterOn, CatchUp, EnvValue, FileEvent, Notify, NotifyOn, NotifyPreset, Overlap, Retries,
    Runner, TaskSpec, TaskType, Trigger,
};
use crate::tasks::schedule::{parse_timezone, Schedule, ScheduleCache};
use crate::util::rfc3339;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A rejected field and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.to_string(),
        message: message.into(),
    })
}

/// What validation needs to know about another task.
#[derive(Debug, Clone)]
pub struct TaskRef {
    pub id: String,
    pub name: String,
    /// The id of the task this one runs after, when its trigger is `after`.
    pub after: Option<String>,
}

/// Lookup of other tasks by id or exact name.
pub trait TaskLookup {
    fn find(&self, id_or_name: &str) -> Option<TaskRef>;
}

/// Context for validation.
pub struct Context<'a> {
    pub default_timezone: &'a str,
    pub lookup: &'a dyn TaskLookup,
    /// The task being updated (None when adding).
    pub self_id: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// Parsed cron expressions to check a schedule against (the server's shared cache); None
    /// parses each one afresh.
    pub schedules: Option<&'a ScheduleCache>,
}

/// Check a cron expression as `Schedule::parse` does (it parses and fires within 5 years).
pub(crate) fn check_schedule(expr: &str, ctx: &Context) -> Result<(), String> {
    match ctx.schedules {
        Some(cache) => cache.load(expr)?.fires_soon(ctx.now),
        None => Schedule::parse(expr, ctx.now).map(|_| ()),
    }
}

/// Length limits of text fields, in bytes (a task's `name` is 1 to 100 characters). A value
/// is stored once and then shows up in every log line, view and notification of the task's runs,
/// and what reaches a process must fit the kernel's limits (128 KiB per argument or variable).
pub mod limits {
    pub const DESCRIPTION: usize = 4096;
    pub const COMMAND: usize = 64 * 1024;
    pub const PROMPT: usize = 256 * 1024;
    /// Claude Code gets it as one argument (`--append-system-prompt`).
    pub const SYSTEM: usize = 64 * 1024;
    pub const MODEL: usize = 200;
    pub const CWD: usize = 4096;
    pub const PATH: usize = 4096;
    pub const ENV_VARS: usize = 100;
    pub const ENV_NAME: usize = 128;
    pub const ENV_VALUE: usize = 32 * 1024;
    /// All names and values of `env` together.
    pub const ENV_TOTAL: usize = 256 * 1024;
    pub const ALLOWED_TOOLS: usize = 100;
    pub const TOOL_NAME: usize = 256;
    /// Cron expressions, globs (`pattern`, `file_pattern`) and hook matchers.
    pub const PATTERN: usize = 1024;
    pub const NOTIFY_URL: usize = 2048;
    /// An `after` trigger's task id or name.
    pub const TASK_REF: usize = 512;
    /// Short words: timezone, trigger type and event, durations, times.
    pub const WORD: usize = 100;
}

/// Top-level fields `add_task` accepts.
pub const TASK_FIELDS: &[&str] = &[
    "name",
    "type",
    "schedule",
    "timezone",
    "trigger",
    "command",
    "prompt",
    "description",
    "enabled",
    "cwd",
    "env",
    "timeout_seconds",
    "model",
    "runner",
    "allowed_tools",
    "max_turns",
    "permission_mode",
    "max_tokens",
    "system",
    "overlap",
    "catch_up",
    "retries",
    "notify",
    "precheck",
    "disallowed_tools",
    "mcp_config",
    "add_dirs",
    "max_budget_usd",
    "daily_budget_usd",
    "worktree",
    "pause_after_failures",
    "expect",
];

const TRIGGER_TYPES: &str = "cron, file-watch, hook, interval, once, after, manual, webhook";

/// Claude Code hook events (claude-code reference §6).
pub const HOOK_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "SessionStart",
    "SessionEnd",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "PermissionRequest",
    "PermissionDenied",
    "Setup",
    "TeammateIdle",
    "TaskCreated",
    "TaskCompleted",
    "Elicitation",
    "ElicitationResult",
    "ConfigChange",
    "WorktreeCreate",
    "WorktreeRemove",
    "InstructionsLoaded",
    "CwdChanged",
    "FileChanged",
    "MessageDisplay",
];

/// Validate a complete task input (the `add_task` arguments, or a merged update).
pub fn task_spec(input: &Value, ctx: &Context) -> Result<TaskSpec, FieldError> {
    let obj = match input {
        Value::Object(o) => o,
        other => {
            return err(
                "arguments",
                format!("{} is not an object of task fields", describe(other)),
            )
        }
    };
    reject_unknown(obj, TASK_FIELDS, "")?;

    let name = match string_field(obj, "name", "name")? {
        None => {
            return err(
                "name",
                "is required: a unique name of 1 to 100 printable characters",
            )
        }
        Some(n) => n,
    };
    let name_len = name.chars().count();
    if name.trim().is_empty() || name_len > 100 || name.chars().any(char::is_control) {
        return err(
            "name",
            format!("\"{}\" is not accepted; a name is 1 to 100 printable characters (no control characters), not blank", name.escape_debug()),
        );
    }
    if name != name.trim() {
        return err(
            "name",
            format!("\"{name}\" has leading or trailing spaces; remove them"),
        );
    }
    let task_type = match enum_field(obj, "type", "type", &["bash", "subagent"])? {
        Some("bash") => TaskType::Bash,
        Some(_) => TaskType::Subagent,
        None => return err("type", "is required; accepted: bash, subagent"),
    };

    // Timezone: top level, or inside a cron trigger; they must agree.
    let trigger_obj = match obj.get("trigger") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => Some(t),
        Some(other) => {
            return err(
                "trigger",
                format!(
                    "{} is not an object; e.g. {{\"type\":\"interval\",\"every\":\"15m\"}}",
                    describe(other)
                ),
            )
        }
    };
    let top_tz = text_field(obj, "timezone", "timezone", limits::WORD)?;
    let trigger_tz = match trigger_obj {
        Some(t) => text_field(t, "timezone", "trigger.timezone", limits::WORD)?,
        None => None,
    };
    let timezone = match (&top_tz, &trigger_tz) {
        (Some(a), Some(b)) if a != b => {
            return err(
                "timezone",
                format!("\"{a}\" differs from trigger.timezone \"{b}\"; give one of them"),
            )
        }
        (Some(z), _) => z.clone(),
        (None, Some(z)) => z.clone(),
        (None, None) => ctx.default_timezone.to_string(),
    };
    let field_of_tz = if top_tz.is_none() && trigger_tz.is_some() {
        "trigger.timezone"
    } else {
        "timezone"
    };
    let tz = parse_timezone(&timezone).or_else(|e| err(field_of_tz, e))?;
    let timezone = tz.name().to_string();

    let schedule = text_field(obj, "schedule", "schedule", limits::PATTERN)?;
    let trigger = match (schedule, trigger_obj) {
        (Some(_), Some(_)) => {
            return err("schedule", "give either schedule (a cron expression) or trigger, not both")
        }
        (Some(expr), None) => {
            check_schedule(&expr, ctx).or_else(|e| err("schedule", e))?;
            Trigger::Cron { schedule: expr.trim().to_string() }
        }
        (None, Some(t)) => trigger(t, tz, ctx)?,
        (None, None) => {
            return err(
                "trigger",
                format!("a task needs schedule (a cron expression such as \"0 9 * * 1-5\") or trigger (type: {TRIGGER_TYPES}); for a task run only by hand give {{\"type\":\"manual\"}}"),
            )
        }
    };

    let command = non_blank(
        string_field(obj, "command", "command")?,
        "command",
        limits::COMMAND,
    )?;
    let prompt = non_blank(
        string_field(obj, "prompt", "prompt")?,
        "prompt",
        limits::PROMPT,
    )?;
    let subagent_only = SUBAGENT_ONLY;
    match task_type {
        TaskType::Bash => {
            if command.is_none() {
                return err(
                    "command",
                    "is required for a bash task: a shell command run with /bin/sh -c",
                );
            }
            if prompt.is_some() {
                return err(
                    "prompt",
                    "is only for subagent tasks; a bash task runs command",
                );
            }
            for field in subagent_only {
                if obj.get(*field).is_some_and(|v| !v.is_null()) {
                    return err(
                        field,
                        "is only for subagent tasks; remove it or use type subagent",
                    );
                }
            }
        }
        TaskType::Subagent => {
            if prompt.is_none() {
                return err(
                    "prompt",
                    "is required for a subagent task: the instructions for Claude",
                );
            }
            if command.is_some() {
                return err(
                    "command",
                    "is only for bash tasks; a subagent task runs prompt",
                );
            }
        }
    }

    let description = text_field(obj, "description", "description", limits::DESCRIPTION)?
        .filter(|d| !d.trim().is_empty());
    let enabled = bool_field(obj, "enabled", "enabled")?.unwrap_or(true);
    let cwd = text_field(obj, "cwd", "cwd", limits::CWD)?;
    if let Some(dir) = &cwd {
        if dir.contains('\0') {
            return err("cwd", "contains a NUL byte");
        }
        if !dir.starts_with('/') {
            return err(
                "cwd",
                format!("\"{dir}\" is not an absolute path; e.g. /home/me/project"),
            );
        }
    }
    let env = env_field(obj)?;
    let timeout_seconds = int_field(obj, "timeout_seconds", "timeout_seconds", 1, 7 * 86_400)?;
    let model = non_blank(string_field(obj, "model", "model")?, "model", limits::MODEL)?;
    let runner = match enum_field(obj, "runner", "runner", &["claude-code", "api"])? {
        Some("claude-code") => Some(Runner::ClaudeCode),
        Some(_) => Some(Runner::Api),
        None => None,
    };
    let allowed_tools = tool_list(obj, "allowed_tools")?;
    let max_turns = int_field(obj, "max_turns", "max_turns", 1, 1000)?.map(|n| n as u32);
    let max_tokens = int_field(obj, "max_tokens", "max_tokens", 1, 128_000)?.map(|n| n as u32);
    let system = non_blank(
        string_field(obj, "system", "system")?,
        "system",
        limits::SYSTEM,
    )?;
    let permission_mode = agent::permission_mode(obj)?;
    let guards = guards(obj)?;
    let overlap = match enum_field(obj, "overlap", "overlap", &["skip", "queue", "allow"])? {
        Some("queue") => Overlap::Queue,
        Some("allow") => Overlap::Allow,
        _ => Overlap::Skip,
    };
    let catch_up = match enum_field(obj, "catch_up", "catch_up", &["skip", "once"])? {
        Some("once") => CatchUp::Once,
        _ => CatchUp::Skip,
    };
    let retries = retries_field(obj)?;
    let notify = notify_field(obj)?;
    let expect = expect::expect_field(obj, &trigger)?;

    Ok(TaskSpec {
        name,
        task_type,
        description,
        enabled,
        trigger,
        timezone,
        command,
        prompt,
        cwd,
        env,
        timeout_seconds,
        model,
        runner,
        allowed_tools,
        max_turns,
        permission_mode,
        max_tokens,
        system,
        overlap,
        catch_up,
        retries,
        notify,
        expect,
        guards,
    })
}

fn env_field(obj: &Map<String, Value>) -> Result<BTreeMap<String, EnvValue>, FieldError> {
    let mut env = BTreeMap::new();
    match obj.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Object(vars)) => {
            if vars.len() > limits::ENV_VARS {
                return err(
                    "env",
                    format!(
                        "has {} variables; the limit is {}",
                        vars.len(),
                        limits::ENV_VARS
                    ),
                );
            }
            let mut total = 0;
            for (key, value) in vars {
                if key.len() > limits::ENV_NAME {
                    return err(
                        &format!("env.{}…", crate::util::head(key, 60)),
                        format!(
                            "the name is {} bytes long; the limit is {} bytes",
                            key.len(),
                            limits::ENV_NAME
                        ),
                    );
                }
                let path = format!("env.{key}");
                if let Value::String(s) = value {
                    check_len(s, &path, limits::ENV_VALUE)?;
                }
                total += key.len() + value.as_str().map_or(20, str::len);
                if total > limits::ENV_TOTAL {
                    return err(
                        "env",
                        format!(
                            "names and values add up to more than {} bytes, the limit",
                            limits::ENV_TOTAL
                        ),
                    );
                }
                let valid_name = !key.is_empty()
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid_name {
                    return err(&path, "is not a variable name; accepted: letters, digits and _, not starting with a digit");
                }
                if key.starts_with("CLAUDECRON_") {
                    return err(&path, "CLAUDECRON_* variables are set by claudecron for each run and cannot be overridden");
                }
                let text = |t: String| EnvValue::Text(t);
                match value {
                    Value::String(s) if !s.contains('\0') => {
                        env.insert(key.clone(), text(s.clone()));
                    }
                    Value::Number(n) => {
                        env.insert(key.clone(), text(n.to_string()));
                    }
                    Value::Bool(b) => {
                        env.insert(key.clone(), text(b.to_string()));
                    }
                    Value::Object(reference) => {
                        let name = crate::secrets::reference(reference)
                            .map_err(|message| FieldError {
                                field: path.clone(),
                                message,
                            })?;
                        env.insert(key.clone(), EnvValue::Secret { secret: name });
                    }
                    other => {
                        return err(
                            &path,
                            format!(
                                "{} is not accepted; a value is a string, or {{\"secret\": NAME}} for a secret the owner set on the host",
                                describe(other)
                            ),
                        )
                    }
                }
            }
        }
        Some(other) => {
            return err(
                "env",
                format!(
                    "{} is not an object of NAME: value strings",
                    describe(other)
                ),
            )
        }
    }
    Ok(env)
}

fn retries_field(obj: &Map<String, Value>) -> Result<Retries, FieldError> {
    let mut retries = Retries::default();
    match obj.get("retries") {
        None | Some(Value::Null) => {}
        Some(Value::Number(_)) => {
            retries.max_attempts = int_field(obj, "retries", "retries", 0, 10)?.unwrap_or(0) as u32;
        }
        Some(Value::Object(r)) => {
            reject_unknown(r, &["max_attempts", "backoff_seconds", "doubling"], "retries")?;
            if let Some(n) = int_field(r, "max_attempts", "retries.max_attempts", 0, 10)? {
                retries.max_attempts = n as u32;
            }
            if let Some(n) = int_field(r, "backoff_seconds", "retries.backoff_seconds", 1, 86_400)? {
                retries.backoff_seconds = n;
            }
            if let Some(b) = bool_field(r, "doubling", "retries.doubling")? {
                retries.doubling = b;
            }
        }
        Some(other) => {
            return err(
                "retries",
                format!("{} is not accepted; e.g. {{\"max_attempts\": 3, \"backoff_seconds\": 30, \"doubling\": true}}", describe(other)),
            )
        }
    }
    Ok(retries)
}

fn notify_field(obj: &Map<String, Value>) -> Result<Option<Notify>, FieldError> {
    match obj.get("notify") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(n)) => {
            reject_unknown(n, &["url", "on", "channel", "preset", "chat_id"], "notify")?;
            let channel = text_field(n, "channel", "notify.channel", 100)?;
            let url = text_field(n, "url", "notify.url", limits::NOTIFY_URL)?;
            let url = match (url, &channel) {
                (Some(_), Some(_)) => return err("notify", "give url or channel, not both"),
                (None, None) => return err("notify.url", "is required (or channel: a [[notify_channels]] name from the server's config): an http(s) URL that receives a POST per run end it asks for"),
                (None, Some(_)) => String::new(),
                (Some(url), None) => url,
            };
            let valid = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("://").nth(1).is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
                && !url.contains(char::is_whitespace);
            if channel.is_none() && !valid {
                return err("notify.url", format!("\"{url}\" is not an http(s) URL such as https://hooks.example.com/cron"));
            }
            if channel.is_some() && (n.contains_key("preset") || n.contains_key("chat_id")) {
                return err("notify.channel", "a channel carries its own preset and chat_id (in the server's config); give only channel and on");
            }
            let words: Vec<&Value> = match n.get("on") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list.iter().collect(),
                Some(one) => vec![one],
            };
            let mut on = Vec::new();
            for word in words {
                let parsed = word.as_str().and_then(|w| serde_json::from_value::<NotifyOn>(Value::from(w)).ok());
                match parsed {
                    Some(event) if !on.contains(&event) => on.push(event),
                    Some(_) => {}
                    None => return err("notify.on", format!("{} is not accepted; accepted: failure, success, always, recovered, changed, missed, paused (one word or a list)", describe(word))),
                }
            }
            if on.is_empty() {
                on.push(NotifyOn::Failure);
            }
            let preset = match string_field(n, "preset", "notify.preset")? {
                None => NotifyPreset::Generic,
                Some(p) => NotifyPreset::parse(&p).ok_or_else(|| FieldError { field: "notify.preset".into(), message: format!("\"{p}\" is not accepted; one of: {} (webhook is generic)", NotifyPreset::NAMES.join(", ")) })?,
            };
            let chat_id = text_field(n, "chat_id", "notify.chat_id", 100)?;
            if preset == NotifyPreset::Telegram && chat_id.is_none() {
                return err("notify.chat_id", "is required with preset telegram: the chat the bot writes to (a number such as -1001234567890, or @channelname)");
            }
            if preset != NotifyPreset::Telegram && chat_id.is_some() {
                return err("notify.chat_id", "is only for preset telegram");
            }
            Ok(Some(Notify { url, channel, on, preset, chat_id }))
        }
        Some(other) => err(
            "notify",
            format!("{} is not accepted; e.g. {{\"url\": \"https://hooks.example.com/x\", \"on\": \"failure\"}}", describe(other)),
        ),
    }
}

/// The input form of a stored spec, so an update can overlay its fields and re-validate the whole.
pub fn spec_as_input(spec: &TaskSpec) -> Map<String, Value> {
    let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Some(trigger) = value.get_mut("trigger").and_then(Value::as_object_mut) {
        trigger.remove("every_seconds");
    }
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Overlay `patch` (update arguments without `taskId`) on a stored spec. A `null` clears a field;
/// a new `schedule` replaces the trigger and keeps the timezone.
pub fn merge_update(existing: &TaskSpec, patch: &Map<String, Value>) -> Result<Value, FieldError> {
    reject_unknown(patch, TASK_FIELDS, "")?;
    let mut base = spec_as_input(existing);
    if patch.get("schedule").is_some_and(|v| !v.is_null()) {
        base.remove("trigger");
    }
    if patch.get("trigger").is_some_and(|v| !v.is_null()) {
        base.remove("schedule");
    }
    if let Some(Value::Object(t)) = patch.get("trigger") {
        if t.contains_key("timezone") && !patch.contains_key("timezone") {
            base.remove("timezone");
        }
    }
    if patch
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != existing.task_type.as_str())
    {
        // Switching type drops the fields of the old type.
        for field in ["command", "prompt"].iter().chain(SUBAGENT_ONLY) {
            base.remove(*field);
        }
    }
    for (key, value) in patch {
        if value.is_null() {
            base.remove(key);
        } else {
            base.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(base))
}
