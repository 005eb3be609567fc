//! The dead-man rule (`expect`): a task's window, the deadline by which a successful run is
//! due, and what a deadline check or a success leads to — wait, alert once, stay quiet,
//! recover. Pure: the caller passes the clock and the stored state; nothing is sent or
//! recorded here.

use crate::tasks::model::Expect;
use crate::tasks::schedule::FireRule;
use crate::tasks::validate::parse_duration;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// How often a task must succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A success at least this often (`expect.within`).
    Within(ChronoDuration),
    /// A success within this long after each fire time (`expect.grace`, cron and interval).
    Grace(ChronoDuration),
}

/// The window of a stored `expect`; None when it cannot be read (validation makes sure it can).
pub fn window(expect: &Expect) -> Option<Window> {
    let secs = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| parse_duration(t).ok())
            .map(|s| ChronoDuration::seconds(s as i64))
    };
    match (secs(&expect.within), secs(&expect.grace)) {
        (Some(w), None) => Some(Window::Within(w)),
        (None, Some(g)) => Some(Window::Grace(g)),
        _ => None,
    }
}

/// Where the window is measured from: the last success, or `since` (when the task got its
/// `expect` — its creation for a task made with it — or was last enabled) when that is later.
pub fn window_start(since: DateTime<Utc>, last_success: Option<DateTime<Utc>>) -> DateTime<Utc> {
    last_success.map_or(since, |s| s.max(since))
}

/// The time by which a success is due, for a window measured from `start`: `start + within`;
/// or, with `grace`, the first fire time after `start` plus the grace. None: nothing is due
/// (the schedule fires no more, or its rule is missing).
pub fn deadline(
    window: Window,
    rule: Option<&FireRule>,
    start: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match window {
        Window::Within(w) => start.checked_add_signed(w),
        Window::Grace(g) => rule?.next_after(start)?.checked_add_signed(g),
    }
}

/// What a task's dead-man state leads to at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineCheck {
    /// Not overdue: check again at this time.
    Wait(DateTime<Utc>),
    /// Overdue since this time and not reported yet: send `missed` once and remember it.
    Alert(DateTime<Utc>),
    /// Overdue and already reported: nothing until a success.
    Quiet,
    /// Nothing is due (no deadline): no timer.
    Idle,
}

/// The dead-man decision: `alerted` says the task was already reported overdue (it stays
/// reported, also across restarts and task changes, until a success); otherwise a passed
/// deadline is reported once, and a coming one waited for.
pub fn check_deadline(
    deadline: Option<DateTime<Utc>>,
    alerted: bool,
    now: DateTime<Utc>,
) -> DeadlineCheck {
    match deadline {
        _ if alerted => DeadlineCheck::Quiet,
        None => DeadlineCheck::Idle,
        Some(at) if now < at => DeadlineCheck::Wait(at),
        Some(at) => DeadlineCheck::Alert(at),
    }
}

/// A success of a task that was reported overdue ends it: the "back on time" message
/// (`recovered`) goes out, unless the run's own notification already is `recovered` (one
/// message for one recovery).
pub fn sends_recovery(was_reported: bool, run_sent_recovered: bool) -> bool {
    was_reported && !run_sent_recovered
}
