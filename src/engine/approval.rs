//! The engine's side of owner approval (`require_approval`): a task's approval is read from the
//! store at each fire and start (so `claudecron approve`, which writes the store directly on the
//! host, takes effect at the next fire with no message to the server). A pending task's timer
//! stays armed and passes silently (its cursor moves, nothing is recorded); an event or manual
//! fire is refused (`EngineError::PendingApproval`, no run row); a queued run (retry, overlap
//! queue) of a task that became pending ends unstarted. Only a row with the owner's valid
//! signature of the task's current content approves (checked with the public key the server
//! loaded at start). It never gives an approval.

use super::*;
use crate::tasks::approval::{self, ApprovalState};

impl Engine {
    /// Whether `task` waits for the owner's approval; an approval that cannot be read, or
    /// whose signature does not verify, counts as missing (the task does not run).
    pub(super) fn pending_approval(&self, task: &Task) -> bool {
        if !self.settings.require_approval {
            return false;
        }
        let approved = match self.store.approval(&task.id) {
            Ok(a) => a.and_then(|a| a.signature),
            Err(e) => {
                log::error!(
                    "task {}: its approval cannot be read ({e}); it does not run",
                    task.spec.name
                );
                None
            }
        };
        approval::state(
            true,
            self.settings.approval_key.as_ref(),
            &task.id,
            &task.spec,
            approved.as_deref(),
        ) == ApprovalState::PendingApproval
    }

    /// The refusal of a fire of a pending task.
    pub(super) fn approval_refusal(task: &Task) -> EngineError {
        EngineError::PendingApproval(format!(
            "task \"{}\" is pending_approval: {}",
            task.spec.name,
            approval::how_to_approve(&task.id)
        ))
    }
}
