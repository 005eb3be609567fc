//! JSON Schema pieces of the tool definitions: the task's fields (shared by add and update), a
//! task id, the list_tasks filters and paging, object and output schemas. Data only.

use crate::tasks::catalog::{DEFAULT_PAGE, MAX_PAGE};
use crate::tasks::validate::limits as L;
use serde_json::{json, Map, Value};

pub(super) fn task_properties() -> Value {
    let mut properties = task_fields();
    properties["expect"] = expect_schema();
    properties
}

fn task_fields() -> Value {
    json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Unique task name (1-100 printable characters). Also accepted wherever a taskId is asked for."},
        "type": {"type": "string", "enum": ["bash", "subagent"], "description": "bash: run `command` with /bin/sh -c. subagent: give `prompt` to Claude (Claude Code headless or the Anthropic API)."},
        "schedule": {"type": "string", "maxLength": L::PATTERN, "description": "Cron expression, crontab syntax: 5 fields `minute hour day-of-month month day-of-week` (6 with leading seconds, 7 with trailing year), or @hourly/@daily/@midnight/@weekly/@monthly/@yearly. Day-of-week 0-7 (0 and 7 = Sunday) or names; day-of-month and day-of-week combine with OR; L, W and # supported. Shorthand for trigger {\"type\":\"cron\"}. Give schedule or trigger, not both.", "examples": ["0 9 * * 1-5", "*/15 * * * *", "@daily"]},
        "timezone": {"type": "string", "maxLength": L::WORD, "description": "IANA zone the schedule fires in and times are shown in, e.g. Europe/Moscow, America/New_York. Default: the server's default_timezone (UTC).", "examples": ["UTC", "Europe/Moscow"]},
        "trigger": {
            "type": "object",
            "description": "What fires the task when it is not a plain cron schedule. type is one of: cron {schedule, timezone}; file-watch {path (absolute), pattern (glob), recursive (default true), events [create, modify, remove], debounce_ms (default 1000)}; hook {event (Claude Code hook event such as PostToolUse), matcher (as in Claude Code settings: a name or A|B list is exact, anything else an unanchored regex; tested against tool_name for tool events), file_pattern (glob on tool_input.file_path), debounce_ms (default 0)}; interval {every: 30s/15m/2h/1d, start_at (RFC 3339)}; once {at (RFC 3339)}; after {task (id or name), on: success/failure/always}; manual {} (only run by claudecron_run_task); webhook {} (POST /trigger/{token} runs it with the body on stdin and in CLAUDECRON_PAYLOAD; the token is in the add_task result once; update_task rotate_webhook_token: true makes a new one).",
            "properties": {
                "type": {"type": "string", "enum": ["cron", "file-watch", "file_watch", "hook", "interval", "once", "after", "manual", "webhook"]},
                "schedule": {"type": "string", "maxLength": L::PATTERN},
                "timezone": {"type": "string", "maxLength": L::WORD},
                "path": {"type": "string", "maxLength": L::PATH},
                "pattern": {"type": "string", "maxLength": L::PATTERN},
                "recursive": {"type": "boolean", "default": true},
                "events": {"type": "array", "items": {"type": "string", "enum": ["create", "modify", "remove"]}},
                "debounce_ms": {"type": "integer", "minimum": 0, "maximum": 3600000, "default": 1000},
                "event": {"type": "string"},
                "matcher": {"type": "string", "maxLength": L::PATTERN},
                "file_pattern": {"type": "string", "maxLength": L::PATTERN},
                "every": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
                "start_at": {"type": "string"},
                "at": {"type": "string"},
                "task": {"type": "string", "maxLength": L::TASK_REF},
                "on": {"type": "string", "enum": ["success", "failure", "always"], "default": "success"}
            },
            "required": ["type"]
        },
        "command": {"type": "string", "maxLength": L::COMMAND, "description": "Shell command for a bash task, run with /bin/sh -c."},
        "prompt": {"type": "string", "maxLength": L::PROMPT, "description": "Instructions for a subagent task. A run is success only when it really ended well: an error, the turn or budget limit, a refused tool call or an empty answer makes it failed with the reason; a usage limit with a reset time defers the run (queued again for the reset, reason deferred: …) instead of failing it. The prompt can declare failure itself: a final answer whose first line is `CLAUDECRON_FAILED: reason` marks the run failed with that reason (e.g. \"If the backup is missing, answer CLAUDECRON_FAILED: backup missing\")."},
        "description": {"type": "string", "maxLength": L::DESCRIPTION, "description": "Free text for people."},
        "enabled": {"type": "boolean", "default": true, "description": "false: stored but not armed."},
        "cwd": {"type": "string", "maxLength": L::CWD, "description": "Absolute working directory for the run."},
        "env": {"type": "object", "maxProperties": L::ENV_VARS, "propertyNames": {"maxLength": L::ENV_NAME}, "additionalProperties": {"anyOf": [{"type": "string", "maxLength": L::ENV_VALUE}, {"type": "object", "properties": {"secret": {"type": "string", "maxLength": 64}}, "required": ["secret"], "additionalProperties": false}]}, "description": "Extra environment variables for the run (CLAUDECRON_* are reserved). A value is a string, or {\"secret\": NAME}: a secret the owner set on the host (`claudecron secret set NAME`), put in the run's environment at run time; its value is never stored in the task, shown, logged or recorded (output that prints it shows ***). A run whose secret is not set fails, naming it."},
        "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 604800, "description": "Run time limit; default the server's task_timeout_secs (300)."},
        "model": {"type": "string", "maxLength": L::MODEL, "description": "Subagent only: Claude model id; default the server's default_model."},
        "runner": {"type": "string", "enum": ["claude-code", "api"], "description": "Subagent only: claude-code (`claude -p`) or api (Messages API). Default: claude-code when a claude executable is found, else api."},
        "allowed_tools": {"type": "array", "maxItems": L::ALLOWED_TOOLS, "items": {"type": "string", "maxLength": L::TOOL_NAME}, "description": "Subagent only (claude-code): tools Claude may use, e.g. [\"Read\", \"Grep\", \"Bash(git *)\"]."},
        "max_turns": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Subagent only: turn limit."},
        "permission_mode": {"type": "string", "enum": ["dontAsk", "acceptEdits", "plan", "bypassPermissions"], "description": "Subagent only (claude-code): how tool calls outside allowed_tools are treated; only modes that never wait for a person (default is refused: a scheduled run has nobody to answer). dontAsk: refused; acceptEdits: file edits allowed; plan: read only; bypassPermissions: everything. Left out: Claude Code's -p behaviour (calls needing approval are refused, and a refused call makes the run failed)."},
        "disallowed_tools": {"type": "array", "maxItems": L::ALLOWED_TOOLS, "items": {"type": "string", "maxLength": L::TOOL_NAME}, "description": "Subagent only (claude-code): tools Claude may not use, e.g. [\"Bash(rm *)\", \"WebFetch\"] (--disallowedTools)."},
        "mcp_config": {"type": "object", "description": "Subagent only (claude-code): the MCP servers the run gets, and no others (--mcp-config FILE --strict-mcp-config; the file is 0600 and removed after the run). Claude Code's format: {\"mcpServers\": {\"name\": {\"type\": \"http\", \"url\": \"https://…/mcp\", \"headers\": {…}} or {\"command\": \"npx\", \"args\": […]}}}. Allow their tools with allowed_tools (mcp__name__tool). Header and env values are never shown back (task views say (set, hidden)); to change one, give the whole mcp_config again.", "properties": {"mcpServers": {"type": "object"}}, "required": ["mcpServers"]},
        "add_dirs": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": L::CWD}, "description": "Subagent only (claude-code): more absolute directories Claude may work in besides cwd (--add-dir)."},
        "precheck": {"type": "string", "maxLength": L::COMMAND, "description": "A cheap shell command (/bin/sh -c, same cwd and env) run before each run, at most 60 s. Exit 0: the run goes ahead; its output (up to 16 KiB) is in CLAUDECRON_PRECHECK_OUTPUT and, for a subagent, appended to the prompt as context. Non-zero: the run is recorded skipped with reason precheck and nothing else runs (no API call, no cost). E.g. \"git log --since=yesterday --oneline | grep .\" (no new commits: no run)."},
        "max_budget_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000, "description": "Subagent only: the most one run may spend in USD (claude-code: --max-budget-usd; the run ends failed with reason max_budget_usd when it reaches it)."},
        "worktree": {"type": "boolean", "default": false, "description": "Subagent only: run each run in a fresh git worktree of cwd's repository (from its HEAD), on a branch claudecron/run-<run id>, under the server's data directory; the live checkout is never touched. The run shows worktree {path, branch}, left for review; the newest worktree_keep_per_task (config, default 10) are kept, and claudecron_delete_task removes the task's. Needs cwd inside a git repository."},
        "pause_after_failures": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "After this many failed or timed-out runs in a row the task is disabled with a paused_reason (shown by claudecron_get_task and claudecron_list_tasks); enabling it again clears the reason and the count. 0: never; absent: the server's pause_after_failures (default 0)."},
        "daily_budget_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000, "description": "Subagent only: the most this task may spend per UTC day; once its runs' cost today reaches it, further fires are recorded skipped with reason budget and nothing starts. The server's daily_budget_usd caps all tasks together."},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 128000, "description": "Subagent only (api runner): response token limit; default 4096."},
        "system": {"type": "string", "maxLength": L::SYSTEM, "description": "Subagent only: a system prompt (api runner), or text appended to Claude Code's system prompt (claude-code runner)."},
        "overlap": {"type": "string", "enum": ["skip", "queue", "allow"], "default": "skip", "description": "What a fire does while a run of this task is still active."},
        "catch_up": {"type": "string", "enum": ["skip", "once"], "default": "skip", "description": "Fires missed while the server was down: skip (recorded as skipped runs) or once (one run)."},
        "retries": {"type": "object", "description": "Retry a failed or timed-out run: max_attempts more runs, backoff_seconds apart (doubling each time when doubling is true); each attempt is its own run.", "properties": {"max_attempts": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0}, "backoff_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 30}, "doubling": {"type": "boolean", "default": true}}, "additionalProperties": false},
        "notify": notify_schema(),
    })
}

pub(super) fn task_id_property() -> Value {
    json!({"type": "string", "minLength": 1, "description": "The task's id or its exact name."})
}

pub(super) fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

pub(super) fn output_schema(required: &[&str]) -> Value {
    let props: Map<String, Value> = required
        .iter()
        .map(|k| ((*k).to_string(), json!({})))
        .collect();
    json!({"type": "object", "properties": props, "required": required})
}

/// `trigger` values of `list_tasks`: the trigger kinds a task can have.
pub(super) const LIST_TRIGGERS: [&str; 9] = [
    "cron",
    "interval",
    "once",
    "after",
    "manual",
    "file-watch",
    "file_watch",
    "hook",
    "webhook",
];

pub(super) fn list_tasks_schema() -> Value {
    object_schema(
        json!({
            "status": {"type": "string", "enum": ["all", "enabled", "disabled"], "default": "all"},
            "type": {"type": "string", "enum": ["bash", "subagent"]},
            "trigger": {"type": "string", "enum": LIST_TRIGGERS, "description": "Only tasks with this kind of trigger."},
            "search": {"type": "string", "description": "Only tasks whose name contains this text (case-insensitive for ASCII letters)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE, "description": "Rows per page."},
            "cursor": {"type": "string", "description": "next_cursor of the previous page, unchanged; omit for the first page."}
        }),
        &[],
    )
}

/// The `expect` field's schema (the dead-man alert).
fn expect_schema() -> Value {
    json!({"type": "object", "description": "Dead-man alert: when no run of this task succeeded within the window — server down, task disabled, every run skipped or failed — the notify target gets one `missed` message (notify.on must include missed), and `recovered` (\"back on time\") at the next success. Give within (any task but a once task: a success at least this often, measured from the last success, or from when the task was created or last enabled) or grace (cron and interval tasks: a success within this long after each fire time). Durations 1s to 366d such as 90s, 30m, 26h, 8d. claudecron_get_task shows the state as deadman {overdue, overdue_since, last_success, success_due_by, notify}.", "properties": {"within": {"type": "string", "pattern": "^[0-9]+[smhd]$", "examples": ["26h", "8d"]}, "grace": {"type": "string", "pattern": "^[0-9]+[smhd]$", "examples": ["1h"]}}, "additionalProperties": false, "minProperties": 1, "maxProperties": 1})
}

/// The `notify` field's schema (its own `json!`: the task properties' one is at the macro's
/// recursion limit).
fn notify_schema() -> Value {
    let on = json!([
        "failure",
        "success",
        "always",
        "recovered",
        "changed",
        "missed",
        "paused"
    ]);
    let mut schema = json!({"type": "object", "description": "Give url or channel. A short message when a run ends, to a chat's incoming webhook (preset slack, discord, telegram with chat_id, ntfy) or as the generic JSON (task, run, status, output excerpt, alert = the event). A run whose first output line is CLAUDECRON_SILENT sends nothing. Delivery is retried (3 attempts) on its own thread and recorded on the run as details.notify; it never changes the run's outcome.", "properties": {"url": {"type": "string", "maxLength": L::NOTIFY_URL, "description": "http(s) URL: the Slack/Discord incoming webhook, https://api.telegram.org/bot<token>/sendMessage, the ntfy topic URL, or any JSON receiver"}, "on": {"description": "failure (any end but success), success, always, recovered (a success after a failed run), changed (output differs from the previous run's), missed (fire times missed: server down, paused, clock jump; and the dead-man alert of expect, whose recovery sends recovered), paused (the task was disabled by pause_after_failures); one word or a list", "default": ["failure"]}, "preset": {"type": "string", "enum": ["generic", "webhook", "slack", "discord", "telegram", "ntfy"], "default": "generic", "description": "webhook is generic"}, "channel": {"type": "string", "maxLength": 100, "description": "Instead of url: a [[notify_channels]] name from the server's config (it carries url, preset, chat_id and an HMAC secret the model never sees)."}, "chat_id": {"type": "string", "description": "Telegram only (required there): the chat the bot writes to."}}, "additionalProperties": false});
    schema["properties"]["on"]["anyOf"] = json!([{"type": "string", "enum": on}, {"type": "array", "items": {"type": "string", "enum": on}}]);
    schema
}
