//! The webhook trigger in the catalog: a webhook task's token made when the task is added (or
//! becomes a webhook task) and on `rotate_webhook_token`, dropped when its trigger changes, the
//! token shown once in that tool result, and `POST /trigger/{token}` resolved to a fire through
//! the engine. Only the token's SHA-256 is stored; it never logs a token.

use super::*;
use crate::triggers::webhook;

/// Why a webhook request started no run.
#[derive(Debug)]
pub enum WebhookRefusal {
    /// No task has this token (or the task was deleted): 404.
    Unknown,
    /// The task is disabled: 409 with the text.
    Disabled(String),
    /// Everything is paused, or the engine is down: 503 with the text.
    Unavailable(String),
    /// The database failed: 500.
    Internal(String),
}

/// The field of `update_task` that gives a webhook task a new token.
pub const ROTATE_FIELD: &str = "rotate_webhook_token";

impl Catalog {
    /// After an add or update: a webhook task without a token (or asked to rotate) gets a new
    /// one, returned to be shown once; a task that is no longer a webhook task loses its token.
    pub(super) fn webhook_token_after(
        &self,
        task: &Task,
        rotate: bool,
    ) -> Result<Option<Value>, OpError> {
        check_rotate(&task.spec, rotate)?;
        if task.spec.trigger != Trigger::Webhook {
            self.store.clear_webhook_token(&task.id)?;
            return Ok(None);
        }
        if !rotate && self.store.has_webhook_token(&task.id)? {
            return Ok(None);
        }
        let token = webhook::new_token().map_err(|e| OpError::Internal(e.to_string()))?;
        self.store
            .set_webhook_token(&task.id, &webhook::token_hash(&token))?;
        Ok(Some(json!({
            "url_path": format!("{}{token}", webhook::PATH_PREFIX),
            "note": "POST to this path on the server starts the task (no other credentials); the body goes to stdin and CLAUDECRON_PAYLOAD. The token is shown only now (only its hash is stored); to replace it, update_task with rotate_webhook_token: true.",
        })))
    }

    /// `POST /trigger/{token}`: fire the task the token belongs to with the body as context.
    pub fn webhook_fire(&self, token: &str, body: &[u8]) -> Result<i64, WebhookRefusal> {
        if !webhook::well_formed(token) {
            return Err(WebhookRefusal::Unknown);
        }
        let db = |e: crate::store::StoreError| WebhookRefusal::Internal(e.to_string());
        let Some(task_id) = self
            .store
            .webhook_task(&webhook::token_hash(token))
            .map_err(db)?
        else {
            return Err(WebhookRefusal::Unknown);
        };
        let task = self
            .store
            .find_task(&task_id)
            .map_err(db)?
            .ok_or(WebhookRefusal::Unknown)?;
        if !task.spec.enabled {
            return Err(WebhookRefusal::Disabled(format!(
                "task \"{}\" is disabled; enable it with claudecron_toggle_task to accept webhook fires",
                task.spec.name
            )));
        }
        self.services
            .engine
            .fire(&task.id, TriggerKind::Webhook, Some(webhook::context(body)))
            .map_err(|e| match e {
                EngineError::NotFound(_) => WebhookRefusal::Unknown,
                EngineError::Db(text) => WebhookRefusal::Internal(text),
                EngineError::PendingApproval(text) => WebhookRefusal::Disabled(text),
                other => WebhookRefusal::Unavailable(other.to_string()),
            })
    }
}

/// Refused before anything is saved: a rotation for a task that is not a webhook task.
pub(super) fn check_rotate(
    spec: &crate::tasks::model::TaskSpec,
    rotate: bool,
) -> Result<(), OpError> {
    if rotate && spec.trigger != Trigger::Webhook {
        return Err(OpError::Invalid(FieldError {
            field: ROTATE_FIELD.into(),
            message: "only a task with trigger {\"type\":\"webhook\"} has a token to rotate".into(),
        }));
    }
    Ok(())
}

/// `update_task`'s arguments without `rotate_webhook_token`, and whether it was true.
pub(super) fn take_rotate(
    patch: &Map<String, Value>,
) -> Result<(Map<String, Value>, bool), OpError> {
    let mut rest = patch.clone();
    let rotate = match rest.remove(ROTATE_FIELD) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(OpError::Invalid(FieldError {
                field: ROTATE_FIELD.into(),
                message: "must be true or false".into(),
            }))
        }
    };
    Ok((rest, rotate))
}

/// The result of add/update: `{task}`, with `webhook` when a token was just made.
pub(super) fn with_token(task: Value, token: Option<Value>) -> Value {
    let mut out = json!({ "task": task });
    if let (Some(token), Some(obj)) = (token, out.as_object_mut()) {
        obj.insert("webhook".into(), token);
    }
    out
}

/// For `get_task`: how a webhook task is fired (the token itself is never shown again).
pub(super) fn view(task: &Task) -> Option<Value> {
    (task.spec.trigger == Trigger::Webhook).then(|| {
        json!({
            "url_path": format!("{}{{token}}", webhook::PATH_PREFIX),
            "token": "hidden: shown once when made or rotated; for a new one, update_task with rotate_webhook_token: true",
        })
    })
}
