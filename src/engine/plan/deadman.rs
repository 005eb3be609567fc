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

/// The dead-man rule, table by table (beside the rule, as `engine::pause`'s tests are:
/// `plan/tests.rs` is at the file-size limit).
#[cfg(test)]
mod tests {
    use super::super::tests::{cron, every, t};
    use super::*;

    #[test]
    fn dead_man_windows_deadlines_and_the_alert_once_rule() {
        use crate::tasks::model::Expect;
        let expect = |within: Option<&str>, grace: Option<&str>| Expect {
            within: within.map(String::from),
            grace: grace.map(String::from),
        };
        let secs = ChronoDuration::seconds;
        // The stored expect → its window (exactly one of within / grace; unreadable → none).
        let windows = [
            (
                expect(Some("26h"), None),
                Some(Window::Within(secs(26 * 3600))),
            ),
            (expect(Some("5s"), None), Some(Window::Within(secs(5)))),
            (expect(None, Some("1h")), Some(Window::Grace(secs(3600)))),
            (expect(Some("5s"), Some("1h")), None),
            (expect(None, None), None),
            (expect(Some("5x"), None), None),
        ];
        for (e, want) in windows {
            assert_eq!(window(&e), want, "{e:?}");
        }
        // Where the window starts: the later of the last success and `since` (creation, enable).
        let since = t("2026-11-28T10:00:00Z");
        assert_eq!(window_start(since, None), since);
        assert_eq!(
            window_start(since, Some(t("2026-11-28T11:00:00Z"))),
            t("2026-11-28T11:00:00Z")
        );
        assert_eq!(window_start(since, Some(t("2026-11-27T11:00:00Z"))), since);

        // (window, rule, start) → deadline
        let daily_3am = cron("0 3 * * *", "UTC");
        let every_minute = every(60, "2026-11-28T00:00:00Z");
        let once = FireRule::Once {
            at: t("2026-11-28T12:00:00Z"),
        };
        let cases: [(Window, Option<&FireRule>, &str, Option<&str>); 7] = [
            (
                Window::Within(secs(26 * 3600)),
                None,
                "2026-11-28T03:00:05Z",
                Some("2026-11-29T05:00:05Z"),
            ),
            // within ignores the schedule
            (
                Window::Within(secs(5)),
                Some(&daily_3am),
                "2026-11-28T03:00:05Z",
                Some("2026-11-28T03:00:10Z"),
            ),
            // grace: the first fire time after the last success, plus the grace
            (
                Window::Grace(secs(3600)),
                Some(&daily_3am),
                "2026-11-28T03:00:05Z",
                Some("2026-11-29T04:00:00Z"),
            ),
            (
                Window::Grace(secs(3600)),
                Some(&daily_3am),
                "2026-11-28T02:59:59Z",
                Some("2026-11-28T04:00:00Z"),
            ),
            (
                Window::Grace(secs(10)),
                Some(&every_minute),
                "2026-11-28T10:00:00Z",
                Some("2026-11-28T10:01:10Z"),
            ),
            // no fire left (a once task after its time) or no rule: nothing is due
            (
                Window::Grace(secs(10)),
                Some(&once),
                "2026-11-28T12:00:01Z",
                None,
            ),
            (Window::Grace(secs(10)), None, "2026-11-28T10:00:00Z", None),
        ];
        for (w, rule, start, want) in cases {
            assert_eq!(
                deadline(w, rule, t(start)),
                want.map(t),
                "{w:?} from {start}"
            );
        }

        // (deadline, already alerted, now) → decision
        let due = t("2026-11-28T10:00:05Z");
        let checks = [
            (
                Some(due),
                false,
                "2026-11-28T10:00:04.999Z",
                DeadlineCheck::Wait(due),
            ),
            (
                Some(due),
                false,
                "2026-11-28T10:00:05Z",
                DeadlineCheck::Alert(due),
            ),
            // after a restart (or a long outage) the deadline is long past: reported once
            (
                Some(due),
                false,
                "2026-11-30T00:00:00Z",
                DeadlineCheck::Alert(due),
            ),
            // already reported: quiet, whatever the time, until a success
            (
                Some(due),
                true,
                "2026-11-28T10:00:06Z",
                DeadlineCheck::Quiet,
            ),
            (
                Some(due),
                true,
                "2026-11-28T10:00:00Z",
                DeadlineCheck::Quiet,
            ),
            (None, true, "2026-11-28T10:00:00Z", DeadlineCheck::Quiet),
            (None, false, "2026-11-28T10:00:00Z", DeadlineCheck::Idle),
        ];
        for (d, alerted, now, want) in checks {
            assert_eq!(
                check_deadline(d, alerted, t(now)),
                want,
                "{d:?} {alerted} {now}"
            );
        }

        // A success after the report sends "back on time" once; not when nothing was reported, nor
        // when the run's own notification already says recovered.
        assert!(sends_recovery(true, false));
        assert!(!sends_recovery(true, true));
        assert!(!sends_recovery(false, false));
        assert!(!sends_recovery(false, true));
    }
}
