//! The webhook trigger's tokens: the SHA-256 (hex) of each webhook task's URL token, set,
//! replaced (rotation), dropped, and the task found by a token's hash through the UNIQUE index.
//! It never sees or stores a token itself, only its hash.

use super::*;

impl Store {
    /// Give a task a (new) token hash; the old one stops working at once.
    pub fn set_webhook_token(&self, task_id: &str, token_sha256: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO webhook_tokens (task_id, token_sha256) VALUES (?1, ?2)
                 ON CONFLICT(task_id) DO UPDATE SET token_sha256 = excluded.token_sha256",
                params![task_id, token_sha256],
            )?;
            Ok(())
        })
    }

    /// Drop a task's token (its trigger is no longer a webhook).
    pub fn clear_webhook_token(&self, task_id: &str) -> Result<()> {
        self.write(|c| {
            c.execute("DELETE FROM webhook_tokens WHERE task_id = ?1", [task_id])?;
            Ok(())
        })
    }

    /// Whether a task has a token.
    pub fn has_webhook_token(&self, task_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM webhook_tokens WHERE task_id = ?1")?
            .query_row([task_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The task whose token has this hash.
    pub fn webhook_task(&self, token_sha256: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT task_id FROM webhook_tokens WHERE token_sha256 = ?1")?
            .query_row([token_sha256], |r| r.get(0))
            .optional()?)
    }
}
