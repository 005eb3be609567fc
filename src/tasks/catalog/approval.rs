//! Owner approval and secret references in the catalog: with `require_approval` on, a task is
//! `pending_approval` until the owner's signature of its current content is stored, so an add
//! or a change of a bound field leaves it pending; task views and `list_tasks` rows say so and
//! how the owner approves (`claudecron pending`, `claudecron approve --content` on the host).
//! Views also warn about env secret references the host's store does not hold. It never
//! approves: no tool reaches an approval, and it cannot sign.

use super::*;
use crate::tasks::approval::{self, ApprovalState};

impl Catalog {
    /// Whether the task may run as it is now.
    pub(super) fn approval_state(&self, task: &Task) -> Result<ApprovalState, OpError> {
        if !self.defaults.require_approval {
            return Ok(ApprovalState::NotRequired);
        }
        let signature = self.store.approval(&task.id)?.and_then(|a| a.signature);
        Ok(self.judge(task, signature.as_deref()))
    }

    fn judge(&self, task: &Task, signature: Option<&str>) -> ApprovalState {
        approval::state(
            self.defaults.require_approval,
            self.defaults.approval_key.as_ref(),
            &task.id,
            &task.spec,
            signature,
        )
    }

    /// A task view's approval (when required) and secret-reference warning.
    pub(super) fn approval_view(
        &self,
        task: &Task,
        view: &mut Map<String, Value>,
    ) -> Result<(), OpError> {
        if self.defaults.require_approval {
            let stored = self.store.approval(&task.id)?;
            let state = self.judge(task, stored.as_ref().and_then(|a| a.signature.as_deref()));
            let mut shown = json!({ "state": state.as_str() });
            if state == ApprovalState::PendingApproval {
                shown["how"] = approval::how_to_approve(&task.id).into();
                if self.defaults.approval_key.is_none() {
                    shown["why"] = "the server has no approval public key (see its log): nothing runs until the owner creates the key pair and restarts it".into();
                }
            } else if let Some(a) = stored {
                shown["approved_at"] = rfc3339_millis(a.approved_at).into();
                shown["approved_by"] = a.approved_by.into();
            }
            view.insert(
                "pending_approval".into(),
                (state == ApprovalState::PendingApproval).into(),
            );
            view.insert("approval".into(), shown);
        }
        let missing = match crate::secrets::missing(&task.spec.env, &self.defaults.secrets_file)
        {
            Ok(names) if names.is_empty() => None,
            Ok(names) => Some(format!(
                "env refers to secrets not set on this host: {}; runs fail until the owner sets them with `claudecron secret set NAME` on the host (value on stdin)",
                names.join(", ")
            )),
            Err(e) => Some(format!("env refers to secrets, but {e}")),
        };
        if let Some(text) = missing {
            let warning = match view.get("warning").and_then(Value::as_str) {
                Some(w) => format!("{w}; {text}"),
                None => text,
            };
            view.insert("warning".into(), warning.into());
        }
        Ok(())
    }

    /// The ids of the tasks of a page that wait for approval (none when it is not required).
    pub(super) fn pending_ids<'a>(
        &self,
        tasks: &'a [Task],
    ) -> Result<std::collections::HashSet<&'a str>, OpError> {
        let mut out = std::collections::HashSet::new();
        if self.defaults.require_approval {
            for task in tasks {
                if self.approval_state(task)? == ApprovalState::PendingApproval {
                    out.insert(task.id.as_str());
                }
            }
        }
        Ok(out)
    }
}
