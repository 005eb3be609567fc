//! The JSON views the model reads: a time in the task's zone and in UTC, a trigger in words,
//! the next fire times, a run as a history row, a schedule preview. Pure: no store, no clock
//! (cron expressions come from the catalog's `ScheduleCache`, parsed once).

use super::*;

/// A time in the task's zone and in UTC.
pub fn time_pair(t: DateTime<Utc>, tz: chrono_tz::Tz) -> Value {
    let pair = TimePair::new(t, tz);
    crate::obj!("local": pair.local, "utc": pair.utc)
}

/// A time in a zone and in UTC, as it is serialized (`{"local": …, "utc": …}`).
#[derive(serde::Serialize)]
pub struct TimePair {
    pub local: String,
    pub utc: String,
}

impl TimePair {
    pub fn new(t: DateTime<Utc>, tz: chrono_tz::Tz) -> TimePair {
        TimePair {
            local: crate::util::rfc3339_in(t, tz),
            utc: rfc3339(t),
        }
    }
}

/// The trigger in words, for people and models.
pub fn trigger_summary(task: &Task, schedules: &ScheduleCache) -> String {
    let tz = &task.spec.timezone;
    match &task.spec.trigger {
        Trigger::Cron { schedule } => match schedules.load(schedule) {
            Ok(s) => format!("cron \"{schedule}\" ({tz}): {}", s.describe()),
            Err(_) => format!("cron \"{schedule}\" ({tz})"),
        },
        Trigger::FileWatch {
            path,
            pattern,
            recursive,
            events,
            debounce_ms,
        } => {
            let events: Vec<&str> = events
                .iter()
                .map(|e| match e {
                    crate::tasks::model::FileEvent::Create => "create",
                    crate::tasks::model::FileEvent::Modify => "modify",
                    crate::tasks::model::FileEvent::Remove => "remove",
                })
                .collect();
            format!(
                "when {} changes ({}){}{}, after {debounce_ms} ms of quiet",
                path,
                events.join("/"),
                pattern
                    .as_ref()
                    .map(|p| format!(", files matching {p}"))
                    .unwrap_or_default(),
                if *recursive { "" } else { ", not recursive" }
            )
        }
        Trigger::Hook {
            event,
            matcher,
            file_pattern,
            ..
        } => format!(
            "on Claude Code hook {event}{}{}",
            matcher
                .as_ref()
                .map(|m| format!(" matching \"{m}\""))
                .unwrap_or_default(),
            file_pattern
                .as_ref()
                .map(|p| format!(" for files {p}"))
                .unwrap_or_default()
        ),
        Trigger::Interval {
            every, start_at, ..
        } => format!("every {every} from {start_at}"),
        Trigger::Once { at } => format!("once at {at}"),
        Trigger::After { task: upstream, on } => {
            let on = match on {
                crate::tasks::model::AfterOn::Success => "succeeds",
                crate::tasks::model::AfterOn::Failure => "fails",
                crate::tasks::model::AfterOn::Always => "finishes",
            };
            format!("after task {upstream} {on}")
        }
        Trigger::Manual => "manual: only when run by claudecron_run_task".into(),
        Trigger::Webhook => {
            "webhook: on POST /trigger/{token} (the token is shown once, when made or rotated)"
                .into()
        }
    }
}

/// The next `count` fire times of a task's time-based trigger after `now` (empty for event
/// triggers and disabled tasks): the engine's own rule, so what is shown is what will fire.
pub fn next_fire_times(
    task: &Task,
    now: DateTime<Utc>,
    count: usize,
    schedules: &ScheduleCache,
) -> Vec<DateTime<Utc>> {
    if !task.spec.enabled {
        return Vec::new();
    }
    FireRule::of_cached(&task.spec, schedules)
        .map(|rule| rule.upcoming(now, count))
        .unwrap_or_default()
}

/// A run as a history row: its fields with the output cut to an excerpt.
pub fn run_summary(run: &Run, excerpt_bytes: usize) -> Value {
    let mut view = crate::obj!(
        "id": run.id,
        "task_id": run.task_id.as_str(),
        "trigger": run.trigger.as_str(),
        "status": run.status.as_str(),
        "scheduled_for": run.scheduled_for.map(crate::util::rfc3339_auto),
        "queued_at": rfc3339_millis(run.queued_at),
        "started_at": run.started_at.map(rfc3339_millis),
        "finished_at": run.finished_at.map(rfc3339_millis),
        "duration_ms": run.duration_ms,
        "exit_code": run.exit_code,
        "output_excerpt": tail(&run.output, excerpt_bytes),
        "output_truncated": run.output_truncated || run.output.len() > excerpt_bytes,
        "error": run.error.as_deref(),
        "runner": run.runner.as_deref(),
        "model": run.model.as_deref(),
        "cost_usd": run.cost_usd,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "num_turns": run.num_turns,
        "session_id": run.session_id.as_deref(),
    );
    // More facts: the git worktree left for review, Claude Code's own account of the ending.
    if let Value::Object(map) = &mut view {
        for (key, value) in &run.details {
            map.insert(key.clone(), value.clone());
        }
    }
    view
}

/// `preview_schedule`: the expression in words and its next fire times; creates nothing.
pub fn preview_schedule(expr: &str, timezone: &str, count: usize, now: DateTime<Utc>) -> OpResult {
    preview_schedule_with(expr, timezone, count, now, None)
}

/// [`preview_schedule`], the parse, description and fire times taken from `schedules` when
/// given (a model previews the expression it is about to add, and often again).
pub fn preview_schedule_with(
    expr: &str,
    timezone: &str,
    count: usize,
    now: DateTime<Utc>,
    schedules: Option<&ScheduleCache>,
) -> OpResult {
    let parsed = match schedules {
        Some(cache) => cache.load(expr).and_then(|s| s.fires_soon(now).map(|()| s)),
        None => Schedule::parse(expr, now).map(std::sync::Arc::new),
    };
    let schedule = parsed.map_err(|e| {
        OpError::Invalid(FieldError {
            field: "schedule".into(),
            message: e,
        })
    })?;
    let tz = parse_timezone(timezone).map_err(|e| {
        OpError::Invalid(FieldError {
            field: "timezone".into(),
            message: e,
        })
    })?;
    let times: Vec<Value> = schedule
        .upcoming(now, tz, count)
        .into_iter()
        .map(|t| time_pair(t.with_timezone(&Utc), tz))
        .collect();
    Ok(crate::obj!(
        "schedule": schedule.expression(),
        "timezone": tz.name(),
        "description": schedule.describe(),
        "next_runs": times,
    ))
}
