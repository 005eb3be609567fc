//! The safety switches shared by the tools and the CLI: `pause_all` / `resume_all` (validated
//! reason, the engine's answer as JSON), the pause as `/health` shows it, and a task's
//! failures in a row and `paused_reason` (auto-pause) and its dead-man state (`expect`) as task
//! views show them. The engine carries the pause and the alerts out (`engine::pause`,
//! `engine::deadman`); this module never touches the store's pause row itself.

use super::*;
use crate::engine::MAX_REASON_CHARS;

impl Catalog {
    /// `pause_all`: nothing runs until `resume_all`; per-task `enabled` flags are untouched.
    pub fn pause_all(&self, reason: &str) -> OpResult {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(OpError::Invalid(FieldError {
                field: "reason".into(),
                message: format!(
                    "give why everything is paused, 1 to {MAX_REASON_CHARS} characters (it is shown on /health and every task)"
                ),
            }));
        }
        if reason.chars().any(|c| c.is_control()) {
            return Err(OpError::Invalid(FieldError {
                field: "reason".into(),
                message:
                    "control characters (line breaks included) are not accepted; one line of text"
                        .into(),
            }));
        }
        let (pause, already) = self
            .services
            .engine
            .pause_all(reason)
            .map_err(OpError::from_engine)?;
        Ok(json!({
            "paused": true,
            "already_paused": already,
            "reason": pause.reason,
            "since": rfc3339_millis(pause.since),
            "note": "no timer, hook, file-watch or after fire runs and manual runs are refused until claudecron_resume_all (or `claudecron resume-all` on the host); runs already running go on; per-task enabled flags are unchanged; fires missed meanwhile follow each task's catch_up",
        }))
    }

    /// `resume_all`: end the pause; fires missed meanwhile follow each task's `catch_up`.
    pub fn resume_all(&self, now: DateTime<Utc>) -> OpResult {
        let ended = self
            .services
            .engine
            .resume_all()
            .map_err(OpError::from_engine)?;
        Ok(match ended {
            Some(pause) => json!({
                "paused": false,
                "was_paused": true,
                "reason": pause.reason,
                "since": rfc3339_millis(pause.since),
                "resumed_at": rfc3339_millis(now),
            }),
            None => json!({"paused": false, "was_paused": false}),
        })
    }
}

impl Catalog {
    /// A task's `notify.channel` must name one of the config's `[[notify_channels]]`.
    pub(super) fn check_channel(
        &self,
        spec: &crate::tasks::model::TaskSpec,
    ) -> Result<(), OpError> {
        let Some(name) = spec.notify.as_ref().and_then(|n| n.channel.as_ref()) else {
            return Ok(());
        };
        let known = &self.defaults.notify_channels;
        if known.contains(name) {
            return Ok(());
        }
        Err(OpError::Invalid(FieldError {
            field: "notify.channel".into(),
            message: if known.is_empty() {
                format!("\"{name}\" is not configured: the server has no [[notify_channels]]; give notify.url instead, or ask the operator to add the channel")
            } else {
                format!(
                    "\"{name}\" is not configured; the server's channels: {}",
                    known.join(", ")
                )
            },
        }))
    }

    /// A task's failures in a row (when any) and why it was paused for them (when it was), as
    /// task views show them.
    pub(super) fn failures_view(
        &self,
        task: &Task,
        view: &mut Map<String, Value>,
    ) -> Result<(), OpError> {
        if let Some(failures) = self.store.failures(&task.id)? {
            if failures.consecutive > 0 {
                view.insert("failures_in_a_row".into(), failures.consecutive.into());
            }
            if let Some((reason, at)) = failures.paused.filter(|_| !task.spec.enabled) {
                view.insert("paused_reason".into(), reason.into());
                view.insert("paused_at".into(), rfc3339_millis(at).into());
            }
        }
        Ok(())
    }
}

impl Catalog {
    /// A task with `expect` has its dead-man state from the moment it is stored (its window
    /// starts then: at its creation, or when it got its `expect`). The engine arms its deadline:
    /// `Services::changed` tells it about time-based tasks only, so it is told here about any
    /// other task that has (or had, `before`) an `expect`.
    pub(super) fn deadman_changed(
        &self,
        before: Option<&crate::tasks::model::TaskSpec>,
        task: &Task,
        now: DateTime<Utc>,
    ) -> Result<(), OpError> {
        use crate::tasks::model::Trigger;
        if task.spec.expect.is_some() {
            self.store.start_deadman(&task.id, now)?;
        }
        let timed = |t: &Trigger| {
            matches!(
                t,
                Trigger::Cron { .. } | Trigger::Interval { .. } | Trigger::Once { .. }
            )
        };
        let told = timed(&task.spec.trigger) || before.is_some_and(|b| timed(&b.trigger));
        let had = before.is_some_and(|b| b.expect.is_some());
        if !told && (had || task.spec.expect.is_some()) {
            self.services.engine.task_changed(&task.id);
        }
        Ok(())
    }

    /// A task's dead-man state (`expect`), as task views show it: the window's start and last
    /// success, the deadline of the next success (`plan`'s rule), since when it is overdue, and
    /// the last dead-man message's outcome.
    pub(super) fn deadman_view(
        &self,
        task: &Task,
        now: DateTime<Utc>,
        view: &mut Map<String, Value>,
    ) -> Result<(), OpError> {
        use crate::engine::plan;
        let Some(expect) = task.spec.expect.as_ref() else {
            return Ok(());
        };
        let Some(state) = self.store.deadman(&task.id)? else {
            return Ok(()); // The engine has not armed it yet.
        };
        let start = plan::window_start(state.since, state.last_success);
        let rule = crate::tasks::schedule::FireRule::of_cached(&task.spec, &self.schedules);
        let deadline = plan::window(expect).and_then(|w| plan::deadline(w, rule.as_ref(), start));
        let overdue = state.overdue_since.is_some() || deadline.is_some_and(|d| d <= now);
        let mut out = json!({
            "overdue": overdue,
            "overdue_since": state.overdue_since.or(deadline.filter(|_| overdue)).map(rfc3339_millis),
            "alerted": state.overdue_since.is_some(),
            "window_start": rfc3339_millis(start),
            "last_success": state.last_success.map(rfc3339_millis),
            "success_due_by": deadline.filter(|_| state.overdue_since.is_none()).map(rfc3339_millis),
        });
        if let Some(notify) = state.notify {
            out["notify"] = notify;
        }
        view.insert("deadman".into(), out);
        Ok(())
    }
}

impl CatalogSource {
    /// The pause of everything, as `/health` shows it (None when not paused).
    pub fn pause_view(&self) -> Option<Value> {
        pause_view(&self.services)
    }
}

impl Catalog {
    /// The pause of everything, as `/health` and the status page show it (None when not paused).
    pub fn pause_view(&self) -> Option<Value> {
        pause_view(&self.services)
    }
}

fn pause_view(services: &Services) -> Option<Value> {
    services
        .engine
        .paused()
        .map(|p| json!({"reason": p.reason, "since": rfc3339_millis(p.since)}))
}
