//! Claude Code hook triggers: which enabled `hook` tasks a payload matches (event name, Claude
//! Code's matcher semantics, file glob), the run context a payload gives (environment and stdin),
//! and the per-task debounce (trailing edge, last payload wins) on its own small thread. Used by
//! `POST /hooks` and `claudecron_trigger_hook`. It fires runs through the engine; it never runs
//! anything itself and never answers Claude Code with a decision.

use super::debounce::Debouncer;
use crate::engine::{EngineError, EngineHandle};
use crate::exec::process::env_value;
use crate::store::Store;
use crate::tasks::model::{Task, Trigger};
use crate::tasks::runs::{RunContext, TriggerKind};
use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The payload field a hook event's matcher is tested against (claude-code reference §6);
/// None: the event takes no matcher, so a matcher there is ignored (as Claude Code does).
pub fn matcher_field(event: &str) -> Option<&'static str> {
    match event {
        "PreToolUse" | "PostToolUse" | "PostToolUseFailure" | "PermissionRequest"
        | "PermissionDenied" => Some("tool_name"),
        "SessionStart" => Some("source"),
        "SessionEnd" => Some("reason"),
        "Notification" => Some("notification_type"),
        "SubagentStart" | "SubagentStop" => Some("agent_type"),
        "PreCompact" | "PostCompact" => Some("trigger"),
        _ => None,
    }
}

/// Claude Code's matcher semantics: empty or `*` matches all; a string of only letters, digits,
/// `_`, `|`, `-`, `,` and spaces is an exact name or a `|`/`,` list; anything else is an
/// unanchored regular expression.
pub fn matcher_matches(matcher: &str, value: &str) -> bool {
    let m = matcher.trim();
    if m.is_empty() || m == "*" {
        return true;
    }
    if m.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_|-, ".contains(c))
    {
        return m.split(['|', ',']).map(str::trim).any(|name| name == value);
    }
    regex::Regex::new(m).is_ok_and(|re| re.is_match(value))
}

/// The file a tool event is about: `tool_input.file_path`, else `.path`, else `.notebook_path`.
pub fn file_path(payload: &Value) -> Option<&str> {
    let input = payload.get("tool_input")?;
    ["file_path", "path", "notebook_path"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
}

/// Whether a hook trigger matches a payload.
pub fn trigger_matches(trigger: &Trigger, payload: &Value) -> bool {
    let Trigger::Hook {
        event,
        matcher,
        file_pattern,
        ..
    } = trigger
    else {
        return false;
    };
    let event_name = payload
        .get("hook_event_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if event != event_name {
        return false;
    }
    if let (Some(m), Some(field)) = (matcher, matcher_field(event_name)) {
        let value = payload.get(field).and_then(Value::as_str).unwrap_or("");
        if !matcher_matches(m, value) {
            return false;
        }
    }
    if let Some(pattern) = file_pattern {
        match file_path(payload) {
            Some(path)
                if crate::util::PathGlob::new(pattern)
                    .is_ok_and(|g| g.is_match(std::path::Path::new(path))) => {}
            _ => return false,
        }
    }
    true
}

/// The run context for a payload: environment variables and the payload on stdin, byte for
/// byte as it arrived (`raw`). The variables' values come from the payload, so each is made fit
/// for an environment (`process::env_value`): a NUL byte becomes U+FFFD and a value is cut to
/// 16 KiB at a character boundary, ending with `…[truncated]`; stdin keeps everything.
pub fn context(payload: &Value, raw: &str) -> RunContext {
    let text = |k: &str| env_value(payload.get(k).and_then(Value::as_str).unwrap_or(""));
    let env = [
        ("CLAUDECRON_HOOK_EVENT", text("hook_event_name")),
        ("CLAUDECRON_TOOL_NAME", text("tool_name")),
        ("CLAUDECRON_SESSION_ID", text("session_id")),
        (
            "CLAUDECRON_FILE_PATH",
            env_value(file_path(payload).unwrap_or("")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    RunContext {
        env,
        stdin: Some(raw.to_string()),
        hook: Some(payload.clone()),
        after: None,
    }
}

/// Enabled hook tasks that match the payload.
pub fn matching_tasks(store: &Store, payload: &Value) -> Result<Vec<Task>, EngineError> {
    Ok(store
        .enabled_tasks_with_trigger(TriggerKind::Hook)?
        .into_iter()
        .filter(|t| trigger_matches(&t.spec.trigger, payload))
        .collect())
}

/// One matched task and what happened to it.
#[derive(Debug, Clone)]
pub struct Matched {
    pub task_id: String,
    pub task_name: String,
    /// The run started (None while debounced or when firing failed).
    pub run_id: Option<i64>,
    pub note: Option<String>,
}

struct Pending {
    task_id: String,
    context: RunContext,
    delay: Duration,
}

/// Fires matched hook tasks: at once when their `debounce_ms` is 0, else after that much quiet.
#[derive(Clone)]
pub struct HookDispatcher {
    engine: EngineHandle,
    debounced: Sender<Pending>,
}

impl HookDispatcher {
    pub fn start(engine: EngineHandle) -> Result<HookDispatcher, String> {
        let (tx, rx) = unbounded::<Pending>();
        let fire_engine = engine.clone();
        std::thread::Builder::new()
            .name("hook-debounce".into())
            .spawn(move || {
                let mut waiting: Debouncer<RunContext> = Debouncer::default();
                loop {
                    let msg = match waiting.next_deadline() {
                        Some(deadline) => {
                            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        }
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match msg {
                        // The last payload wins.
                        Ok(p) => waiting.offer(&p.task_id, Instant::now() + p.delay, |_| p.context),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    for (id, ctx) in waiting.take_due(Instant::now()) {
                        if let Err(e) = fire_engine.fire(&id, TriggerKind::Hook, Some(ctx)) {
                            log::warn!("debounced hook run of task {id} not started: {e}");
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the hook-debounce thread: {e}"))?;
        Ok(HookDispatcher {
            engine,
            debounced: tx,
        })
    }

    /// Fire every enabled hook task the payload matches. With `bypass_debounce` (the
    /// `claudecron_trigger_hook` tool), debounced tasks fire at once too.
    pub fn dispatch(
        &self,
        store: &Store,
        payload: &Value,
        raw: &str,
        bypass_debounce: bool,
    ) -> Result<Vec<Matched>, EngineError> {
        let context = context(payload, raw);
        let mut out = Vec::new();
        for task in matching_tasks(store, payload)? {
            let debounce = match task.spec.trigger {
                Trigger::Hook { debounce_ms, .. } => debounce_ms,
                _ => 0,
            };
            let mut matched = Matched {
                task_id: task.id.clone(),
                task_name: task.spec.name.clone(),
                run_id: None,
                note: None,
            };
            if debounce > 0 && !bypass_debounce {
                let _ = self.debounced.send(Pending {
                    task_id: task.id.clone(),
                    context: context.clone(),
                    delay: Duration::from_millis(debounce),
                });
                matched.note = Some(format!(
                    "debounced: runs after {debounce} ms without another matching event"
                ));
            } else {
                match self
                    .engine
                    .fire(&task.id, TriggerKind::Hook, Some(context.clone()))
                {
                    Ok(id) => matched.run_id = Some(id),
                    Err(e) => matched.note = Some(format!("not started: {e}")),
                }
            }
            out.push(matched);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matcher_semantics_follow_claude_code() {
        assert!(matcher_matches("", "Bash"));
        assert!(matcher_matches("*", "Bash"));
        assert!(matcher_matches("Bash", "Bash"));
        assert!(
            !matcher_matches("Bash", "BashOutput"),
            "a plain name is exact"
        );
        assert!(matcher_matches("Edit|Write", "Write"));
        assert!(!matcher_matches("Edit|Write", "NotebookEdit"));
        assert!(
            matcher_matches("Edit.*", "NotebookEdit"),
            "a regex is unanchored"
        );
        assert!(matcher_matches("mcp__peer__.*", "mcp__peer__echo"));
        assert!(
            !matcher_matches("mcp__peer", "mcp__peer__echo"),
            "a bare server name is exact"
        );
    }

    #[test]
    fn context_env_values_are_fit_for_an_environment_and_stdin_is_whole() {
        let raw = format!(
            r#"{{"hook_event_name":"Stop","session_id":"a\u0000b","tool_name":"{}"}}"#,
            "t".repeat(40_000)
        );
        let payload: Value = serde_json::from_str(&raw).unwrap();
        let ctx = context(&payload, &raw);
        let get = |k: &str| ctx.env[k].clone();
        assert_eq!(get("CLAUDECRON_SESSION_ID"), "a\u{FFFD}b");
        let tool = get("CLAUDECRON_TOOL_NAME");
        assert!(tool.len() <= 16 * 1024 && tool.ends_with("…[truncated]"));
        assert_eq!(ctx.stdin.as_deref(), Some(raw.as_str()));
    }

    #[test]
    fn triggers_match_event_matcher_field_and_file() {
        let trigger = Trigger::Hook {
            event: "PostToolUse".into(),
            matcher: Some("Write|Edit".into()),
            file_pattern: Some("*.txt".into()),
            debounce_ms: 0,
        };
        let payload = json!({"hook_event_name":"PostToolUse","tool_name":"Write","tool_input":{"file_path":"/p/out.txt","content":"x"}});
        assert!(trigger_matches(&trigger, &payload));
        let other_tool = json!({"hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"ls"}});
        assert!(!trigger_matches(&trigger, &other_tool));
        let other_event = json!({"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{"file_path":"/p/out.txt"}});
        assert!(!trigger_matches(&trigger, &other_event));
        let session = Trigger::Hook {
            event: "SessionStart".into(),
            matcher: Some("startup".into()),
            file_pattern: None,
            debounce_ms: 0,
        };
        assert!(trigger_matches(
            &session,
            &json!({"hook_event_name":"SessionStart","source":"startup"})
        ));
        assert!(!trigger_matches(
            &session,
            &json!({"hook_event_name":"SessionStart","source":"resume"})
        ));
        let stop = Trigger::Hook {
            event: "Stop".into(),
            matcher: Some("ignored".into()),
            file_pattern: None,
            debounce_ms: 0,
        };
        assert!(
            trigger_matches(&stop, &json!({"hook_event_name":"Stop"})),
            "Stop takes no matcher"
        );
    }
}
