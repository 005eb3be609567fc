//! One look through /proc serves every run end that asks at about the same time. Finding a
//! run's escaped processes means reading the environment of each process that may be one of
//! them; with many short runs ending together each end read mostly the same processes (those
//! of the other runs), and those reads were most of the server's CPU per run. A look that
//! *starts after* a request is as good as the request's own look made then, so a request
//! waits for the next look to start, and that look covers the windows of every request
//! waiting for it. It owns the run marker (the environment variables that tag a run's
//! processes) and reads and reports; signalling is the caller's (`process`).

use std::sync::{Arc, Condvar, Mutex};

/// What marks every process of one run: `CLAUDECRON_TASK_ID` and `CLAUDECRON_RUN_ID`, inherited
/// by everything the run starts, including processes that leave its process group (`setsid`,
/// double forks). Task ids are random (60 bits) and run ids unique per database, so no two runs
/// share a marker. A process that clears or rewrites its environment loses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunMarker {
    pub task_id: String,
    pub run_id: i64,
}

impl RunMarker {
    /// The variables, as set in the run's environment.
    pub fn env(&self) -> [(String, String); 2] {
        [
            ("CLAUDECRON_TASK_ID".into(), self.task_id.clone()),
            ("CLAUDECRON_RUN_ID".into(), self.run_id.to_string()),
        ]
    }

    /// The marker in a process environment (NUL-separated `KEY=value` entries); the first entry
    /// of a name counts, as for getenv.
    pub(crate) fn in_environ(environ: &[u8]) -> Option<RunMarker> {
        let (mut task, mut run) = (None, None);
        for var in environ.split(|b| *b == 0) {
            if let Some(v) = var.strip_prefix(b"CLAUDECRON_TASK_ID=") {
                task = task.or(Some(v));
            } else if let Some(v) = var.strip_prefix(b"CLAUDECRON_RUN_ID=") {
                run = run.or(Some(v));
            }
        }
        Some(RunMarker {
            task_id: String::from_utf8(task?.to_vec()).ok()?,
            run_id: std::str::from_utf8(run?).ok()?.parse().ok()?,
        })
    }

    /// The marker of process `pid` (None for a zombie, a process we may not read, or one
    /// without a marker).
    pub(crate) fn of_process(pid: i32) -> Option<RunMarker> {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        RunMarker::in_environ(&environ)
    }
}

/// Which process ids a request needs looked at: the ids after this run leader's (see
/// `process::PidWindow`), or every id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    After(i32),
    All,
}

/// What a look found: each live process (not this one) that carries a run marker.
pub type Found = Arc<Vec<(i32, RunMarker)>>;

struct State {
    /// Looks started so far; look `n` covers the requests that were waiting when it started.
    started: u64,
    running: bool,
    /// The requests waiting for the next look.
    pending: Vec<Span>,
    /// Finished looks not yet taken by every request they covered: (look, found, takers left).
    done: Vec<(u64, Found, usize)>,
}

/// Looks shared by the requests that wait for them, made with `look`.
struct Looks {
    state: Mutex<State>,
    finished: Condvar,
    look: fn(&[Span]) -> Vec<(i32, RunMarker)>,
}

/// The server's looks at /proc.
static LOOKS: Looks = Looks::new(look);

/// The marked processes in `span`, as found by a look that started after this call began.
pub fn marked(span: Span) -> Found {
    LOOKS.marked(span)
}

impl Looks {
    const fn new(look: fn(&[Span]) -> Vec<(i32, RunMarker)>) -> Looks {
        Looks {
            state: Mutex::new(State {
                started: 0,
                running: false,
                pending: Vec::new(),
                done: Vec::new(),
            }),
            finished: Condvar::new(),
            look,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn marked(&self, span: Span) -> Found {
        let mut state = self.lock();
        state.pending.push(span);
        let mine = state.started + 1;
        loop {
            if let Some(i) = state.done.iter().position(|(n, _, _)| *n == mine) {
                let found = Arc::clone(&state.done[i].1);
                state.done[i].2 -= 1;
                if state.done[i].2 == 0 {
                    state.done.swap_remove(i);
                }
                return found;
            }
            if !state.running {
                // This thread makes look `mine`: it covers every request registered before it
                // starts, this one included.
                state.running = true;
                state.started = mine;
                let spans = std::mem::take(&mut state.pending);
                drop(state);
                let found = Arc::new((self.look)(&spans));
                state = self.lock();
                state.running = false;
                if spans.len() > 1 {
                    state.done.push((mine, Arc::clone(&found), spans.len() - 1));
                }
                drop(state);
                self.finished.notify_all();
                return found;
            }
            state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One look: the union of the spans, each process in it read once.
fn look(spans: &[Span]) -> Vec<(i32, RunMarker)> {
    let range = union(spans, last_pid);
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid > 1 && pid != me && in_range(pid, range) {
            if let Some(marker) = RunMarker::of_process(pid) {
                found.push((pid, marker));
            }
        }
    }
    found
}

/// The last process id the kernel handed out (None when it cannot be read).
fn last_pid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The ids to look at for all `spans`: `(leader, last]` round the circle for the widest
/// leader, or None for every id. Each span is an arc ending at the same `last`, so their union
/// is the longest: a leader past `last` (the ids went round since it started) before any
/// other, then the lowest.
fn union(spans: &[Span], last: fn() -> Option<i32>) -> Option<(i32, i32)> {
    let mut leaders = Vec::with_capacity(spans.len());
    for span in spans {
        match span {
            Span::All => return None,
            Span::After(leader) => leaders.push(*leader),
        }
    }
    let last = last()?;
    let widest = leaders
        .iter()
        .copied()
        .filter(|l| *l > last)
        .min()
        .or_else(|| leaders.iter().copied().min())?;
    Some((widest, last))
}

fn in_range(pid: i32, range: Option<(i32, i32)>) -> bool {
    match range {
        None => true,
        Some((leader, last)) if leader <= last => pid > leader && pid <= last,
        Some((leader, last)) => pid > leader || pid <= last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_union_of_spans_is_the_widest_arc() {
        fn last() -> Option<i32> {
            Some(500)
        }
        let spans = [Span::After(300), Span::After(200)];
        assert_eq!(union(&spans, last), Some((200, 500)));
        // A leader past `last`: the ids went round since it started; its arc is the widest.
        let spans = [Span::After(200), Span::After(900), Span::After(700)];
        assert_eq!(union(&spans, last), Some((700, 500)));
        assert_eq!(union(&[Span::After(200), Span::All], last), None);
        let range = union(&[Span::After(700)], last);
        assert!(in_range(800, range) && in_range(5, range) && !in_range(600, range));
    }

    const REQUESTS: i32 = 24;
    static LOOKS_MADE: AtomicUsize = AtomicUsize::new(0);
    static TEST_LOOKS: Looks = Looks::new(held_look);

    /// The first look is held until every other request waits; each look reports one marker
    /// per span it covered (the span's leader as the pid).
    fn held_look(spans: &[Span]) -> Vec<(i32, RunMarker)> {
        if LOOKS_MADE.fetch_add(1, Ordering::SeqCst) == 0 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while TEST_LOOKS.lock().pending.len() < (REQUESTS - 1) as usize
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let marker = |n: i32| RunMarker {
            task_id: "t".into(),
            run_id: i64::from(n),
        };
        spans
            .iter()
            .map(|s| match s {
                Span::After(l) => (*l, marker(*l)),
                Span::All => (0, marker(0)),
            })
            .collect()
    }

    #[test]
    fn requests_waiting_together_share_one_look_that_covers_each() {
        let threads: Vec<_> = (1..=REQUESTS)
            .map(|i| std::thread::spawn(move || (i, TEST_LOOKS.marked(Span::After(i)))))
            .collect();
        for t in threads {
            let (i, found) = t.join().unwrap();
            assert!(
                found.iter().any(|(pid, _)| *pid == i),
                "request {i} was answered by a look that did not cover it"
            );
        }
        // The first request's look, then one look for all who waited meanwhile.
        assert_eq!(LOOKS_MADE.load(Ordering::SeqCst), 2);
        assert!(
            TEST_LOOKS.lock().done.is_empty(),
            "each look was taken by all it covered"
        );
    }
}
