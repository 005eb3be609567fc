//! Owner approvals of tasks (`require_approval`): the approved content's SHA-256 and the owner's
//! signature of it per task, when and by what it was given, read at every fire; the tasks with
//! their approvals for `claudecron pending`. It records and reads only: whether a task may run
//! is decided by `tasks::approval` (a row without a valid signature approves nothing).

use super::*;

/// The approval stored for a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The approved content's hash (`tasks::approval::content_hash`).
    pub content_sha256: String,
    /// The owner's signature (hex) of `tasks::approval::signed_text` of the task and hash.
    pub signature: Option<String>,
    pub approved_at: DateTime<Utc>,
    /// `claudecron approve`.
    pub approved_by: String,
}

impl Store {
    /// Record the owner's signature of the task's content with this hash (replacing any
    /// earlier approval).
    pub fn set_approval(
        &self,
        task_id: &str,
        content_sha256: &str,
        signature: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO task_approvals (task_id, content_sha256, approved_at, approved_by, signature)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1)
                 ON CONFLICT(task_id) DO UPDATE SET content_sha256 = excluded.content_sha256,
                   approved_at = excluded.approved_at, approved_by = excluded.approved_by,
                   signature = excluded.signature",
            )?
            .execute(params![task_id, content_sha256, rfc3339_millis(now), by, signature])?;
            Ok(())
        })
    }

    /// A task's approval, if it has one.
    pub fn approval(&self, task_id: &str) -> Result<Option<Approval>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT content_sha256, approved_at, approved_by, signature FROM task_approvals WHERE task_id = ?1",
            )?
            .query_row([task_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        Ok(
            row.map(|(content_sha256, at, approved_by, signature)| Approval {
                content_sha256,
                signature,
                approved_at: parse_utc(&at).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                approved_by,
            }),
        )
    }

    /// Every task with its approval's signature, in name order (for `claudecron pending`; a host command,
    /// so all tasks at once).
    pub fn tasks_with_approvals(&self) -> Result<Vec<(Task, Option<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.spec, t.created_at, t.updated_at, a.signature
             FROM tasks t LEFT JOIN task_approvals a ON a.task_id = t.id
             ORDER BY t.name COLLATE NOCASE, t.id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((Self::task_from_row(r)?, r.get::<_, Option<String>>(4)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(row, hash)| Ok((self.decode_task(row)?, hash)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before signed approvals (schema 12) with a task recorded as existing
    /// before approvals: the migration drops the unsigned row; a signature is stored and read
    /// back; an approval of a task that does not exist is not recorded.
    #[test]
    fn unsigned_approvals_are_dropped_and_signatures_kept() {
        let dir = crate::util::TestDir::new("store-approval");
        let path = dir.path().join("tasks.db");
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
            conn.execute(
                "INSERT INTO tasks (id, name, type, enabled, trigger_type, spec, created_at, updated_at)
                 VALUES ('t1', 'old', 'bash', 1, 'manual', ?1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                [serde_json::to_string(&spec).unwrap()],
            )
            .unwrap();
            for sql in &MIGRATIONS[9..12] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 12).unwrap();
            let marks: i64 = conn
                .query_row("SELECT COUNT(*) FROM task_approvals", [], |r| r.get(0))
                .unwrap();
            assert_eq!(marks, 1, "migration 10 wrote its mark");
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.approval("t1").unwrap(), None, "the mark is gone");
        let now = Utc::now();
        store.set_approval("t1", "h", "sig", "test", now).unwrap();
        let a = store.approval("t1").unwrap().expect("an approval row");
        assert_eq!(a.signature.as_deref(), Some("sig"));
        assert_eq!(a.content_sha256, "h");
        let all = store.tasks_with_approvals().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.as_deref(), Some("sig"));
        store.set_approval("gone", "x", "s", "test", now).unwrap();
        assert_eq!(store.approval("gone").unwrap(), None);
    }
}
