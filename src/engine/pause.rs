//! Pause everything (`pause_all` / `resume_all`), carried out for the engine: the pause is
//! recorded in the store (it survives a restart) and published to `EngineHandle` readers
//! (`/health`, task views). While paused no timer is dealt with, no fire of any kind is
//! recorded (hooks, file-watch, `after`, manual runs are refused with the reason) and queued
//! runs wait; per-task `enabled` flags are never touched. On resume the timers that came due meet
//! `plan::on_timer` as after an outage: each task's `catch_up` decides.

use super::*;
use serde::Serialize;

/// The pause of everything: why, and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PauseState {
    pub reason: String,
    #[serde(serialize_with = "crate::util::serialize_time_millis")]
    pub since: DateTime<Utc>,
}

/// The longest pause reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

impl PauseState {
    /// Why a fire is refused while paused, and how the pause ends.
    pub fn refusal(&self) -> String {
        format!(
            "claudecron is paused (pause_all since {}: {}); nothing runs until an operator resumes it with claudecron_resume_all or `claudecron resume-all`",
            rfc3339(self.since),
            self.reason
        )
    }
}

impl Engine {
    /// The pause now, if any (the engine thread is its only writer).
    pub(super) fn pause_state(&self) -> Option<PauseState> {
        self.handle.paused()
    }

    pub(super) fn paused(&self) -> bool {
        self.pause_state().is_some()
    }

    /// Read the stored pause at start.
    pub(super) fn load_pause(&mut self) -> Result<(), String> {
        let stored = self.store.pause_all_state().map_err(|e| e.to_string())?;
        if let Some((reason, since)) = stored {
            log::warn!(
                "claudecron is paused since {} ({reason}): nothing runs until resume-all",
                rfc3339(since)
            );
            self.publish(Some(PauseState { reason, since }));
        }
        Ok(())
    }

    fn publish(&self, state: Option<PauseState>) {
        *self.handle.pause.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Pause everything; an existing pause is kept as it is. Returns the pause and whether it
    /// was already in force.
    pub(super) fn pause_all(
        &mut self,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(PauseState, bool), EngineError> {
        if let Some(state) = self.pause_state() {
            return Ok((state, true));
        }
        self.store.set_pause_all(Some((&reason, now)))?;
        let state = PauseState { reason, since: now };
        log::warn!(
            "pause_all: nothing runs until resume-all ({})",
            state.reason
        );
        self.publish(Some(state.clone()));
        Ok((state, false))
    }

    /// End the pause; returns the pause that ended (None: nothing was paused). Fire times that
    /// came due while paused count as missed (each task's `catch_up` decides).
    pub(super) fn resume_all(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Option<PauseState>, EngineError> {
        let Some(state) = self.pause_state() else {
            return Ok(None);
        };
        self.store.set_pause_all(None)?;
        self.publish(None);
        self.boot = self.boot.max(now);
        self.last_pause = Some((state.since, now));
        log::warn!(
            "resume_all: the pause since {} ended; fires missed meanwhile follow each task's catch_up",
            rfc3339(state.since)
        );
        Ok(Some(state))
    }
}
