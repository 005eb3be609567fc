//! The execution engine: one dedicated thread that owns every armed timer (cron, interval, once,
//! pending retries), the queue and the set of running runs. It sleeps until the earliest fire
//! time or until a message arrives (task changed or deleted, a fire request, a cancel, a run
//! finished, a clock change, shutdown) — never a polling tick. It applies the policies (overlap,
//! catch-up, retries, `after` chaining, the global concurrency cap) and hands each admitted run to
//! a run thread (`run`). Its state lives only in this thread; others talk to it through
//! `EngineHandle`. All SQL goes through its own `Store` connection.

use crate::exec::run::{self, RunJob, RunSettings};
use crate::store::{NewRun, RunEnd, Store};
use crate::tasks::model::{AfterOn, CatchUp, Overlap, Task, Trigger};
use crate::tasks::schedule::{parse_timezone, Schedule};
use crate::util::{parse_utc, rfc3339, rfc3339_millis};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fire this late (scheduler delay) still runs; older ones count as missed.
const LATE_TOLERANCE: ChronoDuration = ChronoDuration::seconds(10);
/// A wall-clock move bigger than this, relative to the monotonic clock, is a jump.
const JUMP_TOLERANCE: Duration = Duration::from_secs(2);
/// Missed fires recorded one by one before the rest are summed up in one row.
const MISSED_ROWS: usize = 20;
/// How far ahead of a fire time to look when enumerating due fires (bounded work per wake).
const MAX_DUE: usize = 100_000;

/// Engine settings taken from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub db_path: PathBuf,
    pub max_concurrent: usize,
    pub history_keep_per_task: i64,
    pub run: RunSettings,
}

/// A finished (or failed to start) run, for notifications to sessions.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub run_id: i64,
    pub task_id: String,
    pub task_name: String,
    pub status: String,
    pub error: Option<String>,
}

pub type RunListener = Arc<dyn Fn(&RunEvent) + Send + Sync>;

enum Msg {
    /// A task was added, updated or toggled: re-arm it from now.
    Rearm(String),
    /// A task was deleted: disarm it and end its runs.
    Remove(String),
    /// Run a task now (by hand or for an event).
    Fire {
        task_id: String,
        trigger: String,
        context: Option<String>,
        reply: Sender<Result<i64, String>>,
    },
    Cancel {
        run_id: i64,
        reply: Sender<Result<(), String>>,
    },
    Finished(run::Finished),
    ClockChanged,
    Shutdown(Sender<()>),
}

/// What other threads hold to talk to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: Sender<Msg>,
    waiters: Arc<Mutex<HashMap<i64, Vec<Sender<()>>>>>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    alive: Arc<AtomicBool>,
}

impl EngineHandle {
    pub fn task_changed(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Rearm(task_id.to_string()));
    }

    pub fn task_deleted(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Remove(task_id.to_string()));
    }

    /// Fire a task now; returns the run id (a `skipped` run when overlap says so).
    pub fn fire(
        &self,
        task_id: &str,
        trigger: &str,
        context: Option<String>,
    ) -> Result<i64, String> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Msg::Fire {
                task_id: task_id.to_string(),
                trigger: trigger.to_string(),
                context,
                reply,
            })
            .map_err(|_| "the engine is not running".to_string())?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the engine did not answer".to_string())?
    }

    /// Cancel a queued or running run; returns once the engine has acted on it.
    pub fn cancel(&self, run_id: i64) -> Result<(), String> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Msg::Cancel { run_id, reply })
            .map_err(|_| "the engine is not running".to_string())?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the engine did not answer".to_string())?
    }

    /// A receiver that gets a message when `run_id` has been recorded as finished. Subscribe
    /// before reading the run's status to avoid missing the event.
    pub fn subscribe(&self, run_id: i64) -> Receiver<()> {
        let (tx, rx) = bounded(1);
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run_id)
            .or_default()
            .push(tx);
        rx
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKey {
    Task(String),
    Retry(i64),
}

struct Running {
    task_id: String,
    cancel: Sender<()>,
}

struct Queued {
    run_id: i64,
    task_id: String,
    trigger: String,
    attempt: i64,
}

struct Engine {
    store: Store,
    settings: EngineSettings,
    timers: BTreeSet<(DateTime<Utc>, TimerKey)>,
    armed: HashMap<TimerKey, DateTime<Utc>>,
    running: HashMap<i64, Running>,
    queue: VecDeque<Queued>,
    finished_tx: Sender<Msg>,
    handle: EngineHandle,
    listener: RunListener,
    shutting_down: Arc<AtomicBool>,
    shutdown_ack: Option<Sender<()>>,
    /// When this process's engine started: a fire time before it passed while no server was
    /// running, so it is missed (catch_up applies), however recent.
    boot: DateTime<Utc>,
}

/// Start the engine thread: recover what a previous process left, arm every enabled task, and
/// serve messages until shutdown.
pub fn start(settings: EngineSettings, listener: RunListener) -> Result<EngineHandle, String> {
    let store = Store::open(&settings.db_path).map_err(|e| format!("engine database: {e}"))?;
    let now = Utc::now();
    let recovered = store
        .recover_unfinished(&rfc3339(now))
        .map_err(|e| e.to_string())?;
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
    let retries = recovered.retries;
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
        waiters: Arc::new(Mutex::new(HashMap::new())),
        running: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        alive: Arc::new(AtomicBool::new(true)),
    };
    let mut engine = Engine {
        store,
        settings,
        timers: BTreeSet::new(),
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
    for kind in ["cron", "interval", "once"] {
        let tasks = engine
            .store
            .enabled_tasks_with_trigger(kind)
            .map_err(|e| e.to_string())?;
        for task in tasks {
            engine.arm(&task, true, now);
        }
    }
    for retry in retries {
        let due = retry
            .scheduled_for
            .as_deref()
            .and_then(parse_utc)
            .unwrap_or(now);
        engine.set_timer(TimerKey::Retry(retry.id), due);
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

/// The first fire time of a time-based trigger strictly after `after`.
pub fn next_fire(task: &Task, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = parse_timezone(&task.spec.timezone).ok()?;
    match &task.spec.trigger {
        Trigger::Cron { schedule } => Schedule::parse(schedule)
            .ok()?
            .next_after(after, tz)
            .map(|t| t.with_timezone(&Utc)),
        Trigger::Interval {
            every_seconds,
            start_at,
            ..
        } => {
            let start = parse_utc(start_at)?;
            if start > after {
                return Some(start);
            }
            let step = (*every_seconds).max(1) as i64;
            let elapsed = (after - start).num_seconds();
            Some(start + ChronoDuration::seconds((elapsed / step + 1) * step))
        }
        Trigger::Once { at } => parse_utc(at).filter(|t| *t > after),
        _ => None,
    }
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
                Some((t, _)) => {
                    let wait = (*t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
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
            let wall_elapsed = (now - last_wall).to_std().unwrap_or(Duration::ZERO);
            let mono_elapsed = mono.duration_since(last_mono);
            let jumped = wall_elapsed > mono_elapsed + JUMP_TOLERANCE;
            if jumped {
                log::warn!(
                    "the wall clock jumped forward by {} s (host sleep or clock step); fire times jumped over count as missed",
                    (wall_elapsed - mono_elapsed).as_secs()
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
                self.fire_due(now, jumped);
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
                self.disarm(&TimerKey::Task(task_id.clone()));
                match self.store.get_task(&task_id) {
                    Ok(Some(task)) if task.spec.enabled => self.arm(&task, false, now),
                    Ok(_) => {}
                    Err(e) => log::error!("cannot read task {task_id}: {e}"),
                }
            }
            Msg::Remove(task_id) => {
                self.disarm(&TimerKey::Task(task_id.clone()));
                self.queue.retain(|q| q.task_id != task_id);
                for r in self.running.values().filter(|r| r.task_id == task_id) {
                    let _ = r.cancel.try_send(());
                }
                let retries: Vec<TimerKey> = self
                    .armed
                    .keys()
                    .filter(|k| matches!(k, TimerKey::Retry(_)))
                    .cloned()
                    .collect();
                for key in retries {
                    if let TimerKey::Retry(id) = key {
                        if matches!(self.store.get_run(id), Ok(None)) {
                            self.disarm(&key);
                        }
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
                    Err("the server is shutting down".to_string())
                } else {
                    match self.store.get_task(&task_id) {
                        Ok(Some(task)) => self.fire(&task, &trigger, None, context.as_deref(), now),
                        Ok(None) => Err(format!("task {task_id} does not exist")),
                        Err(e) => Err(e.to_string()),
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
                    let _ = self.end_unstarted(
                        run_id,
                        "interrupted",
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

    fn set_timer(&mut self, key: TimerKey, at: DateTime<Utc>) {
        self.disarm(&key);
        self.timers.insert((at, key.clone()));
        self.armed.insert(key, at);
    }

    fn disarm(&mut self, key: &TimerKey) {
        if let Some(at) = self.armed.remove(key) {
            self.timers.remove(&(at, key.clone()));
        }
    }

    /// Arm a time-based task. With `from_cursor`, resume from the stored cursor so fires missed
    /// while the server was down are found; otherwise start from now.
    fn arm(&mut self, task: &Task, from_cursor: bool, now: DateTime<Utc>) {
        if !matches!(
            task.spec.trigger,
            Trigger::Cron { .. } | Trigger::Interval { .. } | Trigger::Once { .. }
        ) {
            return;
        }
        let stored = if from_cursor {
            self.store
                .cursor(&task.id)
                .ok()
                .flatten()
                .and_then(|c| parse_utc(&c))
        } else {
            None
        };
        let cursor = match stored {
            Some(c) => c,
            None => {
                // A new or changed task starts from now; a once task created for a time that is
                // already here still fires.
                let start = match &task.spec.trigger {
                    Trigger::Once { at } => parse_utc(at)
                        .map(|a| a - ChronoDuration::seconds(1))
                        .filter(|a| *a < now)
                        .unwrap_or(now),
                    _ => now,
                };
                if let Err(e) = self.store.set_cursor(&task.id, &rfc3339(start)) {
                    log::error!("cannot store the cursor of task {}: {e}", task.id);
                }
                start
            }
        };
        if let Some(next) = next_fire(task, cursor) {
            self.set_timer(TimerKey::Task(task.id.clone()), next);
        }
    }

    fn fire_due(&mut self, now: DateTime<Utc>, jumped: bool) {
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.disarm(&key);
            match key {
                TimerKey::Task(task_id) => self.task_timer(&task_id, at, now, jumped),
                TimerKey::Retry(run_id) => self.retry_timer(run_id, now),
            }
        }
    }

    fn task_timer(
        &mut self,
        task_id: &str,
        first: DateTime<Utc>,
        now: DateTime<Utc>,
        jumped: bool,
    ) {
        let task = match self.store.get_task(task_id) {
            Ok(Some(t)) if t.spec.enabled => t,
            Ok(_) => return,
            Err(e) => {
                log::error!("cannot read task {task_id}: {e}");
                return;
            }
        };
        let mut due = vec![first];
        while due.len() < MAX_DUE {
            match next_fire(&task, *due.last().unwrap_or(&first)) {
                Some(t) if t <= now => due.push(t),
                _ => break,
            }
        }
        let mut latest = *due.last().unwrap_or(&first);
        if due.len() >= MAX_DUE && next_fire(&task, latest).is_some_and(|t| t <= now) {
            // A very long outage of a very frequent task: stop listing, note that there were
            // more, and carry on from now.
            log::warn!(
                "task {}: more than {MAX_DUE} fires missed since {}; the rest are not listed",
                task.spec.name,
                rfc3339(first)
            );
            latest = now;
            due.push(now);
        }
        if let Err(e) = self.store.set_cursor(&task.id, &rfc3339(latest)) {
            log::error!("cannot store the cursor of task {}: {e}", task.id);
        }
        // On time: due while this process was running (a fire from before the start passed
        // while the server was down, and catch_up decides about it), not jumped over, and not
        // later than the scheduler's own tolerance.
        let on_time =
            (!jumped && latest >= self.boot && now - latest <= LATE_TOLERANCE).then_some(latest);
        let missed: Vec<DateTime<Utc>> = due
            .iter()
            .copied()
            .filter(|t| Some(*t) != on_time)
            .collect();
        let trigger = task.spec.trigger.kind();
        if !missed.is_empty() {
            let catch_up_run = (task.spec.catch_up == CatchUp::Once && on_time.is_none())
                .then(|| *missed.last().unwrap_or(&latest));
            let reason = if jumped {
                "the wall clock jumped past this fire time (host sleep or clock step)"
            } else {
                "the server was not running (or was too late) at this fire time"
            };
            let skipped: Vec<DateTime<Utc>> = missed
                .iter()
                .copied()
                .filter(|t| Some(*t) != catch_up_run)
                .collect();
            self.record_missed(&task, &skipped, reason, now);
            if let Some(t) = catch_up_run {
                log::info!(
                    "task {} missed {} fires; catch_up = once runs it now",
                    task.spec.name,
                    missed.len()
                );
                if let Err(e) = self.fire(&task, "catch-up", Some(t), None, now) {
                    log::error!("task {}: catch-up fire not recorded: {e}", task.spec.name);
                }
            }
        }
        if let Some(t) = on_time {
            if let Err(e) = self.fire(&task, trigger, Some(t), None, now) {
                log::error!(
                    "task {}: fire at {} not recorded: {e}",
                    task.spec.name,
                    rfc3339(t)
                );
            }
        }
        if matches!(task.spec.trigger, Trigger::Once { .. }) {
            self.disable_once(&task, now);
        } else if let Some(next) = next_fire(&task, latest.max(now)) {
            self.set_timer(TimerKey::Task(task.id.clone()), next);
        }
    }

    fn disable_once(&mut self, task: &Task, now: DateTime<Utc>) {
        let mut spec = task.spec.clone();
        spec.enabled = false;
        match self.store.update_task(&task.id, &spec, &rfc3339(now)) {
            Ok(_) => log::info!("once task {} fired and is now disabled", task.spec.name),
            Err(e) => log::error!("cannot disable once task {}: {e}", task.id),
        }
    }

    fn record_missed(
        &mut self,
        task: &Task,
        missed: &[DateTime<Utc>],
        reason: &str,
        now: DateTime<Utc>,
    ) {
        if missed.is_empty() {
            return;
        }
        let stamp = rfc3339_millis(now);
        let (each, rest) = missed.split_at(missed.len().min(MISSED_ROWS));
        let mut rows: Vec<(DateTime<Utc>, String)> = each
            .iter()
            .map(|t| {
                (
                    *t,
                    format!("missed: {reason} (catch_up = {})", catch_up_name(task)),
                )
            })
            .collect();
        if let (Some(first), Some(last)) = (rest.first(), rest.last()) {
            rows.push((
                *last,
                format!(
                    "missed {} more fires from {} to {}: {reason} (catch_up = {})",
                    rest.len(),
                    rfc3339(*first),
                    rfc3339(*last),
                    catch_up_name(task)
                ),
            ));
        }
        for (t, error) in rows {
            let scheduled = rfc3339(t);
            let inserted = self.store.insert_run(&NewRun {
                task_id: &task.id,
                trigger: task.spec.trigger.kind(),
                status: "skipped",
                scheduled_for: Some(&scheduled),
                queued_at: &stamp,
                error: Some(&error),
                attempt: 1,
                retry_of: None,
                context: None,
            });
            if let Err(e) = inserted {
                log::debug!(
                    "missed fire of {} at {scheduled} not recorded: {e}",
                    task.id
                );
            }
        }
        log::warn!(
            "task {} missed {} fires: {reason}",
            task.spec.name,
            missed.len()
        );
    }

    fn active_runs(&self, task_id: &str) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .running
            .iter()
            .filter(|(_, r)| r.task_id == task_id)
            .map(|(id, _)| *id)
            .collect();
        ids.extend(
            self.queue
                .iter()
                .filter(|q| q.task_id == task_id)
                .map(|q| q.run_id),
        );
        ids
    }

    /// Record a fire: a skipped run (overlap) or a queued run; admission happens after.
    fn fire(
        &mut self,
        task: &Task,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
        context: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, String> {
        let stamp = rfc3339_millis(now);
        let scheduled = scheduled_for.map(rfc3339);
        let active = self.active_runs(&task.id);
        if task.spec.overlap == Overlap::Skip && !active.is_empty() {
            let error = format!(
                "skipped: run {} of this task is still active (overlap = skip)",
                active[0]
            );
            let id = self
                .store
                .insert_run(&NewRun {
                    task_id: &task.id,
                    trigger,
                    status: "skipped",
                    scheduled_for: scheduled.as_deref(),
                    queued_at: &stamp,
                    error: Some(&error),
                    attempt: 1,
                    retry_of: None,
                    context,
                })
                .map_err(|e| e.to_string())?;
            log::info!(
                "task {}: fire skipped, run {} still active",
                task.spec.name,
                active[0]
            );
            return Ok(id);
        }
        let id = self
            .store
            .insert_run(&NewRun {
                task_id: &task.id,
                trigger,
                status: "queued",
                scheduled_for: scheduled.as_deref(),
                queued_at: &stamp,
                error: None,
                attempt: 1,
                retry_of: None,
                context,
            })
            .map_err(|e| e.to_string())?;
        self.queue.push_back(Queued {
            run_id: id,
            task_id: task.id.clone(),
            trigger: trigger.to_string(),
            attempt: 1,
        });
        self.admit();
        Ok(id)
    }

    fn retry_timer(&mut self, run_id: i64, _now: DateTime<Utc>) {
        match self.store.get_run(run_id) {
            Ok(Some(run)) if run.status == "queued" => {
                self.queue.push_back(Queued {
                    run_id,
                    task_id: run.task_id,
                    trigger: run.trigger,
                    attempt: run.attempt,
                });
            }
            Ok(_) => {}
            Err(e) => log::error!("cannot read retry run {run_id}: {e}"),
        }
    }

    /// Start queued runs while the global cap allows, in order; a run of a task that is already
    /// running waits unless the task allows overlap.
    fn admit(&mut self) {
        let mut index = 0;
        while index < self.queue.len() && self.running.len() < self.settings.max_concurrent {
            let task_busy = {
                let q = &self.queue[index];
                self.running.values().any(|r| r.task_id == q.task_id)
            };
            let task = match self.store.get_task(&self.queue[index].task_id) {
                Ok(Some(t)) => t,
                _ => {
                    self.queue.remove(index);
                    continue;
                }
            };
            if task_busy && task.spec.overlap != Overlap::Allow {
                index += 1;
                continue;
            }
            let Some(q) = self.queue.remove(index) else {
                break;
            };
            self.start_run(task, q);
        }
    }

    fn start_run(&mut self, task: Task, q: Queued) {
        let now = Utc::now();
        if let Err(e) = self.store.start_run(q.run_id, &rfc3339_millis(now), None) {
            log::error!("cannot start run {}: {e}", q.run_id);
            return;
        }
        let (cancel_tx, cancel_rx) = bounded(1);
        let context = self.store.run_context(q.run_id).ok().flatten();
        let job = RunJob {
            run_id: q.run_id,
            task,
            trigger: q.trigger,
            attempt: q.attempt,
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
        let task_id = job.task.id.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("run-{}", q.run_id))
            .spawn(move || {
                let done = run::execute(job, &settings, &db_path);
                let event = RunEvent {
                    run_id: done.run_id,
                    task_id: done.task_id.clone(),
                    task_name: done.task_name.clone(),
                    status: done.status.clone(),
                    error: done.error.clone(),
                };
                if let Some(list) = waiters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&done.run_id)
                {
                    for w in list {
                        let _ = w.try_send(());
                    }
                }
                listener(&event);
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
                let _ = self.end_unstarted(
                    q.run_id,
                    "failed",
                    "the server could not start a thread for this run",
                    now,
                );
            }
        }
    }

    /// Record the end of a run that never ran (no output, no exit status).
    fn end_unstarted(
        &self,
        run_id: i64,
        status: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<()> {
        let stamp = rfc3339_millis(now);
        self.store.finish_run(
            run_id,
            &RunEnd {
                status,
                finished_at: &stamp,
                duration_ms: None,
                exit_code: None,
                signal: None,
                output: "",
                output_truncated: false,
                error: Some(error),
            },
        )
    }

    fn cancel(&mut self, run_id: i64, now: DateTime<Utc>) -> Result<(), String> {
        if let Some(r) = self.running.get(&run_id) {
            let _ = r.cancel.try_send(());
            return Ok(());
        }
        let queued = self.queue.iter().position(|q| q.run_id == run_id);
        let retry_armed = self.armed.contains_key(&TimerKey::Retry(run_id));
        if queued.is_some() || retry_armed {
            if let Some(i) = queued {
                self.queue.remove(i);
            }
            self.disarm(&TimerKey::Retry(run_id));
            self.end_unstarted(run_id, "cancelled", "cancelled before it started", now)
                .map_err(|e| e.to_string())?;
            if let Some(list) = self
                .handle
                .waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&run_id)
            {
                for w in list {
                    let _ = w.try_send(());
                }
            }
            return Ok(());
        }
        match self.store.get_run(run_id) {
            Ok(Some(run)) => Err(format!(
                "run {run_id} is not active (status {}); nothing to cancel",
                run.status
            )),
            Ok(None) => Err(format!("runId: no run has the id {run_id}")),
            Err(e) => Err(e.to_string()),
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
        let failed = matches!(done.status.as_str(), "failed" | "timeout");
        let retries = &task.spec.retries;
        if failed && done.attempt <= retries.max_attempts as i64 {
            let factor = if retries.doubling {
                1u64 << (done.attempt - 1).clamp(0, 20)
            } else {
                1
            };
            let delay = retries
                .backoff_seconds
                .saturating_mul(factor)
                .min(7 * 86_400);
            let due = now + ChronoDuration::seconds(delay as i64);
            let stamp = rfc3339_millis(now);
            // With milliseconds: a retry's due time is not a fire time of the schedule, and
            // must not take the (task, scheduled_for) slot of the regular fire in the same
            // second (which the unique index would then refuse).
            let scheduled = rfc3339_millis(due);
            let inserted = self.store.insert_run(&NewRun {
                task_id: &task.id,
                trigger: "retry",
                status: "queued",
                scheduled_for: Some(&scheduled),
                queued_at: &stamp,
                error: None,
                attempt: done.attempt + 1,
                retry_of: Some(done.run_id),
                context: done.context.as_deref(),
            });
            match inserted {
                Ok(id) => {
                    log::info!(
                        "task {}: run {} {}; retry {} of {} in {delay} s (run {id})",
                        task.spec.name,
                        done.run_id,
                        done.status,
                        done.attempt,
                        retries.max_attempts
                    );
                    self.set_timer(TimerKey::Retry(id), due);
                }
                Err(e) => log::error!("cannot schedule a retry of run {}: {e}", done.run_id),
            }
            return;
        }
        // The final outcome: chain `after` tasks.
        let followers = match self.store.enabled_tasks_with_trigger("after") {
            Ok(t) => t,
            Err(e) => {
                log::error!("cannot list after-tasks: {e}");
                return;
            }
        };
        for follower in followers {
            if let Trigger::After { task: upstream, on } = &follower.spec.trigger {
                let matches = upstream == &done.task_id
                    && match on {
                        AfterOn::Success => done.status == "success",
                        AfterOn::Failure => done.status != "success" && done.status != "cancelled",
                        AfterOn::Always => true,
                    };
                if matches {
                    let context = json!({
                        "after": {"task_id": done.task_id, "task_name": done.task_name, "run_id": done.run_id, "status": done.status}
                    })
                    .to_string();
                    if let Err(e) = self.fire(&follower, "after", None, Some(&context), now) {
                        log::error!("cannot fire after-task {}: {e}", follower.spec.name);
                    }
                }
            }
        }
    }
}

fn catch_up_name(task: &Task) -> &'static str {
    match task.spec.catch_up {
        CatchUp::Skip => "skip",
        CatchUp::Once => "once",
    }
}
