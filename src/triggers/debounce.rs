//! Trailing-edge debounce per task, shared by hook triggers and file-watch triggers: every event
//! restarts the task's quiet period and is folded into its pending value; once the period has
//! passed with no event, the value is taken and the task fires once. Plain data: the caller owns
//! the thread, reads the clock and sleeps until `next_deadline`.

use std::collections::HashMap;
use std::time::Instant;

struct Pending<V> {
    deadline: Instant,
    value: V,
}

pub struct Debouncer<V> {
    waiting: HashMap<String, Pending<V>>,
}

impl<V> Default for Debouncer<V> {
    fn default() -> Self {
        Debouncer {
            waiting: HashMap::new(),
        }
    }
}

impl<V> Debouncer<V> {
    /// An event for `key`: its quiet period now ends at `deadline`, and `fold` turns the
    /// pending value (None for the first event since the last fire) into the new one.
    pub fn offer(&mut self, key: &str, deadline: Instant, fold: impl FnOnce(Option<V>) -> V) {
        let before = self.waiting.remove(key).map(|p| p.value);
        self.waiting.insert(
            key.to_string(),
            Pending {
                deadline,
                value: fold(before),
            },
        );
    }

    /// When the earliest quiet period ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|p| p.deadline).min()
    }

    /// Take every key whose quiet period has ended by `now`, with its value.
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, V)> {
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| self.waiting.remove(&k).map(|p| (k, p.value)))
            .collect()
    }

    /// Forget a key's pending value (its task was disarmed).
    pub fn remove(&mut self, key: &str) {
        self.waiting.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_once_per_quiet_period_with_the_folded_value() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut d: Debouncer<Vec<u32>> = Debouncer::default();
        let push = |n: u32| {
            move |v: Option<Vec<u32>>| {
                let mut v = v.unwrap_or_default();
                v.push(n);
                v
            }
        };
        d.offer("a", ms(100), push(1));
        d.offer("a", ms(150), push(2)); // restarts a's quiet period
        d.offer("b", ms(120), push(9));
        assert_eq!(d.next_deadline(), Some(ms(120)));
        assert!(d.take_due(ms(99)).is_empty());
        assert_eq!(d.take_due(ms(130)), [("b".to_string(), vec![9])]);
        assert!(d.take_due(ms(140)).is_empty(), "a was pushed back to 150");
        assert_eq!(d.take_due(ms(150)), [("a".to_string(), vec![1, 2])]);
        assert_eq!(d.next_deadline(), None);
        d.offer("c", ms(10), push(3));
        d.remove("c");
        assert!(d.take_due(ms(1000)).is_empty());
    }
}
