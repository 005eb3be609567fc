//! One run, on its own thread: builds the process for a task (command, environment, cwd, stdin),
//! runs it through `process`, streams live output into the store, records how it ended, and
//! hands the end to `notify` (the task's notification). It decides nothing about when or whether to run (that is
//! the engine's job) and uses its own store connection.

use crate::exec::process::{self, Ending, ProcessSpec, RunMarker};
use crate::exec::subagent::{self, SubagentJob, SubagentOutcome, SubagentSettings};
use crate::exec::worktree;
use crate::store::{RunEnd, RunUsage, Store};
use crate::tasks::model::{Task, TaskType};
use crate::tasks::runs::{RunContext, RunEvent, RunStatus, TriggerKind};
use crate::util::{rfc3339_auto, rfc3339_millis, tail};
use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Run settings from the config.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// For subagent tasks.
    pub subagent: SubagentSettings,
    pub output_max_bytes: usize,
    pub default_timeout_secs: u64,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Where run worktrees are made (`worktree: true`), and how many per task are kept.
    pub worktree_root: PathBuf,
    pub worktree_keep: usize,
    /// The config's `[[notify_channels]]`, for tasks whose `notify.channel` names one.
    pub notify_channels: std::sync::Arc<Vec<crate::config::NotifyChannel>>,
    /// Database connections the run threads borrow (kept from one run to the next).
    pub stores: std::sync::Arc<crate::store::StorePool>,
}

/// What the engine hands a run thread.
pub struct RunJob {
    pub run_id: i64,
    pub task: Task,
    pub trigger: TriggerKind,
    pub attempt: i64,
    /// The fire time the run is for (None for runs by hand and events).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The event the run is for.
    pub context: Option<RunContext>,
    pub started_at: DateTime<Utc>,
    pub cancel: Receiver<()>,
    pub shutting_down: Arc<AtomicBool>,
}

/// What a run thread reports back.
#[derive(Debug, Clone)]
pub struct Finished {
    pub run_id: i64,
    pub task_id: String,
    pub task_name: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub attempt: i64,
    pub context: Option<RunContext>,
    /// The end was written to the store (false: the store refused it, e.g. a full disk; the
    /// engine records it once the store takes writes again).
    pub recorded: bool,
    /// The run hit a usage limit and is `queued` again for this time (its reset).
    pub deferred_until: Option<DateTime<Utc>>,
}

impl Finished {
    pub fn event(&self) -> RunEvent {
        RunEvent {
            run_id: self.run_id,
            task_id: self.task_id.clone(),
            task_name: self.task_name.clone(),
            status: self.status,
            error: self.error.clone(),
        }
    }
}

/// The environment every run gets (SPEC §5), then the task's own `env` (secret references
/// already resolved).
fn run_env(
    job: &RunJob,
    scheduled_at: &str,
    task_env: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("CLAUDECRON_TASK_ID".to_string(), job.task.id.clone()),
        (
            "CLAUDECRON_TASK_NAME".to_string(),
            job.task.spec.name.clone(),
        ),
        ("CLAUDECRON_RUN_ID".to_string(), job.run_id.to_string()),
        (
            "CLAUDECRON_TRIGGER".to_string(),
            job.trigger.as_str().into(),
        ),
        (
            "CLAUDECRON_SCHEDULED_AT".to_string(),
            scheduled_at.to_string(),
        ),
        ("CLAUDECRON_ATTEMPT".to_string(), job.attempt.to_string()),
    ];
    if let Some(context) = &job.context {
        // Event values (a hook payload's fields, changed file paths) are made fit for an
        // environment: no NUL byte, at most ENV_VALUE_MAX bytes each.
        env.extend(
            context
                .env_vars()
                .into_iter()
                .map(|(k, v)| (k, process::env_value(&v))),
        );
    }
    env.extend(task_env);
    env
}

/// Execute the job and record the result; never panics on what the task or the disk gives it.
pub fn execute(job: RunJob, settings: &RunSettings, db_path: &Path) -> Finished {
    // Opened when first needed (live output, the end), so the process starts without waiting
    // for a database connection to be set up.
    let store: std::cell::OnceCell<Option<crate::store::Lent>> = std::cell::OnceCell::new();
    let store = || {
        store
            .get_or_init(|| match settings.stores.take() {
                Ok(s) => Some(s),
                Err(e) => {
                    log::error!("run {}: cannot open the database: {e}", job.run_id);
                    None
                }
            })
            .as_deref()
    };
    let scheduled_at = rfc3339_auto(job.scheduled_for.unwrap_or(job.started_at));
    let timeout_secs = job
        .task
        .spec
        .timeout_seconds
        .unwrap_or(settings.default_timeout_secs);

    // The task's `{"secret": NAME}` env values, read from the host's store now; their values
    // are masked in everything the run records (live output, output, error, notification).
    let data_dir = db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (task_env, masker, secret_error) =
        match crate::secrets::resolve(&job.task.spec.env, &crate::secrets::path(data_dir)) {
            Ok(r) => (r.env, r.masker, None),
            Err(e) => (Vec::new(), crate::secrets::Masker::default(), Some(e)),
        };
    let run_id = job.run_id;
    let mut live = |text: &str, truncated: bool| {
        let masked;
        let text = if masker.is_empty() {
            text
        } else {
            masked = masker.mask_output(text);
            masked.as_str()
        };
        if let Some(s) = store() {
            if let Err(e) = s.update_output(run_id, text, truncated) {
                log::debug!("run {run_id}: live output not stored: {e}");
            }
        }
    };
    let marker = RunMarker {
        task_id: job.task.id.clone(),
        run_id: job.run_id,
    };
    let shutting_down = Arc::clone(&job.shutting_down);
    let cancelled_status = move || {
        if shutting_down.load(Ordering::Relaxed) {
            RunStatus::Interrupted
        } else {
            RunStatus::Cancelled
        }
    };
    let mut env = run_env(&job, &scheduled_at, task_env);
    let checked = match (secret_error, &job.task.spec.guards.precheck) {
        (Some(e), _) => Err(Box::new(SubagentOutcome {
            status: RunStatus::Failed,
            error: Some(e),
            ..Default::default()
        })),
        (None, None) => Ok(None),
        (None, Some(command)) => {
            let check = ProcessSpec {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), command.clone()],
                cwd: job.task.spec.cwd.as_ref().map(PathBuf::from),
                env: env.clone(),
                env_remove: Vec::new(),
                stdin: None,
                timeout: Duration::from_secs(timeout_secs.min(PRECHECK_TIMEOUT_SECS)),
                grace: settings.grace,
                output_max_bytes: process::ENV_VALUE_MAX,
                marker: Some(marker.clone()),
            };
            precheck(&check, &job.cancel, &cancelled_status).map(Some)
        }
    };
    let mut ended: SubagentOutcome = match checked {
        Err(stopped) => *stopped,
        // A precheck that printed a secret: masked before it becomes the prompt's context.
        Ok(context) => match run_cwd(&job, settings, store()) {
            Err(e) => SubagentOutcome {
                status: RunStatus::Failed,
                error: Some(e),
                ..Default::default()
            },
            Ok((cwd, worktree)) => {
                if let Some(path) = worktree {
                    env.push(("CLAUDECRON_WORKTREE".into(), path));
                }
                let context = context.map(|c| {
                    if masker.is_empty() {
                        c
                    } else {
                        masker.mask(&c)
                    }
                });
                if let Some(out) = &context {
                    env.push(("CLAUDECRON_PRECHECK_OUTPUT".into(), process::env_value(out)));
                }
                run_task(
                    &job,
                    env,
                    cwd,
                    context.as_deref(),
                    timeout_secs,
                    settings,
                    &marker,
                    &cancelled_status,
                    &mut live,
                )
            }
        },
    };
    if !masker.is_empty() {
        ended.output = masker.mask_output(&ended.output);
        ended.error = ended.error.as_deref().map(|e| masker.mask(e));
        if let Some(details) = ended.details.as_mut() {
            masker.mask_value(details);
        }
    }
    let mut status = ended.status;
    let mut error = ended.error.clone();
    let mut deferred_until = None;
    let finished_at = Utc::now();
    let duration_ms = (finished_at - job.started_at).num_milliseconds().max(0);
    let mut recorded = false;
    let metrics = crate::metrics::global();
    metrics.run_ended(
        &job.task.spec.name,
        status.as_str(),
        Some(duration_ms as f64 / 1000.0),
    );
    if !ended.runner.is_empty() {
        let tokens = |t: Option<i64>| t.unwrap_or(0).max(0) as u64;
        metrics.subagent_usage(
            &job.task.spec.name,
            ended.cost_usd,
            tokens(ended.input_tokens),
            tokens(ended.output_tokens),
        );
    }
    if let Some(s) = store() {
        let end = RunEnd {
            status: ended.status,
            finished_at,
            duration_ms: Some(duration_ms),
            exit_code: ended.exit_code.map(i64::from),
            signal: ended.signal.map(i64::from),
            output: &ended.output,
            output_truncated: ended.output_truncated,
            error: ended.error.as_deref(),
        };
        // A usage limit with a reset time: the row goes back to `queued` for the reset time (the
        // engine re-arms it, or drops it when the task's next fire comes first).
        let deferral = ended
            .deferred_until
            .filter(|_| !job.shutting_down.load(Ordering::Relaxed))
            .map(|until| {
                let reason = format!(
                    "deferred: {}; the run starts again then",
                    error.as_deref().unwrap_or("usage limit reached")
                );
                (
                    until,
                    s.defer_run(job.run_id, until, &reason, &ended.output),
                    reason,
                )
            });
        match deferral {
            Some((until, Ok(()), reason)) => {
                recorded = true;
                deferred_until = Some(until);
                status = RunStatus::Queued;
                error = Some(reason);
            }
            other => {
                if let Some((_, Err(e), _)) = other {
                    log::warn!(
                        "run {}: cannot defer ({e}); recorded as it ended",
                        job.run_id
                    );
                }
                match s.finish_run(job.run_id, &end) {
                    Ok(()) => recorded = true,
                    Err(e) => log::error!("run {}: result not recorded: {e}", job.run_id),
                }
            }
        }
        if let Some(details) = &ended.details {
            if let Err(e) = s.set_detail(job.run_id, "claude_code", details) {
                log::error!("run {}: details not recorded: {e}", job.run_id);
            }
        }
        if !ended.runner.is_empty() {
            let usage = RunUsage {
                runner: ended.runner,
                model: ended.model.as_deref(),
                cost_usd: ended.cost_usd,
                input_tokens: ended.input_tokens,
                output_tokens: ended.output_tokens,
                num_turns: ended.num_turns,
                session_id: ended.session_id.as_deref(),
            };
            if let Err(e) = s.record_usage(job.run_id, &usage) {
                log::error!("run {}: usage not recorded: {e}", job.run_id);
            }
        }
    }
    log::info!(
        "run {} of task {} ({}) ended {status} in {duration_ms} ms{}",
        job.run_id,
        job.task.spec.name,
        job.trigger,
        error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
    );
    if job.task.spec.notify.is_some() && deferred_until.is_none() {
        let excerpt = tail(&ended.output, 2000).to_string();
        let generic = json!({
            "event": "run_finished",
            "task": {"id": job.task.id, "name": job.task.spec.name, "type": job.task.spec.task_type.as_str()},
            "run": {
                "id": job.run_id, "trigger": job.trigger, "status": status, "attempt": job.attempt,
                "scheduled_for": scheduled_at, "started_at": rfc3339_millis(job.started_at),
                "finished_at": rfc3339_millis(finished_at), "duration_ms": duration_ms,
                "exit_code": ended.exit_code, "error": error,
                "runner": (!ended.runner.is_empty()).then_some(ended.runner),
                "model": ended.model, "cost_usd": ended.cost_usd,
            },
            "output_excerpt": excerpt,
        });
        // Sent on its own thread: a slow or dead receiver must not hold the run's slot, its
        // waiters, retries or `after` chaining.
        let facts = crate::exec::notify::Facts {
            task: &job.task,
            run_id: job.run_id,
            status,
            error: error.as_deref(),
            duration_ms,
            output: &ended.output,
        };
        crate::exec::notify::after_run(
            &facts,
            &generic,
            &settings.notify_channels,
            store(),
            db_path,
        );
    }
    Finished {
        run_id: job.run_id,
        task_id: job.task.id.clone(),
        task_name: job.task.spec.name.clone(),
        status,
        error,
        attempt: job.attempt,
        context: job.context.clone(),
        recorded,
        deferred_until,
    }
}

/// Where the run works: the task's cwd, or for a `worktree: true` subagent task a fresh git
/// worktree of it (recorded on the run; its path is returned for `CLAUDECRON_WORKTREE`).
fn run_cwd(
    job: &RunJob,
    settings: &RunSettings,
    store: Option<&Store>,
) -> Result<(Option<PathBuf>, Option<String>), String> {
    let cwd = job.task.spec.cwd.as_ref().map(PathBuf::from);
    if !job.task.spec.guards.worktree || job.task.spec.task_type != TaskType::Subagent {
        return Ok((cwd, None));
    }
    let dir = cwd.ok_or("worktree: true needs the task's cwd (a git repository)")?;
    let w = worktree::create(
        &dir,
        &settings.worktree_root,
        &job.task.id,
        job.run_id,
        settings.worktree_keep,
    )?;
    if let Some(Err(e)) = store.map(|s| s.set_detail(job.run_id, "worktree", &w.to_json())) {
        log::error!("run {}: its worktree was not recorded: {e}", job.run_id);
    }
    Ok((Some(w.cwd), Some(w.path.to_string_lossy().into_owned())))
}

/// The longest a precheck may take/// The longest a precheck may take (less when the task's own timeout is shorter).
pub const PRECHECK_TIMEOUT_SECS: u64 = 60;

/// Run a task's precheck: its output when it exits 0; otherwise how the run ends without
/// starting: `skipped` (reason `precheck`) for a non-zero exit, `failed` when it timed out or
/// could not start, `cancelled` / `interrupted` when cancelled.
fn precheck(
    spec: &ProcessSpec,
    cancel: &Receiver<()>,
    cancelled_status: &dyn Fn() -> RunStatus,
) -> Result<String, Box<SubagentOutcome>> {
    let outcome = process::run(spec, cancel, &mut |_, _| {});
    let stop = |status: RunStatus, error: String| {
        Box::new(SubagentOutcome {
            status,
            error: Some(error),
            output: outcome.output.clone(),
            output_truncated: outcome.output_truncated,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            ..Default::default()
        })
    };
    Err(match &outcome.ending {
        Ending::Exited if outcome.exit_code == Some(0) => return Ok(outcome.output.clone()),
        Ending::Exited => stop(
            RunStatus::Skipped,
            format!(
                "skipped: precheck: it {}; the run was not started (its output is the run's output)",
                match (outcome.exit_code, outcome.signal) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    _ => "ended without an exit status".into(),
                }
            ),
        ),
        Ending::TimedOut => stop(
            RunStatus::Failed,
            format!(
                "precheck timed out after {} s; the run was not started",
                spec.timeout.as_secs()
            ),
        ),
        Ending::Cancelled => stop(
            cancelled_status(),
            "cancelled during the precheck; the run was not started".into(),
        ),
        Ending::SpawnFailed(msg) => stop(RunStatus::Failed, format!("precheck: {msg}")),
    })
}

/// Run the task itself (the precheck passed or there is none).
#[allow(clippy::too_many_arguments)]
fn run_task(
    job: &RunJob,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    precheck_output: Option<&str>,
    timeout_secs: u64,
    settings: &RunSettings,
    marker: &RunMarker,
    cancelled_status: &dyn Fn() -> RunStatus,
    live: &mut dyn FnMut(&str, bool),
) -> SubagentOutcome {
    match job.task.spec.task_type {
        TaskType::Subagent => {
            let mut env = env;
            env.retain(|(k, _)| !k.is_empty());
            let mut prompt = subagent::prompt_with_context(
                job.task.spec.prompt.as_deref().unwrap_or(""),
                job.context.as_ref(),
            );
            if let Some(out) = precheck_output.filter(|o| !o.trim().is_empty()) {
                prompt.push_str(&format!(
                    "\n\n---\nThe precheck command succeeded and printed (context for this run):\n{out}"
                ));
            }
            let sub = SubagentJob {
                spec: &job.task.spec,
                prompt,
                env,
                cwd: cwd.clone(),
                timeout: Duration::from_secs(timeout_secs),
                grace: settings.grace,
                output_max_bytes: settings.output_max_bytes,
                marker: marker.clone(),
                cancel: &job.cancel,
                cancelled_status,
            };
            let mut ended = subagent::run(&sub, &settings.subagent, live);
            if ended.status == RunStatus::Interrupted {
                ended.error = Some("the server stopped while this run was running".into());
            }
            ended
        }
        TaskType::Bash => {
            let spec = ProcessSpec {
                program: "/bin/sh".into(),
                args: vec![
                    "-c".into(),
                    job.task.spec.command.clone().unwrap_or_default(),
                ],
                cwd,
                env,
                env_remove: Vec::new(),
                stdin: job
                    .context
                    .as_ref()
                    .and_then(|c| c.stdin.as_ref())
                    .map(|s| s.as_bytes().to_vec()),
                timeout: Duration::from_secs(timeout_secs),
                grace: settings.grace,
                output_max_bytes: settings.output_max_bytes,
                marker: Some(marker.clone()),
            };
            let outcome = process::run(&spec, &job.cancel, live);
            let (status, error) = match &outcome.ending {
                Ending::Exited => match (outcome.exit_code, outcome.signal) {
                    (Some(0), _) => (RunStatus::Success, None),
                    (Some(code), _) => (RunStatus::Failed, Some(format!("exit code {code}"))),
                    (None, Some(sig)) => (RunStatus::Failed, Some(format!("killed by signal {sig}"))),
                    (None, None) => (RunStatus::Failed, Some("the process ended without an exit status".into())),
                },
                Ending::TimedOut => (
                    RunStatus::Timeout,
                    Some(format!("timed out after {timeout_secs} s; the process group was ended")),
                ),
                Ending::Cancelled => match cancelled_status() {
                    RunStatus::Interrupted => (
                        RunStatus::Interrupted,
                        Some("the server stopped while this run was running; the process group was ended".into()),
                    ),
                    _ => (
                        RunStatus::Cancelled,
                        Some("cancelled; the process group was ended".into()),
                    ),
                },
                Ending::SpawnFailed(msg) => (RunStatus::Failed, Some(msg.clone())),
            };
            SubagentOutcome {
                status,
                error,
                output: outcome.output,
                output_truncated: outcome.output_truncated,
                exit_code: outcome.exit_code,
                signal: outcome.signal,
                ..Default::default()
            }
        }
    }
}
