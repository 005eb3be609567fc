//! Why the database refuses writes, named: its file deleted or replaced under a running server,
//! read-only, disk full, locked, I/O errors, damage. Each `Store` remembers the (device, inode)
//! of its file at open, and so does the process for each path it opened: every write first
//! compares the file at the path with it (one `stat`), so nothing is written into a deleted file
//! and no new connection creates an empty database in its place. SQLite's error codes become a
//! [`Fault`] naming the cause and the file; the first occurrence of each cause is logged.

use super::*;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What kind of trouble the database is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The file was deleted while the server was running.
    Deleted,
    /// Another file was put at the path while the server was running.
    Replaced,
    /// The file, its `-wal` or its file system does not accept writes.
    ReadOnly,
    /// The disk is full.
    DiskFull,
    /// Another process holds the write lock (longer than the busy wait).
    Locked,
    /// The operating system reported an I/O error.
    Io,
    /// The file is not a healthy SQLite database.
    Damaged,
}

/// A database fault: its kind, the database file when known, and what SQLite or the OS said.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub path: Option<PathBuf>,
    pub detail: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self
            .path
            .as_ref()
            .map(|p| format!(" {}", p.display()))
            .unwrap_or_default();
        let detail = &self.detail;
        match self.kind {
            FaultKind::Deleted => write!(
                f,
                "the database file{at} was deleted while claudecron was running; writes are refused so that nothing is saved into the deleted file: put a backup back at that path, or restart claudecron to start a new, empty database"
            ),
            FaultKind::Replaced => write!(
                f,
                "the database file{at} was replaced while claudecron was running; writes are refused until claudecron is restarted on the new file"
            ),
            FaultKind::ReadOnly => write!(
                f,
                "the database{at} is read-only ({detail}); check the permissions, attributes (lsattr) and mount of the file, its -wal file and its directory"
            ),
            FaultKind::DiskFull => write!(
                f,
                "the disk holding the database{at} is full ({detail}); free some space, then retry"
            ),
            FaultKind::Locked => write!(
                f,
                "the database{at} is locked by another process ({detail}); retry, and look for a process holding it (fuser)"
            ),
            FaultKind::Io => write!(
                f,
                "the database{at} cannot be written or read: disk I/O error ({detail})"
            ),
            FaultKind::Damaged => write!(
                f,
                "the database{at} is damaged ({detail}); restore it from a backup (claudecron backup)"
            ),
        }
    }
}

impl Fault {
    /// The fault an SQLite error stands for; None for errors of the request itself
    /// (constraints, bad SQL, type mismatches).
    pub(super) fn of_sqlite(e: &rusqlite::Error) -> Option<Fault> {
        let rusqlite::Error::SqliteFailure(failure, message) = e else {
            return None;
        };
        use rusqlite::ErrorCode::*;
        let kind = match failure.code {
            ReadOnly if failure.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED => {
                FaultKind::Deleted
            }
            ReadOnly => FaultKind::ReadOnly,
            DiskFull => FaultKind::DiskFull,
            DatabaseBusy | DatabaseLocked => FaultKind::Locked,
            SystemIoFailure | CannotOpen => FaultKind::Io,
            DatabaseCorrupt | NotADatabase => FaultKind::Damaged,
            _ => return None,
        };
        let text = message.clone().unwrap_or_else(|| failure.to_string());
        Some(Fault {
            kind,
            path: None,
            detail: format!("{text}; SQLite code {}", failure.extended_code),
        })
    }
}

/// (device, inode): which file a path named when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(path: &Path) -> std::io::Result<FileId> {
        let meta = std::fs::metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// Each database path this process opened, the file it named then, and whether its loss was
/// logged. A path opened once keeps naming that file for the life of the process.
static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

struct Opened {
    path: PathBuf,
    id: FileId,
    reported: bool,
}

fn opened() -> std::sync::MutexGuard<'static, Vec<Opened>> {
    OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The database file of one `Store`: its path and the file it named at open.
#[derive(Debug)]
pub(super) struct DbFile {
    path: PathBuf,
    id: FileId,
}

impl DbFile {
    /// Before opening `path`: refuse when this process opened it before and the file is now
    /// gone or another one (SQLite would create or open a different database there).
    pub(super) fn check_before_open(path: &Path) -> Result<()> {
        let path = absolute(path);
        let known = opened().iter().find(|o| o.path == path).map(|o| o.id);
        match known {
            Some(id) => compare(&path, id),
            None => Ok(()),
        }
    }

    /// Right after opening `path`: remember the file (the first time this process opens the
    /// path) or check it is still the one first opened.
    pub(super) fn opened(path: &Path) -> Result<DbFile> {
        let path = absolute(path);
        let id = FileId::of(&path).map_err(|e| {
            StoreError::Fault(Fault {
                kind: FaultKind::Io,
                path: Some(path.clone()),
                detail: format!("cannot stat the file right after opening it: {e}"),
            })
        })?;
        let mut all = opened();
        match all.iter().find(|o| o.path == path) {
            // The file changed between the check before the open and the open itself.
            Some(known) if known.id != id => {
                let first = known.id;
                drop(all);
                compare(&path, first)?;
                Err(fault(&path, FaultKind::Replaced, String::new()))
            }
            Some(_) => Ok(DbFile { path, id }),
            None => {
                all.push(Opened {
                    path: path.clone(),
                    id,
                    reported: false,
                });
                Ok(DbFile { path, id })
            }
        }
    }

    /// The fault of a database SQLite could open for reading only.
    pub(super) fn opened_read_only(path: &Path) -> Fault {
        let file = DbFile {
            path: absolute(path),
            id: FileId { dev: 0, ino: 0 },
        };
        file.explain(Fault {
            kind: FaultKind::ReadOnly,
            path: None,
            detail: "SQLite could open it for reading only".into(),
        })
    }

    /// Before each write: the file at the path is still the one opened (one `stat`).
    pub(super) fn verify(&self) -> Result<()> {
        compare(&self.path, self.id)
    }

    /// A fault of this file, with what the file system says about writing its `-wal` when
    /// SQLite only knows "read-only" or "I/O error"; logged the first time it occurs.
    pub(super) fn explain(&self, mut fault: Fault) -> Fault {
        fault.path = Some(self.path.clone());
        if matches!(fault.kind, FaultKind::ReadOnly | FaultKind::Io) {
            // Opening the -wal for appending writes nothing, and SQLite holds no POSIX lock on
            // it, so closing it again cannot drop one of SQLite's locks (as closing another
            // descriptor of the database file itself would).
            let wal = PathBuf::from(format!("{}-wal", self.path.display()));
            if let Err(e) = std::fs::OpenOptions::new().append(true).open(&wal) {
                use std::io::ErrorKind::*;
                if matches!(e.kind(), PermissionDenied | ReadOnlyFilesystem) {
                    fault.kind = FaultKind::ReadOnly;
                    fault.detail = format!("{}: {e}; {}", wal.display(), fault.detail);
                }
            }
        }
        report(&fault);
        fault
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn fault(path: &Path, kind: FaultKind, detail: String) -> StoreError {
    StoreError::Fault(Fault {
        kind,
        path: Some(path.to_path_buf()),
        detail,
    })
}

/// The file at `path` is the file `id`; otherwise a Deleted/Replaced fault, logged once.
fn compare(path: &Path, id: FileId) -> Result<()> {
    let kind = match FileId::of(path) {
        Ok(now) if now == id => return Ok(()),
        Ok(_) => FaultKind::Replaced,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FaultKind::Deleted,
        Err(e) => return Err(fault(path, FaultKind::Io, format!("cannot stat it: {e}"))),
    };
    let f = Fault {
        kind,
        path: Some(path.to_path_buf()),
        detail: String::new(),
    };
    let first = {
        let mut all = opened();
        match all.iter_mut().find(|o| o.path == path) {
            Some(o) if !o.reported => {
                o.reported = true;
                true
            }
            _ => false,
        }
    };
    if first {
        log::error!("{f}");
        remember(&f);
    }
    Err(StoreError::Fault(f))
}

/// Whether the last write of any store failed with a fault (a cheap check on the success path).
static FAULTY: AtomicBool = AtomicBool::new(false);
/// The fault the last failed write met, until a write succeeds again.
static LAST: Mutex<Option<Fault>> = Mutex::new(None);

fn last() -> std::sync::MutexGuard<'static, Option<Fault>> {
    LAST.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn remember(fault: &Fault) {
    *last() = Some(fault.clone());
    FAULTY.store(true, Ordering::Relaxed);
}

/// Log a fault when its kind differs from the one logged last (no flood while it lasts).
fn report(fault: &Fault) {
    let changed = last().as_ref().is_none_or(|f| f.kind != fault.kind);
    if changed {
        log::error!("database: {fault}");
    }
    remember(fault);
}

/// A write succeeded: the fault (if any) is over.
pub(super) fn recovered() {
    if FAULTY.swap(false, Ordering::Relaxed) {
        if let Some(f) = last().take() {
            if !matches!(f.kind, FaultKind::Deleted | FaultKind::Replaced) {
                log::info!("database: writes succeed again");
            }
        }
    }
}

/// The fault the last failed write met, until a write succeeds again; for callers that got a
/// database error as text from another thread (the engine) and want its cause.
pub fn current_fault() -> Option<Fault> {
    if !FAULTY.load(Ordering::Relaxed) {
        return None;
    }
    last().clone()
}
