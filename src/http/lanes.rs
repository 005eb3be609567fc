//! `Lanes`: at most `lanes` requests are routed at once, each with a resource lent from a small
//! pool that opens them on first need and keeps them (the server lends `Catalog`s: one SQLite
//! connection each). The thread
//! that read a request routes it itself, so a request crosses no thread on its way; a request
//! that finds every lane busy waits its turn, and one that finds `max_waiting` already waiting
//! is refused (the caller answers 503). A resource is used by one thread at a time. It never
//! reads or writes a socket.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Opens a resource; None when it cannot be had now (the opener logs why; the next request
/// tries again).
pub type Opener<C> = Box<dyn Fn() -> Option<C> + Send + Sync>;

pub struct Lanes<C> {
    open: Opener<C>,
    lanes: usize,
    max_waiting: usize,
    state: Mutex<State<C>>,
    freed: Condvar,
}

struct State<C> {
    /// Resources not lent out.
    idle: Vec<C>,
    /// Lanes in use (each with its catalog, or with none when it could not be opened).
    busy: usize,
    waiting: usize,
}

/// Every lane busy and `max_waiting` requests already waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl<C> Lanes<C> {
    pub fn new(open: Opener<C>, lanes: usize, max_waiting: usize) -> Lanes<C> {
        Lanes {
            open,
            lanes: lanes.max(1),
            max_waiting,
            state: Mutex::new(State {
                idle: Vec::new(),
                busy: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Run `f` in a lane with a resource (None when it could not be opened).
    pub fn with<R>(&self, f: impl FnOnce(Option<&C>) -> R) -> Result<R, Busy> {
        let lent = Lent {
            lanes: self,
            resource: self.take()?,
        };
        Ok(f(lent.resource.as_ref()))
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // Each change of the state is a single step: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Result<Option<C>, Busy> {
        let mut state = self.lock();
        loop {
            if let Some(resource) = state.idle.pop() {
                state.busy += 1;
                return Ok(Some(resource));
            }
            if state.busy < self.lanes {
                state.busy += 1;
                drop(state);
                // Opened outside the lock: other lanes are lent and given back meanwhile.
                return Ok((self.open)());
            }
            if state.waiting >= self.max_waiting {
                return Err(Busy);
            }
            state.waiting += 1;
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
            state.waiting -= 1;
        }
    }
}

/// A lane in use; given back when dropped, also when the routing panicked.
struct Lent<'a, C> {
    lanes: &'a Lanes<C>,
    resource: Option<C>,
}

impl<C> Drop for Lent<'_, C> {
    fn drop(&mut self) {
        let mut state = self.lanes.lock();
        state.busy -= 1;
        if let Some(resource) = self.resource.take() {
            state.idle.push(resource);
        }
        // A notify is a system call even with nobody waiting (std's futex condvar): only when
        // a request waits for a lane.
        let waiting = state.waiting > 0;
        drop(state);
        if waiting {
            self.lanes.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn counting(lanes: usize, max_waiting: usize) -> (Arc<Lanes<usize>>, Arc<AtomicUsize>) {
        let opened = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&opened);
        let open: Opener<usize> = Box::new(move || Some(count.fetch_add(1, Ordering::SeqCst)));
        (Arc::new(Lanes::new(open, lanes, max_waiting)), opened)
    }

    #[test]
    fn a_resource_is_opened_once_and_lent_again() {
        let (lanes, opened) = counting(2, 4);
        for _ in 0..5 {
            assert_eq!(lanes.with(|r| r.copied()), Ok(Some(0)));
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn beyond_the_lanes_requests_wait_and_beyond_the_queue_they_are_refused() {
        let (lanes, opened) = counting(1, 1);
        let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let holder = {
            let lanes = Arc::clone(&lanes);
            std::thread::spawn(move || {
                lanes.with(|_| {
                    let _ = entered_tx.send(());
                    let _ = release_rx.recv();
                })
            })
        };
        entered_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the holder is in its lane");
        let waiter = {
            let lanes = Arc::clone(&lanes);
            std::thread::spawn(move || lanes.with(|r| r.copied()))
        };
        // The waiter is counted before it sleeps: wait for that, then a third is refused.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lanes.lock().waiting == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiter never waited"
            );
            std::thread::yield_now();
        }
        assert_eq!(lanes.with(|_| ()), Err(Busy));
        release_tx.send(()).expect("release");
        assert_eq!(holder.join().expect("holder"), Ok(()));
        assert_eq!(
            waiter.join().expect("waiter"),
            Ok(Some(0)),
            "the same resource, lent again"
        );
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panic_in_a_lane_gives_the_lane_back() {
        let (lanes, _) = counting(1, 0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lanes.with(|_| panic!("boom")).ok();
        }));
        assert!(caught.is_err());
        assert_eq!(lanes.with(|r| r.copied()), Ok(Some(0)));
    }

    #[test]
    fn a_failed_open_is_tried_again_by_the_next_request() {
        let tries = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&tries);
        let open: Opener<&'static str> =
            Box::new(move || (count.fetch_add(1, Ordering::SeqCst) > 0).then_some("db"));
        let lanes = Lanes::new(open, 1, 0);
        assert_eq!(lanes.with(|r| r.copied()), Ok(None));
        assert_eq!(lanes.with(|r| r.copied()), Ok(Some("db")));
        assert_eq!(lanes.with(|r| r.copied()), Ok(Some("db")));
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }
}
