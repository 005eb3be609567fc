//! The execution engine: one dedicated thread that owns every armed timer (cron, interval,
//! once, pending retries), the queue and the set of running runs. It sleeps until the earliest
//! fire time or until a message arrives (task changed or deleted, a fire request, a cancel, a run
//! finished, a clock change, shutdown) — never a polling tick. Every decision (what a timer, a
//! fire or a run's end leads to, what may start) comes from the pure rules in `plan`; this
//! module is the imperative shell that reads the clock, records in the store, logs, and hands
//! each admitted run to a run thread (`exec::run`). Others talk to it through `EngineHandle`.

mod approval;
mod deadman;
mod fires;
mod handle;
mod pause;
pub(crate) mod plan;
mod runs;
pub(crate) mod timers;

use crate::exec::run::{self, RunJob, RunSettings};
use crate::store::{NewRun, RunEnd, Store};
use crate::tasks::model::{CatchUp, Task, Trigger};
use crate::tasks::runs::{AfterContext, RunContext, RunEvent, RunStatus, TriggerKind};
use crate::tasks::schedule::{FireRule, ScheduleCache};
use crate::util::rfc3339;
use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
pub use handle::{EngineError, EngineHandle, RunListener};
use handle::{Msg, Waiters};
pub use pause::{PauseState, MAX_REASON_CHARS};
use plan::{Admit, AfterEnd, FireDecision, Wake};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timers::{TimerKey, Timers};

/// Engine settings taken from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub db_path: PathBuf,
    pub max_concurrent: usize,
    pub history_keep_per_task: i64,
    pub run: RunSettings,
    /// The config's `daily_budget_usd`: all subagent runs together per UTC day.
    pub daily_budget_usd: Option<f64>,
    /// The config's `pause_after_failures` (a task's own value wins; 0: never).
    pub pause_after_failures: u32,
    /// The config's `require_approval`: a task runs only with the owner's approval of its
    /// current content (`approval`).
    pub require_approval: bool,
    /// The owner's public key approvals are checked with (None: every task is pending).
    pub approval_key: Option<crate::tasks::approval::PublicKey>,
}

/// Tasks read per query when arming at start.
const ARM_PAGE: usize = 512;

/// A time-based task as armed: its fire rule, parsed once, and what the timer's plan needs. The
/// rest of the task is read from the store when it comes due, so an armed task costs a few
/// dozen bytes however long its command or prompt.
struct Armed {
    rule: FireRule,
    catch_up: CatchUp,
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
    /// By task id; the same `Arc<str>` is the key of the task's timer.
    armed: HashMap<Arc<str>, Armed>,
    running: HashMap<i64, Running>,
    queue: VecDeque<Queued>,
    finished_tx: Sender<Msg>,
    handle: EngineHandle,
    listener: RunListener,
    shutting_down: Arc<AtomicBool>,
    shutdown_ack: Option<Sender<()>>,
    /// Fire times before it count as missed: the start, or the end of a pause.
    boot: DateTime<Utc>,
    /// The last pause of everything that ended (since, until): what missed fires in it say.
    last_pause: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When each task last had a run started (a rising count), for fair admission.
    last_start: HashMap<String, u64>,
    starts: u64,
    /// Inside `fire_due`'s transaction: runs are admitted after it commits.
    batching: bool,
    /// Runs that ended but whose end the store refused: written as soon as it takes writes.
    unrecorded: Vec<run::Finished>,
    /// Parsed cron expressions, shared by the tasks that use the same one.
    schedules: ScheduleCache,
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
        pause: Arc::default(),
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
        last_pause: None,
        last_start: HashMap::new(),
        starts: 0,
        batching: false,
        unrecorded: Vec::new(),
        schedules: ScheduleCache::default(),
    };
    engine.load_pause()?;
    // Every enabled time-based task with its cursor, a page at a time; resumed from the cursor
    // so fires missed while the server was down are found.
    let mut after = 0;
    loop {
        let page = engine
            .store
            .timed_tasks_with_cursors(after, ARM_PAGE)
            .map_err(|e| e.to_string())?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = *last;
        let full = page.len() == ARM_PAGE;
        for (_, task, cursor) in page {
            engine.arm(&task, cursor, now);
        }
        if !full {
            break;
        }
    }
    engine.arm_deadlines(now)?;
    engine.store.shrink_memory();
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
            // While paused no fire timer is dealt with: they wait, due, for the resume. Dead-man
            // deadlines are alerts, not fires: a forgotten pause is caught too.
            let first = if self.paused() {
                self.timers.first_deadline()
            } else {
                self.timers.first()
            };
            let msg = match first {
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
                    paused: self.last_pause,
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
                    Ok(Some(task)) => {
                        if task.spec.enabled {
                            self.arm(&task, None, now);
                        }
                        self.arm_deadline(&task, now);
                    }
                    Ok(None) => {}
                    Err(e) => log::error!("cannot read task {task_id}: {e}"),
                }
            }
            Msg::Remove(task_id) => {
                self.disarm(&task_id);
                self.timers
                    .remove(&TimerKey::Deadline(task_id.as_str().into()));
                self.last_start.remove(&task_id);
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
                        // An event for a task disabled meanwhile (auto-pause, a toggle racing
                        // the watcher or a debounced hook) starts nothing.
                        Ok(Some(task))
                            if !task.spec.enabled
                                && matches!(
                                    trigger,
                                    TriggerKind::FileWatch | TriggerKind::Hook
                                ) =>
                        {
                            Err(EngineError::NotFound(format!(
                                "task {} is disabled",
                                task.spec.name
                            )))
                        }
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
            Msg::PauseAll { reason, reply } => {
                let _ = reply.send(self.pause_all(reason, now));
            }
            Msg::ResumeAll { reply } => {
                let _ = reply.send(self.resume_all(now));
            }
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
        self.timers.remove(&TimerKey::Task(task_id.into()));
        self.armed.remove(task_id);
    }

    /// Arm a time-based task: from its `stored` cursor (a restart) or, without one, from now.
    /// Tasks with the same cron expression share one parsed pattern.
    fn arm(&mut self, task: &Task, stored: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let Some(rule) = FireRule::of_cached(&task.spec, &self.schedules) else {
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
        let (cursor, is_new) = plan::start_cursor(&rule, stored, now);
        if is_new {
            if let Err(e) = self.store.set_cursor(&task.id, cursor) {
                log::error!("cannot store the cursor of task {}: {e}", task.id);
            }
        }
        let id: Arc<str> = task.id.as_str().into();
        if let Some(next) = rule.next_after(cursor) {
            self.timers.set(TimerKey::Task(Arc::clone(&id)), next);
        }
        let catch_up = task.spec.catch_up;
        self.armed.insert(id, Armed { rule, catch_up });
    }

    /// Deal with every timer due at `wake`: their cursor moves and run rows are written in one
    /// transaction (one commit for all the tasks due in the same second); admission follows.
    fn fire_due(&mut self, wake: Wake) {
        if self.paused() {
            return self.deadlines_due(wake.now);
        }
        if self.timers.first().is_none_or(|t| t > wake.now) {
            return;
        }
        let batched = match self.store.begin_batch() {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot group the due fires in one transaction: {e}");
                false
            }
        };
        self.batching = batched;
        while let Some((at, key)) = self.timers.pop_due(wake.now) {
            match key {
                TimerKey::Task(task_id) => self.task_timer(task_id, at, wake),
                TimerKey::Retry(run_id) => self.retry_timer(run_id),
                TimerKey::Unrecorded => self.record_unrecorded(wake.now),
                TimerKey::Deadline(task_id) => self.deadline_timer(task_id, wake.now),
            }
        }
        self.batching = false;
        if batched {
            if let Err(e) = self.store.end_batch() {
                log::error!("the due fires could not be recorded: {e}");
            }
        }
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
        if let Some(pause) = self.pause_state() {
            return Err(EngineError::Paused(pause.refusal()));
        }
        if self.pending_approval(task) {
            return Err(Self::approval_refusal(task));
        }
        let load = plan::Load {
            active: self.active_run(&task.id),
            queued_for_task: self.queue.iter().filter(|q| q.task_id == task.id).count(),
            queued: self.queue.len(),
        };
        let decision = match self.budget_skip(task, now) {
            Some(reason) => FireDecision::Skip(reason),
            None => plan::on_fire(task.spec.overlap, load),
        };
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
            crate::metrics::global().run_ended(&task.spec.name, status.as_str(), None);
            return Ok(id);
        }
        self.queue.push_back(Queued {
            run_id: id,
            task_id: task.id.clone(),
            trigger,
            attempt: 1,
            scheduled_for,
        });
        if !self.batching {
            self.admit();
        }
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
        crate::metrics::global().set_queue_length(self.queue.len());
        if self.queue.is_empty()
            || self.running.len() >= self.settings.max_concurrent
            || self.paused()
        {
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
            plan::admission(
                &queue,
                &running,
                self.settings.max_concurrent,
                |id| {
                    tasks
                        .get(id)
                        .and_then(|t| t.as_ref())
                        .map(|t| t.spec.overlap)
                },
                |id| self.last_start.get(id).copied(),
            )
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
        // Several runs start at once (tasks due in the same second): their rows change in one
        // transaction.
        let batched = starts.len() > 1 && self.store.begin_batch().is_ok();
        let mut skipped = false;
        for (task, q) in starts.into_iter().rev() {
            skipped |= !self.start_run(task, q);
        }
        if batched {
            if let Err(e) = self.store.end_batch() {
                log::error!("the started runs could not be recorded: {e}");
            }
        }
        if skipped {
            self.admit();
        }
        crate::metrics::global().set_queue_length(self.queue.len());
    }
}
