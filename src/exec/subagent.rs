//! Subagent runs: a task's prompt given to Claude, either through Claude Code headless
//! (`claude -p … --output-format stream-json --verbose`, a child process in the run's own process group under
//! the same timeout/cancel rules as bash) or straight to the Anthropic Messages API (ureq, with
//! retries that honour `retry-after`; the `api` child module). Owns runner choice, the child's argv and environment, and
//! reading results (text, cost, tokens, turns, session id; `verdict` judges them) — never a
//! success it cannot prove.

mod api;

use crate::config::ApiPrice;
use crate::exec::process::{self, Ending, ProcessSpec};
use crate::exec::verdict::{self, excerpt, root_refusal, ClaudeStream, UsageLimit};
use crate::tasks::model::{Runner, TaskSpec};
use crate::tasks::runs::{RunContext, RunStatus};
use crossbeam_channel::Receiver;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Output captured from `claude` before its JSON result is read.
const CLAUDE_CAPTURE_BYTES: usize = 16 << 20;
/// Default response token limit of the `api` runner.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The public API; any other base URL is passed on to Claude Code too.
const PUBLIC_API: &str = "https://api.anthropic.com";
/// Variables that make Claude Code think it runs inside another Claude Code session.
const NESTING_VARS: &[&str] = &[
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_CODE_CHILD_SESSION",
    "CLAUDE_CODE_SSE_PORT",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_ENV_FILE",
    "CLAUDE_EFFORT",
];

/// What the runners need from the config.
#[derive(Debug, Clone, Default)]
pub struct SubagentSettings {
    pub claude_path: String,
    pub api_key: Option<String>,
    pub base_url: String,
    pub default_model: String,
    /// The api runner's prices (config `api_prices`), for its runs' cost.
    pub prices: Vec<ApiPrice>,
}

/// The `claude` executable: an absolute or relative path as given, else a search of `PATH`.
pub fn resolve_claude(claude_path: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    };
    if claude_path.contains('/') {
        let p = PathBuf::from(claude_path);
        return is_exec(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(claude_path))
            .find(|p| is_exec(p))
    })
}

/// The runner a task uses: its own choice, else claude-code when `claude` is found, else api.
pub fn choose_runner(spec: &TaskSpec, settings: &SubagentSettings) -> Runner {
    spec.runner.unwrap_or_else(|| {
        if resolve_claude(&settings.claude_path).is_some() {
            Runner::ClaudeCode
        } else {
            Runner::Api
        }
    })
}

pub fn runner_name(runner: Runner) -> &'static str {
    match runner {
        Runner::ClaudeCode => "claude-code",
        Runner::Api => "api",
    }
}

/// Why a subagent task's runner cannot work as configured (None when it can).
pub fn readiness(spec: &TaskSpec, settings: &SubagentSettings) -> Option<String> {
    match choose_runner(spec, settings) {
        Runner::ClaudeCode if resolve_claude(&settings.claude_path).is_none() => Some(format!(
            "runner claude-code: no executable \"{}\" was found (set claude_path, or install Claude Code: npm install -g @anthropic-ai/claude-code); runs will fail until then",
            settings.claude_path
        )),
        Runner::Api if settings.api_key.is_none() => Some(
            "runner api: no API key is configured (set anthropic_api_key in the config, or ANTHROPIC_API_KEY in the server's environment); runs will fail until then".into(),
        ),
        _ => None,
    }
}

/// The prompt with the event that fired the run appended as context.
pub fn prompt_with_context(prompt: &str, context: Option<&RunContext>) -> String {
    match context.and_then(RunContext::event_for_prompt) {
        Some(e) => format!(
            "{prompt}\n\n---\nThis run was triggered by the event below (JSON):\n{}",
            serde_json::to_string_pretty(&e).unwrap_or_default()
        ),
        None => prompt.to_string(),
    }
}

/// How a subagent run ended.
#[derive(Debug, Clone, Default)]
pub struct SubagentOutcome {
    pub status: RunStatus,
    pub error: Option<String>,
    pub output: String,
    pub output_truncated: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub runner: &'static str,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub num_turns: Option<i64>,
    pub session_id: Option<String>,
    /// A usage limit stopped the run before it did its work: start it again at this time (the
    /// limit's reset) instead of recording it failed.
    pub deferred_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Claude Code's own account of the ending, recorded on the run as `claude_code`.
    pub details: Option<Value>,
}

/// Everything one run needs.
pub struct SubagentJob<'a> {
    pub spec: &'a TaskSpec,
    pub prompt: String,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub grace: Duration,
    pub output_max_bytes: usize,
    /// Marks the run's processes (see `process::RunMarker`).
    pub marker: process::RunMarker,
    pub cancel: &'a Receiver<()>,
    /// Status for a cancel: `cancelled`, or `interrupted` when the server is stopping.
    pub cancelled_status: &'a dyn Fn() -> RunStatus,
}

/// Run the job with the task's runner.
pub fn run(
    job: &SubagentJob,
    settings: &SubagentSettings,
    on_progress: &mut dyn FnMut(&str, bool),
) -> SubagentOutcome {
    let model = job
        .spec
        .model
        .clone()
        .unwrap_or_else(|| settings.default_model.clone());
    match choose_runner(job.spec, settings) {
        Runner::ClaudeCode => run_claude_code(job, settings, &model, on_progress),
        Runner::Api => api::run_api(job, settings, &model),
    }
}

pub(super) fn failed(runner: &'static str, model: &str, error: String) -> SubagentOutcome {
    SubagentOutcome {
        status: RunStatus::Failed,
        error: Some(error),
        runner,
        model: Some(model.to_string()),
        ..Default::default()
    }
}

/// The argv after the program for `claude -p`; the prompt is not in it: `claude -p` with no
/// prompt argument reads the prompt from stdin.
pub fn claude_args(spec: &TaskSpec, model: &str, mcp_file: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "-p".to_string(),
        "--output-format".into(),
        "stream-json".into(),
        // stream-json needs --verbose with -p; it carries rate_limit_event lines, which the
        // one json object does not.
        "--verbose".into(),
        "--model".into(),
        model.to_string(),
    ];
    if let Some(n) = spec.max_turns {
        args.extend(["--max-turns".into(), n.to_string()]);
    }
    if !spec.allowed_tools.is_empty() {
        args.extend(["--allowedTools".into(), spec.allowed_tools.join(",")]);
    }
    if !spec.guards.disallowed_tools.is_empty() {
        args.extend([
            "--disallowedTools".into(),
            spec.guards.disallowed_tools.join(","),
        ]);
    }
    for dir in &spec.guards.add_dirs {
        args.extend(["--add-dir".into(), dir.clone()]);
    }
    if let Some(file) = mcp_file {
        // Only the task's servers: none from the user's or the project's settings.
        args.extend([
            "--mcp-config".into(),
            file.to_string_lossy().into_owned(),
            "--strict-mcp-config".into(),
        ]);
    }
    if let Some(usd) = spec.guards.max_budget_usd {
        args.extend(["--max-budget-usd".into(), usd.to_string()]);
    }
    if let Some(mode) = &spec.permission_mode {
        args.extend(["--permission-mode".into(), mode.clone()]);
    }
    if let Some(system) = &spec.system {
        args.extend(["--append-system-prompt".into(), system.clone()]);
    }
    args
}

/// Map Claude Code's stream (its result object, any rejected rate limit) and its exit code to
/// an outcome; `exec::verdict` judges it.
pub fn read_claude_result(
    result: &Value,
    limit: Option<&UsageLimit>,
    exit_code: Option<i32>,
    model: &str,
) -> SubagentOutcome {
    let (status, error, output) = verdict::judge_claude(result, limit, exit_code);
    let deferred_until = limit.and_then(|l| l.resets_at).filter(|_| {
        error
            .as_deref()
            .is_some_and(|e| e.starts_with("usage limit"))
    });
    let used_model = result
        .get("modelUsage")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned())
        .map(|m| m.trim_end_matches("[1m]").to_string())
        .unwrap_or_else(|| model.to_string());
    SubagentOutcome {
        status,
        error,
        output,
        output_truncated: false,
        exit_code,
        signal: None,
        runner: "claude-code",
        model: Some(used_model),
        cost_usd: result.get("total_cost_usd").and_then(Value::as_f64),
        input_tokens: result
            .pointer("/usage/input_tokens")
            .and_then(Value::as_i64),
        output_tokens: result
            .pointer("/usage/output_tokens")
            .and_then(Value::as_i64),
        num_turns: result.get("num_turns").and_then(Value::as_i64),
        session_id: result
            .get("session_id")
            .and_then(Value::as_str)
            .map(String::from),
        deferred_until,
        details: Some(verdict::claude_details(result, limit)),
    }
}

fn run_claude_code(
    job: &SubagentJob,
    settings: &SubagentSettings,
    model: &str,
    on_progress: &mut dyn FnMut(&str, bool),
) -> SubagentOutcome {
    let Some(program) = resolve_claude(&settings.claude_path) else {
        return failed(
            "claude-code",
            model,
            format!(
                "runner claude-code: no executable \"{}\" was found; set claude_path or install Claude Code (npm install -g @anthropic-ai/claude-code), or use runner api",
                settings.claude_path
            ),
        );
    };
    let mut env = job.env.clone();
    if let Some(key) = &settings.api_key {
        env.push(("ANTHROPIC_API_KEY".into(), key.clone()));
    }
    if settings.base_url.trim_end_matches('/') != PUBLIC_API {
        env.push(("ANTHROPIC_BASE_URL".into(), settings.base_url.clone()));
    }
    let mcp_file = match job
        .spec
        .guards
        .mcp_config
        .as_ref()
        .map(|c| McpFile::write(c, job.marker.run_id))
    {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return failed("claude-code", model, e),
    };
    let spec = ProcessSpec {
        program: program.to_string_lossy().into_owned(),
        args: claude_args(job.spec, model, mcp_file.as_ref().map(|f| f.0.as_path())),
        cwd: job.cwd.clone(),
        env,
        env_remove: NESTING_VARS.iter().map(|v| v.to_string()).collect(),
        // The prompt goes on stdin: never read as an option (a prompt "--version"), and no
        // argv limit (128 KiB per argument).
        stdin: Some(job.prompt.clone().into_bytes()),
        timeout: job.timeout,
        grace: job.grace,
        // Claude Code prints its whole result as one JSON line at the end: capture enough to
        // keep it intact, then cut what is stored down to output_max_bytes below.
        output_max_bytes: job.output_max_bytes.max(CLAUDE_CAPTURE_BYTES),
        marker: Some(job.marker.clone()),
    };
    let outcome = process::run(&spec, job.cancel, on_progress);
    let ended = claude_outcome(job, model, &outcome);
    let (output, cut) = cap(&ended.output, job.output_max_bytes);
    SubagentOutcome {
        output,
        output_truncated: ended.output_truncated || cut,
        ..ended
    }
}

/// A task's `mcp_config` written for one run: a 0600 file in the temp directory, removed when
/// the run ends (on the command line it would be visible to every user in `ps`).
struct McpFile(PathBuf);

impl McpFile {
    fn write(config: &Value, run_id: i64) -> Result<McpFile, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let salt = crate::ids::random_hex(8).map_err(|e| format!("no random bytes: {e}"))?;
        let path = std::env::temp_dir().join(format!("claudecron-mcp-{run_id}-{salt}.json"));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(config.to_string().as_bytes()));
        match written {
            Ok(()) => Ok(McpFile(path)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(format!(
                    "cannot write the task's mcp_config to {}: {e}",
                    path.display()
                ))
            }
        }
    }
}

impl Drop for McpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Head and tail of `text` within `max` bytes (as run output is kept).
fn cap(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut capture = process::Capture::new(max);
    capture.push(text.as_bytes());
    capture.snapshot()
}

fn claude_outcome(
    job: &SubagentJob,
    model: &str,
    outcome: &process::ProcessOutcome,
) -> SubagentOutcome {
    let base = |status: RunStatus, error: String| SubagentOutcome {
        status,
        error: Some(error),
        output: outcome.output.clone(),
        output_truncated: outcome.output_truncated,
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        runner: "claude-code",
        model: Some(model.to_string()),
        ..Default::default()
    };
    match &outcome.ending {
        Ending::TimedOut => base(
            RunStatus::Timeout,
            format!(
                "timed out after {} s; the process group was ended",
                job.timeout.as_secs()
            ),
        ),
        Ending::Cancelled => base(
            (job.cancelled_status)(),
            "cancelled; the process group was ended".into(),
        ),
        Ending::SpawnFailed(msg) => base(RunStatus::Failed, msg.clone()),
        Ending::Exited => match verdict::read_stream(&outcome.output) {
            ClaudeStream {
                result: Some(result),
                limit,
            } => read_claude_result(&result, limit.as_ref(), outcome.exit_code, model),
            ClaudeStream {
                limit: Some(limit), ..
            } => SubagentOutcome {
                deferred_until: limit.resets_at,
                ..base(RunStatus::Failed, verdict::limit_reason(&limit, ""))
            },
            ClaudeStream { .. } => base(
                RunStatus::Failed,
                root_refusal(&outcome.output).unwrap_or_else(|| {
                    format!(
                        "claude did not print its JSON result (exit code {}); it printed: {}",
                        outcome
                            .exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "none".into()),
                        excerpt(&outcome.output, 500)
                    )
                }),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_result_is_read_with_cost_tokens_turns_and_session() {
        let result = json!({"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"Hello.","session_id":"8da0f730","total_cost_usd":0.00075,"usage":{"input_tokens":100,"output_tokens":10},"modelUsage":{"claude-opus-4-8[1m]":{}}});
        let out = read_claude_result(&result, None, Some(0), "m");
        assert_eq!(out.status, RunStatus::Success);
        assert_eq!(out.output, "Hello.");
        assert_eq!(out.cost_usd, Some(0.00075));
        assert_eq!(
            (out.input_tokens, out.output_tokens, out.num_turns),
            (Some(100), Some(10), Some(1))
        );
        assert_eq!(out.session_id.as_deref(), Some("8da0f730"));
        assert_eq!(out.model.as_deref(), Some("claude-opus-4-8"));
    }

    #[test]
    fn errors_are_failures_with_the_reason() {
        let max_turns = json!({"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":2,"errors":["Reached maximum number of turns (1)"]});
        let out = read_claude_result(&max_turns, None, Some(1), "m");
        assert_eq!(out.status, RunStatus::Failed);
        assert!(out
            .error
            .unwrap()
            .contains("Reached maximum number of turns (1)"));
        let api = json!({"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Failed to authenticate. API Error: 401"});
        let out = read_claude_result(&api, None, Some(1), "m");
        assert_eq!(out.status, RunStatus::Failed);
        assert!(out.error.unwrap().starts_with("API error 401"));
        let odd = json!({"type":"result","subtype":"success","is_error":false,"result":"x"});
        assert_eq!(
            read_claude_result(&odd, None, Some(1), "m").status,
            RunStatus::Failed,
            "a nonzero exit is never success"
        );
    }

    #[test]
    fn the_result_line_is_found_among_other_output() {
        let output = "warning: something\n{\"type\":\"system\"}\n{\"type\":\"result\",\"is_error\":false,\"result\":\"ok\"}\n";
        assert_eq!(verdict::read_stream(output).result.unwrap()["result"], "ok");
        assert!(verdict::read_stream("not json at all").result.is_none());
    }

    #[test]
    fn argv_carries_the_task_settings() {
        let spec: TaskSpec = serde_json::from_value(json!({
            "name":"r","type":"subagent","enabled":true,"trigger":{"type":"manual"},"timezone":"UTC",
            "prompt":"p","allowed_tools":["Read","Bash(git *)"],"max_turns":3,"permission_mode":"plan",
            "system":"be brief","overlap":"skip","catch_up":"skip",
            "retries":{"max_attempts":0,"backoff_seconds":30,"doubling":true}
        }))
        .unwrap();
        let args = claude_args(&spec, "claude-x", None);
        assert_eq!(
            args,
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "claude-x",
                "--max-turns",
                "3",
                "--allowedTools",
                "Read,Bash(git *)",
                "--permission-mode",
                "plan",
                "--append-system-prompt",
                "be brief"
            ]
        );
    }

    #[test]
    fn context_is_appended_after_the_prompt() {
        let ctx = RunContext::from_json(r#"{"env":{"CLAUDECRON_HOOK_EVENT":"Stop"},"stdin":"{}","hook":{"hook_event_name":"Stop"}}"#).unwrap();
        let p = prompt_with_context("Summarize.", Some(&ctx));
        assert!(p.starts_with("Summarize.\n\n---\n"));
        assert!(p.contains("\"hook_event_name\": \"Stop\""));
        assert_eq!(prompt_with_context("Summarize.", None), "Summarize.");
    }
}
