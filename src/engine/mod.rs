//! The execution engine: one dedicated thread that owns every armed timer (cron, interval,
//! once, pending retries), the queue and the set of running runs. It sleeps until the earliest
//! fire time or until a message arrives (task changed or deleted, a fire request, a cancel, a run
//! finished, a clock change, shutdown) — never a polling tick. Every decision (what a timer, a
//! fire or a run's end leads to, what may start) comes from the pure rules in `plan`; this
//! module is the imperative shell that reads the clock, records in the store, logs, and hands
//! each admitted run to a run thread (`exec::run`). Others talk to it through `EngineHandle`.

pub(crate) mod plan;
pub(crate) mod timers;

use crate::exec::run::{self, RunJob, RunSettings};
use crate::store::{NewRun, RunEnd, Store};
use crate::tasks::model::{Task, Trigger};
use crate::tasks::runs::{AfterContext, RunContext, RunEvent, RunStatus, TriggerKind};
use crate::tasks::schedule::FireRule;
use crate::util::rfc3339;
use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use plan::{Admit, AfterEnd, FireDecision, Wake};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timers::{TimerKey, Timers};

/// How long a caller waits for the engine to answer a fire or a cancel.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Engine settings taken from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub db_path: PathBuf,
    pub max_concurrent: usize,
    pub history_keep_per_task: i64,
    pub run: RunSettings,
}

/// Why the engine refused or could not do what it was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineError {
    /// The task or run does not exist (the text says which).
    NotFound(String),
    /// The run has already ended.
    NotActive { run_id: i64, status: RunStatus },
    /// The engine is not running, is stopping, or did not answer in time.
    Down(&'static str),
    /// The database failed.
    Db(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::NotFound(what) => f.write_str(what),
            EngineError::NotActive { run_id, status } => write!(
                f,
                "run {run_id} is not active (status {status}); nothing to cancel"
            ),
            EngineError::Down(why) => f.write_str(why),
            EngineError::Db(msg) => write!(f, "database error: {msg}"),
        }
    }
}

impl From<crate::store::StoreError> for EngineError {
    fn from(e: crate::store::StoreError) -> Self {
        EngineError::Db(e.to_string())
    }
}

/// Called on the run's thread when a run has been recorded as finished.
pub type RunListener = Arc<dyn Fn(&RunEvent) + Send + Sync>;

enum Msg {
    /// A task was added, updated or toggled: re-arm it from now.
    Rearm(String),
    /// A task was deleted: disarm it and end its runs.
    Remove(String),
    /// Run a task now (by hand or for an event).
    Fire {
        task_id: String,
        trigger: TriggerKind,
        context: Option<RunContext>,
        reply: Sender<Result<i64, EngineError>>,
    },
    Cancel {
        run_id: i64,
        reply: Sender<Result<(), EngineError>>,
    },
    Finished(run::Finished),
    ClockChanged,
    Shutdown(Sender<()>),
}

/// Who waits for which run to be recorded as finished; the one place that wakes them.
#[derive(Default)]
struct Waiters(Mutex<HashMap<i64, Vec<Sender<()>>>>);

impl Waiters {
    fn subscribe(&self, run_id: i64) -> Receiver<()> {
        let (tx, rx) = bounded(1);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run_id)
            .or_default()
            .push(tx);
        rx
    }

    fn wake(&self, run_id: i64) {
        let list = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run_id);
        for w in list.into_iter().flatten() {
            let _ = w.try_send(());
        }
    }
}

/// What other threads hold to talk to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: Sender<Msg>,
    waiters: Arc<Waiters>,
    running: Arc<AtomicUsize>,
    alive: Arc<AtomicBool>,
}

impl EngineHandle {
    pub fn task_changed(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Rearm(task_id.to_string()));
    }

    pub fn task_deleted(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Remove(task_id.to_string()));
    }

    fn ask<T>(
        &self,
        msg: impl FnOnce(Sender<Result<T, EngineError>>) -> Msg,
    ) -> Result<T, EngineError> {
        if !self.is_alive() {
            return Err(EngineError::Down("the execution engine is not running"));
        }
        let (reply, rx) = bounded(1);
        self.tx
            .send(msg(reply))
            .map_err(|_| EngineError::Down("the execution engine is not running"))?;
        rx.recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| EngineError::Down("the execution engine did not answer within 10 s"))?
    }

    /// Fire a task now; returns the run id (a `skipped` run when overlap says so).
    pub fn fire(
        &self,
        task_id: &str,
        trigger: TriggerKind,
        context: Option<RunContext>,
    ) -> Result<i64, EngineError> {
        self.ask(|reply| Msg::Fire {
            task_id: task_id.to_string(),
            trigger,
            context,
            reply,
        })
    }

    /// Cancel a queued or running run; returns once the engine has acted on it.
    pub fn cancel(&self, run_id: i64) -> Result<(), EngineError> {
        self.ask(|reply| Msg::Cancel { run_id, reply })
    }

    /// A receiver that gets a message when `run_id` has been recorded as finished. Subscribe
    /// before reading the run's status to avoid missing the event.
    pub fn subscribe(&self, run_id: i64) -> Receiver<()> {
        self.waiters.subscribe(run_id)
    }

    /// Runs executing now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Whether the engine thread is alive.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Stop: end every running group (grace, then kill), record them, and return when done.
    pub fn shutdown(&self, wait: Duration) {
        let (ack, rx) = bounded(1);
        if self.tx.send(Msg::Shutdown(ack)).is_ok() {
            let _ = rx.recv_timeout(wait);
        }
    }
}

/// A time-based task as armed: the task and its fire rule, parsed once.
struct Armed {
    task: Task,
    rule: FireRule,
}

struct Running {
    task_id: String,
    cancel: Sender<()>,
}

struct Queued {
    run_id: i64,
    task_id: String,
    trigger: TriggerKind,
    attempt: i64,
    scheduled_for: Option<DateTime<Utc>>,
}

struct Engine {
    store: Store,
    settings: EngineSettings,
    timers: Timers,
    armed: HashMap<String, Armed>,
    running: HashMap<i64, Running>,
    queue: VecDeque<Queued>,
    finished_tx: Sender<Msg>,
    handle: EngineHandle,
    listener: RunListener,
    shutting_down: Arc<AtomicBool>,
    shutdown_ack: Option<Sender<()>>,
    boot: DateTime<Utc>,
}

/// Start the engine thread: recover what a previous process left, arm every enabled task, and
/// serve messages until shutdown.
pub fn start(settings: EngineSettings, listener: RunListener) -> Result<EngineHandle, String> {
    let store = Store::open(&settings.db_path).map_err(|e| format!("engine database: {e}"))?;
    let now = Utc::now();
    let recovered = store.recover_unfinished(now).map_err(|e| e.to_string())?;
    if recovered.interrupted > 0 {
        log::warn!(
            "{} runs were left unfinished by the previous process; recorded as interrupted",
            recovered.interrupted
        );
    }
    // A crashed server (kill -9, OOM) leaves its runs' process groups behind: end them.
    let orphans = crate::exec::process::end_orphaned_runs(&recovered.were_running);
    if orphans > 0 {
        log::warn!("ended {orphans} processes left running by interrupted runs");
    }
    let pruned = store
        .prune_runs(None, settings.history_keep_per_task)
        .map_err(|e| e.to_string())?;
    if pruned > 0 {
        log::info!(
            "pruned {pruned} old runs (history_keep_per_task = {})",
            settings.history_keep_per_task
        );
    }
    let (tx, rx) = unbounded::<Msg>();
    let handle = EngineHandle {
        tx: tx.clone(),
        waiters: Arc::new(Waiters::default()),
        running: Arc::new(AtomicUsize::new(0)),
        alive: Arc::new(AtomicBool::new(true)),
    };
    let mut engine = Engine {
        store,
        settings,
        timers: Timers::default(),
        armed: HashMap::new(),
        running: HashMap::new(),
        queue: VecDeque::new(),
        finished_tx: tx.clone(),
        handle: handle.clone(),
        listener,
        shutting_down: Arc::new(AtomicBool::new(false)),
        shutdown_ack: None,
        boot: now,
    };
    for kind in [TriggerKind::Cron, TriggerKind::Interval, TriggerKind::Once] {
        let tasks = engine
            .store
            .enabled_tasks_with_trigger(kind)
            .map_err(|e| e.to_string())?;
        for task in tasks {
            engine.arm(task, true, now);
        }
    }
    for retry in recovered.retries {
        engine.timers.set(
            TimerKey::Retry(retry.id),
            retry.scheduled_for.unwrap_or(now),
        );
    }
    start_clock_watch(tx);
    let alive = Arc::clone(&handle.alive);
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            // Cleared however the thread ends, a panic included, so /health reports it.
            struct Alive(Arc<AtomicBool>);
            impl Drop for Alive {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
            let _alive = Alive(alive);
            engine.serve(rx);
        })
        .map_err(|e| format!("cannot start the engine thread: {e}"))?;
    Ok(handle)
}

/// Watch for the wall clock being set (NTP step, manual change, resume from suspend); each
/// change wakes the engine.
fn start_clock_watch(tx: Sender<Msg>) {
    let _ = std::thread::Builder::new()
        .name("clock-watch".into())
        .spawn(move || loop {
            match crate::sys::wait_for_clock_set() {
                Ok(()) => {
                    if tx.send(Msg::ClockChanged).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("{e}; wall-clock jumps are noticed at the next wake only");
                    return;
                }
            }
        });
}

impl Engine {
    fn serve(&mut self, rx: Receiver<Msg>) {
        let mut last_wall = Utc::now();
        let mut last_mono = Instant::now();
        loop {
            let msg = match self.timers.first() {
                Some(t) => {
                    let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    match rx.recv_timeout(wait) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                },
            };
            let now = Utc::now();
            let mono = Instant::now();
            let jump = plan::forward_jump(
                (now - last_wall).to_std().ok(),
                mono.duration_since(last_mono),
            );
            if let Some(by) = jump {
                log::warn!(
                    "the wall clock jumped forward by {} s (host sleep or clock step); fire times jumped over count as missed",
                    by.as_secs()
                );
            }
            last_wall = now;
            last_mono = mono;
            if let Some(msg) = msg {
                if self.handle_msg(msg, now) {
                    return;
                }
            }
            if !self.shutting_down.load(Ordering::Relaxed) {
                let wake = Wake {
                    now,
                    boot: self.boot,
                    jumped: jump.is_some(),
                };
                self.fire_due(wake);
                self.admit();
            }
            if self.shutting_down.load(Ordering::Relaxed) && self.running.is_empty() {
                if let Some(ack) = self.shutdown_ack.take() {
                    let _ = ack.send(());
                }
                return;
            }
        }
    }

    /// Returns true when the thread should stop at once.
    fn handle_msg(&mut self, msg: Msg, now: DateTime<Utc>) -> bool {
        match msg {
            Msg::Rearm(task_id) => {
                self.disarm(&task_id);
                match self.store.get_task(&task_id) {
                    Ok(Some(task)) if task.spec.enabled => self.arm(task, false, now),
                    Ok(_) => {}
                    Err(e) => log::error!("cannot read task {task_id}: {e}"),
                }
            }
            Msg::Remove(task_id) => {
                self.disarm(&task_id);
                self.queue.retain(|q| q.task_id != task_id);
                for r in self.running.values().filter(|r| r.task_id == task_id) {
                    let _ = r.cancel.try_send(());
                }
                for id in self.timers.retries() {
                    if matches!(self.store.get_run(id), Ok(None)) {
                        self.timers.remove(&TimerKey::Retry(id));
                    }
                }
            }
            Msg::Fire {
                task_id,
                trigger,
                context,
                reply,
            } => {
                let result = if self.shutting_down.load(Ordering::Relaxed) {
                    Err(EngineError::Down("the server is shutting down"))
                } else {
                    match self.store.get_task(&task_id) {
                        Ok(Some(task)) => self.fire(&task, trigger, None, context.as_ref(), now),
                        Ok(None) => Err(EngineError::NotFound(format!(
                            "task {task_id} does not exist"
                        ))),
                        Err(e) => Err(e.into()),
                    }
                };
                let _ = reply.send(result);
            }
            Msg::Cancel { run_id, reply } => {
                let _ = reply.send(self.cancel(run_id, now));
            }
            Msg::Finished(done) => self.finished(done, now),
            Msg::ClockChanged => log::info!("the wall clock was set; re-checking fire times"),
            Msg::Shutdown(ack) => {
                self.shutting_down.store(true, Ordering::Relaxed);
                let queued: Vec<i64> = self.queue.drain(..).map(|q| q.run_id).collect();
                for run_id in queued {
                    self.end_unstarted(
                        run_id,
                        RunStatus::Interrupted,
                        "the server stopped before this run started",
                        now,
                    );
                }
                for r in self.running.values() {
                    let _ = r.cancel.try_send(());
                }
                if self.running.is_empty() {
                    let _ = ack.send(());
                    return true;
                }
                self.shutdown_ack = Some(ack);
            }
        }
        false
    }

    fn disarm(&mut self, task_id: &str) {
        self.timers.remove(&TimerKey::Task(task_id.to_string()));
        self.armed.remove(task_id);
    }

    /// Arm a time-based task. With `from_cursor`, resume from the stored cursor so fires missed
    /// while the server was down are found; otherwise start from now.
    fn arm(&mut self, task: Task, from_cursor: bool, now: DateTime<Utc>) {
        let Some(rule) = FireRule::of(&task.spec) else {
            if matches!(
                task.spec.trigger,
                Trigger::Cron { .. } | Trigger::Interval { .. } | Trigger::Once { .. }
            ) {
                log::error!(
                    "task {}: its stored trigger cannot be read; it is not armed",
                    task.spec.name
                );
            }
            return;
        };
        let stored = if from_cursor {
            self.store.cursor(&task.id).ok().flatten()
        } else {
            None
        };
        let (cursor, is_new) = plan::start_cursor(&rule, stored, now);
        if is_new {
            if let Err(e) = self.store.set_cursor(&task.id, cursor) {
                log::error!("cannot store the cursor of task {}: {e}", task.id);
            }
        }
        if let Some(next) = rule.next_after(cursor) {
            self.timers.set(TimerKey::Task(task.id.clone()), next);
        }
        self.armed.insert(task.id.clone(), Armed { task, rule });
    }

    fn fire_due(&mut self, wake: Wake) {
        while let Some((at, key)) = self.timers.pop_due(wake.now) {
            match key {
                TimerKey::Task(task_id) => self.task_timer(&task_id, at, wake),
                TimerKey::Retry(run_id) => self.retry_timer(run_id),
            }
        }
    }

    fn task_timer(&mut self, task_id: &str, first: DateTime<Utc>, wake: Wake) {
        let Some(armed) = self.armed.get(task_id) else {
            return;
        };
        let task = armed.task.clone();
        let plan = plan::on_timer(&armed.rule, task.spec.catch_up, first, wake);
        let name = &task.spec.name;
        if plan.overflow {
            log::warn!(
                "task {name}: more than {} fires missed since {}; the rest are not listed",
                plan::MAX_DUE,
                rfc3339(first)
            );
        }
        if let Err(e) = self.store.set_cursor(&task.id, plan.cursor) {
            log::error!("cannot store the cursor of task {}: {e}", task.id);
        }
        if !plan.missed.is_empty() {
            self.record_missed(&task, &plan, wake.now);
        }
        if let Some(t) = plan.catch_up {
            log::info!(
                "task {name} missed {} fires; catch_up = once runs it now",
                plan.missed_count
            );
            if let Err(e) = self.fire(&task, TriggerKind::CatchUp, Some(t), None, wake.now) {
                log::error!("task {name}: catch-up fire not recorded: {e}");
            }
        }
        if let Some(t) = plan.on_time {
            if let Err(e) = self.fire(&task, task.spec.trigger.kind(), Some(t), None, wake.now) {
                log::error!("task {name}: fire at {} not recorded: {e}", rfc3339(t));
            }
        }
        if plan.disable {
            self.disable_once(&task, wake.now);
        } else if let Some(next) = plan.next {
            self.timers.set(TimerKey::Task(task.id.clone()), next);
        }
    }

    fn disable_once(&mut self, task: &Task, now: DateTime<Utc>) {
        self.armed.remove(&task.id);
        let mut spec = task.spec.clone();
        spec.enabled = false;
        match self.store.update_task(&task.id, &spec, now) {
            Ok(_) => log::info!("once task {} fired and is now disabled", task.spec.name),
            Err(e) => log::error!("cannot disable once task {}: {e}", task.id),
        }
    }

    fn record_missed(&mut self, task: &Task, plan: &plan::TimerPlan, now: DateTime<Utc>) {
        for (t, error) in plan::missed_rows(&plan.missed, plan.reason, task.spec.catch_up) {
            let inserted = self.store.insert_run(&NewRun {
                task_id: &task.id,
                trigger: task.spec.trigger.kind(),
                status: RunStatus::Skipped,
                scheduled_for: Some(t),
                queued_at: now,
                error: Some(&error),
                attempt: 1,
                retry_of: None,
                context: None,
            });
            if let Err(e) = inserted {
                log::debug!(
                    "missed fire of {} at {} not recorded: {e}",
                    task.id,
                    rfc3339(t)
                );
            }
        }
        log::warn!(
            "task {} missed {} fires: {}",
            task.spec.name,
            plan.missed.len(),
            plan.reason.text()
        );
    }

    /// One run of the task that is queued or running, if any.
    fn active_run(&self, task_id: &str) -> Option<i64> {
        self.running
            .iter()
            .find(|(_, r)| r.task_id == task_id)
            .map(|(id, _)| *id)
            .or_else(|| {
                self.queue
                    .iter()
                    .find(|q| q.task_id == task_id)
                    .map(|q| q.run_id)
            })
    }

    /// Record a fire: a skipped run (overlap) or a queued run; admission happens after.
    fn fire(
        &mut self,
        task: &Task,
        trigger: TriggerKind,
        scheduled_for: Option<DateTime<Utc>>,
        context: Option<&RunContext>,
        now: DateTime<Utc>,
    ) -> Result<i64, EngineError> {
        let decision = plan::on_fire(task.spec.overlap, self.active_run(&task.id));
        let (status, error) = match &decision {
            FireDecision::Queue => (RunStatus::Queued, None),
            FireDecision::Skip(reason) => (RunStatus::Skipped, Some(reason.as_str())),
        };
        let id = self.store.insert_run(&NewRun {
            task_id: &task.id,
            trigger,
            status,
            scheduled_for,
            queued_at: now,
            error,
            attempt: 1,
            retry_of: None,
            context,
        })?;
        if let FireDecision::Skip(reason) = decision {
            log::info!("task {}: fire {reason}", task.spec.name);
            return Ok(id);
        }
        self.queue.push_back(Queued {
            run_id: id,
            task_id: task.id.clone(),
            trigger,
            attempt: 1,
            scheduled_for,
        });
        self.admit();
        Ok(id)
    }

    fn retry_timer(&mut self, run_id: i64) {
        match self.store.get_run(run_id) {
            Ok(Some(run)) if run.status == RunStatus::Queued => {
                self.queue.push_back(Queued {
                    run_id,
                    task_id: run.task_id,
                    trigger: run.trigger,
                    attempt: run.attempt,
                    scheduled_for: run.scheduled_for,
                });
            }
            Ok(_) => {}
            Err(e) => log::error!("cannot read retry run {run_id}: {e}"),
        }
    }

    /// Start the queued runs that `plan::admission` lets through.
    fn admit(&mut self) {
        if self.queue.is_empty() || self.running.len() >= self.settings.max_concurrent {
            return;
        }
        let mut tasks: HashMap<String, Option<Task>> = HashMap::new();
        for q in &self.queue {
            if !tasks.contains_key(&q.task_id) {
                tasks.insert(
                    q.task_id.clone(),
                    self.store.get_task(&q.task_id).ok().flatten(),
                );
            }
        }
        let decisions = {
            let queue: Vec<&str> = self.queue.iter().map(|q| q.task_id.as_str()).collect();
            let running: Vec<&str> = self.running.values().map(|r| r.task_id.as_str()).collect();
            plan::admission(&queue, &running, self.settings.max_concurrent, |id| {
                tasks
                    .get(id)
                    .and_then(|t| t.as_ref())
                    .map(|t| t.spec.overlap)
            })
        };
        let mut taken: Vec<(usize, Option<Task>)> = decisions
            .into_iter()
            .map(|d| match d {
                Admit::Start(i) => (i, self.queue[i].task_id.clone()),
                Admit::Drop(i) => (i, String::new()),
            })
            .map(|(i, id)| (i, tasks.get(&id).cloned().flatten()))
            .collect();
        // Remove from the back so the indices stay valid, then start in queue order.
        taken.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        let mut starts = Vec::new();
        for (i, task) in taken {
            if let Some(q) = self.queue.remove(i) {
                if let Some(task) = task {
                    starts.push((task, q));
                }
            }
        }
        for (task, q) in starts.into_iter().rev() {
            self.start_run(task, q);
        }
    }

    fn start_run(&mut self, task: Task, q: Queued) {
        let now = Utc::now();
        if let Err(e) = self.store.start_run(q.run_id, now) {
            log::error!("cannot start run {}: {e}", q.run_id);
            return;
        }
        let (cancel_tx, cancel_rx) = bounded(1);
        let context = self.store.run_context(q.run_id).ok().flatten();
        let task_id = task.id.clone();
        let job = RunJob {
            run_id: q.run_id,
            task,
            trigger: q.trigger,
            attempt: q.attempt,
            scheduled_for: q.scheduled_for,
            context,
            started_at: now,
            cancel: cancel_rx,
            shutting_down: Arc::clone(&self.shutting_down),
        };
        let tx = self.finished_tx.clone();
        let settings = self.settings.run.clone();
        let db_path = self.settings.db_path.clone();
        let waiters = Arc::clone(&self.handle.waiters);
        let listener = Arc::clone(&self.listener);
        let spawned = std::thread::Builder::new()
            .name(format!("run-{}", q.run_id))
            .spawn(move || {
                let done = run::execute(job, &settings, &db_path);
                waiters.wake(done.run_id);
                listener(&done.event());
                let _ = tx.send(Msg::Finished(done));
            });
        match spawned {
            Ok(_) => {
                self.running.insert(
                    q.run_id,
                    Running {
                        task_id,
                        cancel: cancel_tx,
                    },
                );
                self.handle
                    .running
                    .store(self.running.len(), Ordering::Relaxed);
            }
            Err(e) => {
                log::error!("cannot start a run thread: {e}");
                self.end_unstarted(
                    q.run_id,
                    RunStatus::Failed,
                    "the server could not start a thread for this run",
                    now,
                );
            }
        }
    }

    /// Record the end of a run that never ran (no output, no exit status) and wake its waiters.
    fn end_unstarted(&self, run_id: i64, status: RunStatus, error: &str, now: DateTime<Utc>) {
        let end = RunEnd {
            status,
            finished_at: now,
            duration_ms: None,
            exit_code: None,
            signal: None,
            output: "",
            output_truncated: false,
            error: Some(error),
        };
        if let Err(e) = self.store.finish_run(run_id, &end) {
            log::error!("run {run_id}: its end ({status}) was not recorded: {e}");
        }
        self.handle.waiters.wake(run_id);
    }

    fn cancel(&mut self, run_id: i64, now: DateTime<Utc>) -> Result<(), EngineError> {
        if let Some(r) = self.running.get(&run_id) {
            let _ = r.cancel.try_send(());
            return Ok(());
        }
        let queued = self.queue.iter().position(|q| q.run_id == run_id);
        if queued.is_some() || self.timers.contains(&TimerKey::Retry(run_id)) {
            if let Some(i) = queued {
                self.queue.remove(i);
            }
            self.timers.remove(&TimerKey::Retry(run_id));
            self.end_unstarted(
                run_id,
                RunStatus::Cancelled,
                "cancelled before it started",
                now,
            );
            return Ok(());
        }
        match self.store.get_run(run_id)? {
            Some(run) => Err(EngineError::NotActive {
                run_id,
                status: run.status,
            }),
            None => Err(EngineError::NotFound(format!("no run has the id {run_id}"))),
        }
    }

    fn finished(&mut self, done: run::Finished, now: DateTime<Utc>) {
        self.running.remove(&done.run_id);
        self.handle
            .running
            .store(self.running.len(), Ordering::Relaxed);
        if let Err(e) = self
            .store
            .prune_runs(Some(&done.task_id), self.settings.history_keep_per_task)
        {
            log::error!("cannot prune runs of task {}: {e}", done.task_id);
        }
        if self.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        let Ok(Some(task)) = self.store.get_task(&done.task_id) else {
            return;
        };
        match plan::after_end(done.status, done.attempt, &task.spec.retries, now) {
            AfterEnd::Retry {
                due,
                delay_secs,
                attempt,
            } => {
                let inserted = self.store.insert_run(&NewRun {
                    task_id: &task.id,
                    trigger: TriggerKind::Retry,
                    status: RunStatus::Queued,
                    scheduled_for: Some(due),
                    queued_at: now,
                    error: None,
                    attempt,
                    retry_of: Some(done.run_id),
                    context: done.context.as_ref(),
                });
                match inserted {
                    Ok(id) => {
                        log::info!(
                            "task {}: run {} {}; retry {} of {} in {delay_secs} s (run {id})",
                            task.spec.name,
                            done.run_id,
                            done.status,
                            done.attempt,
                            task.spec.retries.max_attempts
                        );
                        self.timers.set(TimerKey::Retry(id), due);
                    }
                    Err(e) => log::error!("cannot schedule a retry of run {}: {e}", done.run_id),
                }
            }
            AfterEnd::Final => self.chain_after(&done, now),
        }
    }

    /// The final outcome of a run: fire the `after` tasks that follow it.
    fn chain_after(&mut self, done: &run::Finished, now: DateTime<Utc>) {
        let followers = match self.store.enabled_tasks_with_trigger(TriggerKind::After) {
            Ok(t) => t,
            Err(e) => {
                log::error!("cannot list after-tasks: {e}");
                return;
            }
        };
        for follower in followers {
            let Trigger::After { task: upstream, on } = &follower.spec.trigger else {
                continue;
            };
            if upstream != &done.task_id || !plan::after_fires(*on, done.status) {
                continue;
            }
            let context = RunContext {
                after: Some(AfterContext {
                    task_id: done.task_id.clone(),
                    task_name: done.task_name.clone(),
                    run_id: done.run_id,
                    status: done.status,
                }),
                ..RunContext::default()
            };
            if let Err(e) = self.fire(&follower, TriggerKind::After, None, Some(&context), now) {
                log::error!("cannot fire after-task {}: {e}", follower.spec.name);
            }
        }
    }
}
