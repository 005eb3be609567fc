//! Task input validation (SPEC §5, issue 2): every rejection names the field exactly and says
//! what is accepted; the seed's examples are accepted with the documented defaults; updates merge
//! as documented; durations parse as documented.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use claudecron::tasks::model::{
    AfterOn, CatchUp, FileEvent, NotifyOn, Overlap, Retries, Runner, TaskSpec, TaskType, Trigger,
};
use claudecron::tasks::validate::{
    merge_update, parse_duration, parse_time, task_spec, Context, FieldError, TaskLookup, TaskRef,
};
use common::over;
use serde_json::{json, Map, Value};

/// Other tasks, as the store would report them.
struct Tasks(Vec<TaskRef>);

impl TaskLookup for Tasks {
    fn find(&self, id_or_name: &str) -> Option<TaskRef> {
        self.0
            .iter()
            .find(|t| t.id == id_or_name)
            .or_else(|| self.0.iter().find(|t| t.name == id_or_name))
            .cloned()
    }
}

fn task(id: &str, name: &str, after: Option<&str>) -> TaskRef {
    TaskRef {
        id: id.into(),
        name: name.into(),
        after: after.map(String::from),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

/// One upstream task exists: id `up1`, name `nightly-build`.
fn others() -> Tasks {
    Tasks(vec![task("up1", "nightly-build", None)])
}

fn add(input: &Value) -> Result<TaskSpec, FieldError> {
    let lookup = others();
    let ctx = Context {
        default_timezone: "UTC",
        lookup: &lookup,
        self_id: None,
        now: now(),
        schedules: None,
    };
    task_spec(input, &ctx)
}

/// A valid manual bash task, plus `patch`.
fn bash(patch: Value) -> Value {
    over(
        json!({"name": "t", "type": "bash", "command": "true", "trigger": {"type": "manual"}}),
        patch,
    )
}

/// A valid manual subagent task, plus `patch`.
fn sub(patch: Value) -> Value {
    over(
        json!({"name": "t", "type": "subagent", "prompt": "say hi", "trigger": {"type": "manual"}}),
        patch,
    )
}

/// A valid bash task with this trigger.
fn trig(trigger: Value) -> Value {
    bash(json!({ "trigger": trigger }))
}

struct Case {
    what: &'static str,
    input: Value,
    field: &'static str,
    /// Every one of these must appear in the message: what is accepted, an example, or the hint.
    says: &'static [&'static str],
}

fn case(
    what: &'static str,
    input: Value,
    field: &'static str,
    says: &'static [&'static str],
) -> Case {
    Case {
        what,
        input,
        field,
        says,
    }
}

fn check_cases(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in &cases {
        match add(&c.input) {
            Ok(spec) => failures.push(format!("{}: accepted, got {spec:?}", c.what)),
            Err(e) => {
                if e.field != c.field {
                    failures.push(format!(
                        "{}: field {:?}, expected {:?} ({})",
                        c.what, e.field, c.field, e.message
                    ));
                }
                for needle in c.says {
                    if !e.message.contains(needle) {
                        failures.push(format!(
                            "{}: message {:?} does not contain {:?}",
                            c.what, e.message, needle
                        ));
                    }
                }
                // The Display form leads with the field, so a caller printing it names the field.
                assert!(e.to_string().starts_with(&format!("{}: ", e.field)));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn bad_inputs_name_the_field_and_what_is_accepted() {
    let long_name = "n".repeat(101);
    let cases = vec![
        // The arguments as a whole.
        case(
            "arguments not an object",
            json!(["name", "t"]),
            "arguments",
            &["object of task fields"],
        ),
        case(
            "unknown top-level field (typo)",
            bash(json!({"schedulle": "0 2 * * *"})),
            "schedulle",
            &[
                "did you mean \"schedule\"?",
                "accepted fields here:",
                "trigger",
            ],
        ),
        case(
            "unknown top-level field",
            bash(json!({"color": "red"})),
            "color",
            &["accepted fields here:", "name"],
        ),
        // name
        case(
            "missing name",
            bash(json!({"name": null})),
            "name",
            &["required", "1 to 100 printable"],
        ),
        case(
            "name not a string",
            bash(json!({"name": 42})),
            "name",
            &["not a string"],
        ),
        case(
            "empty name",
            bash(json!({"name": ""})),
            "name",
            &["1 to 100 printable"],
        ),
        case(
            "blank name",
            bash(json!({"name": "   "})),
            "name",
            &["1 to 100 printable", "not blank"],
        ),
        case(
            "name of 101 characters",
            bash(json!({"name": long_name})),
            "name",
            &["1 to 100 printable"],
        ),
        case(
            "name with a newline",
            bash(json!({"name": "a\nb"})),
            "name",
            &["no control characters"],
        ),
        case(
            "name with a tab",
            bash(json!({"name": "a\tb"})),
            "name",
            &["no control characters"],
        ),
        case(
            "name with leading space",
            bash(json!({"name": " backup"})),
            "name",
            &["leading or trailing spaces"],
        ),
        // type
        case(
            "missing type",
            bash(json!({"type": null})),
            "type",
            &["required", "accepted: bash, subagent"],
        ),
        case(
            "bad type",
            bash(json!({"type": "python"})),
            "type",
            &["\"python\"", "accepted: bash, subagent"],
        ),
        case(
            "type not a string",
            bash(json!({"type": 1})),
            "type",
            &["accepted: bash, subagent"],
        ),
        // schedule / trigger
        case(
            "schedule and trigger both",
            bash(json!({"schedule": "0 2 * * *"})),
            "schedule",
            &["not both"],
        ),
        case(
            "neither schedule nor trigger",
            bash(json!({"trigger": null})),
            "trigger",
            &["{\"type\":\"manual\"}", "0 9 * * 1-5"],
        ),
        case(
            "schedule not a string",
            bash(json!({"trigger": null, "schedule": 5})),
            "schedule",
            &["not a string"],
        ),
        case(
            "trigger not an object",
            bash(json!({"trigger": "manual"})),
            "trigger",
            &["not an object", "{\"type\":\"interval\",\"every\":\"15m\"}"],
        ),
        case(
            "trigger without type",
            trig(json!({})),
            "trigger.type",
            &["required", "accepted: cron, file-watch, hook"],
        ),
        case(
            "webhook takes no fields",
            trig(json!({"type": "webhook", "token": "mine"})),
            "trigger.token",
            &["accepted fields here: type"],
        ),
        case(
            "unknown trigger type",
            trig(json!({"type": "email"})),
            "trigger.type",
            &[
                "\"email\"",
                "accepted: cron, file-watch, hook, interval, once, after, manual, webhook",
            ],
        ),
        case(
            "manual trigger with extra field",
            trig(json!({"type": "manual", "every": "5m"})),
            "trigger.every",
            &["unknown field", "accepted fields here: type"],
        ),
        case(
            "cron trigger without schedule",
            trig(json!({"type": "cron"})),
            "trigger.schedule",
            &["required", "e.g. \"0 9 * * 1-5\""],
        ),
        case(
            "cron trigger unknown field",
            trig(json!({"type": "cron", "schedule": "0 2 * * *", "timzone": "UTC"})),
            "trigger.timzone",
            &[
                "did you mean \"timezone\"?",
                "accepted fields here: type, schedule, timezone",
            ],
        ),
        // timezone
        case(
            "timezone not a zone",
            bash(json!({"timezone": "Mars/Olympus_Mons"})),
            "timezone",
            &["\"Mars/Olympus_Mons\"", "IANA"],
        ),
        case(
            "timezone not a string",
            bash(json!({"timezone": 3})),
            "timezone",
            &["not a string"],
        ),
        case(
            "trigger.timezone not a zone",
            trig(json!({"type": "cron", "schedule": "0 2 * * *", "timezone": "Nowhere/Town"})),
            "trigger.timezone",
            &["IANA"],
        ),
        case(
            "timezone and trigger.timezone disagree",
            bash(
                json!({"timezone": "Europe/Moscow", "trigger": {"type": "cron", "schedule": "0 2 * * *", "timezone": "UTC"}}),
            ),
            "timezone",
            &["differs from trigger.timezone", "give one of them"],
        ),
        // command / prompt by type
        case(
            "bash without command",
            bash(json!({"command": null})),
            "command",
            &["required for a bash task"],
        ),
        case(
            "bash with blank command",
            bash(json!({"command": "  "})),
            "command",
            &["must not be empty"],
        ),
        case(
            "bash with a prompt",
            bash(json!({"prompt": "hello"})),
            "prompt",
            &["only for subagent tasks"],
        ),
        case(
            "subagent without prompt",
            sub(json!({"prompt": null})),
            "prompt",
            &["required for a subagent task"],
        ),
        case(
            "subagent with a command",
            sub(json!({"command": "ls"})),
            "command",
            &["only for bash tasks"],
        ),
        case(
            "model on bash",
            bash(json!({"model": "claude-sonnet-4-20250514"})),
            "model",
            &["only for subagent tasks"],
        ),
        case(
            "runner on bash",
            bash(json!({"runner": "api"})),
            "runner",
            &["only for subagent tasks"],
        ),
        case(
            "allowed_tools on bash",
            bash(json!({"allowed_tools": ["Read"]})),
            "allowed_tools",
            &["only for subagent tasks"],
        ),
        case(
            "max_turns on bash",
            bash(json!({"max_turns": 5})),
            "max_turns",
            &["only for subagent tasks"],
        ),
        case(
            "permission_mode on bash",
            bash(json!({"permission_mode": "plan"})),
            "permission_mode",
            &["only for subagent tasks"],
        ),
        // subagent-only fields, bad values
        case(
            "max_turns 0",
            sub(json!({"max_turns": 0})),
            "max_turns",
            &["whole number from 1 to 1000"],
        ),
        case(
            "max_turns 1001",
            sub(json!({"max_turns": 1001})),
            "max_turns",
            &["whole number from 1 to 1000"],
        ),
        case(
            "max_turns as text",
            sub(json!({"max_turns": "5"})),
            "max_turns",
            &["whole number from 1 to 1000"],
        ),
        case(
            "permission_mode unknown",
            sub(json!({"permission_mode": "yolo"})),
            "permission_mode",
            &[
                "\"yolo\"",
                "accepted: dontAsk, acceptEdits, plan, bypassPermissions",
            ],
        ),
        case(
            "permission_mode wrong case",
            sub(json!({"permission_mode": "acceptedits"})),
            "permission_mode",
            &["acceptEdits"],
        ),
        case(
            "runner unknown",
            sub(json!({"runner": "docker"})),
            "runner",
            &["accepted: claude-code, api"],
        ),
        case(
            "runner not a string",
            sub(json!({"runner": true})),
            "runner",
            &["accepted: claude-code, api"],
        ),
        case(
            "allowed_tools a string",
            sub(json!({"allowed_tools": "Read"})),
            "allowed_tools",
            &["list of tool names such as [\"Read\", \"Grep\"]"],
        ),
        case(
            "allowed_tools item a number",
            sub(json!({"allowed_tools": [1]})),
            "allowed_tools[0]",
            &["tool name such as Read"],
        ),
        case(
            "allowed_tools item blank",
            sub(json!({"allowed_tools": ["Read", " "]})),
            "allowed_tools[1]",
            &["tool name such as Read"],
        ),
        case(
            "model blank",
            sub(json!({"model": ""})),
            "model",
            &["must not be empty"],
        ),
        // file-watch
        case(
            "file-watch relative path",
            trig(json!({"type": "file-watch", "path": "etc/nginx/nginx.conf"})),
            "trigger.path",
            &["not an absolute path", "e.g. /etc/nginx/nginx.conf"],
        ),
        case(
            "file_watch alias, relative path",
            trig(json!({"type": "file_watch", "path": "./x"})),
            "trigger.path",
            &["not an absolute path"],
        ),
        case(
            "file-watch without path",
            trig(json!({"type": "file-watch"})),
            "trigger.path",
            &["required", "absolute"],
        ),
        case(
            "file-watch bad glob",
            trig(json!({"type": "file-watch", "path": "/srv", "pattern": "src/[a-"})),
            "trigger.pattern",
            &["not a valid glob", "e.g. *.rs"],
        ),
        case(
            "file-watch events not a list",
            trig(json!({"type": "file-watch", "path": "/srv", "events": "modify"})),
            "trigger.events",
            &["non-empty list of create, modify, remove"],
        ),
        case(
            "file-watch events empty",
            trig(json!({"type": "file-watch", "path": "/srv", "events": []})),
            "trigger.events",
            &["non-empty list of create, modify, remove"],
        ),
        case(
            "file-watch unknown event",
            trig(json!({"type": "file-watch", "path": "/srv", "events": ["create", "delete"]})),
            "trigger.events[1]",
            &["\"delete\"", "accepted: create, modify, remove"],
        ),
        case(
            "file-watch recursive not a bool",
            trig(json!({"type": "file-watch", "path": "/srv", "recursive": "yes"})),
            "trigger.recursive",
            &["true or false"],
        ),
        case(
            "file-watch negative debounce",
            trig(json!({"type": "file-watch", "path": "/srv", "debounce_ms": -1})),
            "trigger.debounce_ms",
            &["whole number from 0 to 3600000"],
        ),
        case(
            "file-watch unknown field",
            trig(json!({"type": "file-watch", "path": "/srv", "glob": "*.rs"})),
            "trigger.glob",
            &["accepted fields here: type, path, pattern, recursive, events, debounce_ms"],
        ),
        // hook
        case(
            "hook without event",
            trig(json!({"type": "hook"})),
            "trigger.event",
            &["required", "PostToolUse"],
        ),
        case(
            "hook unknown event",
            trig(json!({"type": "hook", "event": "AfterEdit"})),
            "trigger.event",
            &[
                "\"AfterEdit\"",
                "not a Claude Code hook event",
                "accepted:",
                "PreToolUse",
            ],
        ),
        case(
            "hook event case typo",
            trig(json!({"type": "hook", "event": "posttooluse"})),
            "trigger.event",
            &["did you mean \"PostToolUse\"?"],
        ),
        case(
            "hook bad matcher regex",
            trig(json!({"type": "hook", "event": "PostToolUse", "matcher": "Edit(|Write"})),
            "trigger.matcher",
            &["not a valid regular expression", "e.g. Edit|Write"],
        ),
        case(
            "hook bad file_pattern",
            trig(json!({"type": "hook", "event": "PostToolUse", "file_pattern": "**/{a,b"})),
            "trigger.file_pattern",
            &["not a valid glob"],
        ),
        case(
            "hook debounce too large",
            trig(json!({"type": "hook", "event": "Stop", "debounce_ms": 3_600_001})),
            "trigger.debounce_ms",
            &["whole number from 0 to 3600000"],
        ),
        // interval
        case(
            "interval without every",
            trig(json!({"type": "interval"})),
            "trigger.every",
            &["required", "30s, 15m, 2h, 1d"],
        ),
        case(
            "interval bad duration",
            trig(json!({"type": "interval", "every": "5 minutes"})),
            "trigger.every",
            &["not a duration", "30s, 15m, 2h, 1d"],
        ),
        case(
            "interval zero",
            trig(json!({"type": "interval", "every": "0m"})),
            "trigger.every",
            &["zero", "shortest interval is 1s"],
        ),
        case(
            "interval fractional",
            trig(json!({"type": "interval", "every": "1.5h"})),
            "trigger.every",
            &["30s, 15m, 2h, 1d"],
        ),
        case(
            "interval over a year",
            trig(json!({"type": "interval", "every": "400d"})),
            "trigger.every",
            &["longer than a year"],
        ),
        case(
            "interval bad start_at",
            trig(json!({"type": "interval", "every": "1h", "start_at": "tomorrow"})),
            "trigger.start_at",
            &["not a time", "RFC 3339"],
        ),
        // once
        case(
            "once without at",
            trig(json!({"type": "once"})),
            "trigger.at",
            &["required", "RFC 3339"],
        ),
        case(
            "once in the past",
            trig(json!({"type": "once", "at": "2025-12-31T23:00:00Z"})),
            "trigger.at",
            &[
                "in the past",
                "now is 2026-01-15T12:00:00Z",
                "give a future time",
            ],
        ),
        case(
            "once at exactly now",
            trig(json!({"type": "once", "at": "2026-01-15T12:00:00Z"})),
            "trigger.at",
            &["in the past"],
        ),
        case(
            "once bad time",
            trig(json!({"type": "once", "at": "next friday"})),
            "trigger.at",
            &["not a time", "2026-12-01T09:00:00+03:00"],
        ),
        case(
            "once bad date",
            trig(json!({"type": "once", "at": "2026-02-30T09:00:00Z"})),
            "trigger.at",
            &["RFC 3339"],
        ),
        case(
            "once local time skipped by DST",
            bash(
                json!({"timezone": "America/New_York", "trigger": {"type": "once", "at": "2026-03-08T02:30"}}),
            ),
            "trigger.at",
            &["does not exist in America/New_York", "offset"],
        ),
        // after
        case(
            "after unknown task",
            trig(json!({"type": "after", "task": "no-such-task"})),
            "trigger.task",
            &["\"no-such-task\"", "claudecron_list_tasks"],
        ),
        case(
            "after without task",
            trig(json!({"type": "after"})),
            "trigger.task",
            &["required", "id or name"],
        ),
        case(
            "after bad on",
            trig(json!({"type": "after", "task": "up1", "on": "done"})),
            "trigger.on",
            &["\"done\"", "accepted: success, failure, always"],
        ),
        // env
        case(
            "env not an object",
            bash(json!({"env": ["A=1"]})),
            "env",
            &["object of NAME: value strings"],
        ),
        case(
            "env name starts with a digit",
            bash(json!({"env": {"1PATH": "x"}})),
            "env.1PATH",
            &["letters, digits and _, not starting with a digit"],
        ),
        case(
            "env name with a dash",
            bash(json!({"env": {"MY-VAR": "x"}})),
            "env.MY-VAR",
            &["letters, digits and _"],
        ),
        case(
            "env name empty",
            bash(json!({"env": {"": "x"}})),
            "env.",
            &["letters, digits and _"],
        ),
        case(
            "env CLAUDECRON_ prefix",
            bash(json!({"env": {"CLAUDECRON_TASK_ID": "x"}})),
            "env.CLAUDECRON_TASK_ID",
            &["set by claudecron", "cannot be overridden"],
        ),
        case(
            "env value a list",
            bash(json!({"env": {"A": ["x"]}})),
            "env.A",
            &["a value is a string"],
        ),
        case(
            "env value an object",
            bash(json!({"env": {"A": {"b": 1}}})),
            "env.A",
            &["a value is a string"],
        ),
        case(
            "env value null",
            bash(json!({"env": {"A": null}})),
            "env.A",
            &["a value is a string"],
        ),
        case(
            "env value with NUL",
            bash(json!({"env": {"A": "x\u{0}y"}})),
            "env.A",
            &["a value is a string"],
        ),
        // timeout_seconds
        case(
            "timeout_seconds 0",
            bash(json!({"timeout_seconds": 0})),
            "timeout_seconds",
            &["whole number from 1 to 604800"],
        ),
        case(
            "timeout_seconds too large",
            bash(json!({"timeout_seconds": 604_801})),
            "timeout_seconds",
            &["whole number from 1 to 604800"],
        ),
        case(
            "timeout_seconds a string",
            bash(json!({"timeout_seconds": "300"})),
            "timeout_seconds",
            &["\"300\"", "whole number from 1 to 604800"],
        ),
        case(
            "timeout_seconds negative",
            bash(json!({"timeout_seconds": -5})),
            "timeout_seconds",
            &["whole number from 1 to 604800"],
        ),
        case(
            "timeout_seconds fractional",
            bash(json!({"timeout_seconds": 1.5})),
            "timeout_seconds",
            &["whole number from 1 to 604800"],
        ),
        // cwd, enabled, description
        case(
            "cwd relative",
            bash(json!({"cwd": "project"})),
            "cwd",
            &["not an absolute path", "e.g. /home/me/project"],
        ),
        case(
            "cwd tilde",
            bash(json!({"cwd": "~/project"})),
            "cwd",
            &["not an absolute path"],
        ),
        case(
            "cwd not a string",
            bash(json!({"cwd": 7})),
            "cwd",
            &["not a string"],
        ),
        case(
            "enabled not a bool",
            bash(json!({"enabled": "yes"})),
            "enabled",
            &["expected true or false"],
        ),
        case(
            "description too long",
            bash(json!({"description": "d".repeat(4097)})),
            "description",
            &["the limit is 4096"],
        ),
        // overlap / catch_up
        case(
            "overlap unknown",
            bash(json!({"overlap": "parallel"})),
            "overlap",
            &["\"parallel\"", "accepted: skip, queue, allow"],
        ),
        case(
            "overlap not a string",
            bash(json!({"overlap": false})),
            "overlap",
            &["accepted: skip, queue, allow"],
        ),
        case(
            "catch_up unknown",
            bash(json!({"catch_up": "all"})),
            "catch_up",
            &["accepted: skip, once"],
        ),
        case(
            "catch_up a bool",
            bash(json!({"catch_up": true})),
            "catch_up",
            &["accepted: skip, once"],
        ),
        // retries
        case(
            "retries negative",
            bash(json!({"retries": -1})),
            "retries",
            &["whole number from 0 to 10"],
        ),
        case(
            "retries too many",
            bash(json!({"retries": 11})),
            "retries",
            &["whole number from 0 to 10"],
        ),
        case(
            "retries a string",
            bash(json!({"retries": "3"})),
            "retries",
            &["e.g. {\"max_attempts\": 3"],
        ),
        case(
            "retries a list",
            bash(json!({"retries": [3]})),
            "retries",
            &["e.g. {\"max_attempts\": 3"],
        ),
        case(
            "retries.max_attempts too many",
            bash(json!({"retries": {"max_attempts": 20}})),
            "retries.max_attempts",
            &["whole number from 0 to 10"],
        ),
        case(
            "retries.backoff_seconds 0",
            bash(json!({"retries": {"backoff_seconds": 0}})),
            "retries.backoff_seconds",
            &["whole number from 1 to 86400"],
        ),
        case(
            "retries.doubling not a bool",
            bash(json!({"retries": {"doubling": "yes"}})),
            "retries.doubling",
            &["true or false"],
        ),
        case(
            "retries unknown field",
            bash(json!({"retries": {"attempts": 3}})),
            "retries.attempts",
            &["accepted fields here: max_attempts, backoff_seconds, doubling"],
        ),
        // notify
        case(
            "notify a string",
            bash(json!({"notify": "https://hooks.example.com/x"})),
            "notify",
            &["e.g. {\"url\": \"https://hooks.example.com/x\", \"on\": \"failure\"}"],
        ),
        case(
            "notify without url",
            bash(json!({"notify": {"on": "failure"}})),
            "notify.url",
            &["required", "http(s) URL"],
        ),
        case(
            "notify ftp url",
            bash(json!({"notify": {"url": "ftp://example.com/x"}})),
            "notify.url",
            &["not an http(s) URL such as https://hooks.example.com/cron"],
        ),
        case(
            "notify url without host",
            bash(json!({"notify": {"url": "https://"}})),
            "notify.url",
            &["http(s) URL such as"],
        ),
        case(
            "notify url with spaces",
            bash(json!({"notify": {"url": "https://example.com/a b"}})),
            "notify.url",
            &["http(s) URL such as"],
        ),
        case(
            "notify bad on",
            bash(json!({"notify": {"url": "https://example.com/x", "on": "error"}})),
            "notify.on",
            &["\"error\"", "accepted: failure, success, always"],
        ),
        case(
            "notify unknown field",
            bash(json!({"notify": {"url": "https://example.com/x", "method": "GET"}})),
            "notify.method",
            &["accepted fields here: url, on"],
        ),
    ];
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    check_cases(cases);
}

// These need the real cron parser and the zone suggestions of the schedule module.

#[test]
fn bad_cron_expressions_are_refused_naming_schedule() {
    for (input, field, says) in [
        (
            bash(json!({"trigger": null, "schedule": "not a cron"})),
            "schedule",
            "5 fields (minute hour day-of-month month day-of-week)",
        ),
        (
            bash(json!({"trigger": null, "schedule": "* * * *"})),
            "schedule",
            "5 fields",
        ),
        (
            bash(json!({"trigger": null, "schedule": "61 * * * *"})),
            "schedule",
            "minutes are 0-59",
        ),
        (
            trig(json!({"type": "cron", "schedule": "0 25 * * *"})),
            "trigger.schedule",
            "hours are 0-23",
        ),
    ] {
        let e = add(&input).expect_err(&input.to_string());
        assert_eq!(e.field, field, "{input}: {e}");
        assert!(e.message.contains(says), "{input}: {e}");
    }
}

#[test]
fn a_cron_that_never_fires_is_refused_naming_schedule() {
    // February never has a 30th or 31st: the syntax is fine, but it never fires within 5 years.
    let e = add(&bash(json!({"trigger": null, "schedule": "0 0 31 2 *"}))).unwrap_err();
    assert_eq!(e.field, "schedule", "{e}");
    assert!(e.message.contains("never fires in the next 5 years"), "{e}");
    let e = add(&trig(json!({"type": "cron", "schedule": "0 0 30 2 *"}))).unwrap_err();
    assert_eq!(e.field, "trigger.schedule", "{e}");
    assert!(e.message.contains("never fires"), "{e}");
}

#[test]
fn a_misspelt_timezone_gets_a_suggestion() {
    let e = add(&bash(
        json!({"trigger": null, "schedule": "0 2 * * *", "timezone": "Europe/Moskow"}),
    ))
    .unwrap_err();
    assert_eq!(e.field, "timezone");
    assert!(e.message.contains("\"Europe/Moskow\""), "{e}");
    assert!(e.message.contains("IANA"), "{e}");
    assert!(e.message.contains("did you mean \"Europe/Moscow\"?"), "{e}");
}

// ---- accepted inputs ----

fn default_events() -> Vec<FileEvent> {
    vec![FileEvent::Create, FileEvent::Modify, FileEvent::Remove]
}

/// Policies nobody set in the input: the SPEC §5 defaults.
fn assert_default_policies(spec: &TaskSpec) {
    assert_eq!(spec.overlap, Overlap::Skip);
    assert_eq!(spec.catch_up, CatchUp::Skip);
    assert_eq!(
        spec.retries,
        Retries {
            max_attempts: 0,
            backoff_seconds: 30,
            doubling: true
        }
    );
    assert_eq!(spec.notify, None);
    assert_eq!(
        spec.timeout_seconds, None,
        "None means the config's task_timeout_secs"
    );
    assert!(spec.enabled);
    assert!(spec.env.is_empty());
    assert_eq!(spec.cwd, None);
    assert_eq!(spec.description, None);
}

#[test]
fn seed_example_daily_backup() {
    let spec = add(&json!({"name":"daily-backup","type":"bash","schedule":"0 2 * * *","command":"/opt/scripts/backup.sh","timezone":"Europe/Moscow"})).unwrap();
    assert_eq!(spec.name, "daily-backup");
    assert_eq!(spec.task_type, TaskType::Bash);
    assert_eq!(
        spec.trigger,
        Trigger::Cron {
            schedule: "0 2 * * *".into()
        }
    );
    assert_eq!(spec.timezone, "Europe/Moscow");
    assert_eq!(spec.command.as_deref(), Some("/opt/scripts/backup.sh"));
    assert_eq!(spec.prompt, None);
    assert_eq!(spec.runner, None);
    assert_default_policies(&spec);
}

#[test]
fn seed_example_weekly_code_review() {
    let spec = add(&json!({"name":"weekly-code-review","type":"subagent","schedule":"0 9 * * 1","prompt":"Review all commits from last week in /project, summarize changes and potential issues","timezone":"UTC"})).unwrap();
    assert_eq!(spec.name, "weekly-code-review");
    assert_eq!(spec.task_type, TaskType::Subagent);
    assert_eq!(
        spec.trigger,
        Trigger::Cron {
            schedule: "0 9 * * 1".into()
        }
    );
    assert_eq!(spec.timezone, "UTC");
    assert_eq!(
        spec.prompt.as_deref(),
        Some(
            "Review all commits from last week in /project, summarize changes and potential issues"
        )
    );
    assert_eq!(spec.command, None);
    // Runner and model are chosen at run time when not given (claude on PATH / config default).
    assert_eq!(spec.runner, None);
    assert_eq!(spec.model, None);
    assert_eq!(spec.max_turns, None);
    assert!(spec.allowed_tools.is_empty());
    assert_default_policies(&spec);
}

#[test]
fn seed_example_config_watcher() {
    let spec = add(&json!({"name":"config-watcher","type":"bash","trigger":{"type":"file-watch","path":"/etc/nginx/nginx.conf"},"command":"nginx -t && systemctl reload nginx"})).unwrap();
    assert_eq!(spec.name, "config-watcher");
    assert_eq!(spec.task_type, TaskType::Bash);
    assert_eq!(
        spec.trigger,
        Trigger::FileWatch {
            path: "/etc/nginx/nginx.conf".into(),
            pattern: None,
            recursive: true,
            events: default_events(),
            debounce_ms: 1000,
        }
    );
    // No timezone given: the context's default_timezone.
    assert_eq!(spec.timezone, "UTC");
    assert_eq!(
        spec.command.as_deref(),
        Some("nginx -t && systemctl reload nginx")
    );
    assert_default_policies(&spec);
}

#[test]
fn every_trigger_type_and_policy_is_accepted_when_valid() {
    // The default timezone of the context applies when none is given.
    let lookup = others();
    let ctx = Context {
        default_timezone: "Asia/Tokyo",
        lookup: &lookup,
        self_id: None,
        now: now(),
        schedules: None,
    };
    let spec = task_spec(&bash(json!({})), &ctx).unwrap();
    assert_eq!(spec.trigger, Trigger::Manual);
    assert_eq!(spec.timezone, "Asia/Tokyo");

    // file_watch alias, events deduplicated and ordered, pattern kept.
    let spec = add(&trig(
        json!({"type": "file_watch", "path": "/srv/app", "pattern": "**/*.py",
        "recursive": false, "events": ["remove", "create", "remove"], "debounce_ms": 0}),
    ))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::FileWatch {
            path: "/srv/app".into(),
            pattern: Some("**/*.py".into()),
            recursive: false,
            events: vec![FileEvent::Create, FileEvent::Remove],
            debounce_ms: 0,
        }
    );

    let spec = add(&trig(
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Edit|Write",
        "file_pattern": "**/*.rs"}),
    ))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Hook {
            event: "PostToolUse".into(),
            matcher: Some("Edit|Write".into()),
            file_pattern: Some("**/*.rs".into()),
            debounce_ms: 0, // hook events are not debounced unless asked
        }
    );

    // Interval without start_at starts now; with a local start_at it is read in the task's zone.
    let spec = add(&trig(json!({"type": "interval", "every": "15m"}))).unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Interval {
            every: "15m".into(),
            every_seconds: 900,
            start_at: "2026-01-15T12:00:00Z".into()
        }
    );
    let spec = add(&bash(json!({"timezone": "Europe/Moscow",
        "trigger": {"type": "interval", "every": "1d", "start_at": "2026-02-01T09:00"}})))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Interval {
            every: "1d".into(),
            every_seconds: 86_400,
            // Moscow is UTC+3 all year.
            start_at: "2026-02-01T06:00:00Z".into()
        }
    );

    // Once: an offset time is normalised to UTC.
    let spec = add(&trig(
        json!({"type": "once", "at": "2026-12-01T09:00:00+03:00"}),
    ))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Once {
            at: "2026-12-01T06:00:00Z".into()
        }
    );

    // After by name resolves to the id; on defaults to success.
    let spec = add(&trig(json!({"type": "after", "task": "nightly-build"}))).unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::After {
            task: "up1".into(),
            on: AfterOn::Success
        }
    );
    let spec = add(&trig(
        json!({"type": "after", "task": "up1", "on": "always"}),
    ))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::After {
            task: "up1".into(),
            on: AfterOn::Always
        }
    );

    // The timezone may be given inside a cron trigger instead of at the top.
    let spec = add(&trig(
        json!({"type": "cron", "schedule": " 0 9 * * 1-5 ", "timezone": "Europe/Moscow"}),
    ))
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Cron {
            schedule: "0 9 * * 1-5".into()
        }
    );
    assert_eq!(spec.timezone, "Europe/Moscow");

    // Policies and the rest, all set.
    let spec = add(&sub(json!({
        "name": "review",
        "description": "weekly review",
        "enabled": false,
        "cwd": "/home/me/project",
        "env": {"GIT_PAGER": "cat", "RETRIES": 3, "VERBOSE": true},
        "timeout_seconds": 600,
        "model": "claude-opus-4",
        "runner": "api",
        "allowed_tools": ["Read", "Bash(git *)"],
        "max_turns": 20,
        "permission_mode": "acceptEdits",
        "overlap": "queue",
        "catch_up": "once",
        "retries": {"max_attempts": 3, "backoff_seconds": 10, "doubling": false},
        "notify": {"url": "https://hooks.example.com/cron", "on": "always"}
    })))
    .unwrap();
    assert_eq!(spec.description.as_deref(), Some("weekly review"));
    assert!(!spec.enabled);
    assert_eq!(spec.cwd.as_deref(), Some("/home/me/project"));
    let text = |t: &str| claudecron::tasks::model::EnvValue::Text(t.into());
    assert_eq!(spec.env["GIT_PAGER"], text("cat"));
    // Numbers and booleans are written as their JSON text.
    assert_eq!(spec.env["RETRIES"], text("3"));
    assert_eq!(spec.env["VERBOSE"], text("true"));
    assert_eq!(spec.timeout_seconds, Some(600));
    assert_eq!(spec.model.as_deref(), Some("claude-opus-4"));
    assert_eq!(spec.runner, Some(Runner::Api));
    assert_eq!(spec.allowed_tools, vec!["Read", "Bash(git *)"]);
    assert_eq!(spec.max_turns, Some(20));
    assert_eq!(spec.permission_mode.as_deref(), Some("acceptEdits"));
    assert_eq!(spec.overlap, Overlap::Queue);
    assert_eq!(spec.catch_up, CatchUp::Once);
    assert_eq!(
        spec.retries,
        Retries {
            max_attempts: 3,
            backoff_seconds: 10,
            doubling: false
        }
    );
    let notify = spec.notify.unwrap();
    assert_eq!(notify.url, "https://hooks.example.com/cron");
    assert_eq!(notify.on, vec![NotifyOn::Always]);

    // retries as a bare number is max_attempts; notify.on defaults to failure.
    let spec = add(&bash(
        json!({"retries": 2, "notify": {"url": "http://10.0.0.5:8080/x"}}),
    ))
    .unwrap();
    assert_eq!(spec.retries.max_attempts, 2);
    assert_eq!(spec.retries.backoff_seconds, 30);
    assert_eq!(spec.notify.unwrap().on, vec![NotifyOn::Failure]);

    // Limits are inclusive.
    let name100 = "é".repeat(100); // 100 characters, 200 bytes
    let spec = add(&bash(json!({"name": name100, "timeout_seconds": 604_800}))).unwrap();
    assert_eq!(spec.name.chars().count(), 100);
    assert_eq!(spec.timeout_seconds, Some(604_800));
    // A blank description is dropped rather than stored.
    assert_eq!(
        add(&bash(json!({"description": "  "})))
            .unwrap()
            .description,
        None
    );
    // Explicit nulls are the same as absent.
    let spec = add(&bash(
        json!({"schedule": null, "description": null, "retries": null}),
    ))
    .unwrap();
    assert_eq!(spec.trigger, Trigger::Manual);
}

#[test]
fn hints_are_given_only_for_near_misses() {
    // A short unknown name far from every accepted one gets the list, not a guess.
    let e = add(&bash(
        json!({"notify": {"url": "https://e.example/x", "x": 1}}),
    ))
    .unwrap_err();
    assert_eq!(e.field, "notify.x");
    assert!(!e.message.contains("did you mean"), "{e}");
    assert!(e.message.contains("accepted fields here: url, on"), "{e}");
    let e = add(&bash(json!({"comand": "ls"}))).unwrap_err();
    assert_eq!(e.field, "comand");
    assert!(e.message.contains("did you mean \"command\"?"), "{e}");
}

#[test]
fn a_bad_default_timezone_is_reported_as_timezone() {
    // No zone in the input: the default applies, and a bad default is named `timezone`.
    let lookup = others();
    let ctx = Context {
        default_timezone: "Nowhere/Special",
        lookup: &lookup,
        self_id: None,
        now: now(),
        schedules: None,
    };
    let e = task_spec(&bash(json!({})), &ctx).unwrap_err();
    assert_eq!(e.field, "timezone", "{e}");
}

// ---- updates ----

fn stored(input: Value) -> TaskSpec {
    add(&input).unwrap()
}

/// Validate an update to task `self_id` with `lookup`.
fn update(
    existing: &TaskSpec,
    patch: Value,
    self_id: &str,
    lookup: &dyn TaskLookup,
) -> Result<TaskSpec, FieldError> {
    let patch: Map<String, Value> = patch.as_object().unwrap().clone();
    let merged = merge_update(existing, &patch)?;
    let ctx = Context {
        default_timezone: "UTC",
        lookup,
        self_id: Some(self_id),
        now: now(),
        schedules: None,
    };
    task_spec(&merged, &ctx)
}

fn backup() -> TaskSpec {
    stored(
        json!({"name":"daily-backup","type":"bash","schedule":"0 2 * * *","command":"/opt/scripts/backup.sh","timezone":"Europe/Moscow","description":"nightly"}),
    )
}

#[test]
fn update_with_a_new_schedule_keeps_the_timezone() {
    let lookup = others();
    let spec = update(
        &backup(),
        json!({"schedule": "30 3 * * *"}),
        "self",
        &lookup,
    )
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Cron {
            schedule: "30 3 * * *".into()
        }
    );
    assert_eq!(spec.timezone, "Europe/Moscow");
    // Everything not in the patch is kept.
    assert_eq!(spec.command.as_deref(), Some("/opt/scripts/backup.sh"));
    assert_eq!(spec.description.as_deref(), Some("nightly"));
}

#[test]
fn update_with_a_trigger_replaces_the_cron_and_a_trigger_timezone_replaces_the_old_one() {
    let lookup = others();
    let spec = update(
        &backup(),
        json!({"trigger": {"type": "interval", "every": "2h"}}),
        "self",
        &lookup,
    )
    .unwrap();
    assert_eq!(spec.trigger.kind().as_str(), "interval");
    assert_eq!(spec.timezone, "Europe/Moscow");

    let spec = update(
        &backup(),
        json!({"trigger": {"type": "cron", "schedule": "0 4 * * *", "timezone": "Asia/Tokyo"}}),
        "self",
        &lookup,
    )
    .unwrap();
    assert_eq!(spec.timezone, "Asia/Tokyo");

    // And back from a trigger to a schedule.
    let watcher = stored(
        json!({"name":"config-watcher","type":"bash","trigger":{"type":"file-watch","path":"/etc/nginx/nginx.conf"},"command":"nginx -t"}),
    );
    let spec = update(&watcher, json!({"schedule": "@daily"}), "self", &lookup).unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::Cron {
            schedule: "@daily".into()
        }
    );
}

#[test]
fn update_null_clears_a_field() {
    let lookup = others();
    let spec = update(&backup(), json!({"description": null}), "self", &lookup).unwrap();
    assert_eq!(spec.description, None);
    let with_env = update(&backup(), json!({"env": {"A": "1"}}), "self", &lookup).unwrap();
    assert_eq!(with_env.env.len(), 1);
    let cleared = update(&with_env, json!({"env": null}), "self", &lookup).unwrap();
    assert!(cleared.env.is_empty());
    // Clearing a required field is refused naming it.
    let e = update(&backup(), json!({"command": null}), "self", &lookup).unwrap_err();
    assert_eq!(e.field, "command");
}

#[test]
fn update_switching_type_drops_the_old_type_fields() {
    let lookup = others();
    let spec = update(
        &backup(),
        json!({"type": "subagent", "prompt": "check the backups"}),
        "self",
        &lookup,
    )
    .unwrap();
    assert_eq!(spec.task_type, TaskType::Subagent);
    assert_eq!(spec.command, None);
    assert_eq!(spec.prompt.as_deref(), Some("check the backups"));

    let agent = stored(sub(
        json!({"model": "claude-opus-4", "runner": "api", "max_turns": 3,
        "allowed_tools": ["Read"], "permission_mode": "plan"}),
    ));
    let spec = update(
        &agent,
        json!({"type": "bash", "command": "echo hi"}),
        "self",
        &lookup,
    )
    .unwrap();
    assert_eq!(spec.task_type, TaskType::Bash);
    assert_eq!(spec.prompt, None);
    assert_eq!(spec.model, None);
    assert_eq!(spec.runner, None);
    assert_eq!(spec.max_turns, None);
    assert!(spec.allowed_tools.is_empty());
    assert_eq!(spec.permission_mode, None);

    // Without a type switch, a field of the other type is still refused.
    let e = update(&backup(), json!({"prompt": "x"}), "self", &lookup).unwrap_err();
    assert_eq!(e.field, "prompt");
}

#[test]
fn update_rejects_unknown_fields_by_name() {
    let e = merge_update(&backup(), json!({"comand": "x"}).as_object().unwrap()).unwrap_err();
    assert_eq!(e.field, "comand");
    assert!(e.message.contains("did you mean \"command\"?"), "{e}");
}

#[test]
fn update_after_itself_or_in_a_cycle_is_refused() {
    // a ← b ← c (b runs after a, c after b). Updating a to run after c closes a loop.
    let lookup = Tasks(vec![
        task("a", "alpha", None),
        task("b", "beta", Some("a")),
        task("c", "gamma", Some("b")),
    ]);
    let alpha = stored(bash(json!({"name": "alpha"})));

    let e = update(
        &alpha,
        json!({"trigger": {"type": "after", "task": "a"}}),
        "a",
        &lookup,
    )
    .unwrap_err();
    assert_eq!(e.field, "trigger.task");
    assert!(e.message.contains("cannot run after itself"), "{e}");
    // By name too.
    let e = update(
        &alpha,
        json!({"trigger": {"type": "after", "task": "alpha"}}),
        "a",
        &lookup,
    )
    .unwrap_err();
    assert_eq!(e.field, "trigger.task");

    for upstream in ["c", "gamma", "b"] {
        let e = update(
            &alpha,
            json!({"trigger": {"type": "after", "task": upstream}}),
            "a",
            &lookup,
        )
        .unwrap_err();
        assert_eq!(e.field, "trigger.task", "{upstream}");
        assert!(e.message.contains("cycle"), "{upstream}: {e}");
    }

    // c may follow a: no loop (a runs after nothing).
    let gamma = stored(bash(json!({"name": "gamma"})));
    let spec = update(
        &gamma,
        json!({"trigger": {"type": "after", "task": "alpha", "on": "failure"}}),
        "c",
        &lookup,
    )
    .unwrap();
    assert_eq!(
        spec.trigger,
        Trigger::After {
            task: "a".into(),
            on: AfterOn::Failure
        }
    );
}

#[test]
fn update_revalidates_a_stored_once_task_whose_time_has_passed() {
    // A once task that already fired keeps its past time; renaming it must still work.
    let lookup = others();
    let mut fired = stored(trig(json!({"type": "once", "at": "2026-02-01T00:00:00Z"})));
    fired.trigger = Trigger::Once {
        at: "2026-01-01T00:00:00Z".into(),
    };
    let spec = update(&fired, json!({"name": "renamed"}), "self", &lookup).unwrap();
    assert_eq!(spec.name, "renamed");
    assert_eq!(
        spec.trigger,
        Trigger::Once {
            at: "2026-01-01T00:00:00Z".into()
        }
    );
}

#[test]
fn a_stored_spec_round_trips_through_an_empty_update() {
    let lookup = others();
    for spec in [
        backup(),
        stored(
            json!({"name":"config-watcher","type":"bash","trigger":{"type":"file-watch","path":"/etc/nginx/nginx.conf","pattern":"*.conf"},"command":"nginx -t"}),
        ),
        stored(trig(json!({"type": "interval", "every": "15m"}))),
        stored(trig(
            json!({"type": "hook", "event": "Stop", "matcher": "x"}),
        )),
        stored(trig(
            json!({"type": "after", "task": "nightly-build", "on": "failure"}),
        )),
        stored(sub(
            json!({"runner": "claude-code", "retries": 4, "notify": {"url": "https://e.example/x"}}),
        )),
    ] {
        assert_eq!(update(&spec, json!({}), "self", &lookup).unwrap(), spec);
    }
}

// ---- durations and times ----

#[test]
fn parse_duration_table() {
    let good: &[(&str, u64)] = &[
        ("30s", 30),
        ("1s", 1),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86_400),
        ("90m", 5400),
        (" 5m ", 300),
        ("007s", 7),
        ("366d", 366 * 86_400),
        ("8784h", 366 * 86_400),
    ];
    for (text, secs) in good {
        assert_eq!(parse_duration(text), Ok(*secs), "{text:?}");
    }
    let bad: &[(&str, &str)] = &[
        ("", "not a duration"),
        ("s", "not a duration"),
        ("5", "not a duration"),
        ("m5", "not a duration"),
        ("5x", "not a duration"),
        ("5M", "not a duration"),
        ("5ms", "not a duration"),
        ("5 m", "not a duration"),
        ("-5m", "not a duration"),
        ("+5m", "not a duration"),
        ("1.5h", "not a duration"),
        ("1h30m", "not a duration"),
        ("5é", "not a duration"),
        ("é", "not a duration"),
        ("0s", "zero"),
        ("0d", "zero"),
        ("367d", "longer than a year"),
        ("31622401s", "longer than a year"),
        ("99999999999999999999d", "longer than a year"),
    ];
    for (text, says) in bad {
        let e = parse_duration(text).expect_err(text);
        assert!(e.contains(says), "{text:?}: {e}");
        if *says != "zero" {
            assert!(e.contains("such as 30s, 15m, 2h, 1d"), "{text:?}: {e}");
        } else {
            assert!(e.contains("1s"), "{text:?}: {e}");
        }
    }
}

#[test]
fn parse_time_table() {
    let moscow: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
    let new_york: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let good = [
        ("2026-12-01T09:00:00+03:00", moscow, "2026-12-01T06:00:00Z"),
        ("2026-12-01T06:00:00Z", new_york, "2026-12-01T06:00:00Z"),
        ("2026-12-01T09:00", moscow, "2026-12-01T06:00:00Z"),
        ("2026-12-01 09:00:30", moscow, "2026-12-01T06:00:30Z"),
        // New York in summer is UTC-4, in winter UTC-5.
        ("2026-07-01T09:00", new_york, "2026-07-01T13:00:00Z"),
        ("2026-01-01T09:00", new_york, "2026-01-01T14:00:00Z"),
        // Repeated by the fall-back: the first (EDT) one.
        ("2026-11-01T01:30", new_york, "2026-11-01T05:30:00Z"),
    ];
    for (text, tz, expected) in good {
        assert_eq!(parse_time(text, tz), Ok(utc(expected)), "{text}");
    }
    for text in ["2026-13-01T09:00", "tomorrow", "2026-12-01", "09:00", ""] {
        let e = parse_time(text, moscow).expect_err(text);
        assert!(e.contains("RFC 3339"), "{text}: {e}");
    }
    let e = parse_time("2026-03-08T02:30", new_york).unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
}

/// Every text field has a length limit; a refusal names the field, the length and the limit,
/// and never quotes the huge value back.
#[test]
fn long_text_fields_are_refused_naming_the_field_the_length_and_the_limit() {
    let s = |n: usize| "a".repeat(n);
    let abs = |n: usize| format!("/{}", "d".repeat(n - 1));
    // (what, input, field, length, limit)
    let cases: Vec<(&str, Value, &str, usize, usize)> = vec![
        (
            "description",
            bash(json!({"description": s(4097)})),
            "description",
            4097,
            4096,
        ),
        ("cwd", bash(json!({"cwd": abs(4097)})), "cwd", 4097, 4096),
        (
            "command",
            bash(json!({"command": s(65_537)})),
            "command",
            65_537,
            65_536,
        ),
        (
            "prompt",
            sub(json!({"prompt": s(262_145)})),
            "prompt",
            262_145,
            262_144,
        ),
        (
            "system",
            sub(json!({"system": s(65_537)})),
            "system",
            65_537,
            65_536,
        ),
        ("model", sub(json!({"model": s(201)})), "model", 201, 200),
        (
            "env value",
            bash(json!({"env": {"BIG": s(32_769)}})),
            "env.BIG",
            32_769,
            32_768,
        ),
        (
            "allowed tool",
            sub(json!({"allowed_tools": ["Read", s(257)]})),
            "allowed_tools[1]",
            257,
            256,
        ),
        (
            "schedule",
            bash(json!({"trigger": null, "schedule": s(1025)})),
            "schedule",
            1025,
            1024,
        ),
        (
            "timezone",
            bash(json!({"timezone": s(101)})),
            "timezone",
            101,
            100,
        ),
        (
            "notify.url",
            bash(json!({"notify": {"url": format!("https://x/{}", s(2040))}})),
            "notify.url",
            2050,
            2048,
        ),
        (
            "cron trigger",
            trig(json!({"type": "cron", "schedule": s(1025)})),
            "trigger.schedule",
            1025,
            1024,
        ),
        (
            "watch path",
            trig(json!({"type": "file-watch", "path": abs(4097)})),
            "trigger.path",
            4097,
            4096,
        ),
        (
            "watch pattern",
            trig(json!({"type": "file-watch", "path": "/tmp", "pattern": s(1025)})),
            "trigger.pattern",
            1025,
            1024,
        ),
        (
            "hook matcher",
            trig(json!({"type": "hook", "event": "PostToolUse", "matcher": s(1025)})),
            "trigger.matcher",
            1025,
            1024,
        ),
        (
            "hook file_pattern",
            trig(json!({"type": "hook", "event": "PostToolUse", "file_pattern": s(1025)})),
            "trigger.file_pattern",
            1025,
            1024,
        ),
        (
            "hook event",
            trig(json!({"type": "hook", "event": s(101)})),
            "trigger.event",
            101,
            100,
        ),
        (
            "interval every",
            trig(json!({"type": "interval", "every": s(101)})),
            "trigger.every",
            101,
            100,
        ),
        (
            "interval start_at",
            trig(json!({"type": "interval", "every": "1h", "start_at": s(101)})),
            "trigger.start_at",
            101,
            100,
        ),
        (
            "once at",
            trig(json!({"type": "once", "at": s(101)})),
            "trigger.at",
            101,
            100,
        ),
        (
            "after task",
            trig(json!({"type": "after", "task": s(513)})),
            "trigger.task",
            513,
            512,
        ),
        (
            "trigger type",
            trig(json!({"type": s(101)})),
            "trigger.type",
            101,
            100,
        ),
    ];
    let mut failures = Vec::new();
    for (what, input, field, len, limit) in cases {
        match add(&input) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) => {
                let says = format!("is {len} bytes long; the limit is {limit} bytes");
                if e.field != field || !e.message.contains(&says) {
                    failures.push(format!("{what}: {e} (expected {field}: …{says})"));
                }
                if e.message.len() > 300 {
                    failures.push(format!(
                        "{what}: the message quotes too much ({} bytes)",
                        e.message.len()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // At the limit they are accepted.
    let at = bash(
        json!({"description": s(4096), "cwd": abs(4096), "command": s(65_536),
                         "env": {"BIG": s(32_768)}, "notify": {"url": format!("https://x/{}", s(2038))}}),
    );
    add(&at).unwrap_or_else(|e| panic!("at the limits: {e}"));
    let at = sub(json!({"prompt": s(262_144), "system": s(65_536), "allowed_tools": [s(256)]}));
    add(&at).unwrap_or_else(|e| panic!("at the limits: {e}"));
}

#[test]
fn env_is_limited_in_count_name_length_and_total_size() {
    let many: Map<String, Value> = (0..101).map(|i| (format!("V{i}"), json!("x"))).collect();
    let e = add(&bash(json!({ "env": many }))).unwrap_err();
    assert_eq!(e.field, "env");
    assert!(
        e.message.contains("has 101 variables; the limit is 100"),
        "{e}"
    );
    let hundred: Map<String, Value> = (0..100).map(|i| (format!("V{i}"), json!("x"))).collect();
    add(&bash(json!({ "env": hundred }))).expect("100 variables are fine");

    let name = "N".repeat(129);
    let e = add(&bash(json!({ "env": { name.clone(): "x" } }))).unwrap_err();
    assert!(e.field.starts_with("env.NNN") && e.field.len() < 100, "{e}");
    assert!(
        e.message
            .contains("is 129 bytes long; the limit is 128 bytes"),
        "{e}"
    );

    // Nine values of 32 KiB each are each fine, together over 256 KiB.
    let big: Map<String, Value> = (0..9)
        .map(|i| (format!("V{i}"), json!("x".repeat(32_768))))
        .collect();
    let e = add(&bash(json!({ "env": big }))).unwrap_err();
    assert_eq!(e.field, "env");
    assert!(e.message.contains("262144 bytes"), "{e}");

    let e = add(&bash(json!({"cwd": "/tmp/a\u{0}b"}))).unwrap_err();
    assert_eq!(e.field, "cwd");
    assert!(e.message.contains("NUL"), "{e}");
}

#[test]
fn huge_values_and_keys_are_never_quoted_back_whole() {
    let huge = "z".repeat(200_000);
    // An enum field, an unknown field's name, an unknown trigger type.
    for input in [
        bash(json!({"overlap": huge})),
        bash(json!({ huge.clone(): 1 })),
        sub(json!({"permission_mode": huge})),
    ] {
        let e = add(&input).unwrap_err();
        let text = e.to_string();
        assert!(text.len() < 1000, "{} bytes: {}…", text.len(), &text[..200]);
    }
}

/// The server validates schedules through its shared `ScheduleCache`: the answers (accepted
/// specs and refusals, messages included) are those of a fresh parse, also the second time.
#[test]
fn schedules_checked_through_the_cache_answer_as_a_fresh_parse() {
    let lookup = others();
    let cache = claudecron::tasks::schedule::ScheduleCache::default();
    let cached = Context {
        default_timezone: "UTC",
        lookup: &lookup,
        self_id: None,
        now: now(),
        schedules: Some(&cache),
    };
    for expr in [
        "0 9 * * 1-5",
        "*/15 * * * *",
        "0 0 30 2 *",
        "61 * * * *",
        "@nightly",
        "0 0 0 1 1 * 2020",
    ] {
        for input in [
            bash(json!({"schedule": expr, "trigger": null})),
            bash(json!({"trigger": {"type": "cron", "schedule": expr}})),
        ] {
            let fresh = add(&input)
                .map(|s| format!("{s:?}"))
                .map_err(|e| format!("{e:?}"));
            // The valid ones are accepted, the others refused.
            let valid = expr.starts_with("0 9") || expr.starts_with("*/15");
            assert_eq!(fresh.is_ok(), valid, "{expr}: {fresh:?}");
            for round in 0..2 {
                let through = task_spec(&input, &cached)
                    .map(|s| format!("{s:?}"))
                    .map_err(|e| format!("{e:?}"));
                assert_eq!(through, fresh, "{expr}, round {round}: {input}");
            }
        }
    }
}

#[test]
fn expect_is_one_duration_and_grace_needs_a_schedule() {
    check_cases(vec![
        case(
            "expect not an object",
            bash(json!({"expect": "26h"})),
            "expect",
            &["{\"within\": \"26h\"}", "grace"],
        ),
        case(
            "expect empty",
            bash(json!({"expect": {}})),
            "expect",
            &["give within or grace"],
        ),
        case(
            "expect both",
            bash(json!({"expect": {"within": "26h", "grace": "1h"}})),
            "expect",
            &["not both"],
        ),
        case(
            "expect unknown key",
            bash(json!({"expect": {"every": "26h"}})),
            "expect.every",
            &["within"],
        ),
        case(
            "within not a duration",
            bash(json!({"expect": {"within": "26 hours"}})),
            "expect.within",
            &["not a duration", "30s, 15m, 2h, 1d", "1s to 366d"],
        ),
        case(
            "within zero",
            bash(json!({"expect": {"within": "0s"}})),
            "expect.within",
            &["zero", "1s to 366d"],
        ),
        case(
            "within too long",
            bash(json!({"expect": {"within": "400d"}})),
            "expect.within",
            &["longer than a year", "1s to 366d"],
        ),
        case(
            "within a number",
            bash(json!({"expect": {"within": 60}})),
            "expect.within",
            &["not a string"],
        ),
        case(
            "grace on a manual task",
            bash(json!({"expect": {"grace": "1h"}})),
            "expect.grace",
            &["cron schedule or an interval", "manual", "expect.within"],
        ),
        case(
            "grace on a hook task",
            over(
                trig(json!({"type": "hook", "event": "Stop"})),
                json!({"expect": {"grace": "5m"}}),
            ),
            "expect.grace",
            &["hook"],
        ),
    ]);
    let within = stored(bash(json!({"expect": {"within": " 26h "}})));
    let e = within.expect.as_ref().unwrap();
    assert_eq!(
        (e.within.as_deref(), e.grace.as_deref()),
        (Some("26h"), None)
    );
    let grace = stored(over(backup_input(), json!({"expect": {"grace": "1h"}})));
    assert_eq!(grace.expect.as_ref().unwrap().grace.as_deref(), Some("1h"));
    let interval = stored(over(
        trig(json!({"type": "interval", "every": "15m"})),
        json!({"expect": {"grace": "1m"}}),
    ));
    assert!(interval.expect.is_some());
    // Stored and updated: an empty update keeps it, null removes it.
    let lookup = others();
    assert_eq!(update(&grace, json!({}), "self", &lookup).unwrap(), grace);
    assert_eq!(
        update(&grace, json!({"expect": null}), "self", &lookup)
            .unwrap()
            .expect,
        None
    );
    // The task JSON shows it as given.
    let shown = serde_json::to_value(&within).unwrap();
    assert_eq!(shown["expect"], json!({"within": "26h"}));
}

fn backup_input() -> Value {
    json!({"name":"daily-backup","type":"bash","schedule":"0 2 * * *","command":"/opt/scripts/backup.sh"})
}
