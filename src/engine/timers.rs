//! The engine's armed timers: at most one per task (its next fire time), one per pending
//! retry and one per task with `expect` (its dead-man deadline), ordered by time. Plain data
//! owned by the engine thread; no clock, no I/O.

use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// The next fire time of a time-based task (its id, shared with the engine's armed map).
    Task(Arc<str>),
    /// A queued retry run that becomes due.
    Retry(i64),
    /// Try again to record the ends of runs the store refused (disk full, read-only).
    Unrecorded,
    /// The dead-man deadline of a task with `expect`: a success is due by then.
    Deadline(Arc<str>),
}

#[derive(Debug, Default)]
pub struct Timers {
    by_time: BTreeSet<(DateTime<Utc>, TimerKey)>,
    by_key: HashMap<TimerKey, DateTime<Utc>>,
}

impl Timers {
    /// Arm `key` for `at`, replacing its earlier time.
    pub fn set(&mut self, key: TimerKey, at: DateTime<Utc>) {
        self.remove(&key);
        self.by_time.insert((at, key.clone()));
        self.by_key.insert(key, at);
    }

    pub fn remove(&mut self, key: &TimerKey) {
        if let Some(at) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    /// When `key` is armed for, if it is.
    pub fn at(&self, key: &TimerKey) -> Option<DateTime<Utc>> {
        self.by_key.get(key).copied()
    }

    pub fn contains(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// The earliest armed time.
    pub fn first(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Take the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, TimerKey)> {
        let (at, key) = self.by_time.first()?.clone();
        if at > now {
            return None;
        }
        self.remove(&key);
        Some((at, key))
    }

    /// The earliest dead-man deadline (what is dealt with while everything is paused).
    pub fn first_deadline(&self) -> Option<DateTime<Utc>> {
        self.by_time
            .iter()
            .find(|(_, k)| matches!(k, TimerKey::Deadline(_)))
            .map(|(at, _)| *at)
    }

    /// Take the earliest dead-man deadline if it is due at `now`.
    pub fn pop_due_deadline(&mut self, now: DateTime<Utc>) -> Option<Arc<str>> {
        let (_, key) = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .find(|(_, k)| matches!(k, TimerKey::Deadline(_)))?
            .clone();
        self.remove(&key);
        match key {
            TimerKey::Deadline(id) => Some(id),
            _ => None,
        }
    }

    /// Pending retry runs.
    pub fn retries(&self) -> Vec<i64> {
        self.by_key
            .keys()
            .filter_map(|k| match k {
                TimerKey::Retry(id) => Some(*id),
                TimerKey::Task(_) | TimerKey::Unrecorded | TimerKey::Deadline(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_per_key_popped_in_time_order() {
        let t = |s: &str| crate::util::parse_utc(s).unwrap();
        let mut timers = Timers::default();
        timers.set(TimerKey::Task("a".into()), t("2026-01-01T00:00:10Z"));
        timers.set(TimerKey::Retry(4), t("2026-01-01T00:00:05Z"));
        timers.set(TimerKey::Task("a".into()), t("2026-01-01T00:00:01Z"));
        assert_eq!(timers.first(), Some(t("2026-01-01T00:00:01Z")));
        assert_eq!(timers.pop_due(t("2026-01-01T00:00:00Z")), None);
        assert_eq!(
            timers.pop_due(t("2026-01-01T00:00:06Z")),
            Some((t("2026-01-01T00:00:01Z"), TimerKey::Task("a".into())))
        );
        assert_eq!(timers.retries(), [4]);
        assert_eq!(
            timers.pop_due(t("2026-01-01T00:00:06Z")).map(|(_, k)| k),
            Some(TimerKey::Retry(4))
        );
        assert_eq!(timers.first(), None);
        // While paused only deadlines are dealt with: found behind earlier fire timers.
        timers.set(TimerKey::Task("a".into()), t("2026-01-01T00:00:01Z"));
        timers.set(TimerKey::Deadline("b".into()), t("2026-01-01T00:00:03Z"));
        timers.set(TimerKey::Deadline("c".into()), t("2026-01-01T00:00:09Z"));
        assert_eq!(timers.first_deadline(), Some(t("2026-01-01T00:00:03Z")));
        assert_eq!(timers.pop_due_deadline(t("2026-01-01T00:00:02Z")), None);
        assert_eq!(
            timers.pop_due_deadline(t("2026-01-01T00:00:05Z")),
            Some("b".into())
        );
        assert_eq!(timers.pop_due_deadline(t("2026-01-01T00:00:05Z")), None);
        assert_eq!(timers.first(), Some(t("2026-01-01T00:00:01Z")));
    }
}
