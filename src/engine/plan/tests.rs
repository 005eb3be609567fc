//! The scheduling rules, table by table, in milliseconds: no sleeping, no libfaketime.

use super::*;
use crate::tasks::schedule::{parse_timezone, Schedule};
use crate::util::parse_utc;

pub(in crate::engine) fn t(text: &str) -> DateTime<Utc> {
    parse_utc(text).unwrap()
}

pub(in crate::engine) fn cron(expr: &str, zone: &str) -> FireRule {
    FireRule::Cron {
        schedule: std::sync::Arc::new(Schedule::load(expr).unwrap()),
        tz: parse_timezone(zone).unwrap(),
    }
}

pub(in crate::engine) fn every(secs: i64, start: &str) -> FireRule {
    FireRule::Interval {
        start: t(start),
        step_secs: secs,
    }
}

pub(in crate::engine) fn wake(now: &str, boot: &str, jumped: bool) -> Wake {
    Wake {
        now: t(now),
        boot: t(boot),
        jumped,
        paused: None,
    }
}

#[test]
fn lateness_window_and_restart_rules() {
    let hourly = cron("0 * * * *", "UTC");
    struct Case {
        what: &'static str,
        first: &'static str,
        now: &'static str,
        boot: &'static str,
        jumped: bool,
        catch_up: CatchUp,
        on_time: Option<&'static str>,
        catch_up_run: Option<&'static str>,
        missed: &'static [&'static str],
        reason: MissReason,
        next: Option<&'static str>,
    }
    let cases = [
        Case {
            what: "on time",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T10:00:00.004Z",
            boot: "2026-11-28T09:00:00Z",
            jumped: false,
            catch_up: CatchUp::Skip,
            on_time: Some("2026-11-28T10:00:00Z"),
            catch_up_run: None,
            missed: &[],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T11:00:00Z"),
        },
        Case {
            what: "9.9 s late still runs",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T10:00:09.900Z",
            boot: "2026-11-28T09:00:00Z",
            jumped: false,
            catch_up: CatchUp::Skip,
            on_time: Some("2026-11-28T10:00:00Z"),
            catch_up_run: None,
            missed: &[],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T11:00:00Z"),
        },
        Case {
            what: "10.1 s late is missed",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T10:00:10.100Z",
            boot: "2026-11-28T09:00:00Z",
            jumped: false,
            catch_up: CatchUp::Skip,
            on_time: None,
            catch_up_run: None,
            missed: &["2026-11-28T10:00:00Z"],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T11:00:00Z"),
        },
        Case {
            what: "down for three fires, catch_up skip: all three skipped",
            first: "2026-11-28T07:00:00Z",
            now: "2026-11-28T09:30:00Z",
            boot: "2026-11-28T09:30:00Z",
            jumped: false,
            catch_up: CatchUp::Skip,
            on_time: None,
            catch_up_run: None,
            missed: &[
                "2026-11-28T07:00:00Z",
                "2026-11-28T08:00:00Z",
                "2026-11-28T09:00:00Z",
            ],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T10:00:00Z"),
        },
        Case {
            what: "down for three fires, catch_up once: the latest runs as catch-up",
            first: "2026-11-28T07:00:00Z",
            now: "2026-11-28T09:30:00Z",
            boot: "2026-11-28T09:30:00Z",
            jumped: false,
            catch_up: CatchUp::Once,
            on_time: None,
            catch_up_run: Some("2026-11-28T09:00:00Z"),
            missed: &["2026-11-28T07:00:00Z", "2026-11-28T08:00:00Z"],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T10:00:00Z"),
        },
        Case {
            what: "a fire 2 s before this start passed while no server ran: missed, not on time",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T10:00:02Z",
            boot: "2026-11-28T10:00:01Z",
            jumped: false,
            catch_up: CatchUp::Skip,
            on_time: None,
            catch_up_run: None,
            missed: &["2026-11-28T10:00:00Z"],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T11:00:00Z"),
        },
        Case {
            what: "a forward clock jump: the jumped-over fires are missed with that reason",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T12:00:01Z",
            boot: "2026-11-28T09:00:00Z",
            jumped: true,
            catch_up: CatchUp::Skip,
            on_time: None,
            catch_up_run: None,
            missed: &[
                "2026-11-28T10:00:00Z",
                "2026-11-28T11:00:00Z",
                "2026-11-28T12:00:00Z",
            ],
            reason: MissReason::ClockJump,
            next: Some("2026-11-28T13:00:00Z"),
        },
        Case {
            what: "a forward clock jump with catch_up once still makes one catch-up run",
            first: "2026-11-28T10:00:00Z",
            now: "2026-11-28T11:00:01Z",
            boot: "2026-11-28T09:00:00Z",
            jumped: true,
            catch_up: CatchUp::Once,
            on_time: None,
            catch_up_run: Some("2026-11-28T11:00:00Z"),
            missed: &["2026-11-28T10:00:00Z"],
            reason: MissReason::ClockJump,
            next: Some("2026-11-28T12:00:00Z"),
        },
        Case {
            what: "late but within the window after an outage: the latest runs on time, earlier ones missed",
            first: "2026-11-28T09:00:00Z",
            now: "2026-11-28T10:00:03Z",
            boot: "2026-11-28T09:30:00Z",
            jumped: false,
            catch_up: CatchUp::Once,
            on_time: Some("2026-11-28T10:00:00Z"),
            catch_up_run: None,
            missed: &["2026-11-28T09:00:00Z"],
            reason: MissReason::NotRunning,
            next: Some("2026-11-28T11:00:00Z"),
        },
    ];
    for c in cases {
        let plan = on_timer(
            &hourly,
            c.catch_up,
            t(c.first),
            wake(c.now, c.boot, c.jumped),
        );
        assert_eq!(plan.on_time, c.on_time.map(t), "{}: on time", c.what);
        assert_eq!(plan.catch_up, c.catch_up_run.map(t), "{}: catch-up", c.what);
        let missed: Vec<DateTime<Utc>> = c.missed.iter().map(|m| t(m)).collect();
        assert_eq!(plan.missed, missed, "{}: missed", c.what);
        assert_eq!(
            plan.missed_count,
            missed.len() + usize::from(c.catch_up_run.is_some()),
            "{}: missed count",
            c.what
        );
        if !missed.is_empty() {
            assert_eq!(plan.reason, c.reason, "{}: reason", c.what);
        }
        assert_eq!(plan.next, c.next.map(t), "{}: next", c.what);
        assert!(!plan.disable && !plan.overflow, "{}", c.what);
        assert!(
            plan.next.is_none_or(|n| n > plan.cursor),
            "{}: next after the cursor",
            c.what
        );
    }
}

#[test]
fn clock_jumps_are_measured_against_the_monotonic_clock() {
    let s = Duration::from_secs;
    let cases = [
        (Some(s(60)), s(60), None, "no jump"),
        (Some(s(61)), s(60), None, "within the 2 s tolerance"),
        (Some(s(3630)), s(30), Some(s(3600)), "an hour forward"),
        (
            None,
            s(30),
            None,
            "backward: the wall clock went back, no fire is missed",
        ),
    ];
    for (wall, mono, want, what) in cases {
        assert_eq!(forward_jump(wall, mono), want, "{what}");
    }
}

#[test]
fn a_backward_clock_step_never_fires_a_time_twice() {
    let hourly = cron("0 * * * *", "UTC");
    let cursor = t("2026-11-28T10:00:00Z");
    // The clock went back 40 minutes after the 10:00 fire.
    let next = next_timer(&hourly, cursor, t("2026-11-28T09:20:00Z"));
    assert_eq!(next, Some(t("2026-11-28T11:00:00Z")));
}

#[test]
fn a_very_long_outage_is_bounded_and_goes_on_from_now() {
    let every_second = every(1, "2026-01-01T00:00:00Z");
    let plan = on_timer(
        &every_second,
        CatchUp::Skip,
        t("2026-01-01T00:00:01Z"),
        wake("2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z", false),
    );
    assert!(plan.overflow);
    assert_eq!(plan.cursor, t("2026-01-03T00:00:00Z"));
    assert_eq!(plan.missed_count, MAX_DUE);
    assert_eq!(
        plan.on_time,
        Some(t("2026-01-03T00:00:00Z")),
        "runs once, now"
    );
    assert_eq!(plan.next, Some(t("2026-01-03T00:00:01Z")));
}

#[test]
fn missed_fires_are_recorded_twenty_rows_then_one_summary() {
    let times: Vec<DateTime<Utc>> = (0..25)
        .map(|m| t("2026-11-28T00:00:00Z") + ChronoDuration::minutes(m))
        .collect();
    let rows = missed_rows(&times, MissReason::NotRunning, CatchUp::Skip);
    assert_eq!(rows.len(), MISSED_ROWS + 1);
    assert_eq!(rows[0].0, times[0]);
    assert!(rows[0].1.starts_with("missed: the server was not running"));
    assert!(rows[0].1.ends_with("(catch_up = skip)"));
    let (at, summary) = &rows[MISSED_ROWS];
    assert_eq!(*at, times[24]);
    assert_eq!(
        summary,
        "missed 5 more fires from 2026-11-28T00:20:00Z to 2026-11-28T00:24:00Z: the server was not running (or was too late) at this fire time (catch_up = skip)"
    );
    assert_eq!(
        missed_rows(&times[..3], MissReason::ClockJump, CatchUp::Once).len(),
        3
    );
    assert!(missed_rows(&[], MissReason::ClockJump, CatchUp::Once).is_empty());
}

#[test]
fn once_tasks_fire_once_then_disable_even_when_missed() {
    let at = t("2026-11-28T10:00:00Z");
    let rule = FireRule::Once { at };
    // Created for a time that has already come: it still fires (cursor one second before).
    let (cursor, store) = start_cursor(&rule, None, t("2026-11-28T10:00:00.500Z"));
    assert_eq!((cursor, store), (t("2026-11-28T09:59:59Z"), true));
    assert_eq!(rule.next_after(cursor), Some(at));
    // Created for later: starts from now.
    let (cursor, _) = start_cursor(&rule, None, t("2026-11-28T09:00:00Z"));
    assert_eq!(cursor, t("2026-11-28T09:00:00Z"));
    let plan = on_timer(
        &rule,
        CatchUp::Skip,
        at,
        wake("2026-11-28T10:00:00.010Z", "2026-11-28T09:00:00Z", false),
    );
    assert_eq!(plan.on_time, Some(at));
    assert!(plan.disable && plan.next.is_none());
    let missed = on_timer(
        &rule,
        CatchUp::Skip,
        at,
        wake("2026-11-28T11:00:00Z", "2026-11-28T11:00:00Z", false),
    );
    assert_eq!(missed.missed, [at]);
    assert!(missed.disable && missed.next.is_none());
    // A stored cursor wins over every start rule (a restart resumes there).
    let stored = t("2026-11-28T08:00:00Z");
    assert_eq!(
        start_cursor(&rule, Some(stored), t("2026-11-28T12:00:00Z")),
        (stored, false)
    );
}

#[test]
fn interval_fires_stay_on_their_grid_across_restarts() {
    let rule = every(900, "2026-11-26T00:05:00Z");
    assert_eq!(
        rule.next_after(t("2026-11-26T00:00:00Z")),
        Some(t("2026-11-26T00:05:00Z"))
    );
    assert_eq!(
        rule.next_after(t("2026-11-26T06:57:00Z")),
        Some(t("2026-11-26T07:05:00Z"))
    );
    assert_eq!(
        rule.next_after(t("2026-11-26T07:05:00Z")),
        Some(t("2026-11-26T07:20:00Z"))
    );
    // Down from 07:06 to 07:49:59 with the cursor at 07:05: at the first wake 07:20 and 07:35
    // are missed, and the grid goes on at 07:50 (not at a restart-relative time).
    let plan = on_timer(
        &rule,
        CatchUp::Skip,
        t("2026-11-26T07:20:00Z"),
        wake("2026-11-26T07:49:59.100Z", "2026-11-26T07:49:59Z", false),
    );
    assert_eq!(
        plan.missed,
        [t("2026-11-26T07:20:00Z"), t("2026-11-26T07:35:00Z")]
    );
    assert_eq!(plan.on_time, None);
    assert_eq!(plan.cursor, t("2026-11-26T07:35:00Z"));
    assert_eq!(plan.next, Some(t("2026-11-26T07:50:00Z")));
}

#[test]
fn daylight_saving_goes_through_the_schedule() {
    // 02:30 does not exist in New York on 2026-03-08: it fires once, right after the gap.
    let rule = cron("30 2 * * *", "America/New_York");
    assert_eq!(
        rule.next_after(t("2026-03-08T06:00:00Z")),
        Some(t("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        rule.next_after(t("2026-03-08T07:00:00Z")),
        Some(t("2026-03-09T06:30:00Z"))
    );
    // 01:30 happens twice on 2026-11-01: a fixed-time job fires once, at the first.
    let fold = cron("30 1 * * *", "America/New_York");
    assert_eq!(
        fold.next_after(t("2026-11-01T04:00:00Z")),
        Some(t("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        fold.next_after(t("2026-11-01T05:30:00Z")),
        Some(t("2026-11-02T06:30:00Z"))
    );
}

#[test]
fn overlap_and_the_queue_bounds_decide_what_a_fire_becomes() {
    let load = |active: Option<i64>, mine: usize, all: usize| Load {
        active,
        queued_for_task: mine,
        queued: all,
    };
    let skip_active =
        FireDecision::Skip("skipped: run 7 of this task is still active (overlap = skip)".into());
    let task_full = FireDecision::Skip(format!(
        "skipped: overloaded: {MAX_QUEUED_PER_TASK} runs of this task are already waiting (at most {MAX_QUEUED_PER_TASK})"
    ));
    let all_full = FireDecision::Skip(format!(
        "skipped: overloaded: {MAX_QUEUED} runs are already waiting for a slot (at most {MAX_QUEUED})"
    ));
    let cases = [
        (Overlap::Skip, load(None, 0, 0), FireDecision::Queue),
        (Overlap::Skip, load(Some(7), 1, 1), skip_active),
        (Overlap::Queue, load(Some(7), 1, 1), FireDecision::Queue),
        (Overlap::Allow, load(Some(7), 0, 0), FireDecision::Queue),
        (
            Overlap::Queue,
            load(Some(7), MAX_QUEUED_PER_TASK - 1, 99),
            FireDecision::Queue,
        ),
        (
            Overlap::Queue,
            load(Some(7), MAX_QUEUED_PER_TASK, 99),
            task_full.clone(),
        ),
        (
            Overlap::Allow,
            load(Some(7), MAX_QUEUED_PER_TASK, MAX_QUEUED),
            task_full,
        ),
        (Overlap::Allow, load(None, 0, MAX_QUEUED), all_full),
    ];
    for (overlap, load, want) in cases {
        assert_eq!(on_fire(overlap, load), want, "{overlap:?} with {load:?}");
    }
}

#[test]
fn admission_keeps_order_the_cap_and_each_tasks_overlap() {
    let overlap = |task: &str| match task {
        "q" => Some(Overlap::Queue),
        "a" => Some(Overlap::Allow),
        "gone" => None,
        _ => Some(Overlap::Skip),
    };
    use Admit::*;
    type Case<'a> = (&'a [&'a str], &'a [&'a str], usize, &'a [Admit]);
    let cases: [Case; 8] = [
        (&["x", "y"], &[], 10, &[Start(0), Start(1)]),
        (&["x", "y", "z"], &[], 2, &[Start(0), Start(1)]),
        (&["q", "q"], &[], 10, &[Start(0)]),
        (&["q", "x"], &["q"], 10, &[Start(1)]),
        (&["a", "a"], &["a"], 10, &[Start(0), Start(1)]),
        (&["gone", "x"], &["y"], 2, &[Drop(0), Start(1)]),
        // Fair: a flood of one task's runs does not starve another task's run behind it.
        (&["a", "a", "a", "x"], &[], 2, &[Start(0), Start(3)]),
        (
            &["a", "a", "q", "q", "x"],
            &[],
            3,
            &[Start(0), Start(2), Start(4)],
        ),
    ];
    let never = |_: &str| None;
    for (queue, running, max, want) in cases {
        assert_eq!(
            admission(queue, running, max, overlap, never),
            want,
            "{queue:?} with {running:?} running, cap {max}"
        );
    }
    // One slot free: the task that started a run least recently goes first, so a steady flood
    // of "a" alternates with "x" instead of going first every time.
    let recent_a = |task: &str| if task == "a" { Some(9) } else { Some(3) };
    assert_eq!(
        admission(&["a", "a", "x"], &[], 1, overlap, recent_a),
        [Start(2)]
    );
    let recent_x = |task: &str| if task == "x" { Some(9) } else { Some(3) };
    assert_eq!(
        admission(&["a", "a", "x"], &[], 1, overlap, recent_x),
        [Start(0)]
    );
}

#[test]
fn retries_back_off_doubling_up_to_their_attempts() {
    let now = t("2026-11-28T10:00:00Z");
    let retries = Retries {
        max_attempts: 3,
        backoff_seconds: 30,
        doubling: true,
    };
    let cases = [
        (RunStatus::Failed, 1, Some((30, 2))),
        (RunStatus::Timeout, 2, Some((60, 3))),
        (RunStatus::Failed, 3, Some((120, 4))),
        (RunStatus::Failed, 4, None),
        (RunStatus::Success, 1, None),
        (RunStatus::Cancelled, 1, None),
        (RunStatus::Interrupted, 1, None),
        (RunStatus::Skipped, 1, None),
    ];
    for (status, attempt, want) in cases {
        let got = after_end(status, attempt, &retries, now);
        let want = match want {
            Some((delay, next)) => AfterEnd::Retry {
                due: now + ChronoDuration::seconds(delay),
                delay_secs: delay as u64,
                attempt: next,
            },
            None => AfterEnd::Final,
        };
        assert_eq!(got, want, "{status} on attempt {attempt}");
    }
    let flat = Retries {
        max_attempts: 5,
        backoff_seconds: 10,
        doubling: false,
    };
    assert!(matches!(
        after_end(RunStatus::Failed, 4, &flat, now),
        AfterEnd::Retry { delay_secs: 10, .. }
    ));
    let huge = Retries {
        max_attempts: 10,
        backoff_seconds: 86_400,
        doubling: true,
    };
    assert!(matches!(
        after_end(RunStatus::Failed, 9, &huge, now),
        AfterEnd::Retry {
            delay_secs: MAX_BACKOFF_SECS,
            ..
        }
    ));
}

#[test]
fn after_tasks_follow_the_final_outcome() {
    use RunStatus::*;
    let cases = [
        (AfterOn::Success, Success, true),
        (AfterOn::Success, Failed, false),
        (AfterOn::Failure, Failed, true),
        (AfterOn::Failure, Timeout, true),
        (AfterOn::Failure, Interrupted, true),
        (AfterOn::Failure, Cancelled, false),
        (AfterOn::Failure, Success, false),
        // A run its precheck (or spend cap) skipped did not fail.
        (AfterOn::Failure, Skipped, false),
        (AfterOn::Success, Skipped, false),
        (AfterOn::Always, Skipped, true),
        (AfterOn::Always, Cancelled, true),
        (AfterOn::Always, Success, true),
    ];
    for (on, status, want) in cases {
        assert_eq!(after_fires(on, status), want, "{on:?} after {status}");
    }
}

#[test]
fn budget_skips_a_fire_once_today_reached_a_daily_cap() {
    let spend = |task_today, task_cap, all_today, global_cap| Spend {
        task_today,
        task_cap,
        all_today,
        global_cap,
    };
    let cases = [
        (spend(0.0, None, 0.0, None), None),
        (spend(5.0, None, 9.0, None), None),
        (spend(0.99, Some(1.0), 0.0, None), None),
        (
            spend(1.0, Some(1.0), 0.0, None),
            Some("this task's runs cost $1.0000"),
        ),
        (
            spend(1.5, Some(1.0), 9.0, Some(2.0)),
            Some("its daily_budget_usd is $1"),
        ),
        (
            spend(0.1, Some(1.0), 2.0, Some(2.0)),
            Some("the server's daily_budget_usd is $2"),
        ),
        (spend(0.0, None, 1.99, Some(2.0)), None),
    ];
    for (s, want) in cases {
        let got = budget_skip(s);
        match want {
            None => assert_eq!(got, None, "{s:?}"),
            Some(text) => {
                let got = got.unwrap_or_default();
                assert!(got.starts_with("skipped: budget: "), "{got}");
                assert!(got.contains(text), "{s:?}: {got}");
            }
        }
    }
}

#[test]
fn today_and_this_month_start_at_utc_midnight() {
    let (day, month) = day_and_month_start(t("2026-11-28T23:59:59Z"));
    assert_eq!(
        (day, month),
        (t("2026-11-28T00:00:00Z"), t("2026-11-01T00:00:00Z"))
    );
    let (day, month) = day_and_month_start(t("2027-01-01T00:00:00Z"));
    assert_eq!(
        (day, month),
        (t("2027-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
    );
}

#[test]
fn a_usage_limit_defers_to_its_reset_unless_the_next_fire_comes_first() {
    let now = t("2026-11-28T10:00:00Z");
    let reset = t("2026-11-28T10:05:00Z");
    assert_eq!(on_usage_limit(reset, None, now), Deferral::At(reset));
    assert_eq!(
        on_usage_limit(reset, Some(t("2026-11-28T11:00:00Z")), now),
        Deferral::At(reset)
    );
    // A reset already past: start again now.
    assert_eq!(
        on_usage_limit(t("2026-11-28T09:00:00Z"), None, now),
        Deferral::At(now)
    );
    for next in ["2026-11-28T10:05:00Z", "2026-11-28T10:01:00Z"] {
        match on_usage_limit(reset, Some(t(next)), now) {
            Deferral::Drop(why) => {
                assert!(
                    why.starts_with("skipped: usage limit until 2026-11-28T10:05:00Z"),
                    "{why}"
                );
                assert!(why.contains("next fire"), "{why}");
            }
            other => panic!("{next}: {other:?}"),
        }
    }
    assert!(matches!(
        on_usage_limit(t("2026-12-28T10:00:00Z"), None, now),
        Deferral::Drop(why) if why.contains("168 h")
    ));
}
