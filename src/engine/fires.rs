//! What a task's timer coming due leads to, carried out for the engine: the plan of
//! `plan::on_timer` (the fire on time, the missed ones recorded as skipped runs, a catch-up run,
//! a `once` task disabled, the next timer). The task is read from the store here, at its fire
//! time; the armed entry holds only its rule. Runs start through `Engine::fire`.

use super::*;

impl Engine {
    pub(super) fn task_timer(&mut self, task_id: Arc<str>, first: DateTime<Utc>, wake: Wake) {
        let Some(armed) = self.armed.get(&task_id) else {
            return;
        };
        let plan = plan::on_timer(&armed.rule, armed.catch_up, first, wake);
        let task = match self.store.get_task(&task_id) {
            Ok(Some(task)) => task,
            Ok(None) => {
                // Deleted as it came due (its Remove message is on the way).
                self.disarm(&task_id);
                return;
            }
            Err(e) => {
                log::error!(
                    "task {task_id}: cannot read it at its fire time {}: {e}; this fire is lost",
                    rfc3339(first)
                );
                if let Some(next) = plan.next {
                    self.timers.set(TimerKey::Task(task_id), next);
                }
                return;
            }
        };
        if self.pending_approval(&task) {
            // Armed but silent until the owner approves: the cursor moves, nothing is recorded.
            log::debug!("task {}: pending approval; fire passed", task.spec.name);
            if let Err(e) = self.store.set_cursor(&task.id, plan.cursor) {
                log::debug!("cannot store the cursor of task {}: {e}", task.id);
            }
            if let Some(next) = plan.next {
                self.timers.set(TimerKey::Task(task_id), next);
            }
            return;
        }
        let name = &task.spec.name;
        if plan.overflow {
            log::warn!(
                "task {name}: more than {} fires missed since {}; the rest are not listed",
                plan::MAX_DUE,
                rfc3339(first)
            );
        }
        if let Err(e) = self.store.set_cursor(&task.id, plan.cursor) {
            if matches!(self.store.get_task(&task.id), Ok(None)) {
                // Deleted as it came due (its Remove message is on the way).
                self.disarm(&task.id);
                return;
            }
            log::error!("cannot store the cursor of task {}: {e}", task.id);
        }
        if !plan.missed.is_empty() {
            self.record_missed(&task, &plan, wake.now);
        }
        if let Some(t) = plan.catch_up {
            log::info!(
                "task {name} missed {} fires; catch_up = once runs it now",
                plan.missed_count
            );
            if let Err(e) = self.fire(&task, TriggerKind::CatchUp, Some(t), None, wake.now) {
                log::error!("task {name}: catch-up fire not recorded: {e}");
            }
        }
        if let Some(t) = plan.on_time {
            if let Err(e) = self.fire(&task, task.spec.trigger.kind(), Some(t), None, wake.now) {
                if matches!(self.store.get_task(&task.id), Ok(None)) {
                    // Deleted as it fired (its Remove message is on the way): nothing to record.
                    log::info!("task {name} was deleted as it fired at {}", rfc3339(t));
                    self.disarm(&task.id);
                    return;
                }
                log::error!("task {name}: fire at {} not recorded: {e}", rfc3339(t));
            }
        }
        if plan.disable {
            self.disable_once(&task, wake.now);
        } else if let Some(next) = plan.next {
            self.timers.set(TimerKey::Task(task_id), next);
        }
    }

    fn disable_once(&mut self, task: &Task, now: DateTime<Utc>) {
        self.armed.remove(task.id.as_str());
        let mut spec = task.spec.clone();
        spec.enabled = false;
        match self.store.update_task(&task.id, &spec, now) {
            Ok(_) => log::info!("once task {} fired and is now disabled", task.spec.name),
            Err(e) => log::error!("cannot disable once task {}: {e}", task.id),
        }
    }

    fn record_missed(&mut self, task: &Task, plan: &plan::TimerPlan, now: DateTime<Utc>) {
        let metrics = crate::metrics::global();
        metrics.fires_missed(&task.spec.name, plan.missed_count as u64);
        let mut first: Option<i64> = None;
        for (t, error) in plan::missed_rows(&plan.missed, plan.reason, task.spec.catch_up) {
            let inserted = self.store.insert_run(&NewRun {
                task_id: &task.id,
                trigger: task.spec.trigger.kind(),
                status: RunStatus::Skipped,
                scheduled_for: Some(t),
                queued_at: now,
                error: Some(&error),
                attempt: 1,
                retry_of: None,
                context: None,
            });
            match inserted {
                Ok(id) => {
                    first.get_or_insert(id);
                    metrics.run_ended(&task.spec.name, RunStatus::Skipped.as_str(), None)
                }
                Err(e) => log::debug!(
                    "missed fire of {} at {} not recorded: {e}",
                    task.id,
                    rfc3339(t)
                ),
            }
        }
        log::warn!(
            "task {} missed {} fires: {}",
            task.spec.name,
            plan.missed.len(),
            plan.reason.text()
        );
        // One `missed` notification per wake, recorded on the first skipped row.
        if let Some(run_id) = first {
            let error = format!(
                "{} fire(s) missed: {}",
                plan.missed_count,
                plan.reason.text()
            );
            let facts = crate::exec::notify::Facts {
                task,
                run_id,
                status: RunStatus::Skipped,
                error: Some(&error),
                duration_ms: 0,
                output: "",
            };
            let channels = &self.settings.run.notify_channels;
            crate::exec::notify::task_event(&facts, "missed", channels, &self.settings.db_path);
        }
    }
}
