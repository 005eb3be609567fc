//! Dead-man state of tasks with `expect`: where the window starts, the last success, since
//! when the task is reported overdue, the last dead-man message's outcome. It records and
//! reads only; whether a task is overdue is `engine::plan`'s decision.

use super::*;

/// A task's dead-man state as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadman {
    /// The window starts here when there is no later success: when the task got its `expect`
    /// (its creation, for a task made with it) or was last enabled.
    pub since: DateTime<Utc>,
    pub last_success: Option<DateTime<Utc>>,
    /// Reported overdue since then (`missed` sent once); None: not reported.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The outcome of the last dead-man message (delivered / failed and why).
    pub notify: Option<serde_json::Value>,
}

impl Store {
    /// A task's dead-man state, if it has one.
    pub fn deadman(&self, task_id: &str) -> Result<Option<Deadman>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT since, last_success, overdue_since, notify FROM task_deadman WHERE task_id = ?1",
            )?
            .query_row([task_id], |r| {
                let notify: Option<String> = r.get(3)?;
                Ok(Deadman {
                    since: time_col(r, 0)?,
                    last_success: opt_time_col(r, 1)?,
                    overdue_since: opt_time_col(r, 2)?,
                    notify: notify.and_then(|n| serde_json::from_str(&n).ok()),
                })
            })
            .optional()?)
    }

    /// Start watching a task (it got its `expect`): the window starts `now`, or at its last
    /// successful run still in the history when that is later. Returns the state (an existing
    /// one is kept as it is).
    pub fn start_deadman(&self, task_id: &str, now: DateTime<Utc>) -> Result<Deadman> {
        if let Some(state) = self.deadman(task_id)? {
            return Ok(state);
        }
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO task_deadman (task_id, since, last_success)
                 VALUES (?1, ?2, (SELECT MAX(finished_at) FROM runs WHERE task_id = ?1 AND status = 'success'))
                 ON CONFLICT(task_id) DO NOTHING",
            )?
            .execute(params![task_id, rfc3339_millis(now)])?;
            Ok(())
        })?;
        self.deadman(task_id)?
            .ok_or_else(|| StoreError::Db(format!("task {task_id} has no dead-man state")))
    }

    /// A successful run at `at`: the window starts again and the overdue mark goes. Returns
    /// since when the task had been reported overdue, if it had.
    pub fn deadman_success(
        &self,
        task_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let before = self.deadman(task_id)?.and_then(|d| d.overdue_since);
        self.write(|c| {
            c.prepare_cached(
                "UPDATE task_deadman SET last_success = ?2, overdue_since = NULL WHERE task_id = ?1",
            )?
            .execute(params![task_id, rfc3339_millis(at)])?;
            Ok(())
        })?;
        Ok(before)
    }

    /// Remember that the task was reported overdue since `since`.
    pub fn set_overdue(&self, task_id: &str, since: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE task_deadman SET overdue_since = ?2 WHERE task_id = ?1")?
                .execute(params![task_id, rfc3339_millis(since)])?;
            Ok(())
        })
    }

    /// The task was enabled again: its window starts `now` unless a later success comes.
    pub fn restart_deadman_window(&self, task_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE task_deadman SET since = ?2 WHERE task_id = ?1")?
                .execute(params![task_id, rfc3339_millis(now)])?;
            Ok(())
        })
    }

    /// Forget a task's dead-man state (its `expect` was removed).
    pub fn drop_deadman(&self, task_id: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM task_deadman WHERE task_id = ?1", [task_id])?;
            Ok(())
        })
    }

    /// Record the outcome of a dead-man message.
    pub fn set_deadman_notify(&self, task_id: &str, outcome: &serde_json::Value) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE task_deadman SET notify = ?2 WHERE task_id = ?1")?
                .execute(params![task_id, outcome.to_string()])?;
            Ok(())
        })
    }

    /// The ids of the tasks with `expect` (enabled or not: a task disabled by accident is
    /// what a dead-man alert is for), in id order, a page of at most `limit` after `after`.
    pub fn tasks_with_expect(&self, after: &str, limit: usize) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM tasks WHERE id > ?1 AND json_extract(spec, '$.expect') IS NOT NULL
             ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![after, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }
}
