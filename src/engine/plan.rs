//! The scheduling rules as pure functions (the engine's functional core): given a task's parsed
//! fire rule, its cursor, the time (wall and monotonic) and what is queued or running, they
//! return typed decisions — fire, miss with a reason, catch up, queue, skip, retry at, disable,
//! chain `after`. No store, no clock, no threads, no logging: the engine thread reads the clock,
//! asks these functions, and carries out the answer. Every rule in ARCHITECTURE.md's
//! "Scheduling rules" is decided here and tested in the table below.

use crate::tasks::model::{AfterOn, CatchUp, Overlap, Retries};
use crate::tasks::runs::RunStatus;
use crate::tasks::schedule::FireRule;
use crate::util::rfc3339;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, Utc};
use std::time::Duration;

mod deadman;
pub use deadman::*;

/// A fire this late (scheduler delay) still runs; older ones count as missed.
pub const LATE_TOLERANCE: ChronoDuration = ChronoDuration::seconds(10);
/// A wall-clock move bigger than this, relative to the monotonic clock, is a jump.
pub const JUMP_TOLERANCE: Duration = Duration::from_secs(2);
/// Missed fires recorded one by one before the rest are summed up in one row.
pub const MISSED_ROWS: usize = 20;
/// Due fire times enumerated at one wake at most (bounded work for a very long outage).
pub const MAX_DUE: usize = 100_000;
/// The longest retry backoff.
pub const MAX_BACKOFF_SECS: u64 = 7 * 86_400;
/// Runs of one task waiting in the queue at most; a fire beyond is recorded skipped.
pub const MAX_QUEUED_PER_TASK: usize = 50;
/// Runs waiting in the queue at most, all tasks together.
pub const MAX_QUEUED: usize = 1000;

/// How far the wall clock jumped forward between two wakes, beyond what the monotonic clock
/// says passed (host suspend, clock step); None when it did not. A backward step is not a
/// jump: fire times are never repeated because the next timer is always after the cursor.
pub fn forward_jump(wall_elapsed: Option<Duration>, mono_elapsed: Duration) -> Option<Duration> {
    let wall = wall_elapsed?;
    (wall > mono_elapsed + JUMP_TOLERANCE).then(|| wall - mono_elapsed)
}

/// Where an armed task's enumeration starts: the stored cursor when resuming after a restart
/// (so fires missed while the server was down are found), else now — except that a `once` task
/// created for a time that has already come still fires. `store` says the cursor is new.
pub fn start_cursor(
    rule: &FireRule,
    stored: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, bool) {
    if let Some(cursor) = stored {
        return (cursor, false);
    }
    let start = match rule {
        FireRule::Once { at } => Some(*at - ChronoDuration::seconds(1))
            .filter(|a| *a < now)
            .unwrap_or(now),
        _ => now,
    };
    (start, true)
}

/// Why fires were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissReason {
    /// The server was not running (or was more than `LATE_TOLERANCE` late).
    NotRunning,
    /// The wall clock jumped past them.
    ClockJump,
    /// Everything was paused (`pause_all`) at those times.
    Paused,
}

impl MissReason {
    pub fn text(self) -> &'static str {
        match self {
            MissReason::NotRunning => {
                "the server was not running (or was too late) at this fire time"
            }
            MissReason::ClockJump => {
                "the wall clock jumped past this fire time (host sleep or clock step)"
            }
            MissReason::Paused => "claudecron was paused (pause_all) at this fire time",
        }
    }
}

/// A task's timer went off: what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerPlan {
    /// The new cursor (the last fire time dealt with).
    pub cursor: DateTime<Utc>,
    /// Run this fire time now, with the task's own trigger.
    pub on_time: Option<DateTime<Utc>>,
    /// Run one `catch-up` run for this missed time (`catch_up = once`).
    pub catch_up: Option<DateTime<Utc>>,
    /// Missed fire times to record as skipped (the catch-up one excluded).
    pub missed: Vec<DateTime<Utc>>,
    /// How many fire times were missed in all (the catch-up one included).
    pub missed_count: usize,
    pub reason: MissReason,
    /// More than `MAX_DUE` fires were due: the rest were not listed and firing goes on from now.
    pub overflow: bool,
    /// Arm the task again for this time; None: nothing more to fire.
    pub next: Option<DateTime<Utc>>,
    /// A `once` task: disable it now that its time was dealt with.
    pub disable: bool,
}

/// What the clock says at a wake, for the timer rules.
#[derive(Debug, Clone, Copy)]
pub struct Wake {
    pub now: DateTime<Utc>,
    /// When this process's engine started: a fire time before it passed while no server was
    /// running, so it is missed (catch_up applies), however recent.
    pub boot: DateTime<Utc>,
    /// A forward wall-clock jump was seen at this wake.
    pub jumped: bool,
    /// The last pause of everything that ended (since, until), if any.
    pub paused: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Why these fire times were missed: a clock jump seen at this wake, else the last pause when
/// they all fell inside it, else the server was not running (or too late).
pub fn miss_reason(wake: &Wake, missed: &[DateTime<Utc>]) -> MissReason {
    let in_pause = |t: &DateTime<Utc>| wake.paused.is_some_and(|(a, b)| a <= *t && *t <= b);
    if wake.jumped {
        MissReason::ClockJump
    } else if !missed.is_empty() && missed.iter().all(in_pause) {
        MissReason::Paused
    } else {
        MissReason::NotRunning
    }
}

/// A task's timer for `first` went off at `wake`: enumerate every due fire time, decide which
/// one runs on time, which are missed, whether one catch-up run is made, and the next timer.
pub fn on_timer(rule: &FireRule, catch_up: CatchUp, first: DateTime<Utc>, wake: Wake) -> TimerPlan {
    let now = wake.now;
    let mut due = vec![first];
    let mut last = first;
    while due.len() < MAX_DUE {
        match rule.next_after(last) {
            Some(t) if t <= now => {
                due.push(t);
                last = t;
            }
            _ => break,
        }
    }
    let mut overflow = false;
    if due.len() >= MAX_DUE && rule.next_after(last).is_some_and(|t| t <= now) {
        overflow = true;
        last = now;
        due.push(now);
    }
    let on_time =
        (!wake.jumped && last >= wake.boot && now - last <= LATE_TOLERANCE).then_some(last);
    let missed: Vec<DateTime<Utc>> = due.into_iter().filter(|t| Some(*t) != on_time).collect();
    let catch_up_run = (catch_up == CatchUp::Once && on_time.is_none())
        .then(|| missed.last().copied())
        .flatten();
    let missed_count = missed.len();
    let reason = miss_reason(&wake, &missed);
    let missed = missed
        .into_iter()
        .filter(|t| Some(*t) != catch_up_run)
        .collect();
    let once = matches!(rule, FireRule::Once { .. });
    TimerPlan {
        cursor: last,
        on_time,
        catch_up: catch_up_run,
        missed,
        missed_count,
        reason,
        overflow,
        next: if once {
            None
        } else {
            next_timer(rule, last, now)
        },
        disable: once,
    }
}

/// The next timer after the cursor: never at or before it (so a backward clock step cannot fire
/// a time twice) and never in the past.
pub fn next_timer(
    rule: &FireRule,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    rule.next_after(cursor.max(now))
}

/// The skipped rows for missed fire times: one per time for the first `MISSED_ROWS`, then one
/// summary row (at the last time) for the rest.
pub fn missed_rows(
    missed: &[DateTime<Utc>],
    reason: MissReason,
    catch_up: CatchUp,
) -> Vec<(DateTime<Utc>, String)> {
    let policy = match catch_up {
        CatchUp::Skip => "skip",
        CatchUp::Once => "once",
    };
    // Fires missed while paused carry the skip reason `paused` (SPEC §9), like `budget`.
    let (head, summary) = match reason {
        MissReason::Paused => ("skipped: paused:", "skipped: paused:"),
        _ => ("missed:", "missed"),
    };
    let reason = reason.text();
    let (each, rest) = missed.split_at(missed.len().min(MISSED_ROWS));
    let mut rows: Vec<(DateTime<Utc>, String)> = each
        .iter()
        .map(|t| (*t, format!("{head} {reason} (catch_up = {policy})")))
        .collect();
    if let (Some(first), Some(last)) = (rest.first(), rest.last()) {
        rows.push((
            *last,
            format!(
                "{summary} {} more fires from {} to {}: {reason} (catch_up = {policy})",
                rest.len(),
                rfc3339(*first),
                rfc3339(*last)
            ),
        ));
    }
    rows
}

/// How a run's end counts in its task's failures in a row (auto-pause): Some(true) one more
/// (failed, timed out), Some(false) back to zero (success), None not at all (skipped,
/// cancelled, interrupted: the task did not get to fail).
pub fn failure_streak(status: RunStatus) -> Option<bool> {
    match status {
        RunStatus::Failed | RunStatus::Timeout => Some(true),
        RunStatus::Success => Some(false),
        _ => None,
    }
}

/// After `consecutive` failed runs in a row, with the task's `pause_after_failures` (None: the
/// config's `default`; 0: never): the reason the task is disabled, if it is now.
pub fn auto_pause(own: Option<u32>, default: u32, consecutive: u32) -> Option<String> {
    let limit = own.unwrap_or(default);
    (limit > 0 && consecutive >= limit).then(|| {
        format!(
            "{consecutive} failed or timed-out runs in a row (pause_after_failures = {limit}); enable the task again to resume it"
        )
    })
}

/// What a fire becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireDecision {
    /// A queued run; admission decides when it starts.
    Queue,
    /// A `skipped` run with this reason.
    Skip(String),
}

/// What is waiting when a task fires.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// One of the task's runs that is queued or running.
    pub active: Option<i64>,
    /// The task's runs waiting in the queue.
    pub queued_for_task: usize,
    /// Runs waiting in the queue, all tasks.
    pub queued: usize,
}

/// A fire of a task: skipped while a run of it is active (overlap = skip), or when the queue is
/// full (for the task, or for everyone: overload must not grow without bound); else queued.
pub fn on_fire(overlap: Overlap, load: Load) -> FireDecision {
    match (overlap, load.active) {
        (Overlap::Skip, Some(run)) => FireDecision::Skip(format!(
            "skipped: run {run} of this task is still active (overlap = skip)"
        )),
        _ if load.queued_for_task >= MAX_QUEUED_PER_TASK => FireDecision::Skip(format!(
            "skipped: overloaded: {} runs of this task are already waiting (at most {MAX_QUEUED_PER_TASK})",
            load.queued_for_task
        )),
        _ if load.queued >= MAX_QUEUED => FireDecision::Skip(format!(
            "skipped: overloaded: {} runs are already waiting for a slot (at most {MAX_QUEUED})",
            load.queued
        )),
        _ => FireDecision::Queue,
    }
}

/// A subagent task's spend against the daily caps (USD, runs started since UTC midnight).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub task_today: f64,
    /// The task's `daily_budget_usd`.
    pub task_cap: Option<f64>,
    pub all_today: f64,
    /// The config's `daily_budget_usd`, for all tasks together.
    pub global_cap: Option<f64>,
}

/// A fire of a subagent task is skipped (reason `budget`) once what its runs, or all runs,
/// cost today reached the daily cap: nothing starts, nothing is spent.
pub fn budget_skip(spend: Spend) -> Option<String> {
    if let Some(cap) = spend.task_cap.filter(|cap| spend.task_today >= *cap) {
        return Some(format!(
            "skipped: budget: this task's runs cost ${:.4} today (UTC), its daily_budget_usd is ${cap}",
            spend.task_today
        ));
    }
    spend
        .global_cap
        .filter(|cap| spend.all_today >= *cap)
        .map(|cap| {
            format!(
                "skipped: budget: all subagent runs cost ${:.4} today (UTC), the server's daily_budget_usd is ${cap}",
                spend.all_today
            )
        })
}

/// The start of `now`'s UTC day and month (what "today" and "this month" count from).
pub fn day_and_month_start(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.date_naive();
    let month = day.with_day(1).unwrap_or(day);
    (
        day.and_time(chrono::NaiveTime::MIN).and_utc(),
        month.and_time(chrono::NaiveTime::MIN).and_utc(),
    )
}

/// The longest a run is deferred for a usage limit when its task has no next fire.
pub const MAX_DEFERRAL_HOURS: i64 = 24 * 7;

/// Where a run that hit a usage limit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferral {
    /// Queued again, due at this time (the limit's reset).
    At(DateTime<Utc>),
    /// Recorded `skipped` with this reason: the task's next fire (or the horizon) comes first.
    Drop(String),
}

/// A run hit a usage limit that resets at `until`: it waits for the reset rather than failing
/// (one request at the reset, no retry storm), but never past the task's own next fire, which
/// will try anyway; nor more than `MAX_DEFERRAL_HOURS` ahead.
pub fn on_usage_limit(
    until: DateTime<Utc>,
    next_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Deferral {
    let at = until.max(now);
    match next_fire {
        Some(next) if next <= at => Deferral::Drop(format!(
            "skipped: usage limit until {}; the task's next fire at {} comes first",
            rfc3339(until),
            rfc3339(next)
        )),
        _ if at - now > ChronoDuration::hours(MAX_DEFERRAL_HOURS) => Deferral::Drop(format!(
            "skipped: usage limit until {}, more than {MAX_DEFERRAL_HOURS} h ahead",
            rfc3339(until)
        )),
        _ => Deferral::At(at),
    }
}

/// A queued run, as admission sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Start the queued run at this index of the queue.
    Start(usize),
    /// Its task is gone: drop the queued run at this index.
    Drop(usize),
}

/// Which queued runs start now under the global cap `max`, fairly across tasks: every task's
/// first waiting run comes before any task's second, and among those the task that started a
/// run least recently goes first (`last_start`: a rising number per start, None for never), so
/// a flood of one task's runs cannot starve the others. A run of a task that already has a run
/// going waits unless the task allows overlap. `overlap_of` gives a task's overlap policy
/// (None: the task is gone). Indices refer to `queue` as given.
pub fn admission(
    queue: &[&str],
    running: &[&str],
    max: usize,
    overlap_of: impl Fn(&str) -> Option<Overlap>,
    last_start: impl Fn(&str) -> Option<u64>,
) -> Vec<Admit> {
    let mut busy: Vec<&str> = running.to_vec();
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut order: Vec<(usize, Option<u64>, usize)> = queue
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let round = seen.entry(task).or_insert(0);
            *round += 1;
            (*round, last_start(task), index)
        })
        .collect();
    order.sort_unstable();
    for (_, _, index) in order {
        let task = &queue[index];
        if busy.len() >= max {
            break;
        }
        match overlap_of(task) {
            None => out.push(Admit::Drop(index)),
            Some(overlap) if overlap != Overlap::Allow && busy.contains(task) => {}
            Some(_) => {
                busy.push(task);
                out.push(Admit::Start(index));
            }
        }
    }
    out
}

/// What follows the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterEnd {
    /// Attempt `attempt` runs at `due` (`delay_secs` from now).
    Retry {
        due: DateTime<Utc>,
        delay_secs: u64,
        attempt: i64,
    },
    /// The final outcome: chain `after` tasks.
    Final,
}

/// A run ended with `status` on attempt `attempt` (1 for the first run).
pub fn after_end(
    status: RunStatus,
    attempt: i64,
    retries: &Retries,
    now: DateTime<Utc>,
) -> AfterEnd {
    if !status.is_retryable() || attempt > i64::from(retries.max_attempts) {
        return AfterEnd::Final;
    }
    let factor = if retries.doubling {
        1u64 << (attempt - 1).clamp(0, 20)
    } else {
        1
    };
    let delay_secs = retries
        .backoff_seconds
        .saturating_mul(factor)
        .min(MAX_BACKOFF_SECS);
    AfterEnd::Retry {
        due: now + ChronoDuration::seconds(delay_secs as i64),
        delay_secs,
        attempt: attempt + 1,
    }
}

/// Whether an `after` task with `on` fires for an upstream final outcome.
pub fn after_fires(on: AfterOn, status: RunStatus) -> bool {
    match on {
        AfterOn::Success => status == RunStatus::Success,
        AfterOn::Failure => !matches!(
            status,
            RunStatus::Success | RunStatus::Cancelled | RunStatus::Skipped
        ),
        AfterOn::Always => true,
    }
}

#[cfg(test)]
pub(super) mod tests;
