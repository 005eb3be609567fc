//! Cron schedules: parsing crontab expressions, next fire times in a task's zone, and the
//! expression in words. Pure computation: never touches the store, the network or the
//! process, and never reads the clock: [`Schedule::parse`] takes the reference instant for its
//! "never fires in the next 5 years" check. [`FireRule`] is a time-based trigger parsed once,
//! and the one rule for the next fire time of cron, interval and once tasks. [`ScheduleCache`]
//! keeps parsed expressions for readers that would otherwise parse them on every view.
//!
//! # Accepted syntax
//!
//! * 5 fields `minute hour day-of-month month day-of-week`; 6 fields put **seconds first**;
//!   7 fields add a trailing **year**. Fields are separated by any whitespace; surrounding
//!   whitespace is ignored; names and letters are case-insensitive.
//! * Macros `@yearly`/`@annually`, `@monthly`, `@weekly` (Sunday), `@daily`/`@midnight`,
//!   `@hourly`. `@reboot` is rejected (claudecron has no start-up trigger; the message names
//!   the `once`, `interval` and `manual` triggers), and so is `@every`.
//! * Values, ranges `a-b` (never reversed), lists `a,b`, steps `*/n` and `a-b/n`.
//!   **Legacy steps `0/10` and `/10` are accepted** (croner's `sloppy_ranges`): `a/n` means
//!   `a-max/n`, `/n` means `*/n`. Quartz and AI-written expressions use them often, and the
//!   meaning is unambiguous, so rejecting them would only cost a round trip.
//! * Months 1–12 or `JAN`–`DEC`, only in the month field. Days of the week 0–7 (0 and 7 are
//!   Sunday) or `SUN`–`SAT`, only in the day-of-week field; full names (`MONDAY`) are rejected
//!   with a hint. `?` means `*` in the two day fields.
//! * `L` (last day of the month), `LW` (last weekday), `15W` (weekday nearest the 15th) in
//!   day-of-month; `5L` (last Friday) and `5#2` (second Friday) in day-of-week.
//! * Day-of-month and day-of-week: when both are restricted a day matches if **either**
//!   matches (Vixie/cronie OR rule); when one is `*` only the other counts. Unlike cronie, a
//!   stepped field such as `*/2` counts as restricted (croner's rule).
//!
//! # Daylight-saving time
//!
//! Matching is done on the wall clock of the task's zone (croner on a naive timeline); this
//! module then maps each matching wall time to instants:
//!
//! * A wall time that does not exist (spring-forward gap) fires **once, at the first instant
//!   after the gap**; several skipped times in one gap fire once together, and merge with a
//!   match that falls exactly at the end of the gap. This holds for every job. (cronie and
//!   croner drop *interval* jobs whose only matches that day are in the gap, e.g.
//!   `*/20 2 * * *` on 2026-03-08 in New York; here it runs once at 03:00 EDT.)
//! * A wall time that occurs twice (fall-back fold) fires **once, at its first occurrence**
//!   for fixed-time jobs. *Interval jobs* — the second, minute or hour field uses `*` or a
//!   step `/` — run in both passes, in time order (01:00, 01:20, 01:40 EDT, then 01:00,
//!   01:20, 01:40 EST for `*/20 1 * * *`), like cronie's wildcard jobs. croner alone treats a
//!   list such as `0,30 1 * * *` as an interval job and fires it twice; here it fires once.
//! * [`Schedule::next_after`] is always strictly after its argument, so iteration never goes
//!   backwards and a restart inside a repeated hour never yields a past time.

mod cache;
mod fields;
mod fire;
pub use cache::ScheduleCache;
use fields::*;
pub use fire::FireRule;

use crate::tasks::model::{TaskSpec, Trigger};
use crate::util::parse_utc;
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::{GapInfo, Tz};
use croner::errors::CronError;
use croner::parser::CronParser;
use croner::Cron;
use std::sync::{Arc, OnceLock};

/// How far ahead [`Schedule::parse_at`] looks for a first fire time (5 years plus leap days).
const NEVER_FIRES_HORIZON_DAYS: i64 = 5 * 365 + 2;

const FIELD_COUNT_HELP: &str = "a schedule has 5 fields (minute hour day-of-month month \
     day-of-week), 6 with leading seconds, or 7 with a trailing year, or a macro such as @daily";

const MACROS: &str = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly";

/// A validated crontab expression. Cheap to clone: clones share the parsed pattern (croner's
/// tables hold about 5 KB, mostly one byte per possible year) and the description.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as given, trimmed.
    expression: String,
    /// The parsed pattern, matched against naive wall-clock times.
    cron: Arc<Cron>,
    /// An interval job (runs in both passes of a repeated hour); see the module docs.
    interval: bool,
    /// One line of English, written the first time it is asked for (the engine never asks).
    description: Arc<OnceLock<String>>,
    /// The fire times last listed by [`Schedule::upcoming`], shared by the clones: a task view
    /// or a list page asks for the same few times again until the first of them passes.
    listed: Arc<std::sync::Mutex<Option<Listed>>>,
    /// The macro's own description, or None for fields.
    macro_description: Option<&'static str>,
    /// The fields, separated by single spaces (the input of the description).
    normalized: String,
}

/// Fire times a schedule listed: every fire time strictly after `after` in `tz`, in order, up to
/// the last of `times` (all of them when `exhausted`).
#[derive(Debug)]
struct Listed {
    tz: Tz,
    after: DateTime<Utc>,
    exhausted: bool,
    times: Vec<DateTime<Utc>>,
}

/// How many fire times [`Schedule::upcoming`] computes and keeps at least.
const LISTED_AHEAD: usize = 8;

impl Listed {
    /// The `count` fire times after `after`, when these listed times hold them.
    fn answer(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Option<Vec<DateTime<Tz>>> {
        if self.tz != tz || after < self.after {
            return None;
        }
        let rest = &self.times[self.times.partition_point(|t| *t <= after)..];
        (rest.len() >= count || self.exhausted).then(|| {
            rest.iter()
                .take(count)
                .map(|t| t.with_timezone(&tz))
                .collect()
        })
    }
}

impl Schedule {
    /// Parse and validate; the error says what is wrong and what is accepted. An expression
    /// that never fires in the 5 years after `now` is rejected.
    pub fn parse(expression: &str, now: DateTime<Utc>) -> Result<Schedule, String> {
        Schedule::parse_inner(expression, Some(now))
    }

    /// Parse an expression that was validated when it was stored (no never-fires check, which
    /// would need the clock).
    pub fn load(expression: &str) -> Result<Schedule, String> {
        Schedule::parse_inner(expression, None)
    }

    fn parse_inner(expression: &str, now: Option<DateTime<Utc>>) -> Result<Schedule, String> {
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(format!(
                "an empty expression is not a schedule; {FIELD_COUNT_HELP}"
            ));
        }
        let (pattern, macro_description) = expand_macro(trimmed)?;
        let fields: Vec<&str> = pattern.split_whitespace().collect();
        let Some(specs) = field_specs(fields.len()) else {
            let n = fields.len();
            let noun = if n == 1 { "field" } else { "fields" };
            return Err(format!("\"{trimmed}\" has {n} {noun}; {FIELD_COUNT_HELP}"));
        };
        // A 6-field expression written as "5 fields + year" fails on its day-of-week field.
        let six_field_hint = if fields.len() == 6 {
            " (6 fields are read as second minute hour day-of-month month day-of-week; a year \
             needs all 7 fields)"
        } else {
            ""
        };
        for (spec, raw) in specs.iter().zip(&fields) {
            spec.validate(raw, trimmed).map_err(|e| {
                if spec.name == DAY_OF_WEEK.name {
                    format!("{e}{six_field_hint}")
                } else {
                    e
                }
            })?;
        }
        let normalized = fields.join(" ");
        let cron = croner_parser()
            .parse(&normalized)
            .map_err(|err| explain_croner_error(&err, &fields, specs, trimmed, six_field_hint))?;

        // Interval jobs: the second, minute or hour field uses `*` or a step.
        let time_fields = if fields.len() == 5 { 2 } else { 3 };
        let interval = fields[..time_fields]
            .iter()
            .any(|f| f.contains('*') || f.contains('/'));

        if let Some(now) = now {
            check_fires_soon(&cron, trimmed, now)?;
        }

        Ok(Schedule {
            expression: trimmed.to_string(),
            cron: Arc::new(cron),
            interval,
            description: Arc::default(),
            listed: Arc::default(),
            macro_description,
            normalized,
        })
    }

    /// Refuses a schedule whose first fire time is more than 5 years after `now` (what
    /// [`Schedule::parse`] checks beyond [`Schedule::load`]).
    pub fn fires_soon(&self, now: DateTime<Utc>) -> Result<(), String> {
        check_fires_soon(&self.cron, &self.expression, now)
    }

    /// The expression as the user gave it (surrounding whitespace removed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first fire time strictly after `after`, in `tz`; `None` when the schedule has no
    /// more fire times (a year field in the past).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Tz>> {
        // The candidate search below already returns instants after `after`; the loop is a
        // guard so that "strictly after" holds even for zone data this code did not foresee.
        let mut cursor = after;
        for _ in 0..8 {
            let candidate = self.candidate_after(cursor, tz)?;
            if candidate.with_timezone(&Utc) > after {
                return Some(candidate);
            }
            cursor = cursor.checked_add_signed(Duration::seconds(1))?;
        }
        None
    }

    /// Up to `count` fire times strictly after `after`: from the times listed last when they
    /// cover it (they are consecutive fire times, so those after `after` are its next ones),
    /// else computed (a few more than asked) and kept.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Tz>> {
        let listed = || self.listed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = listed().as_ref().and_then(|l| l.answer(after, tz, count)) {
            return hit;
        }
        let want = count.max(LISTED_AHEAD);
        let times = self.compute_upcoming(after, tz, want);
        let answer = times.iter().take(count).cloned().collect();
        *listed() = Some(Listed {
            tz,
            after,
            exhausted: times.len() < want,
            times: times.iter().map(|t| t.with_timezone(&Utc)).collect(),
        });
        answer
    }

    fn compute_upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor, tz) {
                Some(t) => {
                    cursor = t.with_timezone(&Utc);
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }

    /// One line of English.
    pub fn describe(&self) -> String {
        self.description
            .get_or_init(|| match self.macro_description {
                Some(text) => text.to_string(),
                None => {
                    let fields: Vec<&str> = self.normalized.split(' ').collect();
                    let specs = field_specs(fields.len()).unwrap_or_default();
                    english(&self.cron, &fields, specs)
                }
            })
            .clone()
    }

    /// Whether this is an interval job (second, minute or hour field uses `*` or a step),
    /// which runs in both passes of a repeated (fall-back) hour.
    pub fn is_interval(&self) -> bool {
        self.interval
    }

    /// The first matching wall time strictly after `from` (`inclusive`: at or after).
    fn wall_match(&self, from: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        // croner works in whole seconds; dropping the fraction keeps "strictly after" exact.
        let from = from.with_nanosecond(0)?;
        self.cron.find_next_occurrence(&from, inclusive).ok()
    }

    /// The next fire instant after `after` (see the module docs for the DST rules).
    fn candidate_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Tz>> {
        let local = after.with_timezone(&tz);
        let wall = local.naive_local();
        let fold = match tz.from_local_datetime(&wall) {
            LocalResult::Ambiguous(a, b) => {
                let (earlier, later) = if a <= b { (a, b) } else { (b, a) };
                let length = later.signed_duration_since(earlier);
                let end = fold_end(tz, wall.with_nanosecond(0)?, length.num_seconds())?;
                Some((local == earlier, end, end.checked_sub_signed(length)?))
            }
            _ => None,
        };
        match fold {
            // `after` is not inside a repeated stretch of wall time.
            None => first_instant(tz, self.wall_match(wall, false)?),
            // First pass through a repeated stretch.
            Some((true, end, begin)) => {
                let next = self.wall_match(wall, false)?;
                if next < end {
                    return resolve(tz, next).map(|w| w.first());
                }
                if self.interval {
                    // Interval jobs come back for the second pass of the stretch.
                    if let Some(again) = self.wall_match(begin, true).filter(|m| *m < end) {
                        if let Some(Wall::Fold(_, later)) = resolve(tz, again) {
                            return Some(later);
                        }
                    }
                }
                first_instant(tz, next)
            }
            // Second pass: fixed-time jobs already fired in the first one.
            Some((false, end, _)) => {
                if self.interval {
                    let next = self.wall_match(wall, false)?;
                    if next < end {
                        if let Some(Wall::Fold(_, later)) = resolve(tz, next) {
                            return Some(later);
                        }
                    }
                    first_instant(tz, next)
                } else {
                    first_instant(tz, self.wall_match(end, true)?)
                }
            }
        }
    }
}

/// How one wall-clock time maps to instants in a zone.
enum Wall {
    Single(DateTime<Tz>),
    /// A repeated wall time: (first occurrence, second occurrence).
    Fold(DateTime<Tz>, DateTime<Tz>),
    /// A skipped wall time: the first instant after the gap.
    Gap(DateTime<Tz>),
}

impl Wall {
    fn first(&self) -> DateTime<Tz> {
        match self {
            Wall::Single(t) | Wall::Fold(t, _) | Wall::Gap(t) => *t,
        }
    }
}

fn resolve(tz: Tz, wall: NaiveDateTime) -> Option<Wall> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(Wall::Single(t)),
        LocalResult::Ambiguous(a, b) => Some(if a <= b {
            Wall::Fold(a, b)
        } else {
            Wall::Fold(b, a)
        }),
        LocalResult::None => GapInfo::new(&wall, &tz)
            .and_then(|gap| gap.end)
            .or_else(|| after_gap_by_scanning(tz, wall))
            .map(Wall::Gap),
    }
}

/// Fallback when the zone data gives no gap end (not expected with tzdata): the first wall
/// time that exists, scanning forward by minutes for at most a day.
fn after_gap_by_scanning(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    (1..=24 * 60).find_map(|minutes| {
        let t = wall.checked_add_signed(Duration::minutes(minutes))?;
        tz.from_local_datetime(&t).earliest()
    })
}

/// The instant at which a matching wall time fires when it is met for the first time.
fn first_instant(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    resolve(tz, wall).map(|w| w.first())
}

/// The first wall time after `start` (which is repeated) that is not repeated: a binary
/// search over at most `length` seconds, the size of the fold.
fn fold_end(tz: Tz, start: NaiveDateTime, length: i64) -> Option<NaiveDateTime> {
    let ambiguous = |secs: i64| -> Option<bool> {
        let t = start.checked_add_signed(Duration::seconds(secs))?;
        Some(matches!(
            tz.from_local_datetime(&t),
            LocalResult::Ambiguous(_, _)
        ))
    };
    let (mut lo, mut hi) = (0i64, length.max(1));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ambiguous(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    start.checked_add_signed(Duration::seconds(hi))
}

/// The fields of a line of `count` fields, in order.
fn field_specs(count: usize) -> Option<&'static [&'static FieldSpec]> {
    match count {
        5 => Some(&[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK]),
        6 => Some(&[&SECOND, &MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK]),
        7 => Some(&[
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &DAY_OF_WEEK,
            &YEAR,
        ]),
        _ => None,
    }
}

fn croner_parser() -> CronParser {
    CronParser::builder().sloppy_ranges(true).build()
}

/// Expands a macro into 5 fields (with its own description); other input passes through.
fn expand_macro(expression: &str) -> Result<(String, Option<&'static str>), String> {
    if !expression.starts_with('@') {
        return Ok((expression.to_string(), None));
    }
    let lower = expression.to_ascii_lowercase();
    let word = lower.split_whitespace().next().unwrap_or_default();
    let (pattern, description) = match word {
        "@yearly" | "@annually" => ("0 0 1 1 *", "Once a year, at 00:00 on 1 January."),
        "@monthly" => ("0 0 1 * *", "At 00:00 on day 1 of every month."),
        "@weekly" => ("0 0 * * 0", "At 00:00 every Sunday."),
        "@daily" | "@midnight" => ("0 0 * * *", "Every day at 00:00."),
        "@hourly" => ("0 * * * *", "Every hour, at minute 0."),
        "@reboot" => {
            return Err(format!(
                "\"{expression}\" is not supported: claudecron has no start-up trigger; use \
                 {{\"type\":\"once\",\"at\":...}} for a single run, {{\"type\":\"interval\",\
                 \"every\":...}} for a repeating one, or {{\"type\":\"manual\"}} and \
                 claudecron_run_task"
            ))
        }
        "@every" => {
            return Err(format!(
                "\"{expression}\" is not cron syntax; use an interval trigger such as \
                 {{\"type\":\"interval\",\"every\":\"5m\"}}, or a step such as \"*/5 * * * *\""
            ))
        }
        _ => {
            return Err(format!(
                "\"{expression}\" is not a known macro; the macros are {MACROS}"
            ))
        }
    };
    if lower.split_whitespace().count() > 1 {
        return Err(format!(
            "\"{expression}\": a macro stands alone, with no fields after it"
        ));
    }
    Ok((pattern.to_string(), Some(description)))
}

/// Rejects an expression whose first fire time is more than 5 years after `now`.
fn check_fires_soon(cron: &Cron, expression: &str, now: DateTime<Utc>) -> Result<(), String> {
    let start = now
        .naive_utc()
        .with_nanosecond(0)
        .unwrap_or(now.naive_utc());
    let horizon = start.checked_add_signed(Duration::days(NEVER_FIRES_HORIZON_DAYS));
    match (cron.find_next_occurrence(&start, false), horizon) {
        (Ok(first), Some(limit)) if first <= limit => Ok(()),
        _ => Err(format!(
            "\"{expression}\" never fires in the next 5 years; check that the day of the month \
             exists in the chosen months (and that a year field is not in the past)"
        )),
    }
}

/// An IANA zone name → zone; the error suggests the closest name.
///
/// Exact names first, then a case-insensitive match (returning the canonical spelling).
/// `UTC` and `Etc/UTC` are zones like any other.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(
            "an empty string is not an IANA zone; use a name such as \"UTC\", \
             \"Europe/Berlin\" or \"America/New_York\""
                .to_string(),
        );
    }
    if let Ok(tz) = trimmed.parse::<Tz>() {
        return Ok(tz);
    }
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
    {
        return Ok(*tz);
    }
    match closest_zone(trimmed) {
        Some(suggestion) => Err(format!(
            "\"{trimmed}\" is not an IANA zone; did you mean \"{suggestion}\"?"
        )),
        None => Err(format!(
            "\"{trimmed}\" is not an IANA zone; use a name such as \"UTC\", \"Europe/Berlin\" \
             or \"America/New_York\""
        )),
    }
}

/// The zone name nearest to `input` by edit distance (case-insensitive), when it is close.
/// An input without `/` is also compared with the city part of each name ("Moscow").
fn closest_zone(input: &str) -> Option<&'static str> {
    let wanted = input.to_lowercase();
    let whole_name = input.contains('/');
    let limit = (wanted.chars().count() / 4).max(2);
    let mut best: Option<(usize, &'static str)> = None;
    for tz in chrono_tz::TZ_VARIANTS.iter() {
        let full = tz.name();
        let target = if whole_name {
            full
        } else {
            full.rsplit('/').next().unwrap_or(full)
        };
        let candidate = target.to_lowercase();
        let distance = crate::util::edit_distance(&wanted, &candidate);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, full));
        }
    }
    best.map(|(_, name)| name)
}
