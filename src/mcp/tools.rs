//! The MCP tools: their names, titles, descriptions for the model, input and output schemas,
//! annotations, and the mapping from a `tools/call` to a catalog operation. Argument shapes are
//! checked here; task semantics are checked by `validate` via the catalog. No SQL, no HTTP.

use crate::tasks::catalog::{self, Catalog, OpError, OpResult};
use chrono::Utc;
use serde_json::{json, Map, Value};

const ABOUT: &str = "claudecron runs tasks on its own always-on server host and keeps every task and run in its database; these are not Claude Code's session-scoped CronCreate/CronList/CronDelete jobs, which live only in the current session.";
const TZ_RULE: &str = "Schedules fire in the task's IANA timezone (the `timezone` field, default UTC); do not convert times to UTC yourself. Every time returned is shown in the task's zone and in UTC.";

fn task_properties() -> Value {
    json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Unique task name (1-100 printable characters). Also accepted wherever a taskId is asked for."},
        "type": {"type": "string", "enum": ["bash", "subagent"], "description": "bash: run `command` with /bin/sh -c. subagent: give `prompt` to Claude (Claude Code headless or the Anthropic API)."},
        "schedule": {"type": "string", "description": "Cron expression, crontab syntax: 5 fields `minute hour day-of-month month day-of-week` (6 with leading seconds, 7 with trailing year), or @hourly/@daily/@midnight/@weekly/@monthly/@yearly. Day-of-week 0-7 (0 and 7 = Sunday) or names; day-of-month and day-of-week combine with OR; L, W and # supported. Shorthand for trigger {\"type\":\"cron\"}. Give schedule or trigger, not both.", "examples": ["0 9 * * 1-5", "*/15 * * * *", "@daily"]},
        "timezone": {"type": "string", "description": "IANA zone the schedule fires in and times are shown in, e.g. Europe/Moscow, America/New_York. Default: the server's default_timezone (UTC).", "examples": ["UTC", "Europe/Moscow"]},
        "trigger": {
            "type": "object",
            "description": "What fires the task when it is not a plain cron schedule. type is one of: cron {schedule, timezone}; file-watch {path (absolute), pattern (glob), recursive (default true), events [create, modify, remove], debounce_ms (default 1000)}; hook {event (Claude Code hook event such as PostToolUse), matcher (as in Claude Code settings: a name or A|B list is exact, anything else an unanchored regex; tested against tool_name for tool events), file_pattern (glob on tool_input.file_path), debounce_ms (default 0)}; interval {every: 30s/15m/2h/1d, start_at (RFC 3339)}; once {at (RFC 3339)}; after {task (id or name), on: success/failure/always}; manual {} (only run by claudecron_run_task).",
            "properties": {
                "type": {"type": "string", "enum": ["cron", "file-watch", "file_watch", "hook", "interval", "once", "after", "manual"]},
                "schedule": {"type": "string"},
                "timezone": {"type": "string"},
                "path": {"type": "string"},
                "pattern": {"type": "string"},
                "recursive": {"type": "boolean", "default": true},
                "events": {"type": "array", "items": {"type": "string", "enum": ["create", "modify", "remove"]}},
                "debounce_ms": {"type": "integer", "minimum": 0, "maximum": 3600000, "default": 1000},
                "event": {"type": "string"},
                "matcher": {"type": "string"},
                "file_pattern": {"type": "string"},
                "every": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
                "start_at": {"type": "string"},
                "at": {"type": "string"},
                "task": {"type": "string"},
                "on": {"type": "string", "enum": ["success", "failure", "always"], "default": "success"}
            },
            "required": ["type"]
        },
        "command": {"type": "string", "description": "Shell command for a bash task, run with /bin/sh -c."},
        "prompt": {"type": "string", "description": "Instructions for a subagent task."},
        "description": {"type": "string", "description": "Free text for people."},
        "enabled": {"type": "boolean", "default": true, "description": "false: stored but not armed."},
        "cwd": {"type": "string", "description": "Absolute working directory for the run."},
        "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra environment variables for the run (CLAUDECRON_* are reserved)."},
        "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 604800, "description": "Run time limit; default the server's task_timeout_secs (300)."},
        "model": {"type": "string", "description": "Subagent only: Claude model id; default the server's default_model."},
        "runner": {"type": "string", "enum": ["claude-code", "api"], "description": "Subagent only: claude-code (`claude -p`) or api (Messages API). Default: claude-code when a claude executable is found, else api."},
        "allowed_tools": {"type": "array", "items": {"type": "string"}, "description": "Subagent only (claude-code): tools Claude may use, e.g. [\"Read\", \"Grep\", \"Bash(git *)\"]."},
        "max_turns": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Subagent only: turn limit."},
        "permission_mode": {"type": "string", "enum": ["default", "acceptEdits", "bypassPermissions", "plan", "dontAsk"], "description": "Subagent only (claude-code)."},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 128000, "description": "Subagent only (api runner): response token limit; default 4096."},
        "system": {"type": "string", "description": "Subagent only: a system prompt (api runner), or text appended to Claude Code's system prompt (claude-code runner)."},
        "overlap": {"type": "string", "enum": ["skip", "queue", "allow"], "default": "skip", "description": "What a fire does while a run of this task is still active."},
        "catch_up": {"type": "string", "enum": ["skip", "once"], "default": "skip", "description": "Fires missed while the server was down: skip (recorded as skipped runs) or once (one run)."},
        "retries": {"type": "object", "description": "Retry a failed or timed-out run: max_attempts more runs, backoff_seconds apart (doubling each time when doubling is true); each attempt is its own run.", "properties": {"max_attempts": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0}, "backoff_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 30}, "doubling": {"type": "boolean", "default": true}}, "additionalProperties": false},
        "notify": {"type": "object", "description": "A JSON POST to url when a run finishes (on failure, success or always): task, run, status, output excerpt.", "properties": {"url": {"type": "string", "description": "http(s) URL receiving a JSON POST per finished run"}, "on": {"type": "string", "enum": ["failure", "success", "always"], "default": "failure"}}, "required": ["url"], "additionalProperties": false}
    })
}

fn task_id_property() -> Value {
    json!({"type": "string", "minLength": 1, "description": "The task's id or its exact name."})
}

fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn output_schema(required: &[&str]) -> Value {
    let props: Map<String, Value> = required
        .iter()
        .map(|k| ((*k).to_string(), json!({})))
        .collect();
    json!({"type": "object", "properties": props, "required": required})
}

fn annotations(read_only: bool, destructive: bool, idempotent: bool) -> Value {
    json!({
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": false,
    })
}

/// The tool list as `tools/list` returns it.
pub fn definitions() -> Vec<Value> {
    let mut update_props = task_properties();
    if let Some(obj) = update_props.as_object_mut() {
        obj.insert("taskId".into(), task_id_property());
    }
    vec![
        json!({
            "name": "claudecron_add_task",
            "title": "Add a claudecron task",
            "description": format!("Create a persistent task on the claudecron server: a bash command or a Claude subagent prompt, fired by a cron schedule, a file change, a Claude Code hook event, an interval, a one-shot time, another task's end, or only by hand. {ABOUT} {TZ_RULE} Returns the stored task, its trigger in words and its next fire times. Example: {{\"name\":\"daily-backup\",\"type\":\"bash\",\"schedule\":\"0 2 * * *\",\"command\":\"/opt/scripts/backup.sh\",\"timezone\":\"Europe/Moscow\"}}"),
            "inputSchema": object_schema(task_properties(), &["name", "type"]),
            "outputSchema": output_schema(&["task"]),
            "annotations": annotations(false, false, false),
        }),
        json!({
            "name": "claudecron_list_tasks",
            "title": "List claudecron tasks",
            "description": format!("List the tasks stored on the claudecron server, one row each: id, name, type, trigger in words, enabled, next run and last run with its status. {ABOUT} Times are shown in each task's zone and in UTC. Example: {{\"status\":\"enabled\"}}"),
            "inputSchema": object_schema(json!({
                "status": {"type": "string", "enum": ["all", "enabled", "disabled"], "default": "all"},
                "type": {"type": "string", "enum": ["bash", "subagent"]}
            }), &[]),
            "outputSchema": output_schema(&["tasks", "count"]),
            "annotations": annotations(true, false, true),
        }),
        json!({
            "name": "claudecron_get_task",
            "title": "Get one claudecron task",
            "description": format!("Show one claudecron task in full: its definition, trigger in words, next 5 fire times and last 5 runs. {TZ_RULE} Example: {{\"taskId\":\"daily-backup\"}}"),
            "inputSchema": object_schema(json!({"taskId": task_id_property()}), &["taskId"]),
            "outputSchema": output_schema(&["task"]),
            "annotations": annotations(true, false, true),
        }),
        json!({
            "name": "claudecron_update_task",
            "title": "Update a claudecron task",
            "description": format!("Change fields of a claudecron task; fields not given stay as they are, null clears an optional field. A new schedule or trigger is re-armed at once; a new schedule keeps the task's timezone unless you give one. {TZ_RULE} Example: {{\"taskId\":\"daily-backup\",\"schedule\":\"30 3 * * *\"}}"),
            "inputSchema": object_schema(update_props, &["taskId"]),
            "outputSchema": output_schema(&["task"]),
            "annotations": annotations(false, false, true),
        }),
        json!({
            "name": "claudecron_delete_task",
            "title": "Delete a claudecron task",
            "description": "Delete a claudecron task and all its run history; its triggers stop at once. This cannot be undone (to pause a task instead, use claudecron_toggle_task). Example: {\"taskId\":\"daily-backup\"}",
            "inputSchema": object_schema(json!({"taskId": task_id_property()}), &["taskId"]),
            "outputSchema": output_schema(&["deleted"]),
            "annotations": annotations(false, true, true),
        }),
        json!({
            "name": "claudecron_toggle_task",
            "title": "Enable or disable a claudecron task",
            "description": format!("Enable or disable a claudecron task without deleting it. Disabling disarms every trigger at once; enabling re-arms them. {TZ_RULE} Example: {{\"taskId\":\"daily-backup\",\"enabled\":false}}"),
            "inputSchema": object_schema(json!({"taskId": task_id_property(), "enabled": {"type": "boolean"}}), &["taskId", "enabled"]),
            "outputSchema": output_schema(&["task"]),
            "annotations": annotations(false, false, true),
        }),
        json!({
            "name": "claudecron_get_history",
            "title": "Run history of claudecron tasks",
            "description": "List runs newest first, for one task or all: id, task, trigger, status (queued, running, success, failed, timeout, cancelled, skipped, interrupted), times (UTC), duration, exit code, output excerpt, error; for subagent runs also runner, model, tokens, cost, turns and session id. Example: {\"taskId\":\"daily-backup\",\"status\":\"failed\",\"limit\":10}",
            "inputSchema": object_schema(json!({
                "taskId": task_id_property(),
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                "status": {"type": "string", "enum": ["all", "success", "failed", "running", "skipped", "queued", "timeout", "cancelled", "interrupted"], "default": "all"}
            }), &[]),
            "outputSchema": output_schema(&["runs", "count"]),
            "annotations": annotations(true, false, true),
        }),
        json!({
            "name": "claudecron_get_run",
            "title": "Get one claudecron run",
            "description": "Show one run with its full output (stdout and stderr interleaved; live output while it is still running). tail_bytes returns only the end of the output. Example: {\"runId\":42,\"tail_bytes\":4000}",
            "inputSchema": object_schema(json!({
                "runId": {"type": "integer", "minimum": 1, "description": "The run's id (from claudecron_get_history)."},
                "tail_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "description": "Return only the last N bytes of output."}
            }), &["runId"]),
            "outputSchema": output_schema(&["run"]),
            "annotations": annotations(true, false, true),
        }),
        json!({
            "name": "claudecron_run_task",
            "title": "Run a claudecron task now",
            "description": "Start a run of a claudecron task right away, whatever its trigger (manual tasks run only this way). Returns the run id at once; with wait_seconds (1-600) it waits for the run to finish and returns its status, exit code and output (the run keeps going if the wait ends first or the client disconnects: poll claudecron_get_run). Clients that time out requests after 60 s should use wait_seconds <= 50 and poll for longer runs. The task's overlap policy applies: with overlap = skip and a run still active, the new run is recorded as skipped. Example: {\"taskId\":\"daily-backup\",\"wait_seconds\":30}",
            "inputSchema": object_schema(json!({
                "taskId": task_id_property(),
                "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 600, "default": 0, "description": "How long to wait for the run to finish (0: return the run id at once)."}
            }), &["taskId"]),
            "outputSchema": output_schema(&["run"]),
            "annotations": annotations(false, false, false),
        }),
        json!({
            "name": "claudecron_cancel_run",
            "title": "Cancel a claudecron run",
            "description": "Cancel a queued or running run: its whole process group gets SIGTERM, then SIGKILL after a grace period, and the run is recorded as cancelled. Returns the run as recorded. Example: {\"runId\":42}",
            "inputSchema": object_schema(json!({
                "runId": {"type": "integer", "minimum": 1, "description": "The run's id (from claudecron_run_task or claudecron_get_history)."}
            }), &["runId"]),
            "outputSchema": output_schema(&["run"]),
            "annotations": annotations(false, true, true),
        }),
        json!({
            "name": "claudecron_trigger_hook",
            "title": "Try claudecron hook tasks with a hook event",
            "description": "Fire the enabled claudecron tasks whose hook trigger matches a Claude Code hook event, as if Claude Code had sent it to /hooks, and return which tasks matched and their run ids (debounce is skipped). Give `payload` (the hook input JSON), or just the fields an mcp_tool hook can interpolate: tool_name, file_path (becomes tool_input.file_path), session_id, cwd. Example: {\"event\":\"PostToolUse\",\"tool_name\":\"Write\",\"file_path\":\"/srv/app/main.py\"}",
            "inputSchema": object_schema(json!({
                "event": {"type": "string", "enum": crate::tasks::validate::HOOK_EVENTS, "description": "The hook event name (hook_event_name)."},
                "payload": {"type": "object", "description": "The hook input as Claude Code sends it; hook_event_name is set from event."},
                "tool_name": {"type": "string"},
                "file_path": {"type": "string"},
                "session_id": {"type": "string"},
                "cwd": {"type": "string"}
            }), &["event"]),
            "outputSchema": output_schema(&["event", "matched", "count"]),
            "annotations": annotations(false, false, false),
        }),
        json!({
            "name": "claudecron_preview_schedule",
            "title": "Preview a cron schedule",
            "description": format!("Check a cron expression without creating anything: the expression in words and its next fire times. {TZ_RULE} Example: {{\"schedule\":\"0 9 * * 1-5\",\"timezone\":\"Europe/Moscow\",\"count\":3}}"),
            "inputSchema": object_schema(json!({
                "schedule": {"type": "string", "description": "Cron expression (crontab syntax, see claudecron_add_task)."},
                "timezone": {"type": "string", "description": "IANA zone; default the server's default_timezone (UTC)."},
                "count": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}
            }), &["schedule"]),
            "outputSchema": output_schema(&["schedule", "timezone", "description", "next_runs"]),
            "annotations": annotations(true, false, true),
        }),
    ]
}

/// Why a call could not be made at all (a JSON-RPC error rather than a tool result).
pub enum CallError {
    UnknownTool(String),
}

fn invalid(field: &str, message: impl Into<String>) -> OpError {
    OpError::Invalid(crate::tasks::validate::FieldError {
        field: field.into(),
        message: message.into(),
    })
}

fn required_str<'a>(
    args: &'a Map<String, Value>,
    field: &str,
    what: &str,
) -> Result<&'a str, OpError> {
    match args.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(invalid(field, format!("is required: {what}"))),
        Some(other) => Err(invalid(
            field,
            format!("{other} is not accepted; expected {what}"),
        )),
    }
}

fn optional_str<'a>(
    args: &'a Map<String, Value>,
    field: &str,
    accepted: &[&str],
) -> Result<Option<&'a str>, OpError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if accepted.is_empty() || accepted.contains(&s.as_str()) => {
            Ok(Some(s))
        }
        Some(other) => Err(invalid(
            field,
            if accepted.is_empty() {
                format!("{other} is not a string")
            } else {
                format!("{other} is not accepted; accepted: {}", accepted.join(", "))
            },
        )),
    }
}

fn optional_int(
    args: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, OpError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                field,
                format!("{v} is not accepted; expected a whole number from {min} to {max}"),
            )),
        },
    }
}

fn only_fields(args: &Map<String, Value>, accepted: &[&str]) -> Result<(), OpError> {
    match args.keys().find(|k| !accepted.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            k,
            format!("unknown argument; accepted: {}", accepted.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `runId`: a whole number (or its decimal string).
pub fn run_id_arg(args: &Map<String, Value>) -> Result<i64, OpError> {
    match args.get("runId") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i >= 1) => Ok(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) if s.parse::<i64>().is_ok_and(|i| i >= 1) => {
            Ok(s.parse().unwrap_or(0))
        }
        Some(other) => Err(invalid(
            "runId",
            format!("{other} is not accepted; expected a run id, a whole number such as 42"),
        )),
        None => Err(invalid(
            "runId",
            "is required: a run id from claudecron_get_history",
        )),
    }
}

/// `run_task` arguments: the task and how long to wait.
pub fn run_task_args(args: &Map<String, Value>) -> Result<(String, u64), OpError> {
    only_fields(args, &["taskId", "wait_seconds"])?;
    let task_id = required_str(args, "taskId", "a task id or name")?.to_string();
    let wait = optional_int(args, "wait_seconds", 0, 600)?.unwrap_or(0) as u64;
    Ok((task_id, wait))
}

/// `cancel_run` arguments.
pub fn cancel_run_args(args: &Map<String, Value>) -> Result<i64, OpError> {
    only_fields(args, &["runId"])?;
    run_id_arg(args)
}

/// Run one tool. `Err(CallError)` is a protocol error; `Ok(Err(OpError))` a tool error result.
pub fn call(
    catalog: &Catalog,
    name: &str,
    args: &Map<String, Value>,
) -> Result<OpResult, CallError> {
    let now = Utc::now();
    let result = match name {
        "claudecron_add_task" => catalog.add(&Value::Object(args.clone()), now),
        "claudecron_list_tasks" => (|| {
            only_fields(args, &["status", "type"])?;
            let enabled = match optional_str(args, "status", &["all", "enabled", "disabled"])? {
                Some("enabled") => Some(true),
                Some("disabled") => Some(false),
                _ => None,
            };
            let task_type = optional_str(args, "type", &["bash", "subagent"])?;
            catalog.list(enabled, task_type, now)
        })(),
        "claudecron_get_task" => (|| {
            only_fields(args, &["taskId"])?;
            catalog.get(required_str(args, "taskId", "a task id or name")?, now)
        })(),
        "claudecron_update_task" => (|| {
            let task_id = required_str(args, "taskId", "a task id or name")?;
            let mut patch = args.clone();
            patch.remove("taskId");
            catalog.update(task_id, &patch, now)
        })(),
        "claudecron_delete_task" => (|| {
            only_fields(args, &["taskId"])?;
            catalog.delete(required_str(args, "taskId", "a task id or name")?)
        })(),
        "claudecron_toggle_task" => (|| {
            only_fields(args, &["taskId", "enabled"])?;
            let task_id = required_str(args, "taskId", "a task id or name")?;
            let enabled = match args.get("enabled") {
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(invalid(
                        "enabled",
                        format!("{other} is not accepted; expected true or false"),
                    ))
                }
                None => {
                    return Err(invalid(
                        "enabled",
                        "is required: true to enable, false to disable",
                    ))
                }
            };
            catalog.toggle(task_id, enabled, now)
        })(),
        "claudecron_get_history" => (|| {
            only_fields(args, &["taskId", "limit", "status"])?;
            let task_id = optional_str(args, "taskId", &[])?;
            let limit = optional_int(args, "limit", 1, 1000)?.unwrap_or(50);
            let status = optional_str(
                args,
                "status",
                &[
                    "all",
                    "success",
                    "failed",
                    "running",
                    "skipped",
                    "queued",
                    "timeout",
                    "cancelled",
                    "interrupted",
                ],
            )?
            .filter(|s| *s != "all");
            catalog.history(task_id, status, limit)
        })(),
        "claudecron_get_run" => (|| {
            only_fields(args, &["runId", "tail_bytes"])?;
            let run_id = run_id_arg(args)?;
            let tail = optional_int(args, "tail_bytes", 1, 64 << 20)?.map(|n| n as usize);
            catalog.run(run_id, tail)
        })(),
        "claudecron_preview_schedule" => (|| {
            only_fields(args, &["schedule", "timezone", "count"])?;
            let schedule = required_str(
                args,
                "schedule",
                "a cron expression such as \"0 9 * * 1-5\"",
            )?;
            let tz = optional_str(args, "timezone", &[])?.unwrap_or(&catalog.defaults.timezone);
            let count = optional_int(args, "count", 1, 50)?.unwrap_or(5) as usize;
            catalog::preview_schedule(schedule, tz, count, now)
        })(),
        "claudecron_trigger_hook" => (|| {
            only_fields(
                args,
                &[
                    "event",
                    "payload",
                    "tool_name",
                    "file_path",
                    "session_id",
                    "cwd",
                ],
            )?;
            let event = required_str(
                args,
                "event",
                "a Claude Code hook event name such as PostToolUse",
            )?;
            if !crate::tasks::validate::HOOK_EVENTS.contains(&event) {
                return Err(invalid(
                    "event",
                    format!(
                        "\"{event}\" is not a Claude Code hook event; accepted: {}",
                        crate::tasks::validate::HOOK_EVENTS.join(", ")
                    ),
                ));
            }
            let mut payload = match args.get("payload") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(p)) => p.clone(),
                Some(other) => {
                    return Err(invalid(
                        "payload",
                        format!("{other} is not an object; give the hook input JSON"),
                    ))
                }
            };
            payload.insert("hook_event_name".into(), Value::String(event.to_string()));
            for key in ["tool_name", "session_id", "cwd"] {
                if let Some(v) = optional_str(args, key, &[])? {
                    payload.insert(key.into(), Value::String(v.to_string()));
                }
            }
            if let Some(path) = optional_str(args, "file_path", &[])? {
                let input = payload
                    .entry("tool_input")
                    .or_insert_with(|| Value::Object(Map::new()));
                match input.as_object_mut() {
                    Some(obj) => {
                        obj.insert("file_path".into(), Value::String(path.to_string()));
                    }
                    None => return Err(invalid("payload.tool_input", "is not an object")),
                }
            }
            catalog.trigger_hook(&Value::Object(payload))
        })(),
        other => return Err(CallError::UnknownTool(other.to_string())),
    };
    Ok(result)
}

/// A short human-readable text for a successful result (the JSON follows it in the text block).
pub fn summary(name: &str, value: &Value) -> String {
    let task_line = |t: &Value| {
        let next = t["next_runs"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|n| n["local"].as_str())
            .map(|n| format!("; next run {n}"))
            .unwrap_or_default();
        format!(
            "Task \"{}\" (id {}), {}, {}: {}{}",
            t["name"].as_str().unwrap_or(""),
            t["id"].as_str().unwrap_or(""),
            t["type"].as_str().unwrap_or(""),
            if t["enabled"].as_bool().unwrap_or(false) {
                "enabled"
            } else {
                "disabled"
            },
            t["trigger_summary"].as_str().unwrap_or(""),
            next
        ) + &t["warning"]
            .as_str()
            .map(|w| format!(" WARNING: {w}"))
            .unwrap_or_default()
    };
    match name {
        "claudecron_add_task" => format!("Created. {}", task_line(&value["task"])),
        "claudecron_update_task" | "claudecron_toggle_task" => {
            format!("Saved. {}", task_line(&value["task"]))
        }
        "claudecron_get_task" => task_line(&value["task"]),
        "claudecron_delete_task" => format!(
            "Deleted task \"{}\" (id {}) and {} runs.",
            value["deleted"]["name"].as_str().unwrap_or(""),
            value["deleted"]["id"].as_str().unwrap_or(""),
            value["deleted"]["runs_deleted"]
        ),
        "claudecron_list_tasks" => format!("{} tasks.", value["count"]),
        "claudecron_get_history" => format!("{} runs, newest first.", value["count"]),
        "claudecron_get_run" | "claudecron_run_task" | "claudecron_cancel_run" => format!(
            "Run {} of task \"{}\": {}.",
            value["run"]["id"],
            value["run"]["task_name"].as_str().unwrap_or(""),
            value["run"]["status"].as_str().unwrap_or("")
        ),
        "claudecron_trigger_hook" => format!(
            "{} hook tasks matched {}.",
            value["count"],
            value["event"].as_str().unwrap_or("")
        ),
        "claudecron_preview_schedule" => format!(
            "{} ({}): {}",
            value["schedule"].as_str().unwrap_or(""),
            value["timezone"].as_str().unwrap_or(""),
            value["description"].as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}
