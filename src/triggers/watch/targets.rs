//! File-watch targets: what a task watches (a file through its directory, a directory,
//! a path that does not exist yet), which directories that needs, which events and paths match,
//! and the messages for watches that cannot be set. Pure path logic plus reads of the file
//! system; no threads, no store.

use super::*;

/// What the target path is on disk right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Missing,
}

/// A target resolved against the file system: the directories to watch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) kind: Kind,
    /// Directories and whether recursively.
    pub(super) wants: Vec<(PathBuf, bool)>,
    /// For a file target that is a symlink: the file it points to.
    pub(super) alias: Option<PathBuf>,
}

/// An armed file-watch task.
pub(super) struct Armed {
    pub(super) name: String,
    pub(super) trigger: Trigger,
    pub(super) target: PathBuf,
    pub(super) pattern: Option<PathGlob>,
    pub(super) recursive: bool,
    pub(super) events: Vec<FileEvent>,
    pub(super) debounce: Duration,
    /// None until first resolved (no create/remove is synthesized for a fresh arming).
    pub(super) resolved: Option<Resolved>,
    /// What was last written to the task's trigger error; None: unknown (write at next arming).
    pub(super) error: Option<Option<String>>,
}

impl Armed {
    /// Whether the task's `events` take this change. A watched *file* that appears again under
    /// its own name (an editor's save by rename, `cp`, `sed -i`, a deploy) has had its content
    /// replaced, so for a file target that counts as `modify` as well as `create`.
    pub(super) fn wants(&self, change: FileEvent, path: &Path) -> bool {
        self.events.contains(&change)
            || (change == FileEvent::Create
                && path == self.target
                && self.events.contains(&FileEvent::Modify)
                && !self.target.is_dir())
    }

    /// None when the trigger is not a file-watch; Err for a pattern that does not compile.
    pub(super) fn new(name: &str, trigger: &Trigger) -> Option<Result<Armed, String>> {
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

    pub(super) fn kind(&self) -> Kind {
        self.resolved.as_ref().map_or(Kind::Missing, |r| r.kind)
    }

    pub(super) fn alias(&self) -> Option<&Path> {
        self.resolved.as_ref().and_then(|r| r.alias.as_deref())
    }

    /// Whether a change at `path` concerns this task (event kinds are checked by the caller).
    pub(super) fn matches(&self, path: &Path) -> bool {
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
    pub(super) fn is_above(&self, path: &Path) -> bool {
        self.target.starts_with(path) || self.alias().is_some_and(|a| a.starts_with(path))
    }
}

/// The path lexically cleaned: no `.` components, no repeated or trailing `/`. Symlinks and `..`
/// are left alone (events come back under the path we watch, as given).
pub(super) fn normalize(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Where to watch for `target` now.
pub(super) fn resolve(target: &Path, recursive: bool) -> Resolved {
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
pub(super) fn symlink_alias(target: &Path, parent: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
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
pub(super) fn desired_set(wants: impl Iterator<Item = (PathBuf, bool)>) -> BTreeMap<PathBuf, bool> {
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
pub(super) fn root_of<'a>(desired: &'a BTreeMap<PathBuf, bool>, dir: &Path) -> Option<&'a PathBuf> {
    if let Some((d, _)) = desired.get_key_value(dir) {
        return Some(d);
    }
    desired
        .iter()
        .find(|(d, r)| **r && dir.starts_with(d))
        .map(|(d, _)| d)
}

/// An event as (path, kind) changes; empty for what never counts (reads, overflow markers).
pub(super) fn classify(kind: &EventKind, paths: &[PathBuf]) -> Vec<(PathBuf, FileEvent)> {
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
pub(super) fn is_structural(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    )
}

pub(super) fn event_name(e: FileEvent) -> &'static str {
    match e {
        FileEvent::Create => "create",
        FileEvent::Modify => "modify",
        FileEvent::Remove => "remove",
    }
}

/// The message shown on a task whose watch on `dir` could not be set.
pub(super) fn watch_error_message(dir: &Path, e: &notify::Error) -> String {
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
pub(super) fn watcher_error_message(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => format!(
            "cannot start the file watcher: too many inotify instances ({e}); raise \
             fs.inotify.max_user_instances; retried every 30 s"
        ),
        _ => format!("cannot start the file watcher: {e}; retried every 30 s"),
    }
}

/// What is in a directory that just appeared (bounded; symlinked directories are not entered).
pub(super) fn scan(dir: &Path, recursive: bool, limit: usize) -> Vec<PathBuf> {
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
