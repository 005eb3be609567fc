//! Owner approval and secret references in the catalog: with `require_approval` off every add
//! or update is approved as it is written (so switching it on later keeps those tasks running);
//! with it on an add or a change of a bound field leaves the task `pending_approval`, and task
//! views and `list_tasks` rows say so and how the owner approves (`claudecron approve` on the
//! host). Views also warn about env secret references the host's store does not hold. It never
//! approves a pending task: no tool reaches an approval.

use super::*;
use crate::tasks::approval::{self, ApprovalState, EXISTING_BEFORE_APPROVALS};

/// `approved_by` of an approval given because `require_approval` was off.
const BY_NOT_REQUIRED: &str = "require_approval off";

impl Catalog {
    /// Whether the task may run as it is now.
    pub(super) fn approval_state(&self, task: &Task) -> Result<ApprovalState, OpError> {
        if !self.defaults.require_approval {
            return Ok(ApprovalState::NotRequired);
        }
        let approved = self.store.approval(&task.id)?.map(|a| a.content_sha256);
        Ok(approval::state(true, &task.spec, approved.as_deref()))
    }

    /// Before an update: a task recorded as existing before approvals gets the hash of the
    /// content it has now, so the change is judged against what was approved.
    pub(super) fn settle_existing_approval(
        &self,
        existing: &Task,
        now: DateTime<Utc>,
    ) -> Result<(), OpError> {
        if let Some(a) = self.store.approval(&existing.id)? {
            if a.content_sha256 == EXISTING_BEFORE_APPROVALS {
                let hash = approval::content_hash(&existing.spec);
                self.store
                    .set_approval(&existing.id, &hash, &a.approved_by, now)?;
            }
        }
        Ok(())
    }

    /// After an add or update: with `require_approval` off the content is approved as written.
    pub(super) fn approve_unless_required(
        &self,
        task: &Task,
        now: DateTime<Utc>,
    ) -> Result<(), OpError> {
        if self.defaults.require_approval {
            return Ok(());
        }
        let hash = approval::content_hash(&task.spec);
        if self.store.approval(&task.id)?.map(|a| a.content_sha256) != Some(hash.clone()) {
            self.store
                .set_approval(&task.id, &hash, BY_NOT_REQUIRED, now)?;
        }
        Ok(())
    }

    /// A task view's approval (when required) and secret-reference warning.
    pub(super) fn approval_view(
        &self,
        task: &Task,
        view: &mut Map<String, Value>,
    ) -> Result<(), OpError> {
        if self.defaults.require_approval {
            let stored = self.store.approval(&task.id)?;
            let state = approval::state(
                true,
                &task.spec,
                stored.as_ref().map(|a| a.content_sha256.as_str()),
            );
            let mut shown = json!({ "state": state.as_str() });
            if state == ApprovalState::PendingApproval {
                shown["how"] = approval::how_to_approve(&task.id).into();
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

#[cfg(test)]
mod tests {
    use super::super::tests::source;
    use super::*;

    /// A task recorded as existing before approvals keeps running; its first edit is judged
    /// against the content it had: a description keeps the approval, a new command does not.
    #[test]
    fn a_task_from_before_approvals_is_judged_against_its_old_content() {
        let (mut source, _dir) = source("approval-existing");
        let defaults = Defaults {
            require_approval: true,
            ..(*source.defaults).clone()
        };
        source.defaults = Arc::new(defaults);
        let catalog = source.open().unwrap();
        let now = Utc::now();
        let off = Catalog {
            defaults: Arc::new(Defaults {
                require_approval: false,
                ..(*catalog.defaults).clone()
            }),
            ..source.open().unwrap()
        };
        let added = off
            .add(
                &json!({"name": "old", "type": "bash", "trigger": {"type": "manual"}, "command": "true"}),
                now,
            )
            .unwrap();
        let id = added["task"]["id"].as_str().unwrap().to_string();
        catalog
            .store
            .set_approval(
                &id,
                EXISTING_BEFORE_APPROVALS,
                "existing before approvals",
                now,
            )
            .unwrap();
        let view = catalog.get(&id, now).unwrap();
        assert_eq!(view["task"]["pending_approval"], json!(false), "{view}");
        let patch = |v: Value| v.as_object().unwrap().clone();
        let described = catalog
            .update(&id, &patch(json!({"description": "d"})), now)
            .unwrap();
        assert_eq!(described["task"]["pending_approval"], json!(false));
        let stored = catalog.store.approval(&id).unwrap().unwrap();
        assert_eq!(stored.content_sha256.len(), 64, "the mark became a hash");
        let edited = catalog
            .update(&id, &patch(json!({"command": "echo new"})), now)
            .unwrap();
        assert_eq!(edited["task"]["pending_approval"], json!(true));
        assert!(edited["task"]["approval"]["how"]
            .as_str()
            .unwrap()
            .contains(&format!("claudecron approve {id}")));
    }
}
