//! File-watch triggers (SPEC §5). Owns the one inotify watcher (notify 8), the set of watched
//! directories, the armed `file-watch` tasks, their debounce batches and the self-trigger guard,
//! all inside the `file-events` dispatcher thread. Event path: notify's inotify thread →
//! crossbeam channel → dispatcher (match, debounce) → `EngineHandle::fire` → engine → run thread.
//! It must never run anything itself (the engine decides and runs), never reach SQL except
//! through its own `Store` connection, never `unwrap()` what the disk or the kernel gives it, and
//! never die: a watch that cannot be set is logged and shown on the task (`trigger_error`).
//!
//! **Arming.** A file is watched through its parent directory (non-recursive), so a save by
//! rename (editors, `mv`, `sed -i`, deploy tools) still fires and the watch survives the inode
//! change; a directory is watched itself (recursive per task). A path that does not exist yet is
//! watched through its nearest existing ancestor and re-armed deeper as components appear; when
//! it appears the task fires with `create` (and, for a directory, with what is already in it).
//! If the final component of a file path is a symlink, the directory of the file it points to is
//! watched too, so editing the real file fires. There is one inotify watch per directory, shared
//! by tasks: the wanted set is recomputed and diffed against the current one on every task change
//! and on every create/remove/rename of a target or of one of its ancestors (a recursive watch
//! wins over a non-recursive one on the same or a lower directory). Arming follows
//! add/update/toggle/delete at once.
//!
//! **Matching.** Event kinds: create, modify (data or metadata), remove; a rename counts as
//! `remove` of the old path and `create` of the new one, so a file replaced by rename is a
//! `create` of its path (a file target whose `events` include `modify` takes that too). Reads (access events) never count. A file target matches events on its
//! own path. A directory target matches paths below it (direct children only when `recursive` is
//! false) and, without a `pattern`, the directory itself (created or removed). `pattern` is a
//! glob (`*` does not cross `/`, `**` does): when it contains a `/` it is matched against the
//! path relative to the watched directory (`sites/*.conf`, `**/*.py`), otherwise against the
//! file name alone (`*.conf` matches at any depth). It is not used for a file target.
//!
//! **Debounce.** Per task, trailing edge: the task fires once `debounce_ms` after the last
//! matching event of a batch, through `engine.fire(task, "file-watch", context)` with
//! `CLAUDECRON_FILE_PATH` (last path), `CLAUDECRON_FILE_PATHS` (the batch's distinct paths, one
//! per line, at most 1000 / 64 KiB; `CLAUDECRON_FILE_PATHS_TRUNCATED=1` beyond) and
//! `CLAUDECRON_FILE_EVENT` (`create`/`modify`/`remove` of the last event). The dispatcher sleeps
//! until the earliest deadline or the next message; there is no polling tick.
//!
//! **Self-trigger guard.** Events for a task are ignored while a run this watcher fired for it
//! is queued or running, and for 1 s after any run of the task finishes. So a task that writes
//! into its own watched path runs once per outside change, not in a loop. The cost: a change made
//! by someone else while that run is active (or within the second after) is not seen.
//!
//! **Errors.** A watch that cannot be set (the inotify watch limit, `fs.inotify.max_user_watches`;
//! an unreadable directory; anything else) is written to the task's `trigger_error` (shown by
//! `get_task`) and cleared when the watch arms; failed watches are retried every 30 s and at every
//! task change.

mod batch;
mod targets;
use batch::*;
use targets::*;

use super::debounce::Debouncer;
use crate::engine::EngineHandle;
use crate::store::Store;
use crate::tasks::model::{FileEvent, Task, Trigger};
use crate::tasks::runs::{RunContext, RunStatus, TriggerKind};
use crate::util::PathGlob;
use chrono::Utc;
use crossbeam_channel::{after, never, select, unbounded, Receiver, Sender};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
#[cfg(test)]
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::panic::AssertUnwindSafe;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// After a run of a task ends, its events are ignored this long (self-trigger guard).
const SETTLE: Duration = Duration::from_secs(1);
/// Failed watches are tried again this often.
const RETRY: Duration = Duration::from_secs(30);
/// After a panic in the dispatcher, the watcher is rebuilt this soon.
const PANIC_RETRY: Duration = Duration::from_secs(1);
/// How often the guard re-reads the status of runs it waits for (in case a finish was missed).
const GUARD_RECHECK: Duration = Duration::from_secs(1);
/// Distinct paths kept per batch for `CLAUDECRON_FILE_PATHS`.
const MAX_BATCH_PATHS: usize = 1000;
/// Bytes of `CLAUDECRON_FILE_PATHS` (one environment string is limited to 128 KiB by Linux).
const MAX_PATHS_BYTES: usize = 64 * 1024;
/// Entries reported when a watched directory appears with content already in it.
const SCAN_LIMIT: usize = 1000;
/// Resolve → watch → resolve rounds while paths keep changing under us.
const REARM_ROUNDS: usize = 5;
/// The trigger name recorded on runs.
const TRIGGER: TriggerKind = TriggerKind::FileWatch;

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

/// The watcher's inbox, made before the services start so each can hold the others' handles.
pub struct WatchInbox(Receiver<WatchMsg>);

/// A handle and the inbox it sends to.
pub fn channel() -> (WatchHandle, WatchInbox) {
    let (tx, rx) = unbounded::<WatchMsg>();
    (WatchHandle { tx }, WatchInbox(rx))
}

/// Start the watcher and its dispatcher thread on `inbox`; arms every enabled file-watch task.
///
/// Fails only when the database cannot be opened or the thread cannot start; an inotify watcher
/// that cannot be created is an error on each file-watch task, retried, not a failed start.
pub fn start(inbox: WatchInbox, db_path: PathBuf, engine: EngineHandle) -> Result<(), String> {
    let store = Store::open(&db_path).map_err(|e| format!("file-watch database: {e}"))?;
    let (events_tx, events_rx) = unbounded::<notify::Result<notify::Event>>();
    std::thread::Builder::new()
        .name("file-events".into())
        .spawn(move || {
            let mut dispatcher = Dispatcher::new(store, engine, events_tx);
            dispatcher.arm_all();
            dispatcher.run(inbox.0, events_rx);
        })
        .map_err(|e| format!("cannot start the file-events thread: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dispatcher
// ---------------------------------------------------------------------------------------------

enum Step {
    Msg(WatchMsg),
    Event(notify::Result<notify::Event>),
    Wake,
}

struct Dispatcher {
    store: Store,
    engine: EngineHandle,
    /// Kept so the event channel never disconnects, and to build a new watcher.
    events_tx: Sender<notify::Result<notify::Event>>,
    watcher: Option<RecommendedWatcher>,
    watcher_error: Option<String>,
    armed: BTreeMap<String, Armed>,
    /// Directories watched now, and whether recursively.
    current: BTreeMap<PathBuf, bool>,
    /// Directories wanted at the last arming.
    desired: BTreeMap<PathBuf, bool>,
    /// Wanted directories whose watch failed, with the message for their tasks.
    failed: BTreeMap<PathBuf, String>,
    batches: Debouncer<Batch>,
    guards: HashMap<String, Guard>,
    retry_at: Option<Instant>,
}

impl Dispatcher {
    fn new(
        store: Store,
        engine: EngineHandle,
        events_tx: Sender<notify::Result<notify::Event>>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            engine,
            events_tx,
            watcher: None,
            watcher_error: None,
            armed: BTreeMap::new(),
            current: BTreeMap::new(),
            desired: BTreeMap::new(),
            failed: BTreeMap::new(),
            batches: Debouncer::default(),
            guards: HashMap::new(),
            retry_at: None,
        }
    }

    fn arm_all(&mut self) {
        match self.store.enabled_tasks_with_trigger(TRIGGER) {
            Ok(tasks) => {
                for task in &tasks {
                    self.arm(task);
                }
            }
            Err(e) => log::error!("file-watch: cannot list file-watch tasks: {e}"),
        }
        self.rearm();
    }

    fn run(mut self, ctl: Receiver<WatchMsg>, events: Receiver<notify::Result<notify::Event>>) {
        loop {
            let timer = match self.next_wake() {
                Some(at) => after(at.saturating_duration_since(Instant::now())),
                None => never(),
            };
            let step = select! {
                recv(ctl) -> msg => match msg {
                    Ok(m) => Step::Msg(m),
                    Err(_) => return, // every handle is gone: the server is going away
                },
                recv(events) -> ev => match ev {
                    Ok(e) => Step::Event(e),
                    Err(_) => Step::Wake,
                },
                recv(timer) -> _ => Step::Wake,
            };
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                match step {
                    Step::Msg(msg) => self.on_msg(msg),
                    Step::Event(ev) => self.on_event(ev),
                    Step::Wake => {}
                }
                let now = Instant::now();
                if self.retry_at.is_some_and(|t| t <= now) {
                    self.retry_at = None;
                    self.rearm();
                }
                self.fire_due(Instant::now());
            }));
            if outcome.is_err() {
                log::error!(
                    "file-watch: the dispatcher panicked; rebuilding the watcher in {PANIC_RETRY:?}"
                );
                // Dropping a watcher whose loop died panics inside notify: let it go instead.
                if let Some(w) = self.watcher.take() {
                    std::mem::forget(w);
                }
                self.current.clear();
                self.retry_at = Some(Instant::now() + PANIC_RETRY);
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.batches
            .next_deadline()
            .into_iter()
            .chain(self.retry_at)
            .min()
    }

    fn on_msg(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Changed(id) => {
                match self.store.get_task(&id) {
                    Ok(Some(task)) if task.spec.enabled => self.arm(&task),
                    Ok(_) => self.disarm(&id),
                    Err(e) => {
                        log::error!("file-watch: cannot read task {id}: {e}");
                        return;
                    }
                }
                self.rearm();
            }
            WatchMsg::Deleted(id) => {
                self.armed.remove(&id);
                self.batches.remove(&id);
                self.guards.remove(&id);
                self.rearm();
            }
            WatchMsg::RunFinished(id) => {
                if self.armed.contains_key(&id) {
                    let now = Instant::now();
                    let guard = self.guards.entry(id).or_default();
                    guard.refresh(&self.store, now);
                    guard.settle_until = Some(now + SETTLE);
                }
            }
        }
    }

    /// Arm (or re-arm) an enabled task; a task that is not a file-watch is disarmed.
    fn arm(&mut self, task: &Task) {
        let armed = match Armed::new(&task.spec.name, &task.spec.trigger) {
            None => return self.disarm(&task.id),
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                self.disarm(&task.id);
                self.write_error(&task.id, Some(&e));
                return;
            }
        };
        if let Some(existing) = self.armed.get_mut(&task.id) {
            if existing.trigger == armed.trigger {
                existing.name = armed.name;
                return;
            }
            log::info!("file-watch: task {} changed its trigger", armed.name);
        }
        self.batches.remove(&task.id);
        self.armed.insert(task.id.clone(), armed);
    }

    fn disarm(&mut self, id: &str) {
        if let Some(a) = self.armed.remove(id) {
            log::info!("file-watch: task {} disarmed", a.name);
            if a.error != Some(None) {
                self.write_error(id, None);
            }
        }
        self.batches.remove(id);
        self.guards.remove(id);
    }

    fn write_error(&self, id: &str, error: Option<&str>) -> bool {
        match self.store.set_trigger_error(id, error, Utc::now()) {
            Ok(()) => true,
            Err(e) => {
                log::error!("file-watch: cannot record the trigger error of task {id}: {e}");
                false
            }
        }
    }

    fn ensure_watcher(&mut self) {
        if self.watcher.is_some() {
            return;
        }
        match notify::recommended_watcher(self.events_tx.clone()) {
            Ok(w) => {
                self.watcher = Some(w);
                self.watcher_error = None;
                self.current.clear();
            }
            Err(e) => {
                let msg = watcher_error_message(&e);
                log::error!("file-watch: {msg}");
                self.watcher_error = Some(msg);
            }
        }
    }

    /// Resolve every armed target, bring the watch set in line, record errors, and synthesize
    /// create/remove for targets that appeared or vanished since the last arming.
    fn rearm(&mut self) {
        let before: HashMap<String, Kind> = self
            .armed
            .iter()
            .filter_map(|(id, a)| a.resolved.as_ref().map(|r| (id.clone(), r.kind)))
            .collect();
        if !self.armed.is_empty() {
            self.ensure_watcher();
        }
        for _ in 0..REARM_ROUNDS {
            for a in self.armed.values_mut() {
                a.resolved = Some(resolve(&a.target, a.recursive));
            }
            self.apply_watches();
            // A component may have appeared (or gone) while we were arming: then again.
            let stable = self
                .armed
                .values()
                .all(|a| a.resolved.as_ref() == Some(&resolve(&a.target, a.recursive)));
            if stable {
                break;
            }
        }
        self.update_errors();
        let retry = !self.failed.is_empty() || (self.watcher.is_none() && !self.armed.is_empty());
        self.retry_at = retry.then(|| Instant::now() + RETRY);

        let mut synthetic: Vec<(String, PathBuf, FileEvent)> = Vec::new();
        for (id, kind) in before {
            let Some(a) = self.armed.get(&id) else {
                continue;
            };
            match (kind, a.kind()) {
                (Kind::Missing, Kind::File) => {
                    synthetic.push((id, a.target.clone(), FileEvent::Create));
                }
                (Kind::Missing, Kind::Dir) => {
                    synthetic.push((id.clone(), a.target.clone(), FileEvent::Create));
                    for p in scan(&a.target, a.recursive, SCAN_LIMIT) {
                        synthetic.push((id.clone(), p, FileEvent::Create));
                    }
                }
                (Kind::File | Kind::Dir, Kind::Missing) => {
                    synthetic.push((id, a.target.clone(), FileEvent::Remove));
                }
                _ => {}
            }
        }
        for (id, path, event) in synthetic {
            let hit = self
                .armed
                .get(&id)
                .is_some_and(|a| a.wants(event, &path) && a.matches(&path));
            if hit {
                self.offer(&id, &path, event);
            }
        }
    }

    /// Diff the wanted directories against the watched ones: unwatch first (so a recursive
    /// watch never loses a directory it covers), then watch what is missing.
    fn apply_watches(&mut self) {
        let desired = desired_set(
            self.armed
                .values()
                .filter_map(|a| a.resolved.as_ref())
                .flat_map(|r| r.wants.iter().cloned()),
        );
        let stale: Vec<PathBuf> = self
            .current
            .iter()
            .filter(|(d, r)| desired.get(*d) != Some(*r))
            .map(|(d, _)| d.clone())
            .collect();
        for dir in stale {
            self.unwatch(&dir);
            self.current.remove(&dir);
            log::info!("file-watch: no longer watching {}", dir.display());
        }
        let mut failed = BTreeMap::new();
        for (dir, recursive) in &desired {
            if self.current.contains_key(dir) {
                continue;
            }
            let Some(watcher) = self.watcher.as_mut() else {
                let msg = self
                    .watcher_error
                    .clone()
                    .unwrap_or_else(|| "the file watcher is not running".into());
                failed.insert(dir.clone(), msg);
                continue;
            };
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match watcher.watch(dir, mode) {
                Ok(()) => {
                    self.current.insert(dir.clone(), *recursive);
                    log::info!(
                        "file-watch: watching {}{}",
                        dir.display(),
                        if *recursive { " (recursive)" } else { "" }
                    );
                }
                Err(e) => {
                    // A recursive watch may have been set part-way: take it back.
                    let _ = watcher.unwatch(dir);
                    let msg = watch_error_message(dir, &e);
                    log::warn!("file-watch: {msg}");
                    failed.insert(dir.clone(), msg);
                }
            }
        }
        self.desired = desired;
        self.failed = failed;
    }

    fn unwatch(&mut self, dir: &Path) {
        if let Some(w) = self.watcher.as_mut() {
            // Not found is normal: inotify drops the watch of a deleted directory by itself.
            if let Err(e) = w.unwatch(dir) {
                log::debug!("file-watch: unwatch {}: {e}", dir.display());
            }
        }
    }

    /// Write each task's error (or its absence) when it differs from what was last written.
    fn update_errors(&mut self) {
        let mut writes: Vec<(String, Option<String>)> = Vec::new();
        for (id, a) in &self.armed {
            let error = match &a.resolved {
                Some(r) if r.wants.is_empty() => Some(format!(
                    "cannot watch {}: no existing directory above it can be read",
                    a.target.display()
                )),
                Some(r) => r.wants.iter().find_map(|(dir, _)| {
                    root_of(&self.desired, dir).and_then(|root| self.failed.get(root).cloned())
                }),
                None => None,
            };
            if a.error.as_ref() != Some(&error) {
                writes.push((id.clone(), error));
            }
        }
        for (id, error) in writes {
            if self.write_error(&id, error.as_deref()) {
                if let Some(a) = self.armed.get_mut(&id) {
                    match &error {
                        Some(e) => log::warn!("file-watch: task {} is not armed: {e}", a.name),
                        None => log::info!(
                            "file-watch: task {} armed on {}",
                            a.name,
                            a.target.display()
                        ),
                    }
                    a.error = Some(error);
                }
            }
        }
    }

    fn on_event(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => return self.on_watch_error(e),
        };
        if event.need_rescan() {
            log::warn!(
                "file-watch: the kernel's event queue overflowed; changes may have been missed"
            );
            self.rearm();
        }
        let structural = is_structural(&event.kind);
        let mut rearm = false;
        for (path, change) in classify(&event.kind, &event.paths) {
            let hits: Vec<String> = self
                .armed
                .iter()
                .filter(|(_, a)| a.wants(change, &path) && a.matches(&path))
                .map(|(id, _)| id.clone())
                .collect();
            for id in hits {
                self.offer(&id, &path, change);
            }
            if structural
                && (self.armed.values().any(|a| a.is_above(&path))
                    || self.current.keys().any(|w| w.starts_with(&path)))
            {
                rearm = true;
                // Something was created, removed or renamed at or above a watched directory:
                // its watch may be gone or follow an inode that moved away. Set it again.
                let gone: Vec<PathBuf> = self
                    .current
                    .keys()
                    .filter(|w| w.starts_with(&path))
                    .cloned()
                    .collect();
                for w in gone {
                    self.unwatch(&w);
                    self.current.remove(&w);
                }
            }
        }
        if rearm {
            self.rearm();
        }
    }

    /// An error from the watcher thread (e.g. the watch limit hit while following a new
    /// subdirectory of a recursive watch): the whole watch is set again, so a failure shows up
    /// on its tasks instead of silently missing part of the tree.
    fn on_watch_error(&mut self, e: notify::Error) {
        log::warn!("file-watch: the watcher reported: {e}");
        let broken: Vec<PathBuf> = self
            .current
            .iter()
            .filter(|(w, r)| **r && e.paths.iter().any(|p| p.starts_with(w)))
            .map(|(w, _)| w.clone())
            .collect();
        if broken.is_empty() {
            return;
        }
        for w in broken {
            self.unwatch(&w);
            self.current.remove(&w);
        }
        self.rearm();
    }

    /// A matching change for a task: add it to its batch unless the guard holds it back.
    fn offer(&mut self, id: &str, path: &Path, event: FileEvent) {
        let now = Instant::now();
        if let Some(guard) = self.guards.get_mut(id) {
            if guard
                .checked
                .is_none_or(|c| now.duration_since(c) >= GUARD_RECHECK)
            {
                guard.refresh(&self.store, now);
            }
            if !guard.runs.is_empty() || guard.settle_until.is_some_and(|t| now < t) {
                log::debug!(
                    "file-watch: {} {} ignored for task {id} (its own run is active or just ended)",
                    event_name(event),
                    path.display()
                );
                return;
            }
        }
        let Some(a) = self.armed.get(id) else {
            return;
        };
        // A change to the file a symlinked target points to is reported under the target's name.
        let path = if a.alias() == Some(path) {
            a.target.as_path()
        } else {
            path
        };
        let deadline = now + a.debounce;
        self.batches.offer(id, deadline, |batch| match batch {
            Some(mut b) => {
                b.push(path, event);
                b
            }
            None => Batch::new(path, event),
        });
    }

    fn fire_due(&mut self, now: Instant) {
        for (id, batch) in self.batches.take_due(now) {
            let Some(name) = self.armed.get(&id).map(|a| a.name.clone()) else {
                continue;
            };
            match self.engine.fire(&id, TRIGGER, Some(batch.context())) {
                Ok(run_id) => {
                    let status = self.store.get_run(run_id).ok().flatten().map(|r| r.status);
                    log::info!(
                        "file-watch: task {name} fired (run {run_id}, {}) after {} change(s), last: {} {}",
                        status.map(RunStatus::as_str).unwrap_or("?"),
                        batch.paths.len(),
                        event_name(batch.last_event),
                        batch.last_path.display()
                    );
                    if status != Some(RunStatus::Skipped) {
                        let guard = self.guards.entry(id).or_default();
                        guard.runs.push(run_id);
                        guard.checked = Some(Instant::now());
                    }
                }
                Err(e) => log::warn!("file-watch: cannot fire task {name}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
