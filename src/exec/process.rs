//! One child process run to completion in its own process group (session): stdin from a payload
//! or /dev/null, stdout and stderr on one pipe (interleaved as written), output captured head +
//! tail within a byte cap, a timeout and a cancel channel that end the whole group (SIGTERM, a
//! grace period, SIGKILL), and no member of the group left alive afterwards — nor any process
//! that left the group but still carries the run's marker (`CLAUDECRON_TASK_ID` and
//! `CLAUDECRON_RUN_ID` in its environment). It knows nothing of SQL or scheduling.

use super::sweep;
use crate::sys::{signal_group, wait_exit_no_reap, ProcessHandle};
use crossbeam_channel::{after, bounded, select, tick, Receiver};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Variables to set (on top of the inherited environment).
    pub env: Vec<(String, String)>,
    /// Variables to remove from the inherited environment.
    pub env_remove: Vec<String>,
    /// Bytes for stdin; None gives /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    pub output_max_bytes: usize,
    /// The run the process belongs to: set in its environment (after `env`, so nothing
    /// overrides it) and, when the run ends, every process still carrying it is ended too.
    pub marker: Option<RunMarker>,
}

/// The longest value an event (a hook payload field, a changed path) puts in a run's
/// environment, in bytes: a value of the kernel's per-string limit (128 KiB) or an environment
/// over its total limit would make the run fail to start (E2BIG).
pub const ENV_VALUE_MAX: usize = 16 * 1024;
/// The end of a value cut to [`ENV_VALUE_MAX`].
pub const ENV_VALUE_CUT: &str = "…[truncated]";

/// `text` made fit for a process environment: a NUL byte (which would make the start fail)
/// becomes U+FFFD, and a value over [`ENV_VALUE_MAX`] bytes is cut at a character boundary and
/// ends with [`ENV_VALUE_CUT`], the whole within the limit.
pub fn env_value(text: &str) -> String {
    let clean = if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    if clean.len() <= ENV_VALUE_MAX {
        return clean.into_owned();
    }
    let head = crate::util::head(&clean, ENV_VALUE_MAX - ENV_VALUE_CUT.len());
    format!("{head}{ENV_VALUE_CUT}")
}

pub use super::sweep::RunMarker;

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The process exited (with this code) or was killed by a signal nobody here sent.
    Exited,
    TimedOut,
    Cancelled,
    /// It could not be started.
    SpawnFailed(String),
}

#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    pub ending: Ending,
    /// The process group id (the leader's pid), once started; the tests use it to prove the
    /// group is gone.
    #[cfg_attr(not(test), allow(dead_code))]
    pub pgid: Option<i32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub output: String,
    pub output_truncated: bool,
}

/// Output kept as the first half and the last half of `max` bytes.
pub struct Capture {
    max: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
    version: u64,
}

impl Capture {
    pub fn new(max: usize) -> Capture {
        Capture {
            max: max.max(2),
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
            version: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.version += 1;
        let head_cap = self.max / 2;
        let mut rest = bytes;
        if self.head.len() < head_cap {
            let n = (head_cap - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        let tail_cap = self.max - head_cap;
        self.tail.extend(rest);
        while self.tail.len() > tail_cap {
            let extra = self.tail.len() - tail_cap;
            self.tail.drain(..extra);
            self.dropped += extra as u64;
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The text so far (lossy UTF-8) and whether anything was cut out of the middle.
    pub fn snapshot(&self) -> (String, bool) {
        let mut bytes = self.head.clone();
        if self.dropped > 0 {
            bytes.extend_from_slice(format!("\n[… {} bytes omitted …]\n", self.dropped).as_bytes());
        }
        bytes.extend(self.tail.iter());
        (
            String::from_utf8_lossy(&bytes).into_owned(),
            self.dropped > 0,
        )
    }
}

/// Run `spec` to completion. `cancel` ends it early; `on_progress` is called about once a second
/// while output changes, with the capture so far.
pub fn run(
    spec: &ProcessSpec,
    cancel: &Receiver<()>,
    on_progress: &mut dyn FnMut(&str, bool),
) -> ProcessOutcome {
    let failed = |msg: String| ProcessOutcome {
        ending: Ending::SpawnFailed(msg),
        pgid: None,
        exit_code: None,
        signal: None,
        output: String::new(),
        output_truncated: false,
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot create a pipe: {e}")),
    };
    let writer_err = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return failed(format!("cannot duplicate a pipe: {e}")),
    };
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_err))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    // The server's own secrets never reach a run: its output is shown to the model, stored,
    // put on the status page and in webhooks. (A task may still set such a variable itself.)
    for key in crate::config::SECRET_KEYS {
        command.env_remove(format!("CLAUDECRON_{}", key.to_ascii_uppercase()));
    }
    for key in &spec.env_remove {
        command.env_remove(key);
    }
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    let marker: Vec<RunMarker> = spec.marker.iter().cloned().collect();
    for (k, v) in marker.iter().flat_map(RunMarker::env) {
        command.env(k, v);
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    // Its own process group (the group id is its pid). Not `setsid` through a `pre_exec` hook:
    // without one, std starts the child with posix_spawn (vfork-like) instead of fork + exec,
    // which for a server with many threads is the difference between ~0.1 ms and ~2 ms per
    // run, serialized on the process's memory map when many runs start at once. std also
    // starts the child with no signal blocked.
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let what = match &spec.cwd {
                Some(dir) if !dir.is_dir() => {
                    format!("working directory {} does not exist", dir.display())
                }
                _ => e.to_string(),
            };
            return failed(format!("cannot start {}: {what}", spec.program));
        }
    };
    drop(command); // closes the parent's copies of the pipe's write end
    let pid = child.id() as i32;
    // The run's descendants get ids after this one (see `PidWindow`).
    let window = PidWindow::new(pid, std::time::Instant::now());

    if let (Some(mut stdin), Some(payload)) = (child.stdin.take(), spec.stdin.clone()) {
        let _ = std::thread::Builder::new()
            .name("run-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(&payload);
            });
    }

    let capture = Arc::new(Mutex::new(Capture::new(spec.output_max_bytes)));
    let (eof_tx, eof_rx) = bounded::<()>(1);
    {
        let capture = Arc::clone(&capture);
        let mut reader = reader;
        let spawned = std::thread::Builder::new()
            .name("run-output".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => capture
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                let _ = eof_tx.send(());
            });
        if spawned.is_err() {
            signal_group(pid, libc::SIGKILL);
            end_marked(&marker, Some(&window));
            let _ = child.wait();
            return failed("cannot start the output reader thread".into());
        }
    }
    let (exit_tx, exit_rx) = bounded::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("run-wait".into())
        .spawn(move || {
            wait_exit_no_reap(pid);
            let _ = exit_tx.send(());
        });
    if spawned.is_err() {
        signal_group(pid, libc::SIGKILL);
        end_marked(&marker, Some(&window));
        let _ = child.wait();
        return failed("cannot start the wait thread".into());
    }

    let deadline = after(spec.timeout);
    let ticker = tick(Duration::from_secs(1));
    let mut reported = 0u64;
    let mut ending = Ending::Exited;
    let mut report = |capture: &Arc<Mutex<Capture>>| {
        let c = capture.lock().unwrap_or_else(|p| p.into_inner());
        if c.version() != reported {
            reported = c.version();
            let (text, truncated) = c.snapshot();
            drop(c);
            on_progress(&text, truncated);
        }
    };
    let mut exited = false;
    while !exited {
        select! {
            recv(exit_rx) -> _ => exited = true,
            recv(cancel) -> _ => { ending = Ending::Cancelled; break; }
            recv(deadline) -> _ => { ending = Ending::TimedOut; break; }
            recv(ticker) -> _ => report(&capture),
        }
    }
    if !exited {
        signal_group(pid, libc::SIGTERM);
        select! {
            recv(exit_rx) -> _ => {},
            recv(after(spec.grace)) -> _ => {
                signal_group(pid, libc::SIGKILL);
                let _ = exit_rx.recv_timeout(Duration::from_secs(5));
            },
        }
    }
    // The leader has exited (a zombie keeps its group id reserved): end whatever else is in the
    // group, and every process that left the group but carries the run's marker, politely
    // first, then for sure.
    signal_group(pid, libc::SIGTERM);
    let escaped = signal_marked(&marker, Some(&window), libc::SIGTERM);
    let polite = std::time::Instant::now() + spec.grace.min(Duration::from_secs(2));
    select! {
        recv(eof_rx) -> _ => {},
        recv(after(spec.grace.min(Duration::from_secs(2)))) -> _ => {
            signal_group(pid, libc::SIGKILL);
            end_marked(&marker, Some(&window));
            let _ = eof_rx.recv_timeout(Duration::from_secs(2));
        },
    }
    for handle in &escaped {
        handle.wait_gone(polite.saturating_duration_since(std::time::Instant::now()));
    }
    // Anything that ignored SIGTERM and kept no pipe open is still ended.
    signal_group(pid, libc::SIGKILL);
    end_marked(&marker, Some(&window));
    let status = child.wait().ok();

    let (output, output_truncated) = capture.lock().unwrap_or_else(|p| p.into_inner()).snapshot();
    ProcessOutcome {
        pgid: Some(pid),
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        ending,
        output,
        output_truncated,
    }
}

/// After a crash: end every process that still belongs to one of `runs` (task id, run id),
/// found by the run's marker in its environment (see [`end_marked`]). Returns how many
/// processes were ended.
pub fn end_orphaned_runs(runs: &[(String, i64)]) -> usize {
    let markers: Vec<RunMarker> = runs
        .iter()
        .map(|(task_id, run_id)| RunMarker {
            task_id: task_id.clone(),
            run_id: *run_id,
        })
        .collect();
    end_marked(&markers, None)
}

/// Where a short run's descendants can be in the pid space: each was created after the run's
/// leader, so its id follows the leader's, up to the last id the kernel handed out — as long as
/// the id counter has not gone round past the leader, which takes far longer than
/// `PID_WINDOW_MAX` at any real fork rate. Only those ids have their environment read, instead
/// of every process on the host at every run's end.
#[derive(Debug, Clone, Copy)]
pub struct PidWindow {
    leader: i32,
    started: std::time::Instant,
}

/// Runs longer than this are swept over every process.
const PID_WINDOW_MAX: Duration = Duration::from_secs(2);

impl PidWindow {
    pub fn new(leader: i32, started: std::time::Instant) -> PidWindow {
        PidWindow { leader, started }
    }

    /// The ids to look at now: those after the leader's, or every id once the run is older
    /// than `PID_WINDOW_MAX`.
    fn span(&self) -> sweep::Span {
        if self.started.elapsed() > PID_WINDOW_MAX {
            sweep::Span::All
        } else {
            sweep::Span::After(self.leader)
        }
    }
}

/// Live processes (never this one) whose environment carries one of `runs`' markers.
#[cfg(test)]
fn marked_processes(runs: &[RunMarker]) -> Vec<i32> {
    marked_processes_in(runs, None)
}

/// `marked_processes`, looking only at the ids `window` allows (through a look at /proc shared
/// with the run ends asking at the same time: `sweep`).
fn marked_processes_in(runs: &[RunMarker], window: Option<&PidWindow>) -> Vec<i32> {
    if runs.is_empty() {
        return Vec::new();
    }
    let span = window.map_or(sweep::Span::All, PidWindow::span);
    sweep::marked(span)
        .iter()
        .filter(|(_, marker)| runs.contains(marker))
        .map(|(pid, _)| *pid)
        .collect()
}

/// A handle on process `pid` if it still carries one of `runs`' markers. The marker is read
/// after the handle is taken: a signal through the handle that succeeds proves the process was
/// alive, so the id still named it when its environment was read (an id reused between the
/// /proc scan and the handle fails the check instead of being signalled).
fn marked_handle(pid: i32, runs: &[RunMarker]) -> Option<ProcessHandle> {
    let handle = ProcessHandle::open(pid)?;
    RunMarker::of_process(pid)
        .is_some_and(|m| runs.contains(&m))
        .then_some(handle)
}

/// Send `signal` to every process carrying one of `runs`' markers (one pass, each process on
/// its own, through a handle). Returns the handles, to wait for them.
fn signal_marked(
    runs: &[RunMarker],
    window: Option<&PidWindow>,
    signal: i32,
) -> Vec<ProcessHandle> {
    marked_processes_in(runs, window)
        .into_iter()
        .filter_map(|pid| marked_handle(pid, runs))
        .filter(|h| h.signal(signal))
        .collect()
}

/// SIGKILL every process carrying one of `runs`' markers, and the whole group of each one that
/// leads its own group (a `setsid` child and what it started, marked or not), until none is
/// left (bounded: a few passes catch children forked meanwhile). Each process is stopped
/// through its handle before its group is looked up: stopped, it cannot exit by itself, so the
/// group id is still its own when the group is killed and cannot have been handed to a
/// stranger. Never this process, never this process's group, never a process of another run.
/// Returns how many processes were ended.
pub fn end_marked(runs: &[RunMarker], window: Option<&PidWindow>) -> usize {
    let my_group = crate::sys::own_process_group();
    let mut ended = std::collections::HashSet::new();
    for _pass in 0..5 {
        let mut handles = Vec::new();
        for pid in marked_processes_in(runs, window) {
            let Some(handle) = marked_handle(pid, runs) else {
                continue;
            };
            if !handle.signal(libc::SIGSTOP) {
                continue;
            }
            let pgid = crate::sys::process_group_of(pid);
            if pgid == pid && pgid != my_group {
                signal_group(pgid, libc::SIGKILL);
            }
            handle.signal(libc::SIGKILL);
            ended.insert(pid);
            handles.push(handle);
        }
        if handles.is_empty() {
            break;
        }
        // Wait for them to be gone, so the next pass sees only what they forked meanwhile.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        for handle in &handles {
            handle.wait_gone(deadline.saturating_duration_since(std::time::Instant::now()));
        }
    }
    ended.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(cmd: &str, timeout_ms: u64) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), cmd.into()],
            cwd: None,
            env: vec![("GREETING".into(), "hi".into())],
            env_remove: vec![],
            stdin: None,
            timeout: Duration::from_millis(timeout_ms),
            grace: Duration::from_millis(500),
            output_max_bytes: 1024,
            marker: None,
        }
    }

    #[test]
    fn output_is_interleaved_and_exit_code_recorded() {
        let (_tx, rx) = bounded(1);
        let out = run(
            &sh("echo out; echo err >&2; echo $GREETING; exit 3", 10_000),
            &rx,
            &mut |_, _| {},
        );
        assert_eq!(out.ending, Ending::Exited);
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.output, "out\nerr\nhi\n");
    }

    /// Live (non-zombie) processes whose process group is `pgid`, from /proc.
    pub(crate) fn live_group_members(pgid: i32) -> Vec<i32> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command (which is in parentheses): state ppid pgrp ...
            let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
                continue;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
                members.push(pid);
            }
        }
        members
    }

    /// A SIGKILLed process takes a moment to be torn down: wait (bounded) for the group to empty.
    fn group_is_gone(pgid: i32) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if live_group_members(pgid).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn timeout_ends_the_whole_group_including_grandchildren() {
        let (_tx, rx) = bounded(1);
        let out = run(&sh("sleep 300 & sleep 300", 300), &rx, &mut |_, _| {});
        assert_eq!(out.ending, Ending::TimedOut);
        assert_eq!(out.signal, Some(libc::SIGTERM));
        assert!(
            group_is_gone(out.pgid.unwrap()),
            "a process of the group survived"
        );
    }

    #[test]
    fn cancel_ends_the_group_and_leftover_background_children_are_ended_too() {
        let (tx, rx) = bounded(1);
        // Cancel once the shell has set its trap and said so.
        let out = run(
            &sh("trap '' TERM; echo ready; sleep 300", 60_000),
            &rx,
            &mut |text, _| {
                if text.contains("ready") {
                    let _ = tx.try_send(());
                }
            },
        );
        assert_eq!(out.ending, Ending::Cancelled);
        assert_eq!(
            out.signal,
            Some(libc::SIGKILL),
            "TERM was ignored, so KILL after the grace"
        );
        assert!(group_is_gone(out.pgid.unwrap()));

        let (_tx, rx) = bounded(1);
        let out = run(&sh("sleep 300 & echo started", 60_000), &rx, &mut |_, _| {});
        assert_eq!(out.ending, Ending::Exited);
        assert_eq!(out.exit_code, Some(0));
        assert!(
            group_is_gone(out.pgid.unwrap()),
            "the background sleep was left behind"
        );
    }

    #[test]
    fn env_values_lose_nul_bytes_and_are_capped_at_a_character_boundary() {
        assert_eq!(env_value("a\0b"), "a\u{FFFD}b");
        assert_eq!(env_value("plain"), "plain");
        let exact = "x".repeat(ENV_VALUE_MAX);
        assert_eq!(env_value(&exact), exact);
        let long = "é".repeat(ENV_VALUE_MAX);
        let cut = env_value(&long);
        assert!(cut.len() <= ENV_VALUE_MAX, "{}", cut.len());
        assert!(cut.ends_with(ENV_VALUE_CUT));
        assert!(cut
            .trim_end_matches(ENV_VALUE_CUT)
            .chars()
            .all(|c| c == 'é'));
    }

    #[test]
    fn markers_are_read_from_an_environment_block() {
        let m = RunMarker::in_environ(
            b"A=1\0CLAUDECRON_RUN_ID=42\0CLAUDECRON_TASK_ID=abc\0CLAUDECRON_RUN_ID=7\0",
        );
        assert_eq!(
            m,
            Some(RunMarker {
                task_id: "abc".into(),
                run_id: 42
            }),
            "the first entry of a name counts"
        );
        assert_eq!(RunMarker::in_environ(b"CLAUDECRON_TASK_ID=abc\0"), None);
        assert_eq!(
            RunMarker::in_environ(b"CLAUDECRON_TASK_ID=abc\0CLAUDECRON_RUN_ID=x\0"),
            None
        );
    }

    /// Whether any live process carries `marker`, waited for (bounded) to become false.
    fn marker_gone(marker: &RunMarker) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if marked_processes(std::slice::from_ref(marker)).is_empty() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn unique_marker() -> RunMarker {
        RunMarker {
            task_id: crate::ids::task_id().unwrap(),
            run_id: 1,
        }
    }

    #[test]
    fn processes_that_left_the_group_are_ended_with_the_run_and_others_are_not() {
        let marker = unique_marker();
        // Another run of the same task: it must survive this run's end.
        let other = RunMarker {
            run_id: 2,
            ..marker.clone()
        };
        let mut bystander = std::process::Command::new("/bin/sh")
            .args(["-c", "exec sleep 300"])
            .env("CLAUDECRON_TASK_ID", &other.task_id)
            .env("CLAUDECRON_RUN_ID", other.run_id.to_string())
            .spawn()
            .unwrap();
        let (_tx, rx) = bounded(1);
        let mut spec = sh(
            "setsid sh -c 'sleep 300' > /dev/null 2>&1 & (setsid sh -c 'sleep 300' &) ; echo started",
            60_000,
        );
        spec.marker = Some(marker.clone());
        let out = run(&spec, &rx, &mut |_, _| {});
        assert_eq!(out.ending, Ending::Exited);
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.output, "started\n");
        assert!(
            marker_gone(&marker),
            "a process that left the group survived its run"
        );
        assert_eq!(
            marked_processes(std::slice::from_ref(&other)),
            vec![bystander.id() as i32],
            "another run's process was touched"
        );
        assert_eq!(
            bystander.try_wait().unwrap(),
            None,
            "the bystander is alive"
        );
        let _ = bystander.kill();
        let _ = bystander.wait();
    }

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut c = Capture::new(10);
        c.push(b"0123456789abcdefghij");
        let (text, truncated) = c.snapshot();
        assert!(truncated);
        assert!(text.starts_with("01234"), "{text}");
        assert!(text.ends_with("fghij"), "{text}");
        assert!(text.contains("10 bytes omitted"), "{text}");
    }

    #[test]
    fn stdin_payload_reaches_the_process() {
        let (_tx, rx) = bounded(1);
        let mut spec = sh("cat", 10_000);
        spec.stdin = Some(b"{\"hook\":1}".to_vec());
        let out = run(&spec, &rx, &mut |_, _| {});
        assert_eq!(out.output, "{\"hook\":1}");
    }
}
