//! The SQLite store: schema, migrations and every SQL statement in the program. One `Store` per
//! thread (one connection each, WAL mode); no other module writes SQL, and the store never decides
//! policy (what to run, when) — it only records and reads.

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

/// Forward migrations; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: tasks and runs.
    "CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        type         TEXT NOT NULL,
        enabled      INTEGER NOT NULL,
        trigger_type TEXT NOT NULL,
        spec         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX tasks_by_enabled ON tasks(enabled, trigger_type);
    CREATE TABLE runs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id          TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        trigger          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN
                           ('queued','running','success','failed','timeout','cancelled','skipped','interrupted')),
        scheduled_for    TEXT,
        queued_at        TEXT NOT NULL,
        started_at       TEXT,
        finished_at      TEXT,
        duration_ms      INTEGER,
        exit_code        INTEGER,
        signal           INTEGER,
        output           TEXT NOT NULL DEFAULT '',
        output_truncated INTEGER NOT NULL DEFAULT 0,
        error            TEXT,
        attempt          INTEGER NOT NULL DEFAULT 1,
        retry_of         INTEGER,
        runner           TEXT,
        model            TEXT,
        cost_usd         REAL,
        input_tokens     INTEGER,
        output_tokens    INTEGER,
        num_turns        INTEGER,
        session_id       TEXT,
        context          TEXT
    );
    CREATE UNIQUE INDEX runs_once_per_fire ON runs(task_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
    CREATE INDEX runs_by_task_newest ON runs(task_id, id DESC);
    CREATE INDEX runs_by_status ON runs(status, id DESC);",
    // 2: the scheduler's cursor per task: the last fire time it has dealt with, so fires missed
    // while the server was down can be found at the next start.
    "CREATE TABLE task_state (
        task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        cursor  TEXT NOT NULL
    );",
    // 3: why an event trigger could not be armed (inotify limit, unreadable directory), shown
    // on the task until it arms again.
    "CREATE TABLE trigger_errors (
        task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        error   TEXT NOT NULL,
        at      TEXT NOT NULL
    );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug)]
pub enum StoreError {
    /// Another task already has this name.
    NameTaken(String),
    /// Anything SQLite or the file system said.
    Db(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NameTaken(name) => write!(
                f,
                "name: a task named \"{name}\" already exists; names are unique"
            ),
            StoreError::Db(msg) => write!(f, "database error: {msg}"),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One run as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    pub id: i64,
    pub task_id: String,
    pub trigger: TriggerKind,
    pub status: RunStatus,
    #[serde(serialize_with = "serialize_time_opt")]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_time_millis")]
    pub queued_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_time_millis_opt")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_time_millis_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub output: String,
    pub output_truncated: bool,
    pub error: Option<String>,
    pub attempt: i64,
    pub retry_of: Option<i64>,
    pub runner: Option<String>,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub num_turns: Option<i64>,
    pub session_id: Option<String>,
}

/// What a new run row starts with.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub task_id: &'a str,
    pub trigger: TriggerKind,
    pub status: RunStatus,
    /// The fire time this run is for (at most one run per task and fire time).
    pub scheduled_for: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    pub error: Option<&'a str>,
    pub attempt: i64,
    pub retry_of: Option<i64>,
    /// Event context (hook payload, file paths, upstream run).
    pub context: Option<&'a RunContext>,
}

/// What start-up recovery found.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub were_running: Vec<(String, i64)>,
    pub interrupted: usize,
    pub retries: Vec<Run>,
}

/// What a subagent run used, as recorded.
#[derive(Debug, Clone)]
pub struct RunUsage<'a> {
    pub runner: &'a str,
    pub model: Option<&'a str>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub num_turns: Option<i64>,
    pub session_id: Option<&'a str>,
}

/// How a run ended, as recorded.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    pub status: RunStatus,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub output: &'a str,
    pub output_truncated: bool,
    pub error: Option<&'a str>,
}

const RUN_COLUMNS: &str = "id, task_id, trigger, status, scheduled_for, queued_at, started_at, finished_at,
    duration_ms, exit_code, signal, output, output_truncated, error, attempt, retry_of, runner, model,
    cost_usd, input_tokens, output_tokens, num_turns, session_id";

/// A column that must hold one of our spellings or an RFC 3339 time; anything else is reported
/// as an unreadable row rather than guessed.
fn bad_column(index: usize, what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("{what} \"{text}\" is not readable").into(),
    )
}

fn time_col(row: &rusqlite::Row, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_utc(&text).ok_or_else(|| bad_column(index, "time", &text))
}

fn opt_time_col(row: &rusqlite::Row, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| parse_utc(&t).ok_or_else(|| bad_column(index, "time", &t)))
        .transpose()
}

fn run_from_row(row: &rusqlite::Row) -> rusqlite::Result<Run> {
    let trigger: String = row.get(2)?;
    let status: String = row.get(3)?;
    Ok(Run {
        id: row.get(0)?,
        task_id: row.get(1)?,
        trigger: TriggerKind::parse(&trigger).ok_or_else(|| bad_column(2, "trigger", &trigger))?,
        status: RunStatus::parse(&status).ok_or_else(|| bad_column(3, "status", &status))?,
        scheduled_for: opt_time_col(row, 4)?,
        queued_at: time_col(row, 5)?,
        started_at: opt_time_col(row, 6)?,
        finished_at: opt_time_col(row, 7)?,
        duration_ms: row.get(8)?,
        exit_code: row.get(9)?,
        signal: row.get(10)?,
        output: row.get(11)?,
        output_truncated: row.get::<_, i64>(12)? != 0,
        error: row.get(13)?,
        attempt: row.get(14)?,
        retry_of: row.get(15)?,
        runner: row.get(16)?,
        model: row.get(17)?,
        cost_usd: row.get(18)?,
        input_tokens: row.get(19)?,
        output_tokens: row.get(20)?,
        num_turns: row.get(21)?,
        session_id: row.get(22)?,
    })
}

/// A per-thread connection to the task database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Open (creating the file and its directory if needed), set pragmas, migrate forward.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Db(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_millis(5000))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Db(format!(
                "{} cannot use WAL journaling (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        let store = Store { conn };
        store.migrate()?;
        Ok(store)
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

    /// `PRAGMA quick_check` → "ok" when healthy.
    pub fn quick_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
    }

    fn task_from_row(row: &rusqlite::Row) -> rusqlite::Result<(String, String, String, String)> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    }

    fn decode_task(
        (id, spec, created_at, updated_at): (String, String, String, String),
    ) -> Result<Task> {
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

    /// Insert a new task with the given id.
    pub fn insert_task(&self, id: &str, spec: &TaskSpec, now: DateTime<Utc>) -> Result<Task> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Db(e.to_string()))?;
        let stamp = rfc3339(now);
        self.conn
            .execute(
                "INSERT INTO tasks (id, name, type, enabled, trigger_type, spec, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![id, spec.name, spec.task_type.as_str(), spec.enabled, spec.trigger.kind().as_str(), json, stamp],
            )
            .map_err(|e| Self::map_unique(e, &spec.name))?;
        // As read back: second precision.
        self.get_task(id)?
            .ok_or_else(|| StoreError::Db(format!("task {id} vanished right after its insert")))
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
        let changed = self
            .conn
            .execute(
                "UPDATE tasks SET name = ?2, type = ?3, enabled = ?4, trigger_type = ?5, spec = ?6, updated_at = ?7
                 WHERE id = ?1",
                params![id, spec.name, spec.task_type.as_str(), spec.enabled, spec.trigger.kind().as_str(), json, stamp],
            )
            .map_err(|e| Self::map_unique(e, &spec.name))?;
        if changed == 0 {
            return Ok(None);
        }
        self.get_task(id)
    }

    /// Delete a task and (by cascade) its runs; returns the task and how many runs went with it.
    pub fn delete_task(&self, id: &str) -> Result<Option<(Task, i64)>> {
        let tx = self.conn.unchecked_transaction()?;
        let task = match self.get_task(id)? {
            Some(t) => t,
            None => return Ok(None),
        };
        let runs: i64 =
            tx.query_row("SELECT COUNT(*) FROM runs WHERE task_id = ?1", [id], |r| {
                r.get(0)
            })?;
        tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(Some((task, runs)))
    }

    /// A task by id.
    pub fn get_task(&self, id: &str) -> Result<Option<Task>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, spec, created_at, updated_at FROM tasks WHERE id = ?1",
                [id],
                Self::task_from_row,
            )
            .optional()?;
        row.map(Self::decode_task).transpose()
    }

    /// A task by id, else by exact name.
    pub fn find_task(&self, id_or_name: &str) -> Result<Option<Task>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, spec, created_at, updated_at FROM tasks WHERE id = ?1
                 UNION ALL
                 SELECT id, spec, created_at, updated_at FROM tasks WHERE name = ?1 AND id <> ?1
                 LIMIT 1",
                [id_or_name],
                Self::task_from_row,
            )
            .optional()?;
        row.map(Self::decode_task).transpose()
    }

    /// Tasks in name order, optionally filtered by enabled state and type.
    pub fn list_tasks(
        &self,
        enabled: Option<bool>,
        task_type: Option<TaskType>,
    ) -> Result<Vec<Task>> {
        let task_type = task_type.map(TaskType::as_str);
        let mut stmt = self.conn.prepare(
            "SELECT id, spec, created_at, updated_at FROM tasks
             WHERE (?1 IS NULL OR enabled = ?1) AND (?2 IS NULL OR type = ?2)
             ORDER BY name COLLATE NOCASE, id",
        )?;
        let rows = stmt
            .query_map(params![enabled, task_type], Self::task_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(Self::decode_task).collect()
    }

    /// Number of tasks, and of enabled tasks.
    pub fn count_tasks(&self) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(enabled), 0) FROM tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Insert a run row; returns its id.
    pub fn insert_run(&self, run: &NewRun) -> Result<i64> {
        // A fire time is stored to the second; a retry's due time to the millisecond, so it is
        // never mistaken for (and never takes the slot of) the schedule's fire in that second.
        let scheduled_for = run.scheduled_for.map(|t| match run.trigger {
            TriggerKind::Retry => rfc3339_millis(t),
            _ => rfc3339(t),
        });
        let context = run.context.map(RunContext::to_json);
        self.conn.execute(
            "INSERT INTO runs (task_id, trigger, status, scheduled_for, queued_at, error, attempt, retry_of, context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                run.task_id,
                run.trigger.as_str(),
                run.status.as_str(),
                scheduled_for,
                rfc3339_millis(run.queued_at),
                run.error,
                run.attempt,
                run.retry_of,
                context
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A queued run starts.
    pub fn start_run(&self, id: i64, started_at: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET status = 'running', started_at = ?2 WHERE id = ?1",
            params![id, rfc3339_millis(started_at)],
        )?;
        Ok(())
    }

    /// Live output of a running run.
    pub fn update_output(&self, id: i64, output: &str, truncated: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET output = ?2, output_truncated = ?3 WHERE id = ?1 AND status = 'running'",
            params![id, output, truncated],
        )?;
        Ok(())
    }

    /// Record how a run ended.
    pub fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, duration_ms = ?4, exit_code = ?5, signal = ?6,
                 output = ?7, output_truncated = ?8, error = ?9
             WHERE id = ?1",
            params![
                id,
                end.status.as_str(),
                rfc3339_millis(end.finished_at),
                end.duration_ms,
                end.exit_code,
                end.signal,
                end.output,
                end.output_truncated,
                end.error
            ],
        )?;
        Ok(())
    }

    /// Record a subagent run's runner, model, cost, tokens, turns and session.
    pub fn record_usage(&self, id: i64, usage: &RunUsage) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET runner = ?2, model = ?3, cost_usd = ?4, input_tokens = ?5, output_tokens = ?6,
                 num_turns = ?7, session_id = ?8
             WHERE id = ?1",
            params![
                id,
                usage.runner,
                usage.model,
                usage.cost_usd,
                usage.input_tokens,
                usage.output_tokens,
                usage.num_turns,
                usage.session_id
            ],
        )?;
        Ok(())
    }

    /// The event context stored with a run.
    pub fn run_context(&self, id: i64) -> Result<Option<RunContext>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT context FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(text.and_then(|t| {
            let context = RunContext::from_json(&t);
            if context.is_none() {
                log::warn!("run {id}: its stored event context is unreadable; running without it");
            }
            context
        }))
    }

    /// At start-up: runs left `running` or `queued` by a previous process become `interrupted`,
    /// except queued retries, which are returned to be re-armed. Returns the (task id, run id)
    /// of the runs that were `running` (their processes may have outlived the old server), how
    /// many were interrupted, and the retries.
    pub fn recover_unfinished(&self, now: DateTime<Utc>) -> Result<Recovered> {
        let now = rfc3339(now);
        let tx = self.conn.unchecked_transaction()?;
        let mut stmt = tx.prepare("SELECT task_id, id FROM runs WHERE status = 'running'")?;
        let were_running = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
        drop(stmt);
        let interrupted = tx.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = ?1,
                 error = COALESCE(error, 'the server stopped while this run was ' || status)
             WHERE status = 'running' OR (status = 'queued' AND trigger <> 'retry')",
            [now],
        )?;
        let mut stmt = tx.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'queued' AND trigger = 'retry' ORDER BY id"
        ))?;
        let retries = stmt
            .query_map([], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        tx.commit()?;
        Ok(Recovered {
            were_running,
            interrupted,
            retries,
        })
    }

    /// Keep the newest `keep` finished runs of a task (of every task when `task_id` is None);
    /// runs still queued or running are never pruned. Returns how many were deleted.
    pub fn prune_runs(&self, task_id: Option<&str>, keep: i64) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM runs WHERE id IN (
                 SELECT id FROM (
                     SELECT id, status, ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id DESC) AS n
                     FROM runs WHERE (?1 IS NULL OR task_id = ?1)
                 ) WHERE n > ?2 AND status NOT IN ('queued', 'running')
             )",
            params![task_id, keep],
        )?)
    }

    /// The scheduler's cursor for a task (RFC 3339), if any.
    pub fn cursor(&self, task_id: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM task_state WHERE task_id = ?1",
                [task_id],
                |r| time_col(r, 0),
            )
            .optional()?)
    }

    /// Move a task's cursor.
    pub fn set_cursor(&self, task_id: &str, cursor: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO task_state (task_id, cursor) VALUES (?1, ?2)
             ON CONFLICT(task_id) DO UPDATE SET cursor = excluded.cursor",
            params![task_id, rfc3339(cursor)],
        )?;
        Ok(())
    }

    /// Record why a task's trigger could not be armed (None clears it).
    pub fn set_trigger_error(
        &self,
        task_id: &str,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = rfc3339_millis(at);
        match error {
            Some(error) => self.conn.execute(
                "INSERT INTO trigger_errors (task_id, error, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(task_id) DO UPDATE SET error = excluded.error, at = excluded.at",
                params![task_id, error, at],
            )?,
            None => self
                .conn
                .execute("DELETE FROM trigger_errors WHERE task_id = ?1", [task_id])?,
        };
        Ok(())
    }

    /// Why a task's trigger is not armed, and since when.
    pub fn trigger_error(&self, task_id: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT error, at FROM trigger_errors WHERE task_id = ?1",
                [task_id],
                |r| Ok((r.get(0)?, time_col(r, 1)?)),
            )
            .optional()?)
    }

    /// Enabled tasks whose trigger is of `trigger_type`.
    pub fn enabled_tasks_with_trigger(&self, trigger: TriggerKind) -> Result<Vec<Task>> {
        let trigger_type = trigger.as_str();
        let mut stmt = self.conn.prepare(
            "SELECT id, spec, created_at, updated_at FROM tasks WHERE enabled = 1 AND trigger_type = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([trigger_type], Self::task_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(Self::decode_task).collect()
    }

    /// One run by id.
    pub fn get_run(&self, id: i64) -> Result<Option<Run>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()?)
    }

    /// Runs newest first, optionally for one task and one status.
    pub fn list_runs(
        &self,
        task_id: Option<&str>,
        status: Option<RunStatus>,
        limit: i64,
    ) -> Result<Vec<Run>> {
        let status = status.map(RunStatus::as_str);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR task_id = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let runs = stmt
            .query_map(params![task_id, status, limit], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::model::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_utc(text).unwrap()
    }

    fn spec(name: &str) -> TaskSpec {
        TaskSpec {
            name: name.into(),
            task_type: TaskType::Bash,
            description: None,
            enabled: true,
            trigger: Trigger::Manual,
            timezone: "UTC".into(),
            command: Some("true".into()),
            prompt: None,
            cwd: None,
            env: Default::default(),
            timeout_seconds: None,
            model: None,
            runner: None,
            allowed_tools: vec![],
            max_turns: None,
            permission_mode: None,
            max_tokens: None,
            system: None,
            overlap: Overlap::Skip,
            catch_up: CatchUp::Skip,
            retries: Retries::default(),
            notify: None,
        }
    }

    fn temp_db(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cc-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested/tasks.db")
    }

    #[test]
    fn create_reopen_keeps_tasks_and_schema_version() {
        let path = temp_db("reopen");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            store
                .insert_task("t1", &spec("one"), at("2026-01-01T00:00:00Z"))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let task = store.find_task("one").unwrap().unwrap();
        assert_eq!(task.id, "t1");
        assert_eq!(task.spec, spec("one"));
        assert_eq!(store.quick_check().unwrap(), "ok");
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_message() {
        let path = temp_db("newer");
        {
            let store = Store::open(&path).unwrap();
            store
                .conn
                .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
                .unwrap();
        }
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer than this build"), "{err}");
    }

    #[test]
    fn names_are_unique_and_deleting_a_task_deletes_its_runs() {
        let path = temp_db("cascade");
        let store = Store::open(&path).unwrap();
        store
            .insert_task("t1", &spec("same"), at("2026-01-01T00:00:00Z"))
            .unwrap();
        let dup = store.insert_task("t2", &spec("same"), at("2026-01-01T00:00:00Z"));
        assert!(matches!(dup, Err(StoreError::NameTaken(n)) if n == "same"));
        for _ in 0..3 {
            store
                .insert_run(&NewRun {
                    task_id: "t1",
                    trigger: TriggerKind::Manual,
                    status: RunStatus::Queued,
                    scheduled_for: None,
                    queued_at: at("2026-01-01T00:00:00Z"),
                    error: None,
                    attempt: 1,
                    retry_of: None,
                    context: None,
                })
                .unwrap();
        }
        assert_eq!(store.list_runs(Some("t1"), None, 10).unwrap().len(), 3);
        let (_, removed) = store.delete_task("t1").unwrap().unwrap();
        assert_eq!(removed, 3);
        assert_eq!(store.list_runs(None, None, 10).unwrap().len(), 0);
    }

    #[test]
    fn backup_copies_a_live_database_consistently() {
        let path = temp_db("backup");
        let store = Store::open(&path).unwrap();
        store
            .insert_task("t1", &spec("kept"), at("2026-01-01T00:00:00Z"))
            .unwrap();
        let other = Store::open(&path).unwrap(); // a second live connection, as while serving
        let dest = path.with_file_name("copy.db");
        let (tasks, runs) = other.backup_to(&dest).unwrap();
        assert_eq!((tasks, runs), (1, 0));
        let copy = Store::open(&dest).unwrap();
        assert_eq!(copy.find_task("kept").unwrap().unwrap().id, "t1");
        assert_eq!(copy.quick_check().unwrap(), "ok");
    }

    #[test]
    fn one_run_per_task_and_fire_time() {
        let path = temp_db("unique-fire");
        let store = Store::open(&path).unwrap();
        store
            .insert_task("t1", &spec("fires"), at("2026-01-01T00:00:00Z"))
            .unwrap();
        let run = NewRun {
            task_id: "t1",
            trigger: TriggerKind::Cron,
            status: RunStatus::Queued,
            scheduled_for: Some(at("2026-01-01T02:00:00Z")),
            queued_at: at("2026-01-01T02:00:00Z"),
            error: None,
            attempt: 1,
            retry_of: None,
            context: None,
        };
        store.insert_run(&run).unwrap();
        assert!(store.insert_run(&run).is_err());
    }
}
