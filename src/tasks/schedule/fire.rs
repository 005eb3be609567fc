//! `FireRule`: a time-based trigger (cron, interval, once) parsed once, and the one rule for
//! its next fire time. Pure: the caller gives the instant to count from.

use super::*;

/// so a cron expression is not parsed again at each step of a loop).
#[derive(Debug, Clone)]
pub enum FireRule {
    Cron {
        schedule: Arc<Schedule>,
        tz: Tz,
    },
    /// `start + k * step_secs` for whole k (not reset by a restart).
    Interval {
        start: DateTime<Utc>,
        step_secs: i64,
    },
    Once {
        at: DateTime<Utc>,
    },
}

impl FireRule {
    /// The rule of a time-based trigger; None for event and manual triggers, and for a stored
    /// definition that no longer parses (the caller logs it).
    pub fn of(spec: &TaskSpec) -> Option<FireRule> {
        match &spec.trigger {
            Trigger::Cron { schedule } => Some(FireRule::Cron {
                schedule: Arc::new(Schedule::load(schedule).ok()?),
                tz: parse_timezone(&spec.timezone).ok()?,
            }),
            Trigger::Interval {
                every_seconds,
                start_at,
                ..
            } => Some(FireRule::Interval {
                start: parse_utc(start_at)?,
                step_secs: (*every_seconds).clamp(1, i64::MAX as u64) as i64,
            }),
            Trigger::Once { at } => Some(FireRule::Once { at: parse_utc(at)? }),
            _ => None,
        }
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            FireRule::Cron { schedule, tz } => schedule
                .next_after(after, *tz)
                .map(|t| t.with_timezone(&Utc)),
            FireRule::Interval { start, step_secs } => {
                if *start > after {
                    return Some(*start);
                }
                let elapsed = (after - *start).num_seconds();
                start.checked_add_signed(Duration::seconds(
                    (elapsed / step_secs + 1).checked_mul(*step_secs)?,
                ))
            }
            FireRule::Once { at } => (*at > after).then_some(*at),
        }
    }

    /// Up to `count` fire times strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        if let FireRule::Cron { schedule, tz } = self {
            return schedule
                .upcoming(after, *tz, count)
                .into_iter()
                .map(|t| t.with_timezone(&Utc))
                .collect();
        }
        let mut times = Vec::with_capacity(count.min(64));
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor) {
                Some(t) => {
                    times.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        times
    }
}
