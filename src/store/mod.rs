//! The SQLite store: schema, migrations and every SQL statement in the program. One `Store` per
//! thread (one connection each, WAL mode); no other module writes SQL, and the store never decides
//! policy (what to run, when) — it only records and reads. Every write goes through
//! `Store::write`, which refuses a deleted or replaced database file and names the cause of a
//! failed write (`fault`). Hot statements are prepared once per connection (`prepare_cached`).

mod approval;
mod busy;
mod deadman;
mod fault;
mod migrations;
mod oauth;
mod pages;
mod pool;
mod runs;
mod webhook;
use busy::{busy_wait, BUSY_BUDGET};
pub use deadman::Deadman;
use fault::DbFile;
pub use fault::{current_fault, Fault};
pub use oauth::{OAuthClient, TokenPair};
pub use pages::*;
pub use pool::{Lent, StorePool};
pub use runs::*;

use crate::tasks::model::{Task, TaskSpec, TaskType};
use crate::tasks::runs::{RunContext, RunStatus, TriggerKind};
use crate::util::{
    parse_utc, rfc3339, rfc3339_millis, serialize_time_millis, serialize_time_millis_opt,
    serialize_time_opt,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

use migrations::MIGRATIONS;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_WAIT: Duration = Duration::from_millis(5000);
/// How long the `/health` write waits for it (a health check must answer quickly).
const HEALTH_BUSY_WAIT: Duration = Duration::from_millis(500);

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A task's failed runs in a row (auto-pause), and why and since when it was disabled for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Failures {
    pub consecutive: u32,
    pub paused: Option<(String, DateTime<Utc>)>,
}

#[derive(Debug)]
pub enum StoreError {
    /// Another task already has this name.
    NameTaken(String),
    /// The database cannot be written (or read): the file deleted or replaced, read-only, disk
    /// full, locked, an I/O error, damage. The text names the cause and the file.
    Fault(Fault),
    /// Anything else SQLite said (an unreadable row, a bug).
    Db(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NameTaken(name) => write!(
                f,
                "name: a task named \"{name}\" already exists; names are unique"
            ),
            StoreError::Fault(fault) => write!(f, "{fault}"),
            StoreError::Db(msg) => write!(f, "database error: {msg}"),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match Fault::of_sqlite(&e) {
            Some(fault) => StoreError::Fault(fault),
            None => StoreError::Db(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A per-thread connection to the task database.
pub struct Store {
    conn: Connection,
    file: DbFile,
    /// Tasks decoded lately, by id, with the row text they came from (see `decode_task`); at
    /// most `decoded_keep` (0: none kept, the default).
    decoded: std::cell::RefCell<std::collections::HashMap<String, (Row4, Task)>>,
    decoded_keep: usize,
}

/// A task row as read: id, definition (JSON), created and updated (RFC 3339).
type Row4 = (String, String, String, String);

impl Store {
    /// Open (creating the file and its directory if needed), set pragmas, migrate forward.
    ///
    /// A path this process opened before must still name the same file: a database deleted or
    /// replaced while serving is refused (a fault), never silently created anew.
    ///
    /// Durability: WAL with `synchronous=NORMAL`. A commit appends to the WAL without an fsync;
    /// the WAL is synced at each checkpoint. The database can never be corrupted by a crash or a
    /// power cut, and a process crash (the common case) loses nothing; only a power cut or
    /// kernel crash can lose the last commits since the previous checkpoint. `FULL` would add an
    /// fsync to every commit (milliseconds on most disks), which would cap task writes and run
    /// records at a few hundred per second for a guarantee a scheduler's rows do not need.
    pub fn open(path: &Path) -> Result<Store> {
        DbFile::check_before_open(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A data directory made here is the owner's alone (runs' output, secrets, keys).
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::Db(format!("cannot create directory {}: {e}", dir.display()))
                })?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        // SQLite opens a file it may not write read-only, and such a connection stays
        // read-only after the cause is gone: refuse it, so the caller tries again later.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::Fault(DbFile::opened_read_only(path)));
        }
        conn.busy_handler(Some(busy_wait))?;
        // Keep each statement's first plan: with STAT4 (on in the bundled SQLite) a statement
        // whose LIMIT or LIKE pattern is a parameter is compiled again whenever its bindings
        // change, which is at every use of a cached statement.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Db(format!(
                "{} cannot use WAL journaling (got {mode})",
                path.display()
            )));
        }
        // A page cache of 1 MiB per connection (SQLite's default is 2 MiB): each thread has its
        // own connection, and the operating system caches the file for all of them anyway.
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-512;",
        )?;
        let file = DbFile::opened(path)?;
        let store = Store {
            conn,
            file,
            decoded: Default::default(),
            decoded_keep: 0,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Every write goes through here: refused when the database file was deleted or replaced
    /// since it was opened (checked with one `stat`), and a failure names its cause.
    fn write<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.file.verify()?;
        self.finish(op(&self.conn))
    }

    /// The outcome of a write: a fault gets its cause named and logged; a success ends one.
    fn finish<T>(&self, outcome: Result<T>) -> Result<T> {
        match outcome {
            Ok(value) => {
                fault::recovered();
                Ok(value)
            }
            Err(StoreError::Fault(f)) => Err(StoreError::Fault(self.file.explain(f))),
            Err(e) => Err(e),
        }
    }

    /// The database file is still the one opened (one `stat`): not deleted, not replaced.
    pub fn verify_file(&self) -> Result<()> {
        self.file.verify()
    }

    /// For `/health`: a real write (the one row of the `health` table, committed) through the
    /// same checks as every write, waiting at most `HEALTH_BUSY_WAIT` for the write lock.
    pub fn check_writable(&self, now: DateTime<Utc>) -> Result<()> {
        // The shorter wait holds for this write only (also if it panics).
        struct Shorter;
        impl Drop for Shorter {
            fn drop(&mut self) {
                BUSY_BUDGET.with(|b| b.set(BUSY_WAIT));
            }
        }
        BUSY_BUDGET.with(|b| b.set(HEALTH_BUSY_WAIT));
        let _shorter = Shorter;
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO health (id, checked_at) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
            )?
            .execute([rfc3339_millis(now)])?;
            Ok(())
        })
    }

    fn migrate(&self) -> Result<()> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Db(format!(
                "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}; upgrade claudecron"
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (index + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Free this connection's page cache (`PRAGMA shrink_memory`): after a one-off read of
    /// every task, such as the engine's start.
    pub fn shrink_memory(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA shrink_memory") {
            log::debug!("PRAGMA shrink_memory: {e}");
        }
    }

    /// `PRAGMA user_version`.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A consistent copy of the live database at `dest` through SQLite's online backup API
    /// (other connections keep reading and writing meanwhile), then checked with
    /// `PRAGMA integrity_check`. Returns (tasks, runs) counted in the copy.
    pub fn backup_to(&self, dest: &Path) -> Result<(i64, i64)> {
        let mut target = Connection::open(dest)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", dest.display())))?;
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut target)?;
            backup.run_to_completion(256, Duration::from_millis(5), None)?;
        }
        let check: String = target.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Db(format!(
                "the copy at {} failed its integrity check: {check}",
                dest.display()
            )));
        }
        // The copy is a plain database file, readable without the -wal of the source.
        target.pragma_update(None, "journal_mode", "DELETE")?;
        let counts = target.query_row(
            "SELECT (SELECT COUNT(*) FROM tasks), (SELECT COUNT(*) FROM runs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(counts)
    }

    /// Start grouping the following writes into one transaction (one commit for many small
    /// writes, e.g. every fire due in the same second); `end_batch` commits them.
    pub fn begin_batch(&self) -> Result<()> {
        self.write(|c| Ok(c.execute_batch("BEGIN IMMEDIATE")?))
    }

    /// Commit what `begin_batch` started. Never refused beforehand (the transaction must end
    /// either way), and a commit that fails leaves no transaction open on the connection.
    pub fn end_batch(&self) -> Result<()> {
        let committed = self.conn.execute_batch("COMMIT").map_err(StoreError::from);
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.finish(committed)
    }

    /// Keep up to `n` decoded tasks for rows read again unchanged (the request lanes' stores:
    /// a model lists a page, then looks at tasks of it).
    pub fn keep_decoded(&mut self, n: usize) {
        self.decoded_keep = n;
    }

    /// `f`'s reads in one read transaction: one snapshot, and the WAL read lock taken and
    /// released once (each statement outside a transaction takes and releases it with its own
    /// `fcntl` calls: eight for a `get_task`). Inside a transaction already open, just `f`.
    pub fn reading<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.conn.is_autocommit() || self.conn.execute_batch("BEGIN").is_err() {
            return f();
        }
        let out = f();
        if self.conn.execute_batch("COMMIT").is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        out
    }

    /// `PRAGMA quick_check` → "ok" when healthy.
    pub fn quick_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
    }

    fn task_from_row(row: &rusqlite::Row) -> rusqlite::Result<(String, String, String, String)> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    }

    /// A task from its row. A row read before with the very same text (definition and times)
    /// is not parsed again: parsing the definition's JSON was a sixth of a `list_tasks` of 10.
    fn decode_task(&self, row: Row4) -> Result<Task> {
        if self.decoded_keep == 0 {
            return Self::parse_task(row);
        }
        if let Some((seen, task)) = self.decoded.borrow().get(&row.0) {
            if *seen == row {
                return Ok(task.clone());
            }
        }
        let task = Self::parse_task(row.clone())?;
        let mut decoded = self.decoded.borrow_mut();
        if decoded.len() >= self.decoded_keep {
            decoded.clear();
        }
        decoded.insert(row.0.clone(), (row, task.clone()));
        Ok(task)
    }

    fn parse_task((id, spec, created_at, updated_at): Row4) -> Result<Task> {
        let spec: TaskSpec = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Db(format!("task {id} has an unreadable definition: {e}")))?;
        let time = |text: &str| {
            parse_utc(text).ok_or_else(|| {
                StoreError::Db(format!("task {id} has an unreadable time \"{text}\""))
            })
        };
        let (created_at, updated_at) = (time(&created_at)?, time(&updated_at)?);
        Ok(Task {
            id,
            spec,
            created_at,
            updated_at,
        })
    }

    fn map_unique(e: rusqlite::Error, name: &str) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(f, Some(msg))
                if f.code == rusqlite::ErrorCode::ConstraintViolation
                    && msg.contains("tasks.name") =>
            {
                StoreError::NameTaken(name.to_string())
            }
            _ => StoreError::from(e),
        }
    }

    /// Insert a new task with the given id; returns it as stored (times to the second).
    pub fn insert_task(&self, id: &str, spec: &TaskSpec, now: DateTime<Utc>) -> Result<Task> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Db(e.to_string()))?;
        let stamp = rfc3339(now);
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO tasks (id, name, type, enabled, trigger_type, spec, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![id, spec.name, spec.task_type.as_str(), spec.enabled, spec.trigger.kind().as_str(), json, stamp])
            .map_err(|e| Self::map_unique(e, &spec.name))
        })?;
        let stored = parse_utc(&stamp).unwrap_or(now);
        Ok(Task {
            id: id.to_string(),
            spec: spec.clone(),
            created_at: stored,
            updated_at: stored,
        })
    }

    /// Replace a task's definition; None when the task does not exist.
    pub fn update_task(
        &self,
        id: &str,
        spec: &TaskSpec,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Db(e.to_string()))?;
        let stamp = rfc3339(now);
        let changed = self.write(|c| {
            c.prepare_cached(
                "UPDATE tasks SET name = ?2, type = ?3, enabled = ?4, trigger_type = ?5, spec = ?6, updated_at = ?7
                 WHERE id = ?1",
            )?
            .execute(params![id, spec.name, spec.task_type.as_str(), spec.enabled, spec.trigger.kind().as_str(), json, stamp])
            .map_err(|e| Self::map_unique(e, &spec.name))
        })?;
        if changed == 0 {
            return Ok(None);
        }
        self.get_task(id)
    }

    /// Delete a task and (by cascade) its runs; returns the task and how many runs went with it.
    pub fn delete_task(&self, id: &str) -> Result<Option<(Task, i64)>> {
        // IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the reads,
        // so a writer committing meanwhile (the engine recording fires) cannot make the upgrade
        // from read to write fail at once with "database is locked".
        self.begin_batch()?;
        let result = (|| {
            let Some(task) = self.get_task(id)? else {
                return Ok(None);
            };
            let runs: i64 =
                self.conn
                    .query_row("SELECT COUNT(*) FROM runs WHERE task_id = ?1", [id], |r| {
                        r.get(0)
                    })?;
            self.conn.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
            Ok(Some((task, runs)))
        })();
        match &result {
            Ok(_) => self.end_batch()?,
            Err(_) => {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
        self.finish(result)
    }

    /// A task by id.
    pub fn get_task(&self, id: &str) -> Result<Option<Task>> {
        let row = self
            .conn
            .prepare_cached("SELECT id, spec, created_at, updated_at FROM tasks WHERE id = ?1")?
            .query_row([id], Self::task_from_row)
            .optional()?;
        row.map(|r| self.decode_task(r)).transpose()
    }

    /// A task by id, else by exact name.
    pub fn find_task(&self, id_or_name: &str) -> Result<Option<Task>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT id, spec, created_at, updated_at FROM tasks WHERE id = ?1
                 UNION ALL
                 SELECT id, spec, created_at, updated_at FROM tasks WHERE name = ?1 AND id <> ?1
                 LIMIT 1",
            )?
            .query_row([id_or_name], Self::task_from_row)
            .optional()?;
        row.map(|r| self.decode_task(r)).transpose()
    }

    /// Number of tasks, and of enabled tasks.
    pub fn count_tasks(&self) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(enabled), 0) FROM tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The scheduler's cursor for a task (RFC 3339), if any.
    pub fn cursor(&self, task_id: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT cursor FROM task_state WHERE task_id = ?1")?
            .query_row([task_id], |r| time_col(r, 0))
            .optional()?)
    }

    /// Move a task's cursor.
    pub fn set_cursor(&self, task_id: &str, cursor: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO task_state (task_id, cursor) VALUES (?1, ?2)
                 ON CONFLICT(task_id) DO UPDATE SET cursor = excluded.cursor",
            )?
            .execute(params![task_id, rfc3339(cursor)])?;
            Ok(())
        })
    }

    /// Record why a task's trigger could not be armed (None clears it).
    pub fn set_trigger_error(
        &self,
        task_id: &str,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = rfc3339_millis(at);
        self.write(|c| {
            match error {
                Some(error) => c.execute(
                    "INSERT INTO trigger_errors (task_id, error, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(task_id) DO UPDATE SET error = excluded.error, at = excluded.at",
                    params![task_id, error, at],
                )?,
                None => c.execute("DELETE FROM trigger_errors WHERE task_id = ?1", [task_id])?,
            };
            Ok(())
        })
    }

    /// Why a task's trigger is not armed, and since when.
    pub fn trigger_error(&self, task_id: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT error, at FROM trigger_errors WHERE task_id = ?1")?
            .query_row([task_id], |r| Ok((r.get(0)?, time_col(r, 1)?)))
            .optional()?)
    }

    /// The pause of everything (`pause_all`): its reason and since when; None when not paused.
    pub fn pause_all_state(&self) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT reason, since FROM pause_all WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, time_col(r, 1)?)))
            .optional()?)
    }

    /// Pause everything with a reason (Some), or end the pause (None).
    pub fn set_pause_all(&self, pause: Option<(&str, DateTime<Utc>)>) -> Result<()> {
        self.write(|c| {
            match pause {
                Some((reason, since)) => c.execute(
                    "INSERT INTO pause_all (id, reason, since) VALUES (1, ?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET reason = excluded.reason, since = excluded.since",
                    params![reason, rfc3339_millis(since)],
                )?,
                None => c.execute("DELETE FROM pause_all", [])?,
            };
            Ok(())
        })
    }

    /// Count a run's end in the task's failures in a row: one more (`failed`), or back to 0.
    /// Returns the count now.
    pub fn count_failure(&self, task_id: &str, failed: bool) -> Result<u32> {
        self.write(|c| {
            Ok(c.prepare_cached(
                "INSERT INTO task_failures (task_id, consecutive) VALUES (?1, ?2)
                 ON CONFLICT(task_id) DO UPDATE SET
                   consecutive = CASE WHEN ?2 = 1 THEN consecutive + 1 ELSE 0 END
                 RETURNING consecutive",
            )?
            .query_row(params![task_id, failed as i64], |r| r.get(0))?)
        })
    }

    /// Record why a task was disabled for its failures.
    pub fn set_paused_reason(&self, task_id: &str, reason: &str, at: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE task_failures SET paused_reason = ?2, paused_at = ?3 WHERE task_id = ?1",
                params![task_id, reason, rfc3339_millis(at)],
            )?;
            Ok(())
        })
    }

    /// Forget a task's failures and its paused reason (it was enabled again).
    pub fn clear_failures(&self, task_id: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM task_failures WHERE task_id = ?1", [task_id])?;
            Ok(())
        })
    }

    /// A task's failures in a row, and why and since when it is paused for them, if it is.
    pub fn failures(&self, task_id: &str) -> Result<Option<Failures>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT consecutive, paused_reason, paused_at FROM task_failures WHERE task_id = ?1",
            )?
            .query_row([task_id], |r| {
                let reason: Option<String> = r.get(1)?;
                let at = opt_time_col(r, 2)?;
                Ok(Failures {
                    consecutive: r.get(0)?,
                    paused: reason.zip(at),
                })
            })
            .optional()?)
    }

    /// Enabled tasks whose trigger is of `trigger_type`.
    pub fn enabled_tasks_with_trigger(&self, trigger: TriggerKind) -> Result<Vec<Task>> {
        let trigger_type = trigger.as_str();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, spec, created_at, updated_at FROM tasks WHERE enabled = 1 AND trigger_type = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([trigger_type], Self::task_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|r| self.decode_task(r)).collect()
    }
}

#[cfg(test)]
mod tests;
