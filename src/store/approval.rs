//! Owner approvals of tasks (`require_approval`): the approved content's SHA-256 per task, when
//! and by what it was given, read at every fire; the tasks with their approvals for
//! `claudecron pending`. It records and reads only: whether a task may run is decided by
//! `tasks::approval`.

use super::*;

/// The approval stored for a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The approved content's hash (`tasks::approval::content_hash`), or the mark of a task
    /// that existed before approvals.
    pub content_sha256: String,
    pub approved_at: DateTime<Utc>,
    /// `claudecron approve`, `require_approval off`, `existing before approvals`.
    pub approved_by: String,
}

impl Store {
    /// Record that the task's content with this hash is approved (replacing any earlier one).
    pub fn set_approval(
        &self,
        task_id: &str,
        content_sha256: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO task_approvals (task_id, content_sha256, approved_at, approved_by)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1)
                 ON CONFLICT(task_id) DO UPDATE SET content_sha256 = excluded.content_sha256,
                   approved_at = excluded.approved_at, approved_by = excluded.approved_by",
            )?
            .execute(params![task_id, content_sha256, rfc3339_millis(now), by])?;
            Ok(())
        })
    }

    /// A task's approval, if it has one.
    pub fn approval(&self, task_id: &str) -> Result<Option<Approval>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT content_sha256, approved_at, approved_by FROM task_approvals WHERE task_id = ?1",
            )?
            .query_row([task_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        Ok(row.map(|(content_sha256, at, approved_by)| Approval {
            content_sha256,
            approved_at: parse_utc(&at).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            approved_by,
        }))
    }

    /// Every task with its approval, in name order (for `claudecron pending`; a host command,
    /// so all tasks at once).
    pub fn tasks_with_approvals(&self) -> Result<Vec<(Task, Option<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.spec, t.created_at, t.updated_at, a.content_sha256
             FROM tasks t LEFT JOIN task_approvals a ON a.task_id = t.id
             ORDER BY t.name COLLATE NOCASE, t.id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((Self::task_from_row(r)?, r.get::<_, Option<String>>(4)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(row, hash)| Ok((Self::decode_task(row)?, hash)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::approval::{self, ApprovalState, EXISTING_BEFORE_APPROVALS};

    /// A database made before approvals (schema 9) with a task: after the migration the task
    /// counts as approved, and a new task has no approval.
    #[test]
    fn tasks_existing_at_the_migration_count_as_approved() {
        let dir = std::env::temp_dir().join(format!("cc-store-approval-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tasks.db");
        let spec: TaskSpec = serde_json::from_value(serde_json::json!({
            "name": "old", "type": "bash", "enabled": true, "trigger": {"type": "manual"},
            "timezone": "UTC", "command": "true", "overlap": "skip", "catch_up": "skip",
            "retries": {"max_attempts": 0, "backoff_seconds": 30, "doubling": true}
        }))
        .unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..9] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 9).unwrap();
            conn.execute(
                "INSERT INTO tasks (id, name, type, enabled, trigger_type, spec, created_at, updated_at)
                 VALUES ('t1', 'old', 'bash', 1, 'manual', ?1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                [serde_json::to_string(&spec).unwrap()],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let a = store.approval("t1").unwrap().expect("an approval row");
        assert_eq!(a.content_sha256, EXISTING_BEFORE_APPROVALS);
        assert_eq!(
            approval::state(true, &spec, Some(&a.content_sha256)),
            ApprovalState::Approved
        );
        let now = Utc::now();
        let new = store
            .insert_task(
                "t2",
                &TaskSpec {
                    name: "new".into(),
                    ..spec.clone()
                },
                now,
            )
            .unwrap();
        assert_eq!(store.approval(&new.id).unwrap(), None);
        store
            .set_approval("t2", &approval::content_hash(&new.spec), "test", now)
            .unwrap();
        assert_eq!(store.tasks_with_approvals().unwrap().len(), 2);
        // An approval for a task that does not exist is not recorded.
        store.set_approval("gone", "x", "test", now).unwrap();
        assert_eq!(store.approval("gone").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
