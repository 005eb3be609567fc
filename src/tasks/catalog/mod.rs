//! Task operations shared by the MCP tools, `/hooks` and the CLI: add, update, delete, toggle,
//! list, get, history, run lookup, run now, cancel, hook events, schedule preview — validation
//! plus store calls plus the JSON views the model reads. It tells the running services (engine,
//! file watcher, hook dispatch) about every change through `Services`. It speaks to the store
//! through its methods (never SQL) and knows nothing of HTTP or JSON-RPC. Parsed cron
//! expressions are shared by every catalog of a `CatalogSource` (`ScheduleCache`).

mod approval;
mod list;
mod safety;
mod show;
mod views;
mod webhook;
pub use list::*;
pub use show::Encoded;
pub use views::*;
pub use webhook::WebhookRefusal;

use crate::engine::{EngineError, EngineHandle};
use crate::store::{Run, Store, StoreError};
use crate::tasks::model::{Task, Trigger};
use crate::tasks::runs::{RunStatus, TriggerKind};
use crate::tasks::schedule::{parse_timezone, FireRule, Schedule, ScheduleCache};
use crate::tasks::validate::{self, Context, FieldError, TaskLookup, TaskRef};
use crate::triggers::hooks::HookDispatcher;
use crate::triggers::watch::WatchHandle;
use crate::util::{rfc3339, rfc3339_millis, tail};
use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Why an operation was refused.
#[derive(Debug)]
pub enum OpError {
    /// Bad input: the field and what is accepted. Nothing was changed.
    Invalid(FieldError),
    /// The named task or run does not exist.
    NotFound(String),
    /// The request is well formed but does not fit the state (e.g. cancelling a finished run).
    Conflict(String),
    /// A service the operation needs is not running or did not answer (the text says which).
    Unavailable(String),
    /// The database cannot be written (or read): its file deleted or replaced, read-only, disk
    /// full, locked, an I/O error. The text names the cause, the file and what to do.
    Storage(String),
    /// The database failed.
    Internal(String),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Invalid(e) => write!(f, "{e}"),
            OpError::NotFound(msg) | OpError::Conflict(msg) => write!(f, "{msg}"),
            OpError::Unavailable(msg) => write!(f, "unavailable: {msg}"),
            OpError::Storage(msg) => write!(f, "storage error: {msg}"),
            OpError::Internal(msg) => write!(f, "internal error: {msg}"),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken(name) => OpError::Invalid(FieldError {
                field: "name".into(),
                message: format!("a task named \"{name}\" already exists; names are unique"),
            }),
            StoreError::Fault(fault) => OpError::Storage(fault.to_string()),
            StoreError::Db(msg) => OpError::Internal(msg),
        }
    }
}

impl OpError {
    /// An engine refusal in the catalog's terms.
    fn from_engine(e: EngineError) -> OpError {
        match e {
            EngineError::NotFound(what) => OpError::NotFound(format!(
                "runId: {what}; find runs with claudecron_get_history"
            )),
            e @ EngineError::NotActive { .. } => OpError::Conflict(e.to_string()),
            EngineError::Down(why) => OpError::Unavailable(why.to_string()),
            EngineError::Paused(why) | EngineError::PendingApproval(why) => OpError::Conflict(why),
            // The engine passes the store's error as text; the store still knows its cause.
            EngineError::Db(msg) => match crate::store::current_fault() {
                Some(fault) => OpError::Storage(fault.to_string()),
                None => OpError::Internal(msg),
            },
        }
    }
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        OpError::Invalid(e)
    }
}

pub type OpResult = Result<Value, OpError>;

/// Settings the operations need from the config.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timezone: String,
    pub task_timeout_secs: u64,
    /// To say when a subagent task's runner cannot work as configured.
    pub subagent: crate::exec::subagent::SubagentSettings,
    /// Where run worktrees are made (removed with their task).
    pub worktree_root: PathBuf,
    /// The names of the config's `[[notify_channels]]` (a task's `notify.channel` is one).
    pub notify_channels: Vec<String>,
    /// The config's `require_approval` (see `approval`).
    pub require_approval: bool,
    /// The owner's public key approvals are checked with (None: every task is pending).
    pub approval_key: Option<crate::tasks::approval::PublicKey>,
    /// The host's secrets store, to warn about references to secrets it does not hold.
    pub secrets_file: PathBuf,
}

/// The running services the catalog tells about every task change and asks to run things: the
/// engine, the file watcher and hook dispatch. One interface, never optional.
#[derive(Clone)]
pub struct Services {
    pub engine: EngineHandle,
    pub watch: WatchHandle,
    pub hooks: HookDispatcher,
}

impl Services {
    /// A task was added or changed; `triggers` are its trigger kinds before and after. Only the
    /// services that arm such triggers are told (the engine: cron, interval, once; the watcher:
    /// file-watch): each message costs its thread a read of the task, and the engine a write.
    fn changed(&self, task_id: &str, triggers: &[TriggerKind]) {
        let timed = |k: &TriggerKind| {
            matches!(
                k,
                TriggerKind::Cron | TriggerKind::Interval | TriggerKind::Once
            )
        };
        if triggers.iter().any(timed) {
            self.engine.task_changed(task_id);
        }
        if triggers.contains(&TriggerKind::FileWatch) {
            self.watch.task_changed(task_id);
        }
    }

    fn deleted(&self, task_id: &str) {
        self.engine.task_deleted(task_id);
        self.watch.task_deleted(task_id);
    }
}

/// The database write check of `/health`, shared by the catalogs of a source. Every check
/// compares the file with the one opened (a `stat`: deleted or replaced is seen at once); the
/// real write (one row, committed, at most half a second of lock wait) is made at most once per
/// `HealthProbe::EVERY` while it succeeds, so an unauthenticated flood of `/health` cannot turn
/// into a flood of disk writes, and at every check while a write anywhere in the process has
/// failed (so `/health` reports a fault as soon as a task write meets it, and recovery as soon
/// as it is over).
#[derive(Default)]
pub struct HealthProbe {
    last: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

impl HealthProbe {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    fn check(&self, write: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let lock = || {
            self.last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let fresh = lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < Self::EVERY)
            .map(|(_, outcome)| outcome.clone());
        match fresh {
            Some(outcome) if crate::store::current_fault().is_none() => outcome,
            // The write is made without holding the lock: a slow one delays no other check
            // that has a fresh answer.
            _ => {
                let outcome = write();
                *lock() = Some((std::time::Instant::now(), outcome.clone()));
                outcome
            }
        }
    }
}

/// What any thread needs to open its own catalog (one store connection per thread).
#[derive(Clone)]
pub struct CatalogSource {
    db_path: PathBuf,
    defaults: Arc<Defaults>,
    services: Services,
    schedules: Arc<ScheduleCache>,
    health: Arc<HealthProbe>,
}

impl CatalogSource {
    pub fn new(db_path: PathBuf, defaults: Defaults, services: Services) -> CatalogSource {
        CatalogSource {
            db_path,
            defaults: Arc::new(defaults),
            services,
            schedules: Arc::new(ScheduleCache::default()),
            health: Arc::default(),
        }
    }

    /// A catalog on a new store connection (which keeps the tasks it decoded lately).
    pub fn open(&self) -> Result<Catalog, OpError> {
        let mut store = Store::open(&self.db_path)?;
        store.keep_decoded(64); // a page of a list, and the tasks looked at since
        Ok(Catalog {
            store,
            defaults: Arc::clone(&self.defaults),
            services: self.services.clone(),
            schedules: Arc::clone(&self.schedules),
            health: Arc::clone(&self.health),
        })
    }

    /// Stop the engine: end every running group (grace, then kill), record them, return when
    /// done or after `wait`.
    pub fn shutdown_engine(&self, wait: std::time::Duration) {
        self.services.engine.shutdown(wait);
    }

    /// Whether the engine thread is alive, and how many runs it is running.
    pub fn engine_state(&self) -> (bool, usize) {
        let engine = &self.services.engine;
        (engine.is_alive(), engine.running())
    }
}

struct StoreLookup<'a>(&'a Store);

impl TaskLookup for StoreLookup<'_> {
    fn find(&self, id_or_name: &str) -> Option<TaskRef> {
        self.0
            .find_task(id_or_name)
            .ok()
            .flatten()
            .map(|t| TaskRef {
                after: match &t.spec.trigger {
                    Trigger::After { task, .. } => Some(task.clone()),
                    _ => None,
                },
                id: t.id,
                name: t.spec.name,
            })
    }
}

/// Operations over one store connection.
pub struct Catalog {
    store: Store,
    defaults: Arc<Defaults>,
    services: Services,
    schedules: Arc<ScheduleCache>,
    health: Arc<HealthProbe>,
}

impl Catalog {
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// `preview_schedule`, with the parsed schedules shared by this process's catalogs.
    pub fn preview_schedule(
        &self,
        expr: &str,
        timezone: &str,
        count: usize,
        now: DateTime<Utc>,
    ) -> OpResult {
        preview_schedule_with(expr, timezone, count, now, Some(&self.schedules))
    }

    /// A hook event (`POST /hooks`, or `trigger_hook` with `bypass_debounce`): fire the enabled
    /// hook tasks the payload matches.
    pub fn hook_event(
        &self,
        payload: &Value,
        raw: &str,
        bypass_debounce: bool,
    ) -> Result<Vec<crate::triggers::hooks::Matched>, OpError> {
        self.services
            .hooks
            .dispatch(&self.store, payload, raw, bypass_debounce)
            .map_err(OpError::from_engine)
    }

    /// `trigger_hook`: fire the hook tasks a payload matches, at once (debounce bypassed).
    pub fn trigger_hook(&self, payload: &Value) -> OpResult {
        let event = payload["hook_event_name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let matched = self.hook_event(payload, &payload.to_string(), true)?;
        let rows: Vec<Value> = matched
            .iter()
            .map(|m| {
                json!({
                    "task_id": m.task_id,
                    "task_name": m.task_name,
                    "run_id": m.run_id,
                    "note": m.note,
                })
            })
            .collect();
        let count = rows.len();
        Ok(crate::obj!("event": event, "matched": rows, "count": count))
    }

    /// `run_task`: fire a task now; returns the new run's id (a `skipped` run when the task's
    /// overlap policy says so).
    pub fn fire_now(&self, task_id: &str) -> Result<i64, OpError> {
        let task = self.resolve(task_id)?;
        self.services
            .engine
            .fire(&task.id, TriggerKind::Manual, None)
            .map_err(|e| match e {
                EngineError::NotFound(_) => {
                    OpError::NotFound(format!("taskId: task \"{task_id}\" was deleted meanwhile"))
                }
                other => OpError::from_engine(other),
            })
    }

    /// `cancel_run`: ask the engine to end a queued or running run.
    pub fn cancel_run(&self, run_id: i64) -> Result<(), OpError> {
        if self.store.get_run(run_id)?.is_none() {
            return Err(OpError::NotFound(format!(
                "runId: no run has the id {run_id}; find runs with claudecron_get_history"
            )));
        }
        self.services
            .engine
            .cancel(run_id)
            .map_err(OpError::from_engine)
    }

    /// A receiver signalled once `run_id` is recorded as finished. Subscribe before reading the
    /// run's status so the end cannot be missed.
    pub fn subscribe(&self, run_id: i64) -> Receiver<()> {
        self.services.engine.subscribe(run_id)
    }

    /// A run's status now (None when it does not exist or cannot be read).
    pub fn run_status(&self, run_id: i64) -> Option<RunStatus> {
        self.store.get_run(run_id).ok().flatten().map(|r| r.status)
    }

    /// For `/health`: the number of tasks and of enabled tasks (an error when the database
    /// cannot be read).
    pub fn task_counts(&self) -> Result<(i64, i64), OpError> {
        Ok(self.store.count_tasks()?)
    }

    /// For `/metrics`: every task's name, whether it is enabled, and when its newest
    /// successful run finished.
    pub fn task_success_times(&self) -> Result<Vec<crate::store::TaskSuccess>, OpError> {
        Ok(self.store.task_success_times()?)
    }

    /// For `/health`: whether the database accepts writes, then the number of tasks and of
    /// enabled tasks. The error names the cause: the file deleted or replaced, read-only, disk
    /// full, locked. See [`HealthProbe`] for what is checked when.
    pub fn store_health(&self, now: DateTime<Utc>) -> Result<(i64, i64), OpError> {
        self.store.verify_file()?;
        self.health
            .check(|| self.store.check_writable(now).map_err(|e| e.to_string()))
            .map_err(OpError::Storage)?;
        self.task_counts()
    }

    fn resolve(&self, task_id: &str) -> Result<Task, OpError> {
        self.store.find_task(task_id)?.ok_or_else(|| {
            OpError::NotFound(format!(
                "taskId: no task has the id or name \"{task_id}\"; list them with claudecron_list_tasks"
            ))
        })
    }

    /// `add_task`.
    pub fn add(&self, input: &Value, now: DateTime<Utc>) -> OpResult {
        let lookup = StoreLookup(&self.store);
        let ctx = Context {
            default_timezone: &self.defaults.timezone,
            lookup: &lookup,
            self_id: None,
            now,
            schedules: Some(&self.schedules),
        };
        let spec = validate::task_spec(input, &ctx)?;
        self.check_channel(&spec)?;
        let id = crate::ids::task_id().map_err(|e| OpError::Internal(e.to_string()))?;
        let task = self.store.insert_task(&id, &spec, now)?;
        self.deadman_changed(None, &task, now)?;
        self.services.changed(&task.id, &[task.spec.trigger.kind()]);
        let hook = self.webhook_token_after(&task, false)?;
        Ok(webhook::with_token(self.task_view(&task, now, 5, 0)?, hook))
    }

    /// `update_task`: `patch` is the arguments without `taskId`.
    pub fn update(
        &self,
        task_id: &str,
        patch: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult {
        let existing = self.resolve(task_id)?;
        let (patch, rotate) = &webhook::take_rotate(patch)?;
        if patch.is_empty() && !rotate {
            return Err(OpError::Invalid(FieldError {
                field: "arguments".into(),
                message: format!(
                    "give at least one field to change; accepted: {}",
                    validate::TASK_FIELDS.join(", ")
                ),
            }));
        }
        let merged = validate::merge_update(&existing.spec, patch)?;
        let lookup = StoreLookup(&self.store);
        let ctx = Context {
            default_timezone: &self.defaults.timezone,
            lookup: &lookup,
            self_id: Some(&existing.id),
            now,
            schedules: Some(&self.schedules),
        };
        let spec = validate::task_spec(&merged, &ctx)?;
        self.check_channel(&spec)?;
        webhook::check_rotate(&spec, *rotate)?;
        let task = self
            .store
            .update_task(&existing.id, &spec, now)?
            .ok_or_else(|| {
                OpError::NotFound(format!("taskId: task \"{task_id}\" was deleted meanwhile"))
            })?;
        if task.spec.enabled && !existing.spec.enabled {
            // Enabled again: its failures in a row and any paused_reason are forgotten.
            self.store.clear_failures(&task.id)?;
            // and its dead-man window starts again.
            self.store.restart_deadman_window(&task.id, now)?;
        }
        self.deadman_changed(Some(&existing.spec), &task, now)?;
        self.services.changed(
            &task.id,
            &[existing.spec.trigger.kind(), task.spec.trigger.kind()],
        );
        let hook = self.webhook_token_after(&task, *rotate)?;
        Ok(webhook::with_token(self.task_view(&task, now, 5, 0)?, hook))
    }

    /// `toggle_task`.
    pub fn toggle(&self, task_id: &str, enabled: bool, now: DateTime<Utc>) -> OpResult {
        let mut patch = Map::new();
        patch.insert("enabled".into(), Value::Bool(enabled));
        self.update(task_id, &patch, now)
    }

    /// `delete_task`.
    pub fn delete(&self, task_id: &str) -> OpResult {
        let task = self.resolve(task_id)?;
        let (task, runs) = self.store.delete_task(&task.id)?.ok_or_else(|| {
            OpError::NotFound(format!("taskId: task \"{task_id}\" was deleted meanwhile"))
        })?;
        self.services.deleted(&task.id);
        let worktrees = if task.spec.guards.worktree {
            crate::exec::worktree::remove_task(&self.defaults.worktree_root, &task.id)
        } else {
            0
        };
        Ok(json!({
            "deleted": { "id": task.id, "name": task.spec.name, "runs_deleted": runs, "worktrees_removed": worktrees }
        }))
    }

    /// `get_history`: runs newest first.
    pub fn history(
        &self,
        task_id: Option<&str>,
        status: Option<RunStatus>,
        limit: i64,
    ) -> OpResult {
        let task = match task_id {
            Some(t) => Some(self.resolve(t)?),
            None => None,
        };
        let runs = self
            .store
            .list_runs(task.as_ref().map(|t| t.id.as_str()), status, limit)?;
        let names: std::collections::HashMap<String, String> = match &task {
            Some(t) => [(t.id.clone(), t.spec.name.clone())].into(),
            None => {
                let mut ids: Vec<&str> = runs.iter().map(|r| r.task_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                self.store.task_names(&ids)?
            }
        };
        let rows: Vec<Value> = runs
            .iter()
            .map(|r| {
                let mut v = run_summary(r, 500);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert(
                        "task_name".into(),
                        names
                            .get(&r.task_id)
                            .cloned()
                            .map(Value::String)
                            .unwrap_or(Value::Null),
                    );
                }
                v
            })
            .collect();
        let count = rows.len();
        Ok(crate::obj!("runs": rows, "count": count))
    }

    /// `get_run`: one run with its output (the last `tail_bytes` when given).
    pub fn run(&self, run_id: i64, tail_bytes: Option<usize>) -> OpResult {
        let run = self.store.get_run(run_id)?.ok_or_else(|| {
            OpError::NotFound(format!(
                "runId: no run has the id {run_id}; find runs with claudecron_get_history"
            ))
        })?;
        let task_name = self.store.get_task(&run.task_id)?.map(|t| t.spec.name);
        let mut v = serde_json::to_value(&run).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            if let Some(n) = tail_bytes {
                obj.insert("output".into(), tail(&run.output, n).into());
            }
            obj.insert(
                "task_name".into(),
                task_name.map(Value::String).unwrap_or(Value::Null),
            );
        }
        Ok(crate::obj!("run": v))
    }
}

#[cfg(test)]
mod tests;
