//! Connections lent one at a time and kept for the next borrower, instead of one opened per use
//! (an open reads and parses the whole schema: hundreds of microseconds): each run thread borrows
//! one for its lifetime; the OAuth server one per token check. One connection is used by one thread at a time;
//! the pool never shares one. It opens and keeps; what a connection is used for is the caller's.

use super::{Result, Store};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Idle connections to one database file, at most `keep` of them.
pub struct StorePool {
    path: PathBuf,
    keep: usize,
    idle: Mutex<Vec<Store>>,
}

impl std::fmt::Debug for StorePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePool")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl StorePool {
    pub fn new(path: &Path, keep: usize) -> StorePool {
        StorePool {
            path: path.to_path_buf(),
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, or a new one.
    pub fn take(&self) -> Result<Lent<'_>> {
        let idle = self.lock().pop();
        let store = match idle {
            Some(store) => store,
            None => Store::open(&self.path)?,
        };
        Ok(Lent {
            pool: self,
            store: Some(store),
        })
    }

    /// How many connections are idle.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Store>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A borrowed connection; back to the pool when dropped — unless its database file was deleted
/// or replaced meanwhile (then it is closed, and the next run opens the file that is there now,
/// as a run opening its own connection would).
pub struct Lent<'a> {
    pool: &'a StorePool,
    store: Option<Store>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        // Always Some until drop.
        self.store.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        if store.verify_file().is_err() {
            return;
        }
        let mut idle = self.pool.lock();
        if idle.len() < self.pool.keep {
            idle.push(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_kept_for_the_next_borrower_and_dropped_when_its_file_was_replaced() {
        let dir = crate::util::TestDir::new("pool");
        let db = dir.path().join("tasks.db");
        let pool = StorePool::new(&db, 2);
        {
            let (a, b, c) = (
                pool.take().unwrap(),
                pool.take().unwrap(),
                pool.take().unwrap(),
            );
            assert_eq!(a.count_tasks().unwrap(), (0, 0));
            drop((a, b, c));
        }
        assert_eq!(pool.idle(), 2, "at most `keep` stay idle");
        let lent = pool.take().unwrap();
        assert_eq!(pool.idle(), 1, "an idle one is lent, not a new one opened");
        // The file is replaced while the connection is lent: it is not given back.
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("tasks.db{ext}")));
        }
        drop(lent);
        assert_eq!(pool.idle(), 1);
    }
}
