//! Dead-man alerts carried out for the engine: one deadline timer per task with `expect`
//! (armed at start, when the task changes and after each success — never a polling tick; dealt
//! with while everything is paused too, saying so), the
//! `missed` message sent once when `plan::check_deadline` says so and the overdue mark stored
//! (a restart neither re-sends nor forgets it), and the `recovered` ("back on time") message at
//! the next success. Runs on the engine thread only.

use super::*;
use crate::exec::notify::{self, Deadman as Event};
use crate::store::Deadman;
use crate::tasks::model::NotifyOn;
use plan::DeadlineCheck;

/// How soon a deadline whose overdue mark the store refused is tried again.
const STORE_RETRY: chrono::Duration = chrono::Duration::seconds(60);

impl Engine {
    /// At start: arm the deadline of every task with `expect` (enabled or not: a task disabled
    /// by accident is what the alert is for), a page at a time.
    pub(super) fn arm_deadlines(&mut self, now: DateTime<Utc>) -> Result<(), String> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .tasks_with_expect(&after, ARM_PAGE)
                .map_err(|e| e.to_string())?;
            let full = page.len() == ARM_PAGE;
            for id in &page {
                match self.store.get_task(id) {
                    Ok(Some(task)) => self.arm_deadline(&task, now),
                    Ok(None) => {}
                    Err(e) => log::error!("task {id}: its dead-man deadline is not armed: {e}"),
                }
            }
            match page.last() {
                Some(last) if full => after = last.clone(),
                _ => return Ok(()),
            }
        }
    }

    /// (Re-)arm a task's deadline timer from its stored state (started now when it has none);
    /// a task without `expect` has its state dropped. A deadline already passed comes due at
    /// once, where `deadline_timer` decides.
    pub(super) fn arm_deadline(&mut self, task: &Task, now: DateTime<Utc>) {
        let key = TimerKey::Deadline(task.id.as_str().into());
        self.timers.remove(&key);
        if task.spec.expect.is_none() {
            if matches!(self.store.deadman(&task.id), Ok(Some(_))) {
                if let Err(e) = self.store.drop_deadman(&task.id) {
                    log::error!("task {}: its dead-man state stays: {e}", task.spec.name);
                }
            }
            return;
        }
        let state = match self.store.start_deadman(&task.id, now) {
            Ok(state) => state,
            Err(e) => {
                log::error!(
                    "task {}: its dead-man state cannot be read or started ({e}); tried again in {} s",
                    task.spec.name,
                    STORE_RETRY.num_seconds()
                );
                self.timers.set(key, now + STORE_RETRY);
                return;
            }
        };
        let deadline = self.deadline_of(task, &state);
        match plan::check_deadline(deadline, state.overdue_since.is_some(), now) {
            DeadlineCheck::Wait(at) | DeadlineCheck::Alert(at) => self.timers.set(key, at),
            DeadlineCheck::Quiet | DeadlineCheck::Idle => {}
        }
    }

    /// When a success is due, by `plan`'s rule (the task's fire rule for `grace`).
    fn deadline_of(&self, task: &Task, state: &Deadman) -> Option<DateTime<Utc>> {
        let window = plan::window(task.spec.expect.as_ref()?)?;
        let rule = FireRule::of_cached(&task.spec, &self.schedules);
        let start = plan::window_start(state.since, state.last_success);
        plan::deadline(window, rule.as_ref(), start)
    }

    /// While everything is paused: the deadlines that came due (nothing else is dealt with).
    pub(super) fn deadlines_due(&mut self, now: DateTime<Utc>) {
        while let Some(task_id) = self.timers.pop_due_deadline(now) {
            self.deadline_timer(task_id, now);
        }
    }

    /// A task's deadline came due: report it overdue once (`missed`), or wait on.
    pub(super) fn deadline_timer(&mut self, task_id: Arc<str>, now: DateTime<Utc>) {
        let task = match self.store.get_task(&task_id) {
            Ok(Some(task)) => task,
            Ok(None) => return,
            Err(e) => {
                log::error!("task {task_id}: cannot read it at its dead-man deadline: {e}");
                self.timers
                    .set(TimerKey::Deadline(task_id), now + STORE_RETRY);
                return;
            }
        };
        let state = match self.store.deadman(&task.id) {
            Ok(Some(state)) => state,
            // No state (expect just removed, or a failed start): arming decides afresh.
            Ok(None) => return self.arm_deadline(&task, now),
            Err(e) => {
                log::error!("task {}: dead-man state unreadable: {e}", task.spec.name);
                self.timers
                    .set(TimerKey::Deadline(task_id), now + STORE_RETRY);
                return;
            }
        };
        let deadline = self.deadline_of(&task, &state);
        match plan::check_deadline(deadline, state.overdue_since.is_some(), now) {
            DeadlineCheck::Wait(at) => self.timers.set(TimerKey::Deadline(task_id), at),
            DeadlineCheck::Alert(since) => {
                // Stored before anything is sent: a restart must not report it again.
                if let Err(e) = self.store.set_overdue(&task.id, since) {
                    log::error!(
                        "task {}: overdue, but the mark was not stored ({e}); reported when it can be",
                        task.spec.name
                    );
                    self.timers
                        .set(TimerKey::Deadline(task_id), now + STORE_RETRY);
                    return;
                }
                let start = plan::window_start(state.since, state.last_success);
                log::warn!(
                    "task {}: no successful run since {} (expect); overdue since {}",
                    task.spec.name,
                    rfc3339(start),
                    rfc3339(since)
                );
                let pause = self.pause_state().map(|p| p.refusal());
                let event = Event::Missed {
                    start,
                    overdue_since: since,
                    reason: pause.as_deref(),
                };
                self.send_deadman(&task, event);
            }
            DeadlineCheck::Quiet | DeadlineCheck::Idle => {}
        }
    }

    /// A run of the task succeeded: its window starts again, and a task that had been reported
    /// overdue is back on time.
    pub(super) fn deadman_success(&mut self, task: &Task, run_id: i64, now: DateTime<Utc>) {
        if task.spec.expect.is_none() {
            return;
        }
        let was = self
            .store
            .start_deadman(&task.id, now)
            .and_then(|_| self.store.deadman_success(&task.id, now));
        let was = match was {
            Ok(was) => was,
            Err(e) => {
                log::error!(
                    "task {}: its success is not counted for expect: {e}",
                    task.spec.name
                );
                return;
            }
        };
        self.arm_deadline(task, now);
        let Some(overdue_since) = was else {
            return;
        };
        log::info!(
            "task {}: back on time (run {run_id} succeeded; overdue since {})",
            task.spec.name,
            rfc3339(overdue_since)
        );
        let output = match self.store.get_run(run_id) {
            Ok(Some(run)) => run.output,
            _ => String::new(),
        };
        if plan::sends_recovery(true, self.run_sent_recovered(task, run_id, &output)) {
            let event = Event::Recovered {
                run_id,
                output: &output,
                overdue_since,
            };
            self.send_deadman(task, event);
        }
    }

    /// Whether the run's own notification is `recovered` (the same rule its thread used).
    fn run_sent_recovered(&self, task: &Task, run_id: i64, output: &str) -> bool {
        let Some(n) = task.spec.notify.as_ref() else {
            return false;
        };
        if !n.on.contains(&NotifyOn::Recovered) || notify::is_silent(output) {
            return false;
        }
        let previous = self.store.previous_outcome(&task.id, run_id).ok().flatten();
        let previous = previous.as_ref().map(|(s, o)| (*s, o.as_str()));
        notify::event_for(&n.on, RunStatus::Success, output, previous) == Some("recovered")
    }

    fn send_deadman(&self, task: &Task, event: Event) {
        let channels = &self.settings.run.notify_channels;
        notify::deadman_event(task, event, channels, &self.settings.db_path);
    }
}
