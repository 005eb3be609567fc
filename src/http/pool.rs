//! The request I/O threads as an elastic pool: a request goes to a thread that is waiting for
//! work when there is one (no thread is created per request); otherwise a new thread starts, up
//! to `max`. A thread that has had nothing to do for `idle` ends. Threads may block for long
//! (a slow client, a run waited for), so the pool grows instead of queueing behind them.

use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct IoPool {
    /// Zero capacity: a send succeeds only when a thread is waiting for work.
    tx: Sender<Job>,
    rx: Receiver<Job>,
    threads: Arc<AtomicUsize>,
    /// Threads waiting for work now.
    waiting: Arc<AtomicUsize>,
    max: usize,
    idle: Duration,
    name: &'static str,
}

/// Why a job was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `max` threads are busy.
    Full,
    /// A new thread could not be started (the system's thread limit): the text says why.
    Spawn(String),
}

impl IoPool {
    pub fn new(name: &'static str, max: usize, idle: Duration) -> IoPool {
        let (tx, rx) = bounded(0);
        IoPool {
            tx,
            rx,
            threads: Arc::new(AtomicUsize::new(0)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max,
            idle,
            name,
        }
    }

    /// Threads alive now (busy or waiting).
    #[cfg(test)]
    pub fn threads(&self) -> usize {
        self.threads.load(Ordering::Acquire)
    }

    /// Run `job` on a pool thread. On `Err` the job was dropped without running.
    pub fn execute(&self, job: Job) -> Result<(), Refused> {
        let job = match self.tx.try_send(job) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => job,
        };
        // A thread that has just finished may be a moment away from waiting: hand it the job
        // rather than start another thread.
        let job = if self.waiting.load(Ordering::Acquire) > 0 {
            match self.tx.send_timeout(job, Duration::from_millis(2)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(job)) | Err(SendTimeoutError::Disconnected(job)) => {
                    job
                }
            }
        } else {
            job
        };
        if self.threads.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.threads.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        let rx = self.rx.clone();
        let threads = Arc::clone(&self.threads);
        let waiting = Arc::clone(&self.waiting);
        let idle = self.idle;
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                // Counted until this thread ends, however it ends.
                struct Alive(Arc<AtomicUsize>);
                impl Drop for Alive {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                let _alive = Alive(threads);
                job();
                loop {
                    waiting.fetch_add(1, Ordering::AcqRel);
                    let next = rx.recv_timeout(idle);
                    waiting.fetch_sub(1, Ordering::AcqRel);
                    match next {
                        Ok(next) => next(),
                        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                            return
                        }
                    }
                }
            });
        spawned.map(|_| ()).map_err(|e| {
            self.threads.fetch_sub(1, Ordering::AcqRel);
            Refused::Spawn(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_reused_and_capped() {
        let pool = IoPool::new("test-io", 2, Duration::from_secs(5));
        let (done_tx, done_rx) = bounded::<std::thread::ThreadId>(16);
        for _ in 0..5 {
            let done = done_tx.clone();
            pool.execute(Box::new(move || {
                let _ = done.send(std::thread::current().id());
            }))
            .expect("taken");
            // Wait for it, so the thread is idle again before the next job.
            let _ = done_rx.recv_timeout(Duration::from_secs(5)).expect("ran");
            // The thread goes back to waiting right after the job; give it the moment it takes.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while pool.waiting.load(Ordering::Acquire) == 0 && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
        }
        assert_eq!(pool.threads(), 1, "one thread served every job in turn");
        // Two jobs that block: a third is refused.
        let (release_tx, release_rx) = bounded::<()>(0);
        for _ in 0..2 {
            let release = release_rx.clone();
            pool.execute(Box::new(move || {
                let _ = release.recv();
            }))
            .expect("taken");
        }
        assert_eq!(pool.execute(Box::new(|| {})), Err(Refused::Full));
        drop(release_tx);
    }
}
