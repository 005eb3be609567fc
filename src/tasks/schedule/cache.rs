//! `ScheduleCache`: stored cron expressions parsed once (with their English description) and
//! shared between threads, so a list page or a task view does not parse a cron expression twice
//! per task. Keyed by the expression itself (never stale: the timezone is applied afterwards),
//! bounded (two generations of at most `capacity` entries each; a hit moves an entry to the
//! young one, a full young generation becomes the old one and the old one is dropped), so its
//! memory does not grow with the number of tasks. Pure memoisation of [`Schedule::load`].

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// Parsed schedules by expression; see the module docs.
pub struct ScheduleCache {
    capacity: usize,
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<String, Arc<Schedule>>,
    old: HashMap<String, Arc<Schedule>>,
}

impl Generations {
    fn insert(&mut self, capacity: usize, expression: String, schedule: Arc<Schedule>) {
        if self.young.len() >= capacity {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(expression, schedule);
    }
}

impl Default for ScheduleCache {
    /// Up to 2,048 schedules: about 11 MB when full (croner keeps about 5 KB per parsed
    /// pattern, mostly a byte per possible year), reached only with over a thousand distinct
    /// expressions in use, when the engine already holds about as much for them.
    fn default() -> Self {
        ScheduleCache::new(1024)
    }
}

impl ScheduleCache {
    /// A cache holding up to `2 * capacity` schedules.
    pub fn new(capacity: usize) -> ScheduleCache {
        ScheduleCache {
            capacity: capacity.max(1),
            generations: Mutex::default(),
        }
    }

    /// [`Schedule::load`] of a stored expression, parsed (and described) at most once while it
    /// stays cached.
    /// A failure is not cached (a stored expression that no longer parses is rare and logged by
    /// the caller).
    pub fn load(&self, expression: &str) -> Result<Arc<Schedule>, String> {
        {
            let mut g = self.lock();
            if let Some(hit) = g.young.get(expression) {
                return Ok(hit.clone());
            }
            if let Some(hit) = g.old.remove(expression) {
                g.insert(self.capacity, expression.to_string(), hit.clone());
                return Ok(hit);
            }
        }
        // Parsed outside the lock: other threads keep reading meanwhile.
        let parsed = Arc::new(Schedule::load(expression)?);
        self.lock()
            .insert(self.capacity, expression.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// How many schedules are cached.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.young.len() + g.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // A panic while holding the lock cannot leave the maps inconsistent (each step is one
        // map operation), so a poisoned lock is still usable.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl FireRule {
    /// [`FireRule::of`] with the cron expression taken from `cache`.
    pub fn of_cached(spec: &TaskSpec, cache: &ScheduleCache) -> Option<FireRule> {
        match &spec.trigger {
            Trigger::Cron { schedule } => Some(FireRule::Cron {
                schedule: cache.load(schedule).ok()?,
                tz: parse_timezone(&spec.timezone).ok()?,
            }),
            _ => FireRule::of(spec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_is_the_same_schedule_and_the_cache_stays_bounded() {
        let cache = ScheduleCache::new(4);
        let a = cache.load("0 9 * * 1-5").unwrap();
        let b = cache.load("0 9 * * 1-5").unwrap();
        assert!(std::sync::Arc::ptr_eq(&a.cron, &b.cron));
        assert_eq!(
            a.describe(),
            Schedule::load("0 9 * * 1-5").unwrap().describe()
        );
        for minute in 0..50 {
            cache.load(&format!("{minute} * * * *")).unwrap();
        }
        assert!(cache.len() <= 8, "{} entries", cache.len());
        assert!(cache.load("61 * * * *").is_err());
    }

    #[test]
    fn a_recently_used_schedule_survives_a_generation_change() {
        let cache = ScheduleCache::new(2);
        let kept = cache.load("@daily").unwrap();
        cache.load("1 * * * *").unwrap(); // young is full: {@daily, 1}
        cache.load("2 * * * *").unwrap(); // old = {@daily, 1}, young = {2}
        let again = cache.load("@daily").unwrap(); // moved back to young
        cache.load("3 * * * *").unwrap(); // old = {2, @daily}, young = {3}
        assert!(std::sync::Arc::ptr_eq(&kept.cron, &again.cron));
        assert!(std::sync::Arc::ptr_eq(
            &kept.cron,
            &cache.load("@daily").unwrap().cron
        ));
    }
}
