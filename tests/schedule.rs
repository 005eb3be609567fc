//! Table-driven tests for `claudecron::tasks::schedule`: exact fire instants (RFC 3339 with the
//! zone's offset), DST gaps and folds, restarts, validation messages and zone names.
//!
//! Every expected instant was worked out from the calendar and the zone rules, not copied
//! from the code. Calendar facts used: 2026-01-01 is a Thursday; Feb 1, Mar 1 and Nov 1 2026
//! are Sundays; Apr 1 is a Wednesday; Aug 1 a Saturday; Oct 1 a Thursday. US DST 2026: starts
//! Sun 03-08 02:00 EST → 03:00 EDT, ends Sun 11-01 02:00 EDT → 01:00 EST. EU 2026: 03-29 and
//! 10-25 at 01:00 UTC. Lord Howe (+10:30/+11:00, 30-minute shift): ends Sun 04-05 02:00 →
//! 01:30, starts Sun 10-04 02:00 → 02:30. Cuba: 03-08 00:00 → 01:00, 11-01 01:00 → 00:00.

use chrono::{DateTime, Utc};
use claudecron::tasks::schedule::{parse_timezone, Schedule};

/// The reference "now" for the never-fires check, so the tests do not depend on the clock.
fn reference_now() -> DateTime<Utc> {
    utc("2026-01-01T00:00:00Z")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("bad test instant {text}: {e}"))
        .with_timezone(&Utc)
}

struct Case {
    expr: &'static str,
    tz: &'static str,
    after: &'static str,
    expected: &'static [&'static str],
}

const CASES: &[Case] = &[
    // --- spring forward, New York 2026-03-08 (02:00-02:59 does not exist) ---
    Case {
        expr: "30 2 * * *",
        tz: "America/New_York",
        after: "2026-03-07T12:00:00-05:00",
        expected: &[
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00",
        ],
    },
    Case {
        // Interval job whose only matches that day are in the gap: once, right after it.
        expr: "*/20 2 * * *",
        tz: "America/New_York",
        after: "2026-03-07T12:00:00-05:00",
        expected: &[
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:00:00-04:00",
            "2026-03-09T02:20:00-04:00",
            "2026-03-09T02:40:00-04:00",
        ],
    },
    Case {
        expr: "*/20 2 * * *",
        tz: "America/New_York",
        after: "2026-03-07T02:30:00-05:00",
        expected: &["2026-03-07T02:40:00-05:00", "2026-03-08T03:00:00-04:00"],
    },
    Case {
        // Hourly: 02:00 is skipped, 03:00 EDT runs once (gap end and own slot coincide).
        expr: "0 * * * *",
        tz: "America/New_York",
        after: "2026-03-08T00:30:00-05:00",
        expected: &[
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00",
        ],
    },
    Case {
        expr: "*/30 * * * *",
        tz: "America/New_York",
        after: "2026-03-08T01:15:00-05:00",
        expected: &[
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00",
        ],
    },
    Case {
        // 02:10, 02:30, 02:50 are skipped: one catch-up at 03:00 EDT, then 03:10.
        expr: "10-50/20 * * * *",
        tz: "America/New_York",
        after: "2026-03-08T01:45:00-05:00",
        expected: &[
            "2026-03-08T01:50:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:10:00-04:00",
        ],
    },
    Case {
        // Two fixed times in the gap collapse into one run.
        expr: "0,30 2 * * *",
        tz: "America/New_York",
        after: "2026-03-07T12:00:00-05:00",
        expected: &[
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ],
    },
    Case {
        // Seconds field: 02:30:15 is skipped → first instant after the gap.
        expr: "15 30 2 * * *",
        tz: "America/New_York",
        after: "2026-03-07T12:00:00-05:00",
        expected: &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:15-04:00"],
    },
    // --- fall back, New York 2026-11-01 (01:00-01:59 happens twice) ---
    Case {
        expr: "30 1 * * *",
        tz: "America/New_York",
        after: "2026-10-31T12:00:00-04:00",
        expected: &[
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
            "2026-11-03T01:30:00-05:00",
        ],
    },
    Case {
        // Restart inside the repeated hour (06:10Z = 01:10 EST): never today's 01:30 EDT.
        expr: "30 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T06:10:00Z",
        expected: &["2026-11-02T01:30:00-05:00"],
    },
    Case {
        // Restart in the first pass (01:10 EDT): today's 01:30 EDT is still ahead.
        expr: "30 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T05:10:00Z",
        expected: &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    },
    Case {
        // Interval job: both passes, in time order.
        expr: "*/20 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T00:00:00-04:00",
        expected: &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:20:00-04:00",
            "2026-11-01T01:40:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:20:00-05:00",
            "2026-11-01T01:40:00-05:00",
            "2026-11-02T01:00:00-05:00",
        ],
    },
    Case {
        // Restart in the second pass of an interval job.
        expr: "*/20 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T06:10:00Z",
        expected: &[
            "2026-11-01T01:20:00-05:00",
            "2026-11-01T01:40:00-05:00",
            "2026-11-02T01:00:00-05:00",
        ],
    },
    Case {
        // Restart late in the first pass (01:50 EDT): the second pass is next.
        expr: "*/20 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T05:50:00Z",
        expected: &["2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00"],
    },
    Case {
        // A fixed list (not an interval job) runs once per time.
        expr: "0,30 1 * * *",
        tz: "America/New_York",
        after: "2026-11-01T00:00:00-04:00",
        expected: &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:00:00-05:00",
        ],
    },
    Case {
        expr: "0 * * * *",
        tz: "America/New_York",
        after: "2026-11-01T00:30:00-04:00",
        expected: &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    },
    // --- other zones ---
    Case {
        // Moscow: +03:00 all year, no DST since 2014.
        expr: "0 2 * * *",
        tz: "Europe/Moscow",
        after: "2026-03-07T12:00:00+03:00",
        expected: &[
            "2026-03-08T02:00:00+03:00",
            "2026-03-09T02:00:00+03:00",
            "2026-03-10T02:00:00+03:00",
        ],
    },
    Case {
        expr: "30 2 * * *",
        tz: "Europe/Moscow",
        after: "2026-10-24T12:00:00+03:00",
        expected: &["2026-10-25T02:30:00+03:00", "2026-10-26T02:30:00+03:00"],
    },
    Case {
        expr: "30 2 * * *",
        tz: "Europe/Berlin",
        after: "2026-03-28T12:00:00+01:00",
        expected: &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    },
    Case {
        expr: "30 2 * * *",
        tz: "Europe/Berlin",
        after: "2026-10-24T12:00:00+02:00",
        expected: &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    },
    Case {
        // Lord Howe falls back 30 minutes: 01:30-01:59 repeats; fixed time once.
        expr: "45 1 * * *",
        tz: "Australia/Lord_Howe",
        after: "2026-04-04T12:00:00+11:00",
        expected: &["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
    },
    Case {
        expr: "*/15 1 * * *",
        tz: "Australia/Lord_Howe",
        after: "2026-04-05T00:00:00+11:00",
        expected: &[
            "2026-04-05T01:00:00+11:00",
            "2026-04-05T01:15:00+11:00",
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30",
            "2026-04-06T01:00:00+10:30",
        ],
    },
    Case {
        // Lord Howe springs forward 30 minutes: 02:15 does not exist → 02:30.
        expr: "15 2 * * *",
        tz: "Australia/Lord_Howe",
        after: "2026-10-03T12:00:00+10:30",
        expected: &["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
    },
    Case {
        // Cuba's gap is at midnight: 00:00 does not exist on 03-08 → 01:00.
        expr: "0 0 * * *",
        tz: "America/Havana",
        after: "2026-03-07T12:00:00-05:00",
        expected: &["2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"],
    },
    Case {
        // ...and its fold is at midnight too: 00:00 repeats on 11-01; once.
        expr: "0 0 * * *",
        tz: "America/Havana",
        after: "2026-10-31T12:00:00-04:00",
        expected: &["2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"],
    },
    Case {
        expr: "0 9 * * *",
        tz: "Asia/Kolkata",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-01T09:00:00+05:30", "2026-01-02T09:00:00+05:30"],
    },
    Case {
        expr: "0 12 * * 1",
        tz: "America/Sao_Paulo",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-05T12:00:00-03:00", "2026-01-12T12:00:00-03:00"],
    },
    // --- day rules (UTC) ---
    Case {
        // OR rule: the 1st or any Monday.
        expr: "0 0 1 * MON",
        tz: "UTC",
        after: "2026-01-31T12:00:00Z",
        expected: &[
            "2026-02-01T00:00:00+00:00",
            "2026-02-02T00:00:00+00:00",
            "2026-02-09T00:00:00+00:00",
        ],
    },
    Case {
        // OR rule: the 13th or any Friday.
        expr: "0 0 13 * 5",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-02T00:00:00+00:00",
            "2026-01-09T00:00:00+00:00",
            "2026-01-13T00:00:00+00:00",
            "2026-01-16T00:00:00+00:00",
        ],
    },
    Case {
        expr: "0 0 * * 7",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"],
    },
    Case {
        expr: "0 0 * * 0",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"],
    },
    Case {
        expr: "0 12 * * sat,SUN",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-03T12:00:00+00:00",
            "2026-01-04T12:00:00+00:00",
            "2026-01-10T12:00:00+00:00",
        ],
    },
    Case {
        expr: "0 9 * * 1-5",
        tz: "UTC",
        after: "2026-01-02T10:00:00Z",
        expected: &["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"],
    },
    Case {
        // Mondays in January: day-of-month is `*`, so only day-of-week counts.
        expr: "0 0 * jan mon",
        tz: "UTC",
        after: "2026-01-20T00:00:00Z",
        expected: &["2026-01-26T00:00:00+00:00", "2027-01-04T00:00:00+00:00"],
    },
    Case {
        expr: "0 0 ? * MON",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-05T00:00:00+00:00"],
    },
    Case {
        expr: "0 0 L * *",
        tz: "UTC",
        after: "2026-01-15T00:00:00Z",
        expected: &[
            "2026-01-31T00:00:00+00:00",
            "2026-02-28T00:00:00+00:00",
            "2026-03-31T00:00:00+00:00",
        ],
    },
    Case {
        expr: "0 0 L 2 *",
        tz: "UTC",
        after: "2027-03-01T00:00:00Z",
        expected: &["2028-02-29T00:00:00+00:00", "2029-02-28T00:00:00+00:00"],
    },
    Case {
        // Jan 31 and Feb 28 are Saturdays → the Fridays before.
        expr: "0 0 LW * *",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-30T00:00:00+00:00",
            "2026-02-27T00:00:00+00:00",
            "2026-03-31T00:00:00+00:00",
        ],
    },
    Case {
        // Jan 15 Thu; Feb 15 and Mar 15 are Sundays → Monday 16th.
        expr: "0 0 15W * *",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-15T00:00:00+00:00",
            "2026-02-16T00:00:00+00:00",
            "2026-03-16T00:00:00+00:00",
        ],
    },
    Case {
        // Aug 15 2026 is a Saturday → Friday the 14th.
        expr: "0 0 15W * *",
        tz: "UTC",
        after: "2026-08-01T00:00:00Z",
        expected: &["2026-08-14T00:00:00+00:00"],
    },
    Case {
        expr: "0 0 * * 5#2",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-09T00:00:00+00:00",
            "2026-02-13T00:00:00+00:00",
            "2026-03-13T00:00:00+00:00",
        ],
    },
    Case {
        // Fifth Fridays: Jan 30, then none until May 29.
        expr: "0 0 * * 5#5",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-30T00:00:00+00:00", "2026-05-29T00:00:00+00:00"],
    },
    Case {
        expr: "0 0 * * 5L",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-30T00:00:00+00:00",
            "2026-02-27T00:00:00+00:00",
            "2026-03-27T00:00:00+00:00",
        ],
    },
    Case {
        expr: "0 0 */10 * *",
        tz: "UTC",
        after: "2026-01-21T12:00:00Z",
        expected: &[
            "2026-01-31T00:00:00+00:00",
            "2026-02-01T00:00:00+00:00",
            "2026-02-11T00:00:00+00:00",
        ],
    },
    Case {
        expr: "0 0 29 2 *",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
    },
    // --- macros ---
    Case {
        expr: "@daily",
        tz: "UTC",
        after: "2026-01-01T10:00:00Z",
        expected: &["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"],
    },
    Case {
        expr: "@midnight",
        tz: "Europe/Moscow",
        after: "2026-01-01T10:00:00+03:00",
        expected: &["2026-01-02T00:00:00+03:00", "2026-01-03T00:00:00+03:00"],
    },
    Case {
        expr: "@hourly",
        tz: "UTC",
        after: "2026-01-01T10:30:00Z",
        expected: &["2026-01-01T11:00:00+00:00", "2026-01-01T12:00:00+00:00"],
    },
    Case {
        expr: "@weekly",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"],
    },
    Case {
        expr: "@monthly",
        tz: "UTC",
        after: "2026-01-15T00:00:00Z",
        expected: &["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"],
    },
    Case {
        expr: "@YEARLY",
        tz: "UTC",
        after: "2026-06-01T00:00:00Z",
        expected: &["2027-01-01T00:00:00+00:00"],
    },
    Case {
        expr: "@annually",
        tz: "UTC",
        after: "2026-06-01T00:00:00Z",
        expected: &["2027-01-01T00:00:00+00:00"],
    },
    // --- seconds, years, steps, whitespace, strictness ---
    Case {
        expr: "*/5 * * * * *",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &[
            "2026-01-01T00:00:05+00:00",
            "2026-01-01T00:00:10+00:00",
            "2026-01-01T00:00:15+00:00",
        ],
    },
    Case {
        expr: "30 0 12 * * *",
        tz: "UTC",
        after: "2026-01-01T12:00:30Z",
        expected: &["2026-01-02T12:00:30+00:00"],
    },
    Case {
        // 7 fields: a year. Nothing after the last one.
        expr: "0 30 9 1 1 * 2027",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2027-01-01T09:30:00+00:00"],
    },
    Case {
        expr: "0 0 0 1 1 * 2027,2029",
        tz: "UTC",
        after: "2027-06-01T00:00:00Z",
        expected: &["2029-01-01T00:00:00+00:00"],
    },
    Case {
        // Legacy step `0/10` = `0-59/10`.
        expr: "0/10 * * * *",
        tz: "UTC",
        after: "2026-01-01T00:05:00Z",
        expected: &["2026-01-01T00:10:00+00:00", "2026-01-01T00:20:00+00:00"],
    },
    Case {
        expr: "5/20 * * * *",
        tz: "UTC",
        after: "2026-01-01T00:50:00Z",
        expected: &["2026-01-01T01:05:00+00:00", "2026-01-01T01:25:00+00:00"],
    },
    Case {
        expr: "  0\t2   * *  *  ",
        tz: "UTC",
        after: "2026-01-01T00:00:00Z",
        expected: &["2026-01-01T02:00:00+00:00"],
    },
    Case {
        // Strictly after: a fire time equal to `after` is not returned.
        expr: "0 2 * * *",
        tz: "UTC",
        after: "2026-01-01T02:00:00Z",
        expected: &["2026-01-02T02:00:00+00:00"],
    },
    Case {
        expr: "* * * * *",
        tz: "UTC",
        after: "2026-01-01T00:00:00.500Z",
        expected: &["2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00"],
    },
];

#[test]
fn fire_times_are_exact() {
    let mut failures = Vec::new();
    for case in CASES {
        let schedule = Schedule::parse(case.expr, reference_now())
            .unwrap_or_else(|e| panic!("{:?} should parse: {e}", case.expr));
        let tz = parse_timezone(case.tz).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<String> = schedule
            .upcoming(utc(case.after), tz, case.expected.len())
            .iter()
            .map(|t| t.to_rfc3339())
            .collect();
        if got != case.expected {
            failures.push(format!(
                "{:?} in {} after {}:\n  expected {:?}\n  got      {:?}",
                case.expr, case.tz, case.after, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
}

#[test]
fn year_field_ends_the_sequence() {
    let schedule = Schedule::parse("0 30 9 1 1 * 2027", reference_now()).expect("parses");
    let after = utc("2026-01-01T00:00:00Z");
    assert_eq!(schedule.upcoming(after, chrono_tz::UTC, 5).len(), 1);
    assert_eq!(
        schedule.next_after(utc("2027-01-01T09:30:00Z"), chrono_tz::UTC),
        None
    );
}

#[test]
fn iteration_never_goes_backwards() {
    // Every schedule, zone and start here crosses a DST change.
    let runs = [
        (
            "*/20 1 * * *",
            "America/New_York",
            "2026-10-31T23:00:00-04:00",
        ),
        (
            "*/20 2 * * *",
            "America/New_York",
            "2026-03-07T23:00:00-05:00",
        ),
        (
            "*/7 * * * *",
            "America/New_York",
            "2026-11-01T00:00:00-04:00",
        ),
        (
            "*/7 * * * *",
            "America/New_York",
            "2026-03-08T00:00:00-05:00",
        ),
        (
            "0,30 1 * * *",
            "America/New_York",
            "2026-10-31T00:00:00-04:00",
        ),
        (
            "* 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-04T23:00:00+11:00",
        ),
        (
            "*/10 * * * * *",
            "Europe/Berlin",
            "2026-10-25T01:50:00+02:00",
        ),
    ];
    for (expr, zone, after) in runs {
        let schedule = Schedule::parse(expr, reference_now()).expect("parses");
        let tz = parse_timezone(zone).expect("zone");
        let times = schedule.upcoming(utc(after), tz, 400);
        assert_eq!(times.len(), 400, "{expr}");
        assert!(times[0].with_timezone(&Utc) > utc(after), "{expr}");
        for pair in times.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{expr} in {zone}: {} then {}",
                pair[0].to_rfc3339(),
                pair[1].to_rfc3339()
            );
        }
    }
}

#[test]
fn fall_back_interval_runs_both_passes_monotonically() {
    let schedule = Schedule::parse("*/20 1 * * *", reference_now()).expect("parses");
    let tz = parse_timezone("America/New_York").expect("zone");
    let times = schedule.upcoming(utc("2026-11-01T00:00:00-04:00"), tz, 6);
    let utc_times: Vec<String> = times
        .iter()
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
        .collect();
    assert_eq!(
        utc_times,
        [
            "2026-11-01T05:00:00+00:00",
            "2026-11-01T05:20:00+00:00",
            "2026-11-01T05:40:00+00:00",
            "2026-11-01T06:00:00+00:00",
            "2026-11-01T06:20:00+00:00",
            "2026-11-01T06:40:00+00:00",
        ]
    );
}

#[test]
fn next_after_is_strict_for_every_returned_time() {
    // Feeding each result back in must give a later time, never the same one.
    let schedule = Schedule::parse("30 1 * * *", reference_now()).expect("parses");
    let tz = parse_timezone("America/New_York").expect("zone");
    let first = schedule
        .next_after(utc("2026-11-01T05:29:59Z"), tz)
        .expect("a time");
    assert_eq!(first.to_rfc3339(), "2026-11-01T01:30:00-04:00");
    let second = schedule
        .next_after(first.with_timezone(&Utc), tz)
        .expect("a time");
    assert_eq!(second.to_rfc3339(), "2026-11-02T01:30:00-05:00");
}

/// (expression, substrings the message must contain)
const ERRORS: &[(&str, &[&str])] = &[
    ("", &["empty", "5 fields"]),
    ("   ", &["empty", "5 fields"]),
    (
        "0 2 * *",
        &[
            "\"0 2 * *\" has 4 fields; a schedule has 5 fields (minute hour day-of-month month \
             day-of-week), 6 with leading seconds, or 7 with a trailing year, or a macro such as \
             @daily",
        ],
    ),
    (
        "0 0 0 0 0 0 0 0",
        &["has 8 fields", "7 with a trailing year"],
    ),
    ("daily", &["has 1 field;", "@daily"]),
    ("hello world", &["has 2 fields"]),
    ("60 * * * *", &["minute 60", "out of range", "0-59"]),
    ("0 24 * * *", &["hour 24", "0-23"]),
    ("0 0 32 * *", &["day-of-month 32", "1-31"]),
    ("0 0 0 * *", &["day-of-month 0", "1-31"]),
    ("0 0 * 13 *", &["month 13", "1-12 or JAN-DEC"]),
    ("0 0 * * 8", &["day-of-week 8", "0 and 7 are Sunday"]),
    ("0 0 31 2 *", &["never fires in the next 5 years"]),
    ("0 0 30 2 *", &["never fires in the next 5 years"]),
    ("0 0 0 1 1 * 2020", &["never fires in the next 5 years"]),
    (
        "@reboot",
        &[
            "no start-up trigger",
            "\"type\":\"once\"",
            "interval",
            "\"type\":\"manual\"",
        ],
    ),
    ("@every 5m", &["interval", "*/5 * * * *"]),
    ("@fortnightly", &["not a known macro", "@daily"]),
    ("@daily 0", &["stands alone"]),
    (
        "a b c d e",
        &["\"a\" is not valid in the minute field", "0-59"],
    ),
    ("*/0 * * * *", &["\"/0\"", "never advances"]),
    ("0 0 * * MONDAY", &["use the three-letter name MON"]),
    ("0 0 * MON *", &["month field", "day names belong"]),
    ("0 0 * * JAN", &["day-of-week field", "month names belong"]),
    ("5-1 * * * *", &["\"5-1\"", "runs backwards"]),
    ("0 0 * * FRI-MON", &["runs backwards"]),
    (
        "0 0 1 1 * 2030",
        &["day-of-week 2030", "a year needs all 7 fields"],
    ),
    ("0 0 * * 5#6", &["#6", "#1 to #5"]),
    ("0 0 * * L", &["needs a day before it"]),
    (
        "0 0 W * *",
        &["\"W\" is not valid in the day-of-month field"],
    ),
    ("0 0 L-2 * *", &["day-of-month", "L-2"]),
    ("0 0 1,,2 * *", &["empty list item"]),
    (
        "0 0 1 * +MON",
        &["\"+\" is not allowed in the day-of-week field"],
    ),
    ("? 12 * * *", &["\"?\" is not allowed in the minute field"]),
    ("1-2-3 * * * *", &["the minute field \"1-2-3\"", "0-59"]),
    ("99999999999 * * * *", &["out of range"]),
];

#[test]
fn invalid_expressions_explain_themselves() {
    let mut failures = Vec::new();
    for (expr, needles) in ERRORS {
        match Schedule::parse(expr, reference_now()) {
            Ok(_) => failures.push(format!("{expr:?} parsed but should fail")),
            Err(message) => {
                if message.to_lowercase().starts_with("schedule") {
                    failures.push(format!("{expr:?}: message starts with the field name"));
                }
                for needle in *needles {
                    if !message.contains(needle) {
                        failures.push(format!("{expr:?}: {message:?} lacks {needle:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ERRORS.len() >= 10);
}

#[test]
fn parse_uses_the_clock_and_keeps_the_expression() {
    let schedule = Schedule::parse("  */15 9-17 * * MON-FRI ", reference_now()).expect("parses");
    assert_eq!(schedule.expression(), "*/15 9-17 * * MON-FRI");
    assert!(schedule.is_interval());
    assert!(!Schedule::parse("30 1 * * *", reference_now())
        .expect("parses")
        .is_interval());
    assert!(Schedule::parse("0 0 31 2 *", reference_now()).is_err());
}

#[test]
fn descriptions_are_one_line_of_english() {
    let cases = [
        ("@daily", "Every day at 00:00."),
        ("@midnight", "Every day at 00:00."),
        ("@hourly", "Every hour, at minute 0."),
        ("@weekly", "At 00:00 every Sunday."),
        ("@monthly", "At 00:00 on day 1 of every month."),
        ("@yearly", "Once a year, at 00:00 on 1 January."),
        ("0 2 * * *", "At 02:00."),
        ("*/5 * * * *", "Every 5 minutes."),
        ("0 0 LW * *", "At 00:00, on the last weekday of the month."),
        ("0 0 L * *", "At 00:00, on the last day of the month."),
    ];
    for (expr, expected) in cases {
        let schedule = Schedule::parse(expr, reference_now()).expect("parses");
        assert_eq!(schedule.describe(), expected, "{expr}");
    }
    let described = Schedule::parse("0 0 1 * MON", reference_now())
        .expect("parses")
        .describe();
    assert!(described.contains("day 1 or Monday"), "{described}");
    assert!(!described.contains('\n'));
}

#[test]
fn timezones_resolve_or_suggest() {
    assert_eq!(parse_timezone("UTC").map(|t| t.name()), Ok("UTC"));
    assert_eq!(parse_timezone("Etc/UTC").map(|t| t.name()), Ok("Etc/UTC"));
    assert_eq!(
        parse_timezone("Europe/Moscow").map(|t| t.name()),
        Ok("Europe/Moscow")
    );
    assert_eq!(
        parse_timezone("europe/moscow").map(|t| t.name()),
        Ok("Europe/Moscow")
    );
    assert_eq!(
        parse_timezone(" America/New_York ").map(|t| t.name()),
        Ok("America/New_York")
    );
    assert_eq!(
        parse_timezone("Europe/Moskow"),
        Err("\"Europe/Moskow\" is not an IANA zone; did you mean \"Europe/Moscow\"?".to_string())
    );
    assert_eq!(
        parse_timezone("America/New York"),
        Err(
            "\"America/New York\" is not an IANA zone; did you mean \"America/New_York\"?"
                .to_string()
        )
    );
    assert_eq!(
        parse_timezone("Moscow"),
        Err("\"Moscow\" is not an IANA zone; did you mean \"Europe/Moscow\"?".to_string())
    );
    let far = parse_timezone("Mars/Olympus_Mons").expect_err("not a zone");
    assert!(!far.contains("did you mean"), "{far}");
    assert!(
        far.starts_with("\"Mars/Olympus_Mons\" is not an IANA zone"),
        "{far}"
    );
    assert!(parse_timezone("").is_err());
}

/// `upcoming` answers from the fire times it listed last while they cover the question; the
/// answers must equal those of a schedule that never listed anything, whatever is asked next:
/// later or earlier instants, other zones, more times than were kept, a schedule that ends.
#[test]
fn listed_fire_times_answer_exactly_as_a_fresh_computation() {
    let zones = ["UTC", "America/New_York", "Australia/Lord_Howe"];
    for expr in [
        "*/20 1-3 * * *",
        "30 2 * * 0",
        "0 0 0 1 1 * 2027",
        "@hourly",
    ] {
        let kept = Schedule::parse(expr, reference_now()).expect("parses");
        let mut after = utc("2026-03-07T00:00:00Z");
        // Steps in seconds: small (inside the listed times), large (past them), backwards.
        let steps = [
            1,
            600,
            3_600,
            -7_200,
            86_400,
            30,
            40 * 86_400,
            -1,
            400 * 86_400,
        ];
        for (i, step) in steps.iter().cycle().take(40).enumerate() {
            after += chrono::Duration::seconds(*step);
            let tz = parse_timezone(zones[i % 5 % 3]).expect("zone");
            let count = [1, 5, 12][i % 3];
            let fresh = Schedule::parse(expr, reference_now()).expect("parses");
            assert_eq!(
                kept.upcoming(after, tz, count),
                fresh.upcoming(after, tz, count),
                "{expr} after {after} in {} ({count} times)",
                tz.name()
            );
        }
    }
}
