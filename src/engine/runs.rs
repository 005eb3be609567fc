//! The engine's side of a run's life: starting an admitted run on its own thread, recording
//! runs that never ran, cancelling, and what follows a run's end (retry, `after` chaining) as
//! `plan` decides. Runs on the engine thread only.

use super::*;

/// How often the ends the store refused are tried again.
const UNRECORDED_RETRY: chrono::Duration = chrono::Duration::seconds(5);

impl Engine {
    /// Why a fire of `task` is skipped for its spend (`plan::budget_skip`), if it is; only
    /// subagent tasks under a daily cap read their spend.
    pub(super) fn budget_skip(&self, task: &Task, now: DateTime<Utc>) -> Option<String> {
        let task_cap = task.spec.guards.daily_budget_usd;
        let global_cap = self.settings.daily_budget_usd;
        if task.spec.task_type != crate::tasks::model::TaskType::Subagent
            || (task_cap.is_none() && global_cap.is_none())
        {
            return None;
        }
        let (today, _) = plan::day_and_month_start(now);
        let spent = |id: Option<&str>| {
            self.store.spend_since(id, today).unwrap_or_else(|e| {
                log::error!(
                    "task {}: spend today unreadable ({e}); counted as 0",
                    task.spec.name
                );
                0.0
            })
        };
        plan::budget_skip(plan::Spend {
            task_today: task_cap.map(|_| spent(Some(&task.id))).unwrap_or(0.0),
            task_cap,
            all_today: global_cap.map(|_| spent(None)).unwrap_or(0.0),
            global_cap,
        })
    }

    /// Start a queued run on its thread; false when it did not start (skipped for its daily
    /// cap), so admission can give its slot to the next.
    pub(super) fn start_run(&mut self, task: Task, q: Queued) -> bool {
        let now = Utc::now();
        // Runs that waited in the queue (overlap = queue, retries, deferred runs) meet the
        // daily caps again as they start: what ran meanwhile may have reached them.
        if let Some(reason) = self.budget_skip(&task, now) {
            log::info!("task {}: run {} {reason}", task.spec.name, q.run_id);
            self.end_unstarted(q.run_id, RunStatus::Skipped, &reason, now);
            return false;
        }
        // A run queued before the task changed over MCP does not run the unapproved content.
        if self.pending_approval(&task) {
            let reason = "skipped: pending approval: the task changed after this run was queued; the owner approves it with `claudecron approve` on the host";
            log::info!("task {}: run {} {reason}", task.spec.name, q.run_id);
            self.end_unstarted(q.run_id, RunStatus::Skipped, reason, now);
            return false;
        }
        if let Err(e) = self.store.start_run(q.run_id, now) {
            log::error!("cannot start run {}: {e}", q.run_id);
            return true;
        }
        // Lateness of a fire that came due (not of a catch-up run for an old missed time).
        if let Some(due) = q
            .scheduled_for
            .filter(|_| q.trigger != TriggerKind::CatchUp)
        {
            let late = (now - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            crate::metrics::global().fire_late(late);
        }
        let (cancel_tx, cancel_rx) = bounded(1);
        let context = self.store.run_context(q.run_id).ok().flatten();
        let task_id = task.id.clone();
        self.starts += 1;
        self.last_start.insert(task_id.clone(), self.starts);
        let job = RunJob {
            run_id: q.run_id,
            task,
            trigger: q.trigger,
            attempt: q.attempt,
            scheduled_for: q.scheduled_for,
            context,
            started_at: now,
            cancel: cancel_rx,
            shutting_down: Arc::clone(&self.shutting_down),
        };
        let tx = self.finished_tx.clone();
        let settings = self.settings.run.clone();
        let db_path = self.settings.db_path.clone();
        let listener = Arc::clone(&self.listener);
        let spawned = std::thread::Builder::new()
            .name(format!("run-{}", q.run_id))
            .spawn(move || {
                let done = run::execute(job, &settings, &db_path);
                // A deferred run is queued again, not over (its waiters keep waiting).
                if done.deferred_until.is_none() {
                    listener(&done.event());
                }
                let _ = tx.send(Msg::Finished(done));
            });
        match spawned {
            Ok(_) => {
                self.running.insert(
                    q.run_id,
                    Running {
                        task_id,
                        cancel: cancel_tx,
                    },
                );
                self.handle
                    .running
                    .store(self.running.len(), Ordering::Relaxed);
            }
            Err(e) => {
                log::error!("cannot start a run thread: {e}");
                self.end_unstarted(
                    q.run_id,
                    RunStatus::Failed,
                    "the server could not start a thread for this run",
                    now,
                );
            }
        }
        // Also when the thread or the row failed: no new admission round for those.
        true
    }

    /// Record the end of a run that never ran (no output, no exit status) and wake its waiters.
    pub(super) fn end_unstarted(
        &self,
        run_id: i64,
        status: RunStatus,
        error: &str,
        now: DateTime<Utc>,
    ) {
        if let Err(e) = self.record_bare_end(run_id, status, error, now) {
            log::error!("run {run_id}: its end ({status}) was not recorded: {e}");
        }
        if let Ok(Some(run)) = self.store.get_run(run_id) {
            let name = self.store.get_task(&run.task_id).ok().flatten();
            let name = name.map(|t| t.spec.name).unwrap_or(run.task_id);
            crate::metrics::global().run_ended(&name, status.as_str(), None);
        }
        self.handle.waiters.wake(run_id);
    }

    /// Write an end that has no output and no exit status (a run that never ran, or one whose
    /// result was lost).
    fn record_bare_end(
        &self,
        run_id: i64,
        status: RunStatus,
        error: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<()> {
        let end = RunEnd {
            status,
            finished_at: now,
            duration_ms: None,
            exit_code: None,
            signal: None,
            output: "",
            output_truncated: false,
            error: Some(error),
        };
        self.store.finish_run(run_id, &end)
    }

    pub(super) fn cancel(&mut self, run_id: i64, now: DateTime<Utc>) -> Result<(), EngineError> {
        if let Some(r) = self.running.get(&run_id) {
            let _ = r.cancel.try_send(());
            return Ok(());
        }
        let queued = self.queue.iter().position(|q| q.run_id == run_id);
        if queued.is_some() || self.timers.contains(&TimerKey::Retry(run_id)) {
            if let Some(i) = queued {
                self.queue.remove(i);
            }
            self.timers.remove(&TimerKey::Retry(run_id));
            self.end_unstarted(
                run_id,
                RunStatus::Cancelled,
                "cancelled before it started",
                now,
            );
            return Ok(());
        }
        match self.store.get_run(run_id)? {
            Some(run) => Err(EngineError::NotActive {
                run_id,
                status: run.status,
            }),
            None => Err(EngineError::NotFound(format!("no run has the id {run_id}"))),
        }
    }

    pub(super) fn finished(&mut self, done: run::Finished, now: DateTime<Utc>) {
        self.running.remove(&done.run_id);
        self.handle
            .running
            .store(self.running.len(), Ordering::Relaxed);
        // The run thread could not record the end (disk full, database read-only): the row
        // still says running. Keep the end and write it once the store takes writes again.
        if !done.recorded {
            log::error!(
                "run {} ended {} but its end could not be recorded; retrying every {} s",
                done.run_id,
                done.status,
                UNRECORDED_RETRY.num_seconds()
            );
            self.unrecorded.push(done.clone());
            self.timers
                .set(TimerKey::Unrecorded, now + UNRECORDED_RETRY);
        }
        // Counted before the waiters wake, so a client that waited sees the task as it is now.
        let task = self.store.get_task(&done.task_id).ok().flatten();
        let auto_paused = !self.shutting_down.load(Ordering::Relaxed)
            && task
                .as_ref()
                .is_some_and(|t| self.count_failures(t, &done, now));
        if let Some(t) = task.as_ref().filter(|_| done.status == RunStatus::Success) {
            self.deadman_success(t, done.run_id, now);
        }
        // Woken once the run has left the running set: a client that waited for the end and
        // starts the task again at once must not find this run still "active" (overlap). A
        // deferred run is queued again, not over: its waiters keep waiting.
        if done.deferred_until.is_none() {
            self.handle.waiters.wake(done.run_id);
        }
        if let Err(e) = self
            .store
            .prune_runs(Some(&done.task_id), self.settings.history_keep_per_task)
        {
            log::error!("cannot prune runs of task {}: {e}", done.task_id);
        }
        if self.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if let Some(until) = done.deferred_until {
            self.defer(&done, until, now);
            return;
        }
        let Some(task) = task else {
            return;
        };
        if auto_paused {
            // Disabled for its failures: no retry; its `after` tasks learn the outcome.
            self.chain_after(&done, now);
            return;
        }
        match plan::after_end(done.status, done.attempt, &task.spec.retries, now) {
            AfterEnd::Retry {
                due,
                delay_secs,
                attempt,
            } => {
                let inserted = self.store.insert_run(&NewRun {
                    task_id: &task.id,
                    trigger: TriggerKind::Retry,
                    status: RunStatus::Queued,
                    scheduled_for: Some(due),
                    queued_at: now,
                    error: None,
                    attempt,
                    retry_of: Some(done.run_id),
                    context: done.context.as_ref(),
                });
                match inserted {
                    Ok(id) => {
                        log::info!(
                            "task {}: run {} {}; retry {} of {} in {delay_secs} s (run {id})",
                            task.spec.name,
                            done.run_id,
                            done.status,
                            done.attempt,
                            task.spec.retries.max_attempts
                        );
                        self.timers.set(TimerKey::Retry(id), due);
                    }
                    Err(e) => log::error!("cannot schedule a retry of run {}: {e}", done.run_id),
                }
            }
            AfterEnd::Final => self.chain_after(&done, now),
        }
    }

    /// A run that hit a usage limit is queued again for the reset time, unless the task's own
    /// next fire comes first (`plan::on_usage_limit`): then it is recorded `skipped`.
    fn defer(&mut self, done: &run::Finished, until: DateTime<Utc>, now: DateTime<Utc>) {
        let next_fire = self
            .timers
            .at(&TimerKey::Task(done.task_id.as_str().into()));
        match plan::on_usage_limit(until, next_fire, now) {
            plan::Deferral::At(at) => {
                log::info!(
                    "task {}: run {} hit a usage limit; deferred to {}",
                    done.task_name,
                    done.run_id,
                    rfc3339(at)
                );
                self.timers.set(TimerKey::Retry(done.run_id), at);
            }
            plan::Deferral::Drop(reason) => {
                log::info!("task {}: run {} {reason}", done.task_name, done.run_id);
                self.end_unstarted(done.run_id, RunStatus::Skipped, &reason, now);
                self.listener.as_ref()(
                    &run::Finished {
                        status: RunStatus::Skipped,
                        error: Some(reason),
                        ..done.clone()
                    }
                    .event(),
                );
            }
        }
    }

    /// Write the ends the store refused earlier: each run is recorded `failed`, saying how it
    /// had ended and why its result was lost; the rest wait for the next try.
    pub(super) fn record_unrecorded(&mut self, now: DateTime<Utc>) {
        let pending = std::mem::take(&mut self.unrecorded);
        for done in pending {
            let error = format!(
                "the run ended {}{} but its result could not be saved at the time (the database refused writes); its output is lost",
                done.status,
                done.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            match self.record_bare_end(done.run_id, RunStatus::Failed, &error, now) {
                Ok(()) => {
                    log::warn!("run {} recorded late as failed: {error}", done.run_id);
                    self.handle.waiters.wake(done.run_id);
                }
                Err(_) => self.unrecorded.push(done),
            }
        }
        if !self.unrecorded.is_empty() {
            self.timers
                .set(TimerKey::Unrecorded, now + UNRECORDED_RETRY);
        }
    }

    /// The final outcome of a run: fire the `after` tasks that follow it.
    pub(super) fn chain_after(&mut self, done: &run::Finished, now: DateTime<Utc>) {
        let followers = match self.store.enabled_tasks_with_trigger(TriggerKind::After) {
            Ok(t) => t,
            Err(e) => {
                log::error!("cannot list after-tasks: {e}");
                return;
            }
        };
        for follower in followers {
            let Trigger::After { task: upstream, on } = &follower.spec.trigger else {
                continue;
            };
            if upstream != &done.task_id || !plan::after_fires(*on, done.status) {
                continue;
            }
            let context = RunContext {
                after: Some(AfterContext {
                    task_id: done.task_id.clone(),
                    task_name: done.task_name.clone(),
                    run_id: done.run_id,
                    status: done.status,
                }),
                ..RunContext::default()
            };
            if let Err(e) = self.fire(&follower, TriggerKind::After, None, Some(&context), now) {
                log::error!("cannot fire after-task {}: {e}", follower.spec.name);
            }
        }
    }
}
