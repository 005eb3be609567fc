//! The task views that read the store: `get_task`'s view of one task (definition, trigger in
//! words, next fire times, spend, pause, failures, approval, dead-man state, webhook, last runs),
//! as a value and encoded straight to JSON. Reads only; never changes a task or a run.

use super::*;

/// An answer already encoded as JSON, with `brief`: the fields of it that its summary line reads.
pub struct Encoded {
    pub json: Vec<u8>,
    pub brief: Value,
}

impl Catalog {
    /// `get_task` as a value: the form the encoded answer is checked against (tests).
    #[cfg(test)]
    pub fn get(&self, task_id: &str, now: DateTime<Utc>) -> OpResult {
        self.store.reading(|| {
            let task = self.resolve(task_id)?;
            Ok(crate::obj!("task": self.task_view(&task, now, 5, 5)?))
        })
    }

    /// The full view of a task: definition, trigger in words, next fire times, last runs.
    pub fn task_view(
        &self,
        task: &Task,
        now: DateTime<Utc>,
        fires: usize,
        runs: i64,
    ) -> Result<Value, OpError> {
        let more = self.view_fields(task, now, fires, runs)?;
        let mut view = serde_json::to_value(task.json_with(more))
            .map_err(|e| OpError::Internal(format!("task view: {e}")))?;
        // mcp_config headers and env values are credentials: shown as set, never returned.
        if let Some(Value::Object(servers)) = view.pointer_mut("/mcp_config/mcpServers") {
            for server in servers.values_mut() {
                for key in ["headers", "env"] {
                    if let Some(Value::Object(vals)) = server.get_mut(key) {
                        vals.values_mut().for_each(|v| *v = "(set, hidden)".into());
                    }
                }
            }
        }
        Ok(view)
    }

    /// `get_task` as JSON bytes, `{"task": view}`: the same object as [`Catalog::get`]'s, written
    /// straight from the task (no value tree for the definition), and `brief`, what a summary
    /// line may read: `name`, `id`, `type`, `enabled` and every field the view adds after the
    /// definition (`trigger_summary`, `warning`, `paused_reason`, `approval`, …) but `last_runs`,
    /// with only the first of `next_runs`. A task with an `mcp_config` goes through the value
    /// tree, where its credentials are masked.
    pub fn get_encoded(&self, task_id: &str, now: DateTime<Utc>) -> Result<Encoded, OpError> {
        self.store.reading(|| {
            let task = self.resolve(task_id)?;
            if task.spec.guards.mcp_config.is_some() {
                let value = crate::obj!("task": self.task_view(&task, now, 5, 5)?);
                let json = serde_json::to_vec(&value)
                    .map_err(|e| OpError::Internal(format!("task view: {e}")))?;
                return Ok(Encoded { json, brief: value });
            }
            let more = self.view_fields(&task, now, 5, 5)?;
            let mut brief = crate::obj!(
                "name": task.spec.name.as_str(),
                "id": task.id.as_str(),
                "type": task.spec.task_type.as_str(),
                "enabled": task.spec.enabled,
            );
            if let Value::Object(b) = &mut brief {
                for (key, value) in &more {
                    match key.as_str() {
                        "last_runs" => {}
                        "next_runs" => {
                            let first = value.get(0).cloned().into_iter().collect();
                            b.insert(key.clone(), Value::Array(first));
                        }
                        _ => {
                            b.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            let mut json = Vec::with_capacity(4096);
            json.extend_from_slice(b"{\"task\":");
            crate::util::json_into(&mut json, &task.json_with(more))
                .map_err(|e| OpError::Internal(format!("task view: {e}")))?;
            json.push(b'}');
            Ok(Encoded {
                json,
                brief: crate::obj!("task": brief),
            })
        })
    }

    /// A task view's own fields, after the definition: the trigger in words, the effective
    /// timeout, the next `fires` fire times, spend, pause, failures, approval, dead-man state,
    /// webhook, trigger error and the last `runs` runs.
    fn view_fields(
        &self,
        task: &Task,
        now: DateTime<Utc>,
        fires: usize,
        runs: i64,
    ) -> Result<serde_json::Map<String, Value>, OpError> {
        let tz = parse_timezone(&task.spec.timezone).unwrap_or(chrono_tz::UTC);
        let mut obj = serde_json::Map::new();
        obj.insert(
            "trigger_summary".into(),
            trigger_summary(task, &self.schedules).into(),
        );
        obj.insert(
            "effective_timeout_seconds".into(),
            task.spec
                .timeout_seconds
                .unwrap_or(self.defaults.task_timeout_secs)
                .into(),
        );
        let next: Vec<Value> = next_fire_times(task, now, fires, &self.schedules)
            .into_iter()
            .map(|t| time_pair(t, tz))
            .collect();
        obj.insert("next_runs".into(), Value::Array(next));
        if task.spec.task_type == crate::tasks::model::TaskType::Subagent {
            let settings = &self.defaults.subagent;
            obj.insert(
                "effective_runner".into(),
                crate::exec::subagent::runner_name(crate::exec::subagent::choose_runner(
                    &task.spec, settings,
                ))
                .into(),
            );
            if let Some(warning) = crate::exec::subagent::readiness(&task.spec, settings) {
                obj.insert("warning".into(), warning.into());
            }
            obj.insert("spend".into(), self.spend(task, now)?);
        }
        if let Some(pause) = self.services.engine.paused() {
            obj.insert("paused_all".into(), json!(pause));
        }
        self.failures_view(task, &mut obj)?;
        self.approval_view(task, &mut obj)?;
        self.deadman_view(task, now, &mut obj)?;
        if let Some(hook) = webhook::view(task) {
            obj.insert("webhook".into(), hook);
        }
        if let Some((error, at)) = self.store.trigger_error(&task.id)? {
            obj.insert(
                "trigger_error".into(),
                json!({"error": error, "since": rfc3339_millis(at)}),
            );
        }
        if runs > 0 {
            let recent = self.store.list_runs(Some(&task.id), None, runs)?;
            obj.insert(
                "last_runs".into(),
                Value::Array(recent.iter().map(|r| run_summary(r, 500)).collect()),
            );
        }
        Ok(obj)
    }

    /// What a subagent task's runs cost today and this month (UTC; runs still in the history).
    fn spend(&self, task: &Task, now: DateTime<Utc>) -> Result<Value, OpError> {
        let (day, month) = crate::engine::plan::day_and_month_start(now);
        Ok(json!({
            "today_usd": self.store.spend_since(Some(&task.id), day)?,
            "month_usd": self.store.spend_since(Some(&task.id), month)?,
            "daily_budget_usd": task.spec.guards.daily_budget_usd,
            "since_utc": {"today": rfc3339_millis(day), "month": rfc3339_millis(month)},
        }))
    }
}
