//! Validation of task input (the `add_task` / `update_task` arguments) into a `TaskSpec`.
//! Every rejection names the field and what is accepted. Pure: it asks the caller (through
//! `TaskLookup`) about other tasks and never touches SQL, the clock or the file system.

use crate::tasks::model::{
    AfterOn, CatchUp, FileEvent, Notify, NotifyOn, Overlap, Retries, Runner, TaskSpec, TaskType,
    Trigger,
};
use crate::tasks::schedule::{parse_timezone, Schedule};
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
];

const TRIGGER_TYPES: &str = "cron, file-watch, hook, interval, once, after, manual";

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

pub const PERMISSION_MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "bypassPermissions",
    "plan",
    "dontAsk",
];

/// Parse `30s`, `15m`, `2h`, `1d` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let accepted = "accepted: a whole number followed by s, m, h or d, such as 30s, 15m, 2h, 1d";
    if t.len() < 2 {
        return Err(format!("\"{text}\" is not a duration; {accepted}"));
    }
    // The unit is the last character; it may be any character (even multi-byte), so split on a
    // character boundary, and the number is ASCII digits only (no sign, no spaces).
    let not_duration = || format!("\"{text}\" is not a duration; {accepted}");
    let unit = t.chars().next_back().ok_or_else(not_duration)?;
    let digits = &t[..t.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_duration());
    }
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(not_duration()),
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|s| *s <= 366 * 86_400)
        .ok_or_else(|| format!("\"{text}\" is longer than a year; {accepted}"))?;
    if secs == 0 {
        return Err(format!("\"{text}\" is zero; the shortest interval is 1s"));
    }
    Ok(secs)
}

/// Parse an RFC 3339 time, or a local `YYYY-MM-DDTHH:MM[:SS]` read in `tz`.
pub fn parse_time(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let formats = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    for f in formats {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text.trim(), f) {
            return match tz.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
                chrono::LocalResult::None => Err(format!(
                    "\"{text}\" does not exist in {tz} (skipped by a daylight-saving change); give an RFC 3339 time with an offset"
                )),
            };
        }
    }
    Err(format!(
        "\"{text}\" is not a time; accepted: RFC 3339 such as 2026-12-01T09:00:00+03:00 or 2026-12-01T06:00:00Z, or a local 2026-12-01T09:00 read in the task's timezone"
    ))
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        other => {
            let text = other.to_string();
            if text.len() > 60 {
                format!(
                    "{}…",
                    &text[..text.char_indices().nth(57).map_or(text.len(), |(i, _)| i)]
                )
            } else {
                text
            }
        }
    }
}

fn string_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => err(path, format!("{} is not a string", describe(other))),
    }
}

fn bool_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<bool>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => err(
            path,
            format!(
                "{} is not accepted; expected true or false",
                describe(other)
            ),
        ),
    }
}

fn int_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => err(
                path,
                format!(
                    "{} is not accepted; expected a whole number from {min} to {max}",
                    describe(v)
                ),
            ),
        },
    }
}

fn enum_field<'a>(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    accepted: &[&'a str],
) -> Result<Option<&'a str>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match accepted.iter().find(|a| value.as_str() == Some(**a)) {
            Some(a) => Ok(Some(a)),
            None => err(
                path,
                format!(
                    "{} is not accepted; accepted: {}",
                    describe(value),
                    accepted.join(", ")
                ),
            ),
        },
    }
}

fn reject_unknown(
    obj: &Map<String, Value>,
    accepted: &[&str],
    path_prefix: &str,
) -> Result<(), FieldError> {
    for key in obj.keys() {
        if !accepted.contains(&key.as_str()) {
            let field = if path_prefix.is_empty() {
                key.clone()
            } else {
                format!("{path_prefix}.{key}")
            };
            // A near miss of an accepted name (two edits for longer names, one for short ones).
            let reach = if key.chars().count() >= 5 { 2 } else { 1 };
            let hint = accepted
                .iter()
                .filter(|a| crate::util::edit_distance(a, key) <= reach)
                .min_by_key(|a| crate::util::edit_distance(a, key))
                .map(|a| format!("did you mean \"{a}\"? "))
                .unwrap_or_default();
            return err(
                &field,
                format!(
                    "unknown field; {hint}accepted fields here: {}",
                    accepted.join(", ")
                ),
            );
        }
    }
    Ok(())
}

fn check_glob(pattern: &str, path: &str) -> Result<(), FieldError> {
    crate::util::PathGlob::new(pattern)
        .map(|_| ())
        .or_else(|e| {
            err(
                path,
                format!("\"{pattern}\" is not a valid glob ({e}); e.g. *.rs or src/**/*.py"),
            )
        })
}

fn non_blank(
    value: Option<String>,
    path: &str,
    max_len: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => err(path, "must not be empty"),
        Some(s) if s.len() > max_len => err(
            path,
            format!("is {} bytes long; the limit is {max_len}", s.len()),
        ),
        Some(s) => Ok(Some(s)),
    }
}

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
    let top_tz = string_field(obj, "timezone", "timezone")?;
    let trigger_tz = match trigger_obj {
        Some(t) => string_field(t, "timezone", "trigger.timezone")?,
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

    let schedule = string_field(obj, "schedule", "schedule")?;
    let trigger = match (schedule, trigger_obj) {
        (Some(_), Some(_)) => {
            return err("schedule", "give either schedule (a cron expression) or trigger, not both")
        }
        (Some(expr), None) => {
            Schedule::parse(&expr, ctx.now).or_else(|e| err("schedule", e))?;
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
        64 * 1024,
    )?;
    let prompt = non_blank(string_field(obj, "prompt", "prompt")?, "prompt", 256 * 1024)?;
    let subagent_only = [
        "model",
        "runner",
        "allowed_tools",
        "max_turns",
        "permission_mode",
        "max_tokens",
        "system",
    ];
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
                if obj.get(field).is_some_and(|v| !v.is_null()) {
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

    let description = match string_field(obj, "description", "description")? {
        Some(d) if d.len() > 4096 => {
            return err(
                "description",
                format!("is {} bytes long; the limit is 4096", d.len()),
            )
        }
        other => other.filter(|d| !d.trim().is_empty()),
    };
    let enabled = bool_field(obj, "enabled", "enabled")?.unwrap_or(true);
    let cwd = string_field(obj, "cwd", "cwd")?;
    if let Some(dir) = &cwd {
        if !dir.starts_with('/') {
            return err(
                "cwd",
                format!("\"{dir}\" is not an absolute path; e.g. /home/me/project"),
            );
        }
    }
    let env = env_field(obj)?;
    let timeout_seconds = int_field(obj, "timeout_seconds", "timeout_seconds", 1, 7 * 86_400)?;
    let model = non_blank(string_field(obj, "model", "model")?, "model", 200)?;
    let runner = match enum_field(obj, "runner", "runner", &["claude-code", "api"])? {
        Some("claude-code") => Some(Runner::ClaudeCode),
        Some(_) => Some(Runner::Api),
        None => None,
    };
    let allowed_tools = match obj.get("allowed_tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut tools = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !s.trim().is_empty() => tools.push(s.to_string()),
                    _ => {
                        return err(
                            &format!("allowed_tools[{i}]"),
                            format!(
                                "{} is not a tool name such as Read, Bash(git *)",
                                describe(item)
                            ),
                        )
                    }
                }
            }
            tools
        }
        Some(other) => {
            return err(
                "allowed_tools",
                format!(
                    "{} is not a list of tool names such as [\"Read\", \"Grep\"]",
                    describe(other)
                ),
            )
        }
    };
    let max_turns = int_field(obj, "max_turns", "max_turns", 1, 1000)?.map(|n| n as u32);
    let max_tokens = int_field(obj, "max_tokens", "max_tokens", 1, 128_000)?.map(|n| n as u32);
    let system = non_blank(string_field(obj, "system", "system")?, "system", 256 * 1024)?;
    let permission_mode =
        enum_field(obj, "permission_mode", "permission_mode", PERMISSION_MODES)?.map(String::from);
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
    })
}

fn env_field(obj: &Map<String, Value>) -> Result<BTreeMap<String, String>, FieldError> {
    let mut env = BTreeMap::new();
    match obj.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Object(vars)) => {
            for (key, value) in vars {
                let path = format!("env.{key}");
                let valid_name = !key.is_empty()
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid_name {
                    return err(&path, "is not a variable name; accepted: letters, digits and _, not starting with a digit");
                }
                if key.starts_with("CLAUDECRON_") {
                    return err(&path, "CLAUDECRON_* variables are set by claudecron for each run and cannot be overridden");
                }
                match value {
                    Value::String(s) if !s.contains('\0') => {
                        env.insert(key.clone(), s.clone());
                    }
                    Value::Number(n) => {
                        env.insert(key.clone(), n.to_string());
                    }
                    Value::Bool(b) => {
                        env.insert(key.clone(), b.to_string());
                    }
                    other => {
                        return err(
                            &path,
                            format!("{} is not accepted; a value is a string", describe(other)),
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
            reject_unknown(n, &["url", "on"], "notify")?;
            let url = string_field(n, "url", "notify.url")?
                .ok_or_else(|| FieldError { field: "notify.url".into(), message: "is required: an http(s) URL that receives a JSON POST per finished run".into() })?;
            let valid = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("://").nth(1).is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
                && !url.contains(char::is_whitespace);
            if !valid {
                return err("notify.url", format!("\"{url}\" is not an http(s) URL such as https://hooks.example.com/cron"));
            }
            let on = match enum_field(n, "on", "notify.on", &["failure", "success", "always"])? {
                Some("success") => NotifyOn::Success,
                Some("always") => NotifyOn::Always,
                _ => NotifyOn::Failure,
            };
            Ok(Some(Notify { url, on }))
        }
        Some(other) => err(
            "notify",
            format!("{} is not accepted; e.g. {{\"url\": \"https://hooks.example.com/x\", \"on\": \"failure\"}}", describe(other)),
        ),
    }
}

fn trigger(
    t: &Map<String, Value>,
    tz: chrono_tz::Tz,
    ctx: &Context,
) -> Result<Trigger, FieldError> {
    let kind = match string_field(t, "type", "trigger.type")? {
        Some(k) => k,
        None => {
            return err(
                "trigger.type",
                format!("is required; accepted: {TRIGGER_TYPES}"),
            )
        }
    };
    // File saves come in bursts (default 1 s of quiet); each hook event counts (default 0).
    let debounce = |t: &Map<String, Value>, default: u64| -> Result<u64, FieldError> {
        Ok(int_field(t, "debounce_ms", "trigger.debounce_ms", 0, 3_600_000)?.unwrap_or(default))
    };
    match kind.as_str() {
        "cron" => {
            reject_unknown(t, &["type", "schedule", "timezone"], "trigger")?;
            let expr =
                string_field(t, "schedule", "trigger.schedule")?.ok_or_else(|| FieldError {
                    field: "trigger.schedule".into(),
                    message: "is required for a cron trigger, e.g. \"0 9 * * 1-5\"".into(),
                })?;
            Schedule::parse(&expr, ctx.now).or_else(|e| err("trigger.schedule", e))?;
            Ok(Trigger::Cron {
                schedule: expr.trim().to_string(),
            })
        }
        "file-watch" | "file_watch" => {
            reject_unknown(
                t,
                &[
                    "type",
                    "path",
                    "pattern",
                    "recursive",
                    "events",
                    "debounce_ms",
                ],
                "trigger",
            )?;
            let path = string_field(t, "path", "trigger.path")?.ok_or_else(|| FieldError {
                field: "trigger.path".into(),
                message: "is required: an absolute file or directory path".into(),
            })?;
            if !path.starts_with('/') {
                return err(
                    "trigger.path",
                    format!("\"{path}\" is not an absolute path; e.g. /etc/nginx/nginx.conf"),
                );
            }
            if path.contains('\0') {
                return err("trigger.path", "contains a NUL byte");
            }
            let pattern = string_field(t, "pattern", "trigger.pattern")?;
            if let Some(p) = &pattern {
                check_glob(p, "trigger.pattern")?;
            }
            let recursive = bool_field(t, "recursive", "trigger.recursive")?.unwrap_or(true);
            let events = match t.get("events") {
                None | Some(Value::Null) => {
                    vec![FileEvent::Create, FileEvent::Modify, FileEvent::Remove]
                }
                Some(Value::Array(items)) if !items.is_empty() => {
                    let mut events = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let e = match item.as_str() {
                            Some("create") => FileEvent::Create,
                            Some("modify") => FileEvent::Modify,
                            Some("remove") => FileEvent::Remove,
                            _ => {
                                return err(
                                    &format!("trigger.events[{i}]"),
                                    format!(
                                        "{} is not accepted; accepted: create, modify, remove",
                                        describe(item)
                                    ),
                                )
                            }
                        };
                        if !events.contains(&e) {
                            events.push(e);
                        }
                    }
                    events.sort();
                    events
                }
                Some(other) => {
                    return err(
                        "trigger.events",
                        format!(
                            "{} is not accepted; a non-empty list of create, modify, remove",
                            describe(other)
                        ),
                    )
                }
            };
            Ok(Trigger::FileWatch {
                path,
                pattern,
                recursive,
                events,
                debounce_ms: debounce(t, 1000)?,
            })
        }
        "hook" => {
            reject_unknown(
                t,
                &["type", "event", "matcher", "file_pattern", "debounce_ms"],
                "trigger",
            )?;
            let event = string_field(t, "event", "trigger.event")?.ok_or_else(|| FieldError {
                field: "trigger.event".into(),
                message: format!("is required; accepted: {}", HOOK_EVENTS.join(", ")),
            })?;
            if !HOOK_EVENTS.contains(&event.as_str()) {
                let hint = HOOK_EVENTS.iter().find(|e| e.eq_ignore_ascii_case(&event));
                let message = match hint {
                    Some(h) => format!(
                        "\"{event}\" is not a Claude Code hook event; did you mean \"{h}\"?"
                    ),
                    None => format!(
                        "\"{event}\" is not a Claude Code hook event; accepted: {}",
                        HOOK_EVENTS.join(", ")
                    ),
                };
                return err("trigger.event", message);
            }
            let matcher = string_field(t, "matcher", "trigger.matcher")?.filter(|m| !m.is_empty());
            if let Some(m) = &matcher {
                regex::Regex::new(m).or_else(|e| {
                    err("trigger.matcher", format!("\"{m}\" is not a valid regular expression ({}); e.g. Edit|Write or mcp__.*", e.to_string().lines().last().unwrap_or("")))
                })?;
            }
            let file_pattern = string_field(t, "file_pattern", "trigger.file_pattern")?;
            if let Some(p) = &file_pattern {
                check_glob(p, "trigger.file_pattern")?;
            }
            Ok(Trigger::Hook {
                event,
                matcher,
                file_pattern,
                debounce_ms: debounce(t, 0)?,
            })
        }
        "interval" => {
            reject_unknown(t, &["type", "every", "start_at"], "trigger")?;
            let every = string_field(t, "every", "trigger.every")?.ok_or_else(|| FieldError {
                field: "trigger.every".into(),
                message: "is required: a duration such as 30s, 15m, 2h, 1d".into(),
            })?;
            let every_seconds = parse_duration(&every).or_else(|e| err("trigger.every", e))?;
            let start_at = match string_field(t, "start_at", "trigger.start_at")? {
                Some(s) => parse_time(&s, tz).or_else(|e| err("trigger.start_at", e))?,
                None => ctx.now,
            };
            Ok(Trigger::Interval {
                every: every.trim().to_string(),
                every_seconds,
                start_at: rfc3339(start_at),
            })
        }
        "once" => {
            reject_unknown(t, &["type", "at"], "trigger")?;
            let at = string_field(t, "at", "trigger.at")?.ok_or_else(|| FieldError {
                field: "trigger.at".into(),
                message: "is required: an RFC 3339 time such as 2026-12-01T09:00:00Z".into(),
            })?;
            let when = parse_time(&at, tz).or_else(|e| err("trigger.at", e))?;
            if when <= ctx.now && ctx.self_id.is_none() {
                return err(
                    "trigger.at",
                    format!(
                        "\"{at}\" is in the past (now is {}); give a future time",
                        rfc3339(ctx.now)
                    ),
                );
            }
            Ok(Trigger::Once { at: rfc3339(when) })
        }
        "after" => {
            reject_unknown(t, &["type", "task", "on"], "trigger")?;
            let upstream = string_field(t, "task", "trigger.task")?.ok_or_else(|| FieldError {
                field: "trigger.task".into(),
                message: "is required: the id or name of the task to follow".into(),
            })?;
            let found = ctx.lookup.find(&upstream).ok_or_else(|| FieldError {
                field: "trigger.task".into(),
                message: format!("no task has the id or name \"{upstream}\"; list them with claudecron_list_tasks"),
            })?;
            if Some(found.id.as_str()) == ctx.self_id {
                return err("trigger.task", "a task cannot run after itself");
            }
            // Walk the upstream chain: reaching this task again would be an endless loop.
            if let Some(self_id) = ctx.self_id {
                let mut cursor = found.after.clone();
                let mut hops = 0;
                while let Some(id) = cursor {
                    if id == self_id {
                        return err(
                            "trigger.task",
                            format!(
                                "running after \"{}\" would make a cycle back to this task",
                                found.name
                            ),
                        );
                    }
                    hops += 1;
                    if hops > 1000 {
                        break;
                    }
                    cursor = ctx.lookup.find(&id).and_then(|r| r.after);
                }
            }
            let on = match enum_field(t, "on", "trigger.on", &["success", "failure", "always"])? {
                Some("failure") => AfterOn::Failure,
                Some("always") => AfterOn::Always,
                _ => AfterOn::Success,
            };
            Ok(Trigger::After { task: found.id, on })
        }
        "manual" => {
            reject_unknown(t, &["type"], "trigger")?;
            Ok(Trigger::Manual)
        }
        other => err(
            "trigger.type",
            format!("\"{other}\" is not accepted; accepted: {TRIGGER_TYPES}"),
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
        for field in [
            "command",
            "prompt",
            "model",
            "runner",
            "allowed_tools",
            "max_turns",
            "permission_mode",
            "max_tokens",
            "system",
        ] {
            base.remove(field);
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
