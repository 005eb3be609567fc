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
// Targets: what a task watches and what matches it
// ---------------------------------------------------------------------------------------------

/// What the target path is on disk right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Missing,
}

/// A target resolved against the file system: the directories to watch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    kind: Kind,
    /// Directories and whether recursively.
    wants: Vec<(PathBuf, bool)>,
    /// For a file target that is a symlink: the file it points to.
    alias: Option<PathBuf>,
}

/// An armed file-watch task.
struct Armed {
    name: String,
    trigger: Trigger,
    target: PathBuf,
    pattern: Option<PathGlob>,
    recursive: bool,
    events: Vec<FileEvent>,
    debounce: Duration,
    /// None until first resolved (no create/remove is synthesized for a fresh arming).
    resolved: Option<Resolved>,
    /// What was last written to the task's trigger error; None: unknown (write at next arming).
    error: Option<Option<String>>,
}

impl Armed {
    /// Whether the task's `events` take this change. A watched *file* that appears again under
    /// its own name (an editor's save by rename, `cp`, `sed -i`, a deploy) has had its content
    /// replaced, so for a file target that counts as `modify` as well as `create`.
    fn wants(&self, change: FileEvent, path: &Path) -> bool {
        self.events.contains(&change)
            || (change == FileEvent::Create
                && path == self.target
                && self.events.contains(&FileEvent::Modify)
                && !self.target.is_dir())
    }

    /// None when the trigger is not a file-watch; Err for a pattern that does not compile.
    fn new(name: &str, trigger: &Trigger) -> Option<Result<Armed, String>> {
        let Trigger::FileWatch {
            path,
            pattern,
            recursive,
            events,
            debounce_ms,
        } = trigger
        else {
            return None;
        };
        let pattern = match pattern
            .as_deref()
            .map(|p| {
                PathGlob::new(p)
                    .map_err(|e| format!("trigger.pattern \"{p}\" is not a valid glob: {e}"))
            })
            .transpose()
        {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Armed {
            name: name.to_string(),
            trigger: trigger.clone(),
            target: normalize(path),
            pattern,
            recursive: *recursive,
            events: events.clone(),
            debounce: Duration::from_millis(*debounce_ms),
            resolved: None,
            error: None,
        }))
    }

    fn kind(&self) -> Kind {
        self.resolved.as_ref().map_or(Kind::Missing, |r| r.kind)
    }

    fn alias(&self) -> Option<&Path> {
        self.resolved.as_ref().and_then(|r| r.alias.as_deref())
    }

    /// Whether a change at `path` concerns this task (event kinds are checked by the caller).
    fn matches(&self, path: &Path) -> bool {
        if path == self.target || self.alias() == Some(path) {
            return self.pattern.is_none() || self.kind() == Kind::File;
        }
        let Ok(rel) = path.strip_prefix(&self.target) else {
            return false;
        };
        if rel.as_os_str().is_empty() || (!self.recursive && rel.components().count() != 1) {
            return false;
        }
        self.pattern.as_ref().is_none_or(|p| p.is_match(rel))
    }

    /// Whether a create/remove/rename at `path` can change how this task is armed.
    fn is_above(&self, path: &Path) -> bool {
        self.target.starts_with(path) || self.alias().is_some_and(|a| a.starts_with(path))
    }
}

/// The path lexically cleaned: no `.` components, no repeated or trailing `/`. Symlinks and `..`
/// are left alone (events come back under the path we watch, as given).
fn normalize(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Where to watch for `target` now.
fn resolve(target: &Path, recursive: bool) -> Resolved {
    match std::fs::metadata(target) {
        Ok(m) if m.is_dir() => Resolved {
            kind: Kind::Dir,
            wants: vec![(target.to_path_buf(), recursive)],
            alias: None,
        },
        Ok(_) => {
            let mut wants = Vec::new();
            let mut alias = None;
            if let Some(parent) = target.parent() {
                wants.push((parent.to_path_buf(), false));
                if let Some((real, other_dir)) = symlink_alias(target, parent) {
                    wants.extend(other_dir.map(|d| (d, false)));
                    alias = Some(real);
                }
            }
            Resolved {
                kind: Kind::File,
                wants,
                alias,
            }
        }
        Err(_) => {
            let wants = target
                .ancestors()
                .skip(1)
                .find(|a| std::fs::metadata(a).is_ok_and(|m| m.is_dir()))
                .map(|a| vec![(a.to_path_buf(), false)])
                .unwrap_or_default();
            Resolved {
                kind: Kind::Missing,
                wants,
                alias: None,
            }
        }
    }
}

/// For a target whose last component is a symlink: the file it points to, as events will name
/// it, and that file's directory when it is another directory (to watch too).
fn symlink_alias(target: &Path, parent: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let link = std::fs::symlink_metadata(target).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    let real = std::fs::canonicalize(target).ok()?;
    let real_parent = real.parent()?.to_path_buf();
    let a = std::fs::metadata(parent).ok()?;
    let b = std::fs::metadata(&real_parent).ok()?;
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        // The same directory (maybe under another name): one inotify watch, whose events name
        // the file under the path we watch.
        let alias = parent.join(real.file_name()?);
        return (alias != target).then_some((alias, None));
    }
    Some((real, Some(real_parent)))
}

/// The union of what tasks want: one entry per directory, recursive if any task wants it so,
/// and no entry below a recursively watched directory (that watch covers it).
fn desired_set(wants: impl Iterator<Item = (PathBuf, bool)>) -> BTreeMap<PathBuf, bool> {
    let mut desired: BTreeMap<PathBuf, bool> = BTreeMap::new();
    for (dir, recursive) in wants {
        *desired.entry(dir).or_insert(false) |= recursive;
    }
    let recursive: Vec<PathBuf> = desired
        .iter()
        .filter(|(_, r)| **r)
        .map(|(d, _)| d.clone())
        .collect();
    desired.retain(|d, _| !recursive.iter().any(|r| d != r && d.starts_with(r)));
    desired
}

/// The entry of `desired` that watches `dir`: itself, or a recursive ancestor.
fn root_of<'a>(desired: &'a BTreeMap<PathBuf, bool>, dir: &Path) -> Option<&'a PathBuf> {
    if let Some((d, _)) = desired.get_key_value(dir) {
        return Some(d);
    }
    desired
        .iter()
        .find(|(d, r)| **r && dir.starts_with(d))
        .map(|(d, _)| d)
}

/// An event as (path, kind) changes; empty for what never counts (reads, overflow markers).
fn classify(kind: &EventKind, paths: &[PathBuf]) -> Vec<(PathBuf, FileEvent)> {
    let all = |e: FileEvent| paths.iter().map(|p| (p.clone(), e)).collect();
    match kind {
        EventKind::Access(_) | EventKind::Any | EventKind::Other => Vec::new(),
        EventKind::Create(_) => all(FileEvent::Create),
        EventKind::Remove(_) => all(FileEvent::Remove),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => all(FileEvent::Create),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => all(FileEvent::Remove),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut out = Vec::new();
            if let Some(from) = paths.first() {
                out.push((from.clone(), FileEvent::Remove));
            }
            out.extend(paths.iter().skip(1).map(|p| (p.clone(), FileEvent::Create)));
            out
        }
        EventKind::Modify(_) => all(FileEvent::Modify),
    }
}

/// Whether an event kind can change which directories exist (and so what must be watched).
fn is_structural(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    )
}

fn event_name(e: FileEvent) -> &'static str {
    match e {
        FileEvent::Create => "create",
        FileEvent::Modify => "modify",
        FileEvent::Remove => "remove",
    }
}

/// The message shown on a task whose watch on `dir` could not be set.
fn watch_error_message(dir: &Path, e: &notify::Error) -> String {
    let at = e
        .paths
        .first()
        .filter(|p| p.as_path() != dir)
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    let dir = dir.display();
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => format!(
            "cannot watch {dir}{at}: the inotify watch limit is reached (a recursive watch takes one \
             per directory); raise fs.inotify.max_user_watches (e.g. sysctl -w \
             fs.inotify.max_user_watches=524288) or watch a smaller tree; retried every 30 s"
        ),
        notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            format!(
                "cannot watch {dir}: permission denied{at}; the server's user must be able to \
                 read the directory; retried every 30 s"
            )
        }
        notify::ErrorKind::PathNotFound => {
            format!("cannot watch {dir}: it disappeared while being armed; retried")
        }
        _ => format!("cannot watch {dir}: {e}; retried every 30 s"),
    }
}

/// The message shown when the inotify watcher itself cannot be created.
fn watcher_error_message(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => format!(
            "cannot start the file watcher: too many inotify instances ({e}); raise \
             fs.inotify.max_user_instances; retried every 30 s"
        ),
        _ => format!("cannot start the file watcher: {e}; retried every 30 s"),
    }
}

/// What is in a directory that just appeared (bounded; symlinked directories are not entered).
fn scan(dir: &Path, recursive: bool, limit: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            if out.len() >= limit {
                return out;
            }
            let path = entry.path();
            if recursive && entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Debounce batches and the self-trigger guard
// ---------------------------------------------------------------------------------------------

/// Changes seen for one task since its last fire.
struct Batch {
    paths: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    bytes: usize,
    truncated: bool,
    last_path: PathBuf,
    last_event: FileEvent,
}

impl Batch {
    fn new(path: &Path, event: FileEvent) -> Batch {
        let mut batch = Batch {
            paths: Vec::new(),
            seen: HashSet::new(),
            bytes: 0,
            truncated: false,
            last_path: path.to_path_buf(),
            last_event: event,
        };
        batch.push(path, event);
        batch
    }

    fn push(&mut self, path: &Path, event: FileEvent) {
        if !self.seen.contains(path) {
            let len = path.as_os_str().len() + 1;
            if self.paths.len() < MAX_BATCH_PATHS && self.bytes + len <= MAX_PATHS_BYTES {
                self.bytes += len;
                self.seen.insert(path.to_path_buf());
                self.paths.push(path.to_path_buf());
            } else {
                self.truncated = true;
            }
        }
        self.last_path = path.to_path_buf();
        self.last_event = event;
    }

    /// The run context: environment variables for the command.
    fn context(&self) -> RunContext {
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut env = std::collections::BTreeMap::new();
        env.insert(
            "CLAUDECRON_FILE_PATH".to_string(),
            self.last_path.to_string_lossy().into_owned(),
        );
        env.insert("CLAUDECRON_FILE_PATHS".to_string(), paths.join("\n"));
        env.insert(
            "CLAUDECRON_FILE_EVENT".to_string(),
            event_name(self.last_event).to_string(),
        );
        if self.truncated {
            env.insert("CLAUDECRON_FILE_PATHS_TRUNCATED".to_string(), "1".into());
        }
        RunContext {
            env,
            ..RunContext::default()
        }
    }
}

/// Self-trigger guard state of one task.
#[derive(Default)]
struct Guard {
    /// Runs this watcher fired that were queued or running when last looked at.
    runs: Vec<i64>,
    checked: Option<Instant>,
    settle_until: Option<Instant>,
}

impl Guard {
    /// Drop runs that have ended; the settle period starts when the last one is gone.
    fn refresh(&mut self, store: &Store, now: Instant) {
        if self.runs.is_empty() {
            return;
        }
        self.runs.retain(|id| match store.get_run(*id) {
            Ok(Some(run)) => !run.status.is_terminal(),
            Ok(None) => false,
            Err(e) => {
                log::warn!("file-watch: cannot read run {id}: {e}");
                true
            }
        });
        self.checked = Some(now);
        if self.runs.is_empty() {
            self.settle_until = Some(now + SETTLE);
        }
    }
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
mod tests {
    use super::*;

    fn armed(json: Value) -> Armed {
        let trigger: Trigger = serde_json::from_value(json).expect("trigger");
        match Armed::new("t", &trigger) {
            Some(Ok(a)) => a,
            _ => panic!("not armable"),
        }
    }

    fn with_kind(mut a: Armed, kind: Kind) -> Armed {
        a.resolved = Some(Resolved {
            kind,
            wants: Vec::new(),
            alias: None,
        });
        a
    }

    fn fw(path: &str, pattern: Option<&str>, recursive: bool) -> Value {
        let mut t = json!({"type": "file-watch", "path": path, "recursive": recursive,
            "events": ["create", "modify", "remove"], "debounce_ms": 100});
        if let Some(p) = pattern {
            t["pattern"] = json!(p);
        }
        t
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize("/a/./b//c/"), PathBuf::from("/a/b/c"));
        assert_eq!(normalize("/a/../b"), PathBuf::from("/a/../b"));
    }

    #[test]
    fn file_target_matches_only_itself() {
        let a = with_kind(armed(fw("/etc/nginx/nginx.conf", None, true)), Kind::File);
        assert!(a.matches(Path::new("/etc/nginx/nginx.conf")));
        assert!(!a.matches(Path::new("/etc/nginx/nginx.conf.swp")));
        assert!(!a.matches(Path::new("/etc/nginx/mime.types")));
        // The pattern is not used for a file target.
        let a = with_kind(
            armed(fw("/etc/nginx/nginx.conf", Some("*.py"), true)),
            Kind::File,
        );
        assert!(a.matches(Path::new("/etc/nginx/nginx.conf")));
    }

    #[test]
    fn directory_target_recursive_and_not() {
        let rec = with_kind(armed(fw("/srv/d", None, true)), Kind::Dir);
        let flat = with_kind(armed(fw("/srv/d", None, false)), Kind::Dir);
        for a in [&rec, &flat] {
            assert!(a.matches(Path::new("/srv/d/x")));
            assert!(a.matches(Path::new("/srv/d")));
            assert!(!a.matches(Path::new("/srv/dd/x")));
            assert!(!a.matches(Path::new("/srv")));
        }
        assert!(rec.matches(Path::new("/srv/d/sub/x")));
        assert!(!flat.matches(Path::new("/srv/d/sub/x")));
    }

    #[test]
    fn pattern_name_or_relative_path() {
        let name = with_kind(armed(fw("/srv/d", Some("*.conf"), true)), Kind::Dir);
        assert!(name.matches(Path::new("/srv/d/a.conf")));
        assert!(name.matches(Path::new("/srv/d/sites/b.conf")));
        assert!(!name.matches(Path::new("/srv/d/a.txt")));
        // With a pattern the directory itself does not count.
        assert!(!name.matches(Path::new("/srv/d")));
        let rel = with_kind(armed(fw("/srv/d", Some("sites/*.conf"), true)), Kind::Dir);
        assert!(rel.matches(Path::new("/srv/d/sites/b.conf")));
        assert!(!rel.matches(Path::new("/srv/d/b.conf")));
        assert!(!rel.matches(Path::new("/srv/d/sites/x/b.conf")));
        let deep = with_kind(armed(fw("/srv/d", Some("**/*.py"), true)), Kind::Dir);
        assert!(deep.matches(Path::new("/srv/d/a/b/c.py")));
        assert!(deep.matches(Path::new("/srv/d/c.py")));
    }

    #[test]
    fn renames_are_create_and_remove_and_reads_never_count() {
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, MetadataKind};
        let a = PathBuf::from("/d/a");
        let b = PathBuf::from("/d/b");
        let both = vec![a.clone(), b.clone()];
        assert_eq!(
            classify(
                &EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &both
            ),
            vec![
                (a.clone(), FileEvent::Remove),
                (b.clone(), FileEvent::Create)
            ]
        );
        let one = vec![a.clone()];
        assert_eq!(
            classify(&EventKind::Modify(ModifyKind::Name(RenameMode::To)), &one),
            vec![(a.clone(), FileEvent::Create)]
        );
        assert_eq!(
            classify(&EventKind::Modify(ModifyKind::Name(RenameMode::From)), &one),
            vec![(a.clone(), FileEvent::Remove)]
        );
        assert_eq!(
            classify(&EventKind::Modify(ModifyKind::Data(DataChange::Any)), &one),
            vec![(a.clone(), FileEvent::Modify)]
        );
        assert_eq!(
            classify(
                &EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                &one
            ),
            vec![(a.clone(), FileEvent::Modify)]
        );
        assert_eq!(
            classify(&EventKind::Create(CreateKind::File), &one),
            vec![(a.clone(), FileEvent::Create)]
        );
        assert!(classify(
            &EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &one
        )
        .is_empty());
        assert!(classify(&EventKind::Other, &[]).is_empty());
    }

    #[test]
    fn desired_set_merges_and_recursive_wins() {
        let d = desired_set(
            vec![
                (PathBuf::from("/a"), false),
                (PathBuf::from("/a"), true),
                (PathBuf::from("/a/b"), false),
                (PathBuf::from("/ab"), false),
                (PathBuf::from("/c/d"), false),
                (PathBuf::from("/c"), false),
            ]
            .into_iter(),
        );
        let want: BTreeMap<PathBuf, bool> =
            [("/a", true), ("/ab", false), ("/c", false), ("/c/d", false)]
                .into_iter()
                .map(|(p, r)| (PathBuf::from(p), r))
                .collect();
        assert_eq!(d, want);
        assert_eq!(root_of(&d, Path::new("/a/b")), Some(&PathBuf::from("/a")));
        assert_eq!(root_of(&d, Path::new("/c/d")), Some(&PathBuf::from("/c/d")));
        assert_eq!(root_of(&d, Path::new("/c/e")), None);
    }

    #[test]
    fn resolve_file_dir_and_missing() {
        let base = std::env::temp_dir().join(format!("cc-watch-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("dir")).expect("mkdir");
        std::fs::write(base.join("f"), "x").expect("write");
        let r = resolve(&base.join("f"), true);
        assert_eq!(r.kind, Kind::File);
        assert_eq!(r.wants, vec![(base.clone(), false)]);
        let r = resolve(&base.join("dir"), true);
        assert_eq!(r.kind, Kind::Dir);
        assert_eq!(r.wants, vec![(base.join("dir"), true)]);
        let r = resolve(&base.join("dir/x/y/z"), false);
        assert_eq!(r.kind, Kind::Missing);
        assert_eq!(r.wants, vec![(base.join("dir"), false)]);
        // A symlink to a file elsewhere: both directories, the real file as alias.
        std::fs::create_dir_all(base.join("real")).expect("mkdir");
        std::fs::write(base.join("real/conf"), "x").expect("write");
        std::os::unix::fs::symlink(base.join("real/conf"), base.join("dir/link")).expect("ln");
        let r = resolve(&base.join("dir/link"), true);
        assert_eq!(r.kind, Kind::File);
        assert_eq!(
            r.wants,
            vec![(base.join("dir"), false), (base.join("real"), false)]
        );
        assert_eq!(r.alias, Some(base.join("real/conf")));
        // A symlink to a sibling: one directory, the sibling as alias.
        std::fs::write(base.join("dir/conf.real"), "x").expect("write");
        std::os::unix::fs::symlink("conf.real", base.join("dir/conf")).expect("ln");
        let r = resolve(&base.join("dir/conf"), true);
        assert_eq!(r.wants, vec![(base.join("dir"), false)]);
        assert_eq!(r.alias, Some(base.join("dir/conf.real")));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn batch_keeps_distinct_paths_and_the_last_event() {
        let mut b = Batch::new(Path::new("/d/a"), FileEvent::Create);
        b.push(Path::new("/d/b"), FileEvent::Modify);
        b.push(Path::new("/d/a"), FileEvent::Remove);
        let ctx: Value = serde_json::to_value(b.context()).expect("json");
        assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATH"], "/d/a");
        assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATHS"], "/d/a\n/d/b");
        assert_eq!(ctx["env"]["CLAUDECRON_FILE_EVENT"], "remove");
        assert!(ctx["env"].get("CLAUDECRON_FILE_PATHS_TRUNCATED").is_none());
        for i in 0..(MAX_BATCH_PATHS + 10) {
            b.push(Path::new(&format!("/d/many/{i}")), FileEvent::Create);
        }
        assert_eq!(b.paths.len(), MAX_BATCH_PATHS);
        let ctx: Value = serde_json::to_value(b.context()).expect("json");
        assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATHS_TRUNCATED"], "1");
    }

    #[test]
    fn error_messages_name_the_limit_and_the_directory() {
        let limit = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        let msg = watch_error_message(Path::new("/srv/big"), &limit);
        assert!(msg.contains("/srv/big") && msg.contains("fs.inotify.max_user_watches"));
        let denied = notify::Error::io(std::io::Error::from_raw_os_error(libc::EACCES))
            .add_path(PathBuf::from("/srv/big/private"));
        let msg = watch_error_message(Path::new("/srv/big"), &denied);
        assert!(msg.contains("permission denied") && msg.contains("/srv/big/private"));
    }
}
