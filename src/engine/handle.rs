//! What other threads hold to talk to the engine (`EngineHandle`): the messages it takes, the
//! errors it answers with, and the waiters it wakes when a run is recorded as finished. No
//! scheduling decisions here.

use super::*;

/// How long a caller waits for the engine to answer a fire or a cancel.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Everything is paused (`pause_all`): the text says since when, why and how to resume.
    Paused(String),
    /// The task waits for the owner's approval (`require_approval`): the text says how.
    PendingApproval(String),
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
            EngineError::Paused(why) | EngineError::PendingApproval(why) => f.write_str(why),
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

pub(super) enum Msg {
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
    PauseAll {
        reason: String,
        reply: Sender<Result<(PauseState, bool), EngineError>>,
    },
    ResumeAll {
        reply: Sender<Result<Option<PauseState>, EngineError>>,
    },
    ClockChanged,
    Shutdown(Sender<()>),
}

/// Who waits for which run to be recorded as finished; the one place that wakes them.
#[derive(Default)]
pub(super) struct Waiters(Mutex<HashMap<i64, Vec<Sender<()>>>>);

impl Waiters {
    pub(super) fn subscribe(&self, run_id: i64) -> Receiver<()> {
        let (tx, rx) = bounded(1);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run_id)
            .or_default()
            .push(tx);
        rx
    }

    pub(super) fn wake(&self, run_id: i64) {
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
    pub(super) tx: Sender<Msg>,
    pub(super) waiters: Arc<Waiters>,
    pub(super) running: Arc<AtomicUsize>,
    pub(super) alive: Arc<AtomicBool>,
    /// The pause of everything, written by the engine thread only.
    pub(super) pause: Arc<Mutex<Option<PauseState>>>,
}

impl EngineHandle {
    pub fn task_changed(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Rearm(task_id.to_string()));
    }

    pub fn task_deleted(&self, task_id: &str) {
        let _ = self.tx.send(Msg::Remove(task_id.to_string()));
    }

    pub(super) fn ask<T>(
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

    /// Pause everything (see `engine::pause`); returns the pause and whether it was already in
    /// force.
    pub fn pause_all(&self, reason: &str) -> Result<(PauseState, bool), EngineError> {
        let reason = reason.to_string();
        self.ask(|reply| Msg::PauseAll { reason, reply })
    }

    /// End the pause of everything; returns the pause that ended, if there was one.
    pub fn resume_all(&self) -> Result<Option<PauseState>, EngineError> {
        self.ask(|reply| Msg::ResumeAll { reply })
    }

    /// The pause of everything now, if any.
    pub fn paused(&self) -> Option<PauseState> {
        self.pause.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
