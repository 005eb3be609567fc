//! The MCP tools in one table (like ripgrep's flag table): each tool's name, title, description
//! for the model, input and output schemas, annotations, handler and one-line summary together.
//! `tools/list`, dispatch and docs/API.md all come from `TOOLS`. Argument shapes are checked
//! here; task semantics by `validate` through the catalog. No SQL, no HTTP.

use super::args::{invalid, only_fields, optional_int, optional_str, required_str, run_id_arg};
use super::schema::{object_schema, output_schema, task_id_property, task_properties};
use crate::tasks::catalog::{self, Catalog, Encoded, OpError, OpResult};
use crate::tasks::model::TaskType;
use crate::tasks::runs::RunStatus;
use crate::tasks::validate::HOOK_EVENTS;
use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use serde_json::{json, Map, Value};
use std::time::Duration;

macro_rules! about {
    () => {
        "claudecron runs tasks on its own always-on server host and keeps every task and run in its database; these are not Claude Code's session-scoped CronCreate/CronList/CronDelete jobs, which live only in the current session."
    };
}
macro_rules! tz_rule {
    () => {
        "Schedules fire in the task's IANA timezone (the `timezone` field, default UTC); do not convert times to UTC yourself. Every time returned is shown in the task's zone and in UTC."
    };
}

/// The MCP tool annotations (hints for clients).
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

const READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
};
const WRITE: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: true,
};
const ACT: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
};

/// A run a tool started or acts on, whose answer may wait for the run's end.
pub struct RunCall {
    pub run_id: i64,
    /// How long to wait for the end; zero answers at once.
    pub wait: Duration,
    /// Signalled when the run is recorded as finished (None when not waiting).
    pub finished: Option<Receiver<()>>,
}

/// A handler whose answer is already encoded JSON.
pub type EncodedHandler =
    fn(&Catalog, &Map<String, Value>, DateTime<Utc>) -> Result<Encoded, OpError>;

/// How a tool is carried out.
pub enum Handler {
    /// Answered at once, on a worker.
    Now(fn(&Catalog, &Map<String, Value>, DateTime<Utc>) -> OpResult),
    /// Answered at once with JSON already encoded (no value tree); its summary line is made
    /// from the answer's `brief`.
    Encoded(EncodedHandler),
    /// Acts on a run and may wait for its end (`run_task`, `cancel_run`): the wait happens on
    /// the request's own connection thread, never in a lane.
    Run(fn(&Catalog, &Map<String, Value>) -> Result<RunCall, OpError>),
}

/// One MCP tool.
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input: fn() -> Value,
    /// The top-level fields of the structured result.
    pub output: &'static [&'static str],
    pub hints: Hints,
    pub handler: Handler,
    /// A short human-readable line for a successful result (the JSON follows it).
    pub summary: fn(&Value) -> String,
}

impl Tool {
    /// The definition as `tools/list` returns it.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": (self.input)(),
            "outputSchema": output_schema(self.output),
            "annotations": {
                "readOnlyHint": self.hints.read_only,
                "destructiveHint": self.hints.destructive,
                "idempotentHint": self.hints.idempotent,
                "openWorldHint": false,
            },
        })
    }
}

/// The tool of this name.
pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The tool list as `tools/list` returns it.
pub fn definitions() -> Vec<Value> {
    TOOLS.iter().map(Tool::definition).collect()
}

/// The `tools/list` result, `{"tools": [...]}`, encoded once: the list is fixed when the binary
/// is built, and building and encoding ~15 schemas on every call cost more than all the rest of
/// the request. `extra` fields (the 2026-07-28 path's `resultType`, `ttlMs`, `cacheScope`) are
/// added to the object before encoding; each era keeps its own copy.
pub fn list_result_json(
    cell: &'static std::sync::OnceLock<String>,
    extra: fn(Value) -> Value,
) -> &'static str {
    cell.get_or_init(|| extra(serde_json::json!({ "tools": definitions() })).to_string())
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "claudecron_add_task",
        title: "Add a claudecron task",
        description: concat!("Create a persistent task on the claudecron server: a bash command or a Claude subagent prompt, fired by a cron schedule, a file change, a Claude Code hook event, an interval, a one-shot time, another task's end, or only by hand. ", about!(), " ", tz_rule!(), " Returns the stored task, its trigger in words and its next fire times. Example: {\"name\":\"daily-backup\",\"type\":\"bash\",\"schedule\":\"0 2 * * *\",\"command\":\"/opt/scripts/backup.sh\",\"timezone\":\"Europe/Moscow\"}"),
        input: || object_schema(task_properties(), &["name", "type"]),
        output: &["task"],
        hints: ACT,
        handler: Handler::Now(|c, args, now| c.add(&Value::Object(args.clone()), now)),
        summary: |v| format!("Created. {}", task_line(&v["task"])),
    },
    Tool {
        name: "claudecron_list_tasks",
        title: "List claudecron tasks",
        description: concat!("List the tasks stored on the claudecron server, one row each, in name order: id, name, type, trigger in words, enabled, next run and last run with its status. ", about!(), " Times are shown in each task's zone and in UTC. Results come in pages of `limit` rows (default 50, at most 500): `count` is the rows on this page, `total` the tasks matching the filters, and `next_cursor` (absent on the last page) is passed back as `cursor`, with the same filters, for the next page. Filter by status, type, trigger kind and a case-insensitive name substring (`search`). Example: {\"status\":\"enabled\",\"trigger\":\"cron\",\"limit\":20}"),
        input: super::schema::list_tasks_schema,
        output: &["tasks", "count", "total"],
        hints: READ,
        handler: Handler::Encoded(|c, args, now| c.list_encoded(&list_query(args)?, now)),
        summary: |v| match v.get("next_cursor") {
            Some(_) => format!(
                "{} of {} tasks; more with cursor {}.",
                v["count"], v["total"], v["next_cursor"]
            ),
            None => format!("{} of {} tasks.", v["count"], v["total"]),
        },
    },
    Tool {
        name: "claudecron_get_task",
        title: "Get one claudecron task",
        description: concat!("Show one claudecron task in full: its definition, trigger in words, next 5 fire times and last 5 runs. ", tz_rule!(), " Example: {\"taskId\":\"daily-backup\"}"),
        input: || object_schema(json!({"taskId": task_id_property()}), &["taskId"]),
        output: &["task"],
        hints: READ,
        handler: Handler::Encoded(|c, args, now| {
            only_fields(args, &["taskId"])?;
            c.get_encoded(required_str(args, "taskId", "a task id or name")?, now)
        }),
        summary: |v| task_line(&v["task"]),
    },
    Tool {
        name: "claudecron_update_task",
        title: "Update a claudecron task",
        description: concat!("Change fields of a claudecron task; fields not given stay as they are, null clears an optional field. A new schedule or trigger is re-armed at once; a new schedule keeps the task's timezone unless you give one. ", tz_rule!(), " Example: {\"taskId\":\"daily-backup\",\"schedule\":\"30 3 * * *\"}"),
        input: || {
            let mut props = task_properties();
            if let Some(obj) = props.as_object_mut() {
                obj.insert("taskId".into(), task_id_property());
                obj.insert("rotate_webhook_token".into(), json!({"type": "boolean", "description": "A webhook task gets a new URL token (in this result, shown once); the old one stops working at once."}));
            }
            object_schema(props, &["taskId"])
        },
        output: &["task"],
        hints: WRITE,
        handler: Handler::Now(|c, args, now| {
            let task_id = required_str(args, "taskId", "a task id or name")?;
            let mut patch = args.clone();
            patch.remove("taskId");
            c.update(task_id, &patch, now)
        }),
        summary: |v| format!("Saved. {}", task_line(&v["task"])),
    },
    Tool {
        name: "claudecron_delete_task",
        title: "Delete a claudecron task",
        description: "Delete a claudecron task and all its run history; its triggers stop at once. This cannot be undone (to pause a task instead, use claudecron_toggle_task). Example: {\"taskId\":\"daily-backup\"}",
        input: || object_schema(json!({"taskId": task_id_property()}), &["taskId"]),
        output: &["deleted"],
        hints: Hints {
            read_only: false,
            destructive: true,
            idempotent: true,
        },
        handler: Handler::Now(|c, args, _| {
            only_fields(args, &["taskId"])?;
            c.delete(required_str(args, "taskId", "a task id or name")?)
        }),
        summary: |v| {
            format!(
                "Deleted task \"{}\" (id {}) and {} runs.",
                v["deleted"]["name"].as_str().unwrap_or(""),
                v["deleted"]["id"].as_str().unwrap_or(""),
                v["deleted"]["runs_deleted"]
            )
        },
    },
    Tool {
        name: "claudecron_toggle_task",
        title: "Enable or disable a claudecron task",
        description: concat!("Enable or disable a claudecron task without deleting it. Disabling disarms every trigger at once; enabling re-arms them. ", tz_rule!(), " Example: {\"taskId\":\"daily-backup\",\"enabled\":false}"),
        input: || {
            object_schema(
                json!({"taskId": task_id_property(), "enabled": {"type": "boolean"}}),
                &["taskId", "enabled"],
            )
        },
        output: &["task"],
        hints: WRITE,
        handler: Handler::Now(toggle_task),
        summary: |v| format!("Saved. {}", task_line(&v["task"])),
    },
    Tool {
        name: "claudecron_get_history",
        title: "Run history of claudecron tasks",
        description: "List runs newest first, for one task or all: id, task, trigger, status (queued, running, success, failed, timeout, cancelled, skipped, interrupted), times (UTC), duration, exit code, output excerpt, error; for subagent runs also runner, model, tokens, cost, turns and session id. Example: {\"taskId\":\"daily-backup\",\"status\":\"failed\",\"limit\":10}",
        input: || {
            object_schema(
                json!({
                    "taskId": task_id_property(),
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    "status": {"type": "string", "enum": HISTORY_STATUSES, "default": "all"}
                }),
                &[],
            )
        },
        output: &["runs", "count"],
        hints: READ,
        handler: Handler::Now(get_history),
        summary: |v| format!("{} runs, newest first.", v["count"]),
    },
    Tool {
        name: "claudecron_get_run",
        title: "Get one claudecron run",
        description: "Show one run with its full output (stdout and stderr interleaved; live output while it is still running). tail_bytes returns only the end of the output. Example: {\"runId\":42,\"tail_bytes\":4000}",
        input: || {
            object_schema(
                json!({
                    "runId": {"type": "integer", "minimum": 1, "description": "The run's id (from claudecron_get_history)."},
                    "tail_bytes": {"type": "integer", "minimum": 1, "maximum": 67108864, "description": "Return only the last N bytes of output."}
                }),
                &["runId"],
            )
        },
        output: &["run"],
        hints: READ,
        handler: Handler::Now(|c, args, _| {
            only_fields(args, &["runId", "tail_bytes"])?;
            let run_id = run_id_arg(args)?;
            let tail = optional_int(args, "tail_bytes", 1, 64 << 20)?.map(|n| n as usize);
            c.run(run_id, tail)
        }),
        summary: run_line,
    },
    Tool {
        name: "claudecron_run_task",
        title: "Run a claudecron task now",
        description: "Start a run of a claudecron task right away, whatever its trigger (manual tasks run only this way). Returns the run id at once; with wait_seconds (1-600) it waits for the run to finish and returns its status, exit code and output (the run keeps going if the wait ends first or the client disconnects: poll claudecron_get_run). Clients that time out requests after 60 s should use wait_seconds <= 50 and poll for longer runs. Clients with the MCP tasks extension (io.modelcontextprotocol/tasks, protocol 2026-07-28) get a task instead, unless wait_seconds is 0: poll it with tasks/get until it completes with this result; its task id is the run id. A result that names a run links its log as the resource claudecron://runs/{runId}. The task's overlap policy applies: with overlap = skip and a run still active, the new run is recorded as skipped. Example: {\"taskId\":\"daily-backup\",\"wait_seconds\":30}",
        input: || {
            object_schema(
                json!({
                    "taskId": task_id_property(),
                    "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 600, "default": 0, "description": "How long to wait for the run to finish (0: return the run id at once)."}
                }),
                &["taskId"],
            )
        },
        output: &["run"],
        hints: ACT,
        handler: Handler::Run(run_task),
        summary: run_line,
    },
    Tool {
        name: "claudecron_cancel_run",
        title: "Cancel a claudecron run",
        description: "Cancel a queued or running run: its whole process group gets SIGTERM, then SIGKILL after a grace period, and the run is recorded as cancelled. Returns the run as recorded. Example: {\"runId\":42}",
        input: || {
            object_schema(
                json!({
                    "runId": {"type": "integer", "minimum": 1, "description": "The run's id (from claudecron_run_task or claudecron_get_history)."}
                }),
                &["runId"],
            )
        },
        output: &["run"],
        hints: Hints {
            read_only: false,
            destructive: true,
            idempotent: true,
        },
        handler: Handler::Run(cancel_run),
        summary: run_line,
    },
    Tool {
        name: "claudecron_trigger_hook",
        title: "Try claudecron hook tasks with a hook event",
        description: "Fire the enabled claudecron tasks whose hook trigger matches a Claude Code hook event, as if Claude Code had sent it to /hooks, and return which tasks matched and their run ids (debounce is skipped). Give `payload` (the hook input JSON), or just the fields an mcp_tool hook can interpolate: tool_name, file_path (becomes tool_input.file_path), session_id, cwd. Example: {\"event\":\"PostToolUse\",\"tool_name\":\"Write\",\"file_path\":\"/srv/app/main.py\"}",
        input: || {
            object_schema(
                json!({
                    "event": {"type": "string", "enum": HOOK_EVENTS, "description": "The hook event name (hook_event_name)."},
                    "payload": {"type": "object", "description": "The hook input as Claude Code sends it; hook_event_name is set from event."},
                    "tool_name": {"type": "string"},
                    "file_path": {"type": "string"},
                    "session_id": {"type": "string"},
                    "cwd": {"type": "string"}
                }),
                &["event"],
            )
        },
        output: &["event", "matched", "count"],
        hints: ACT,
        handler: Handler::Now(trigger_hook),
        summary: |v| {
            format!(
                "{} hook tasks matched {}.",
                v["count"],
                v["event"].as_str().unwrap_or("")
            )
        },
    },
    Tool {
        name: "claudecron_pause_all",
        title: "Pause every claudecron task",
        description: "Stop everything at once without touching any task: while paused no timer, hook, file-watch or `after` fire runs, manual runs are refused, queued runs wait and runs already running go on; each task's enabled flag is kept. The pause survives a restart and shows on /health and every task. Resume with claudecron_resume_all: fire times missed meanwhile follow each task's catch_up. Example: {\"reason\":\"migrating the database\"}",
        input: || {
            object_schema(
                json!({"reason": {"type": "string", "maxLength": 500, "description": "Why everything is paused (one line; shown on /health and every task)."}}),
                &["reason"],
            )
        },
        output: &["paused", "already_paused", "reason", "since", "note"],
        hints: WRITE,
        handler: Handler::Now(|c, args, _| {
            only_fields(args, &["reason"])?;
            c.pause_all(required_str(args, "reason", "why everything is paused")?)
        }),
        summary: |v| format!("Paused since {}: {}", text(&v["since"]), text(&v["reason"])),
    },
    Tool {
        name: "claudecron_resume_all",
        title: "Resume every claudecron task",
        description: "End the pause of claudecron_pause_all: timers, hooks, file-watch and manual runs work again; fire times missed while paused follow each task's catch_up (skip: recorded as skipped; once: one catch-up run). Example: {}",
        input: || object_schema(json!({}), &[]),
        output: &["paused", "was_paused", "reason", "since", "resumed_at"],
        hints: WRITE,
        handler: Handler::Now(|c, args, now| {
            only_fields(args, &[])?;
            c.resume_all(now)
        }),
        summary: |v| match v["was_paused"].as_bool() {
            Some(true) => format!("Resumed (paused since {}).", text(&v["since"])),
            _ => "Nothing was paused.".into(),
        },
    },
    Tool {
        name: "claudecron_preview_schedule",
        title: "Preview a cron schedule",
        description: concat!("Check a cron expression without creating anything: the expression in words and its next fire times. ", tz_rule!(), " Example: {\"schedule\":\"0 9 * * 1-5\",\"timezone\":\"Europe/Moscow\",\"count\":3}"),
        input: || {
            object_schema(
                json!({
                    "schedule": {"type": "string", "description": "Cron expression (crontab syntax, see claudecron_add_task)."},
                    "timezone": {"type": "string", "description": "IANA zone; default the server's default_timezone (UTC)."},
                    "count": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}
                }),
                &["schedule"],
            )
        },
        output: &["schedule", "timezone", "description", "next_runs"],
        hints: READ,
        handler: Handler::Now(|c, args, now| {
            only_fields(args, &["schedule", "timezone", "count"])?;
            let schedule = required_str(
                args,
                "schedule",
                "a cron expression such as \"0 9 * * 1-5\"",
            )?;
            let tz = optional_str(args, "timezone", &[])?.unwrap_or(&c.defaults().timezone);
            let count = optional_int(args, "count", 1, 50)?.unwrap_or(5) as usize;
            c.preview_schedule(schedule, tz, count, now)
        }),
        summary: |v| {
            format!(
                "{} ({}): {}",
                v["schedule"].as_str().unwrap_or(""),
                v["timezone"].as_str().unwrap_or(""),
                v["description"].as_str().unwrap_or("")
            )
        },
    },
];

/// `status` values of `get_history`: every run status, or all.
const HISTORY_STATUSES: [&str; 9] = [
    "all",
    "success",
    "failed",
    "running",
    "skipped",
    "queued",
    "timeout",
    "cancelled",
    "interrupted",
];

/// What a `list_tasks` call asks for.
fn list_query(args: &Map<String, Value>) -> Result<catalog::ListQuery, OpError> {
    only_fields(
        args,
        &["status", "type", "trigger", "search", "limit", "cursor"],
    )?;
    let enabled = match optional_str(args, "status", &["all", "enabled", "disabled"])? {
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        _ => None,
    };
    let task_type = match optional_str(args, "type", &["bash", "subagent"])? {
        Some("bash") => Some(TaskType::Bash),
        Some(_) => Some(TaskType::Subagent),
        None => None,
    };
    let trigger = optional_str(args, "trigger", &super::schema::LIST_TRIGGERS)?
        .and_then(|t| crate::tasks::runs::TriggerKind::parse(&t.replace('_', "-")));
    let limit = optional_int(args, "limit", 1, catalog::MAX_PAGE as i64)?;
    Ok(catalog::ListQuery {
        enabled,
        task_type,
        trigger,
        name_contains: optional_str(args, "search", &[])?.map(String::from),
        limit: limit.map_or(catalog::DEFAULT_PAGE, |n| n as usize),
        cursor: optional_str(args, "cursor", &[])?.map(String::from),
    })
}

fn toggle_task(c: &Catalog, args: &Map<String, Value>, now: DateTime<Utc>) -> OpResult {
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
    c.toggle(task_id, enabled, now)
}

fn get_history(c: &Catalog, args: &Map<String, Value>, _: DateTime<Utc>) -> OpResult {
    only_fields(args, &["taskId", "limit", "status"])?;
    let task_id = optional_str(args, "taskId", &[])?;
    let limit = optional_int(args, "limit", 1, 1000)?.unwrap_or(50);
    let status = optional_str(args, "status", &HISTORY_STATUSES)?.and_then(RunStatus::parse);
    c.history(task_id, status, limit)
}

fn trigger_hook(c: &Catalog, args: &Map<String, Value>, _: DateTime<Utc>) -> OpResult {
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
    if !HOOK_EVENTS.contains(&event) {
        return Err(invalid(
            "event",
            format!(
                "\"{event}\" is not a Claude Code hook event; accepted: {}",
                HOOK_EVENTS.join(", ")
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
    c.trigger_hook(&Value::Object(payload))
}

fn run_task(c: &Catalog, args: &Map<String, Value>) -> Result<RunCall, OpError> {
    only_fields(args, &["taskId", "wait_seconds"])?;
    let task_id = required_str(args, "taskId", "a task id or name")?;
    let wait = optional_int(args, "wait_seconds", 0, 600)?.unwrap_or(0) as u64;
    let run_id = c.fire_now(task_id)?;
    // Subscribed after the fire: the waiter re-reads the status, so an end that came before the
    // subscription is not missed.
    let finished = (wait > 0).then(|| c.subscribe(run_id));
    Ok(RunCall {
        run_id,
        wait: Duration::from_secs(wait),
        finished,
    })
}

fn cancel_run(c: &Catalog, args: &Map<String, Value>) -> Result<RunCall, OpError> {
    only_fields(args, &["runId"])?;
    let run_id = run_id_arg(args)?;
    let finished = c.subscribe(run_id);
    c.cancel_run(run_id)?;
    Ok(RunCall {
        run_id,
        wait: Duration::from_secs(30),
        finished: Some(finished),
    })
}

fn run_line(v: &Value) -> String {
    format!(
        "Run {} of task \"{}\": {}.",
        v["run"]["id"],
        v["run"]["task_name"].as_str().unwrap_or(""),
        v["run"]["status"].as_str().unwrap_or("")
    )
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn task_line(t: &Value) -> String {
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
        + &t["paused_reason"]
            .as_str()
            .map(|r| format!(" Paused for its failures: {r}"))
            .unwrap_or_default()
        + &t["paused_all"]["reason"]
            .as_str()
            .map(|r| format!(" Everything is PAUSED (pause_all): {r}"))
            .unwrap_or_default()
        + &t["approval"]["how"]
            .as_str()
            .map(|h| format!(" PENDING APPROVAL: {h}"))
            .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_tool_has_its_parts() {
        let mut names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TOOLS.len());
        for tool in TOOLS {
            assert!(tool.name.starts_with("claudecron_"), "{}", tool.name);
            assert!(!tool.title.is_empty() && tool.description.contains("Example:"));
            let input = (tool.input)();
            assert_eq!(input["type"], "object", "{}", tool.name);
            assert!(find(tool.name).is_some());
        }
        assert!(find("claudecron_nope").is_none());
    }
}
