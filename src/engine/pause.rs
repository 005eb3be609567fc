//! Pausing, carried out for the engine. One task after failures (auto-pause): each run's end
//! is counted in the task's failures in a row, and at its `pause_after_failures` the task is
//! disabled with a `paused_reason` (`plan::auto_pause` decides). Everything
//! (`pause_all` / `resume_all`): the pause is
//! recorded in the store (it survives a restart) and published to `EngineHandle` readers
//! (`/health`, task views). While paused no fire timer is dealt with (dead-man deadlines
//! are: alerts, not fires), no fire of any kind is
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

impl Engine {
    /// Count a run's end in its task's failures in a row; disable the task when
    /// `plan::auto_pause` says so. Returns true when the task was paused now.
    pub(super) fn count_failures(
        &mut self,
        task: &Task,
        done: &run::Finished,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(failed) = plan::failure_streak(done.status) else {
            return false;
        };
        let own = task.spec.guards.pause_after_failures;
        if !failed && matches!(self.store.failures(&task.id), Ok(None)) {
            return false; // Nothing to reset: no write for every success.
        }
        let consecutive = match self.store.count_failure(&task.id, failed) {
            Ok(n) => n,
            Err(e) => {
                log::error!(
                    "task {}: failures in a row not counted: {e}",
                    task.spec.name
                );
                return false;
            }
        };
        let Some(reason) = plan::auto_pause(own, self.settings.pause_after_failures, consecutive)
        else {
            return false;
        };
        if !task.spec.enabled {
            return false;
        }
        let mut spec = task.spec.clone();
        spec.enabled = false;
        if let Err(e) = self
            .store
            .update_task(&task.id, &spec, now)
            .and_then(|_| self.store.set_paused_reason(&task.id, &reason, now))
        {
            log::error!(
                "task {}: cannot pause it after its failures: {e}",
                task.spec.name
            );
            return false;
        }
        self.disarm(&task.id);
        self.queue.retain(|q| q.task_id != task.id);
        log::warn!("task {} paused: {reason}", task.spec.name);
        let output = match self.store.get_run(done.run_id) {
            Ok(Some(run)) => run.output,
            _ => String::new(),
        };
        let facts = crate::exec::notify::Facts {
            task,
            run_id: done.run_id,
            status: done.status,
            error: Some(&reason),
            duration_ms: 0,
            output: &output,
        };
        let channels = &self.settings.run.notify_channels;
        crate::exec::notify::task_event(&facts, "paused", channels, &self.settings.db_path);
        true
    }
}

/// The pure rules pausing relies on (`plan::failure_streak`, `plan::auto_pause`,
/// `plan::miss_reason`), table by table.
#[cfg(test)]
mod tests {
    use super::plan::tests::{every, t, wake};
    use super::plan::*;
    use crate::tasks::model::CatchUp;
    use crate::tasks::runs::RunStatus;

    #[test]
    fn auto_pause_after_n_failures_in_a_row() {
        use RunStatus::*;
        let table = [
            (Failed, Some(true)),
            (Timeout, Some(true)),
            (Success, Some(false)),
            (Skipped, None),
            (Cancelled, None),
            (Interrupted, None),
        ];
        for (status, counts) in table {
            assert_eq!(failure_streak(status), counts, "{status}");
        }
        // (task's own, config default, failures in a row) -> paused?
        let cases = [
            (Some(3), 0, 2, false),
            (Some(3), 0, 3, true),
            (Some(3), 0, 4, true),
            (None, 3, 3, true),
            (None, 0, 100, false),
            (Some(0), 3, 100, false),
            (Some(5), 2, 3, false),
        ];
        for (own, default, n, paused) in cases {
            let reason = auto_pause(own, default, n);
            assert_eq!(reason.is_some(), paused, "{own:?} {default} {n}");
            if let Some(r) = reason {
                assert!(r.contains(&format!("{n} failed")) && r.contains("pause_after_failures"));
            }
        }
    }

    #[test]
    fn fires_missed_inside_a_pause_say_so() {
        let every_second = every(1, "2026-11-28T10:00:00Z");
        // Resumed at 10:00:09.5 after a pause from 10:00:04.
        let mut w = wake(
            "2026-11-28T10:00:09.500Z",
            "2026-11-28T10:00:09.500Z",
            false,
        );
        w.paused = Some((t("2026-11-28T10:00:04Z"), t("2026-11-28T10:00:09.500Z")));
        // Every fire time from the pause's start to its end: missed for the pause, none on time.
        let plan = on_timer(&every_second, CatchUp::Skip, t("2026-11-28T10:00:05Z"), w);
        assert_eq!(plan.on_time, None);
        assert_eq!(plan.missed.len(), 5);
        assert_eq!(plan.reason, MissReason::Paused);
        let rows = missed_rows(&plan.missed, plan.reason, CatchUp::Skip);
        assert!(rows[0].1.starts_with("skipped: paused: "), "{}", rows[0].1);
        // catch_up = once: one catch-up run for the latest of them.
        let plan = on_timer(&every_second, CatchUp::Once, t("2026-11-28T10:00:05Z"), w);
        assert_eq!(plan.catch_up, Some(t("2026-11-28T10:00:09Z")));
        // A time before the pause began: the server was not running then.
        let plan = on_timer(&every_second, CatchUp::Skip, t("2026-11-28T10:00:02Z"), w);
        assert_eq!(plan.reason, MissReason::NotRunning);
        // A clock jump wins over the pause.
        w.jumped = true;
        let plan = on_timer(&every_second, CatchUp::Skip, t("2026-11-28T10:00:05Z"), w);
        assert_eq!(plan.reason, MissReason::ClockJump);
    }
}
