//! Reading many tasks at a cost that does not grow with their number: pages of tasks for
//! `list_tasks` (filters, keyset paging in name order on the `tasks_by_name` index, the total),
//! the last run of every task on a page in one query, task names by id, and the enabled
//! time-based tasks together with their cursors in one query (the engine's start), and every
//! task's newest success in one query (`/metrics`).

use super::*;
use rusqlite::types::Value as SqlValue;
use std::collections::HashMap;

fn where_clause(conditions: &[&str]) -> String {
    match conditions {
        [] => String::new(),
        all => format!("WHERE {}", all.join(" AND ")),
    }
}

/// A task's name, whether it is enabled, and when its newest successful run finished.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSuccess {
    pub name: String,
    pub enabled: bool,
    pub last_success: Option<DateTime<Utc>>,
}

/// Which tasks a list shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub enabled: Option<bool>,
    pub task_type: Option<TaskType>,
    pub trigger: Option<TriggerKind>,
    /// A substring of the name, case-insensitive for ASCII letters (SQLite's `LIKE`).
    pub name_contains: Option<String>,
}

impl TaskFilter {
    /// `LIKE` pattern for the name search, with `%`, `_` and `\` taken literally.
    fn like_pattern(&self) -> Option<String> {
        self.name_contains.as_ref().map(|text| {
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        })
    }
}

/// The conditions of a filter (only those it uses, so each combination is its own statement
/// with its own plan) and their values in order.
fn conditions(filter: &TaskFilter) -> (Vec<&'static str>, Vec<SqlValue>) {
    let mut sql = Vec::new();
    let mut values = Vec::new();
    if let Some(enabled) = filter.enabled {
        sql.push("enabled = ?");
        values.push(SqlValue::Integer(enabled as i64));
    }
    if let Some(task_type) = filter.task_type {
        sql.push("type = ?");
        values.push(SqlValue::Text(task_type.as_str().into()));
    }
    if let Some(trigger) = filter.trigger {
        sql.push("trigger_type = ?");
        values.push(SqlValue::Text(trigger.as_str().into()));
    }
    if let Some(pattern) = filter.like_pattern() {
        sql.push("name LIKE ? ESCAPE '\\'");
        values.push(SqlValue::Text(pattern));
    }
    (sql, values)
}

pub(super) const LAST_RUNS: &str = "SELECT r.task_id, r.id, r.status, r.started_at, r.finished_at
     FROM json_each(?1) AS wanted
     JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE task_id = wanted.value)";

/// A time-based task as the engine arms it at start: its row (to continue from), the task, and
/// its cursor (None when it has none yet).
pub type TimedTask = (i64, Task, Option<DateTime<Utc>>);

/// In rowid order from a rowid on: a range of the table itself, each page a seek (the `+` keep
/// SQLite off the `enabled` index, which would sort every matching task for every page).
pub(super) const TIMED_TASKS: &str =
    "SELECT t.id, t.spec, t.created_at, t.updated_at, s.cursor, t.rowid
     FROM tasks t LEFT JOIN task_state s ON s.task_id = t.id
     WHERE t.rowid > ?1 AND +t.enabled = 1 AND +t.trigger_type IN ('cron', 'interval', 'once')
     ORDER BY t.rowid LIMIT ?2";

/// The statement of a page and its values.
pub(super) fn page_query(
    filter: &TaskFilter,
    after: Option<(&str, &str)>,
    limit: usize,
) -> (String, Vec<SqlValue>) {
    let (mut sql, mut values) = conditions(filter);
    if let Some((name, id)) = after {
        // `>= name` is the index range; the rest drops the rows up to and including the last
        // one shown.
        sql.push("name COLLATE NOCASE >= ? AND (name COLLATE NOCASE > ? OR id > ?)");
        values.extend([name, name, id].map(|v| SqlValue::Text(v.into())));
    }
    values.push(SqlValue::Integer(limit.min(i64::MAX as usize) as i64));
    let sql = format!(
        "SELECT id, spec, created_at, updated_at FROM tasks {}
         ORDER BY name COLLATE NOCASE, id LIMIT ?",
        where_clause(&sql)
    );
    (sql, values)
}

/// The statement of a filter's total and its values.
pub(super) fn count_query(filter: &TaskFilter) -> (String, Vec<SqlValue>) {
    let (sql, values) = conditions(filter);
    (
        format!("SELECT COUNT(*) FROM tasks {}", where_clause(&sql)),
        values,
    )
}

/// The last run of a task, as a list row shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub id: i64,
    pub status: RunStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Up to `limit` tasks matching `filter` in name order (case-insensitive, then id), starting
    /// after the task `(name, id)` when given. The rows come from an index in name order led by
    /// the filtered column (`tasks_by_enabled_name`, `tasks_by_trigger_name`, else
    /// `tasks_by_name`), from the cursor on: the cost depends on the page, not on the number of
    /// tasks (a name search or type filter alone reads index entries until the page is full).
    pub fn task_page(
        &self,
        filter: &TaskFilter,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let (sql, values) = page_query(filter, after, limit);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), Self::task_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|r| self.decode_task(r)).collect()
    }

    /// How many tasks match `filter`, counted in an index (the table's b-tree count without a
    /// filter; the matching entries of the filtered column's index with one).
    pub fn count_matching(&self, filter: &TaskFilter) -> Result<i64> {
        let (sql, values) = count_query(filter);
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    /// The last run of each of these tasks (those that have one), in one query: each task's
    /// newest run is found in `runs_by_task_newest`, without reading any other run.
    pub fn last_runs(&self, task_ids: &[&str]) -> Result<HashMap<String, LastRun>> {
        if task_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = serde_json::to_string(task_ids).map_err(|e| StoreError::Db(e.to_string()))?;
        let mut stmt = self.conn.prepare_cached(LAST_RUNS)?;
        let rows = stmt
            .query_map([ids], |r| {
                let status: String = r.get(2)?;
                Ok((
                    r.get::<_, String>(0)?,
                    LastRun {
                        id: r.get(1)?,
                        status: RunStatus::parse(&status)
                            .ok_or_else(|| bad_column(2, "status", &status))?,
                        started_at: opt_time_col(r, 3)?,
                        finished_at: opt_time_col(r, 4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(rows)
    }

    /// The names of these tasks by id (a deleted task has none), in one query.
    pub fn task_names(&self, task_ids: &[&str]) -> Result<HashMap<String, String>> {
        if task_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = serde_json::to_string(task_ids).map_err(|e| StoreError::Db(e.to_string()))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.name FROM json_each(?1) AS wanted JOIN tasks t ON t.id = wanted.value",
        )?;
        let rows = stmt
            .query_map([ids], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(rows)
    }

    /// Up to `limit` enabled cron, interval and once tasks stored after row `after` (0: from the
    /// first), each with its cursor (None when it has none yet) and its row, to continue from:
    /// what the engine arms at start, a page at a time so that start-up never holds every task
    /// at once.
    pub fn timed_tasks_with_cursors(&self, after: i64, limit: usize) -> Result<Vec<TimedTask>> {
        let mut stmt = self.conn.prepare_cached(TIMED_TASKS)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(rusqlite::params![after, limit], |r| {
                Ok((r.get(5)?, Self::task_from_row(r)?, opt_time_col(r, 4)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(at, row, cursor)| Ok((at, self.decode_task(row)?, cursor)))
            .collect()
    }

    /// Every task's name, whether it is enabled, and when its newest successful run (still in
    /// the history) finished, in name order, in one query.
    pub fn task_success_times(&self) -> Result<Vec<TaskSuccess>> {
        let mut stmt = self.conn.prepare_cached(
            // `+r.status`: walk the task's runs newest first on `runs_by_task_newest` up to its
            // newest success, not every success of every task on `runs_by_status`.
            "SELECT t.name, t.enabled,
                    (SELECT r.finished_at FROM runs r WHERE r.task_id = t.id AND +r.status = 'success'
                     ORDER BY r.id DESC LIMIT 1)
             FROM tasks t ORDER BY t.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TaskSuccess {
                    name: r.get(0)?,
                    enabled: r.get::<_, i64>(1)? != 0,
                    last_success: opt_time_col(r, 2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
