//! File-watch triggers: a notify (inotify) watcher sends raw events over a crossbeam channel to
//! the dispatcher thread, which matches them to armed file-watch tasks, debounces each task
//! (trailing edge), and fires it through the engine. (Skeleton: arming arrives next.)

use crate::engine::EngineHandle;
use crossbeam_channel::{unbounded, Sender};
use std::path::PathBuf;

#[allow(dead_code)] // read once arming lands
enum WatchMsg {
    Changed(String),
    Deleted(String),
    RunFinished(String),
}

/// What other threads hold to tell the watcher about task changes.
#[derive(Clone)]
pub struct WatchHandle {
    tx: Sender<WatchMsg>,
}

impl WatchHandle {
    /// A task was added, updated or toggled: re-arm (or disarm) its watch at once.
    pub fn task_changed(&self, task_id: &str) {
        let _ = self.tx.send(WatchMsg::Changed(task_id.to_string()));
    }

    /// A task was deleted: drop its watch.
    pub fn task_deleted(&self, task_id: &str) {
        let _ = self.tx.send(WatchMsg::Deleted(task_id.to_string()));
    }

    /// A run of this task ended (for the self-trigger guard).
    pub fn run_finished(&self, task_id: &str) {
        let _ = self.tx.send(WatchMsg::RunFinished(task_id.to_string()));
    }
}

/// Start the watcher and its dispatcher thread; arms every enabled file-watch task.
pub fn start(_db_path: PathBuf, _engine: EngineHandle) -> Result<WatchHandle, String> {
    let (tx, rx) = unbounded::<WatchMsg>();
    std::thread::Builder::new()
        .name("file-events".into())
        .spawn(move || {
            for msg in rx {
                match msg {
                    WatchMsg::Changed(_) | WatchMsg::Deleted(_) | WatchMsg::RunFinished(_) => {}
                }
            }
        })
        .map_err(|e| format!("cannot start the file-events thread: {e}"))?;
    Ok(WatchHandle { tx })
}
