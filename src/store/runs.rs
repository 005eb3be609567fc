//! Runs in the store: the row types, reading a row (unreadable values are errors, never
//! guesses), and every statement on the `runs` table.

use super::*;

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
    /// More facts, shown beside the others: `worktree`, `claude_code` (see migration 6).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
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

#[cfg(test)]
impl<'a> NewRun<'a> {
    /// A first attempt of a manual run of `task_id` with `status`, queued at `at` (tests).
    pub fn manual(task_id: &'a str, status: RunStatus, at: DateTime<Utc>) -> NewRun<'a> {
        NewRun {
            task_id,
            trigger: TriggerKind::Manual,
            status,
            scheduled_for: None,
            queued_at: at,
            error: None,
            attempt: 1,
            retry_of: None,
            context: None,
        }
    }
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

pub(super) const RUN_COLUMNS: &str = "id, task_id, trigger, status, scheduled_for, queued_at, started_at, finished_at,
    duration_ms, exit_code, signal, output, output_truncated, error, attempt, retry_of, runner, model,
    cost_usd, input_tokens, output_tokens, num_turns, session_id, details";

/// A column that must hold one of our spellings or an RFC 3339 time; anything else is reported
/// as an unreadable row rather than guessed.
pub(super) fn bad_column(index: usize, what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("{what} \"{text}\" is not readable").into(),
    )
}

pub(super) fn time_col(row: &rusqlite::Row, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_utc(&text).ok_or_else(|| bad_column(index, "time", &text))
}

pub(super) fn opt_time_col(
    row: &rusqlite::Row,
    index: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| parse_utc(&t).ok_or_else(|| bad_column(index, "time", &t)))
        .transpose()
}

pub(super) fn run_from_row(row: &rusqlite::Row) -> rusqlite::Result<Run> {
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
        details: row
            .get::<_, Option<String>>(23)?
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_default(),
    })
}

impl Store {
    /// Insert a run row; returns its id.
    pub fn insert_run(&self, run: &NewRun) -> Result<i64> {
        // A fire time is stored to the second; a retry's due time to the millisecond, so it is
        // never mistaken for (and never takes the slot of) the schedule's fire in that second.
        let scheduled_for = run.scheduled_for.map(|t| match run.trigger {
            TriggerKind::Retry => rfc3339_millis(t),
            _ => rfc3339(t),
        });
        let context = run.context.map(RunContext::to_json);
        self.write(|c| {
            c.prepare_cached(
            "INSERT INTO runs (task_id, trigger, status, scheduled_for, queued_at, error, attempt, retry_of, context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?
            .execute(params![
                run.task_id,
                run.trigger.as_str(),
                run.status.as_str(),
                scheduled_for,
                rfc3339_millis(run.queued_at),
                run.error,
                run.attempt,
                run.retry_of,
                context
            ])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// A queued run starts.
    pub fn start_run(&self, id: i64, started_at: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE runs SET status = 'running', started_at = ?2 WHERE id = ?1")?
                .execute(params![id, rfc3339_millis(started_at)])?;
            Ok(())
        })
    }

    /// Live output of a running run.
    pub fn update_output(&self, id: i64, output: &str, truncated: bool) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE runs SET output = ?2, output_truncated = ?3 WHERE id = ?1 AND status = 'running'",
            )?
            .execute(params![id, output, truncated])?;
            Ok(())
        })
    }

    /// Record how a run ended.
    pub fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
            "UPDATE runs SET status = ?2, finished_at = ?3, duration_ms = ?4, exit_code = ?5, signal = ?6,
                 output = ?7, output_truncated = ?8, error = ?9
             WHERE id = ?1")?
            .execute(params![
                id,
                end.status.as_str(),
                rfc3339_millis(end.finished_at),
                end.duration_ms,
                end.exit_code,
                end.signal,
                end.output,
                end.output_truncated,
                end.error
            ])?;
            Ok(())
        })
    }

    /// Record a subagent run's runner, model, cost, tokens, turns and session.
    pub fn record_usage(&self, id: i64, usage: &RunUsage) -> Result<()> {
        self.write(|c| {
            c.execute(
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
        })
    }

    /// Set one fact of a run's `details` (`worktree`, `claude_code`); `key` is ours, never a
    /// client's.
    pub fn set_detail(&self, id: i64, key: &str, value: &serde_json::Value) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE runs SET details = json_set(COALESCE(details, '{}'), '$.' || ?2, json(?3))
                 WHERE id = ?1",
            )?
            .execute(params![id, key, value.to_string()])?;
            Ok(())
        })
    }

    /// A run that hit a usage limit goes back to `queued` for `until` (its limit's reset), with
    /// the reason and what it printed; `started_at` is set again when it starts.
    pub fn defer_run(
        &self,
        id: i64,
        until: DateTime<Utc>,
        reason: &str,
        output: &str,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE runs SET status = 'queued', scheduled_for = ?2, error = ?3, output = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, rfc3339_millis(until), reason, output])?;
            Ok(())
        })
    }

    /// What runs started at or after `since` cost together (one task's, or all when None), in
    /// USD; runs pruned from the history no longer count.
    pub fn spend_since(&self, task_id: Option<&str>, since: DateTime<Utc>) -> Result<f64> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM runs
                 WHERE (?1 IS NULL OR task_id = ?1) AND started_at >= ?2 AND cost_usd IS NOT NULL",
            )?
            .query_row(params![task_id, rfc3339_millis(since)], |r| r.get(0))?)
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
        self.write(|c| Self::recover_in(c, &now))
    }

    fn recover_in(conn: &Connection, now: &str) -> Result<Recovered> {
        let tx = conn.unchecked_transaction()?;
        let mut stmt = tx.prepare("SELECT task_id, id FROM runs WHERE status = 'running'")?;
        let were_running = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
        drop(stmt);
        let interrupted = tx.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = ?1,
                 error = COALESCE(error, 'the server stopped while this run was ' || status)
             WHERE status = 'running'
                OR (status = 'queued' AND trigger <> 'retry' AND COALESCE(error, '') NOT LIKE 'deferred:%')",
            [now],
        )?;
        let mut stmt = tx.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'queued'
                 AND (trigger = 'retry' OR COALESCE(error, '') LIKE 'deferred:%') ORDER BY id"
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
        // One task's runs are read from its index, not from a scan of every run.
        let which = if task_id.is_some() {
            "WHERE task_id = ?1"
        } else {
            ""
        };
        self.write(|c| {
            Ok(c.prepare_cached(&format!(
                "DELETE FROM runs WHERE id IN (
                 SELECT id FROM (
                     SELECT id, status, ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id DESC) AS n
                     FROM runs {which}
                 ) WHERE n > ?2 AND status NOT IN ('queued', 'running')
             )"
            ))?
            .execute(params![task_id, keep])?)
        })
    }

    /// The status and output of the task's last run before `run_id` that ran to an end
    /// (success, failed, timeout): what `recovered` and `changed` notifications compare with.
    pub fn previous_outcome(
        &self,
        task_id: &str,
        run_id: i64,
    ) -> Result<Option<(RunStatus, String)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT status, output FROM runs WHERE task_id = ?1 AND id < ?2
                   AND status IN ('success', 'failed', 'timeout') ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![task_id, run_id], |r| {
                let status: String = r.get(0)?;
                Ok((
                    RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
                    r.get(1)?,
                ))
            })
            .optional()?)
    }

    /// One run by id.
    pub fn get_run(&self, id: i64) -> Result<Option<Run>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
            .query_row([id], run_from_row)
            .optional()?)
    }

    /// Runs newest first, optionally for one task and one status. Each combination of filters
    /// has its own statement, so each is answered from its index (`runs_by_task_newest`,
    /// `runs_by_status`) instead of a scan of every run.
    pub fn list_runs(
        &self,
        task_id: Option<&str>,
        status: Option<RunStatus>,
        limit: i64,
    ) -> Result<Vec<Run>> {
        let status = status.map(RunStatus::as_str);
        let filter = match (task_id.is_some(), status.is_some()) {
            (true, true) => "WHERE task_id = ?1 AND status = ?2",
            (true, false) => "WHERE task_id = ?1",
            (false, true) => "WHERE status = ?2",
            (false, false) => "",
        };
        // The same three values bind to each statement (SQLite counts parameters up to the
        // highest index, ?3, whether or not ?1 and ?2 appear).
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs {filter} ORDER BY id DESC LIMIT ?3"
        ))?;
        let runs = stmt
            .query_map(params![task_id, status, limit], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(runs)
    }
}
