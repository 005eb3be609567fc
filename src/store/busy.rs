//! How long a connection waits for the write lock another connection holds: SQLite's busy
//! handler for every store connection (short waits first, within a budget per thread). It holds
//! no SQL and never logs.

use super::{Duration, BUSY_WAIT};

/// How long the `attempt`-th wait for a lock held by another connection lasts: 50 µs, doubling,
/// at most 10 ms. SQLite's own busy timeout sleeps 1 ms at the least, and the lock is usually
/// held for well under that (one small write transaction).
pub(super) fn busy_step(attempt: i32) -> Duration {
    Duration::from_micros(50u64 << attempt.clamp(0, 8)).min(Duration::from_millis(10))
}

thread_local! {
    /// How long this thread's writes wait for the lock in all: `BUSY_WAIT`, or less for
    /// `/health` (`Store::check_writable`).
    pub(super) static BUSY_BUDGET: std::cell::Cell<Duration> = const { std::cell::Cell::new(BUSY_WAIT) };
}

/// SQLite's busy handler: wait for the lock the `attempt`-th time, unless this thread's budget
/// is spent.
pub(super) fn busy_wait(attempt: i32) -> bool {
    let budget = BUSY_BUDGET.with(|b| b.get());
    let waited: Duration = (0..attempt.max(0)).map(busy_step).sum();
    if waited >= budget {
        return false;
    }
    std::thread::sleep(busy_step(attempt).min(budget - waited));
    true
}
