//! One child process run to completion in its own process group (session): stdin from a payload
//! or /dev/null, stdout and stderr on one pipe (interleaved as written), output captured head +
//! tail within a byte cap, a timeout and a cancel channel that end the whole group (SIGTERM, a
//! grace period, SIGKILL), and no member of the group left alive afterwards. It knows nothing of
//! tasks, SQL or scheduling.

use crate::sys::{signal_group, wait_exit_no_reap};
use crossbeam_channel::{after, bounded, select, tick, Receiver};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
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
}

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
    for key in &spec.env_remove {
        command.env_remove(key);
    }
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    crate::sys::new_session_on_spawn(&mut command);
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
    // group, politely first, then for sure.
    signal_group(pid, libc::SIGTERM);
    select! {
        recv(eof_rx) -> _ => {},
        recv(after(spec.grace.min(Duration::from_secs(2)))) -> _ => {
            signal_group(pid, libc::SIGKILL);
            let _ = eof_rx.recv_timeout(Duration::from_secs(2));
        },
    }
    // Anything that ignored SIGTERM and kept no pipe open is still ended.
    signal_group(pid, libc::SIGKILL);
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

/// After a crash: end every process that still belongs to one of `runs` (task id, run id). A
/// process is recognised by `CLAUDECRON_TASK_ID` and `CLAUDECRON_RUN_ID` in its environment
/// (inherited by everything a run starts; task ids are random, so another server's runs never
/// match), and its whole process group is killed. Returns how many processes were found.
pub fn end_orphaned_runs(runs: &[(String, i64)]) -> usize {
    if runs.is_empty() {
        return 0;
    }
    let wanted: std::collections::HashSet<(String, String)> = runs
        .iter()
        .map(|(task, run)| {
            (
                format!("CLAUDECRON_TASK_ID={task}"),
                format!("CLAUDECRON_RUN_ID={run}"),
            )
        })
        .collect();
    let mut groups = std::collections::HashSet::new();
    let mut found = 0;
    let me = std::process::id() as i32;
    let my_group = crate::sys::own_process_group();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.starts_with("CLAUDECRON_TASK_ID=") || v.starts_with("CLAUDECRON_RUN_ID="))
            .collect();
        let task = vars.iter().find(|v| v.starts_with("CLAUDECRON_TASK_ID="));
        let run = vars.iter().find(|v| v.starts_with("CLAUDECRON_RUN_ID="));
        if let (Some(task), Some(run)) = (task, run) {
            if wanted.contains(&(task.clone(), run.clone())) {
                found += 1;
                let pgid = crate::sys::process_group_of(pid);
                if pgid > 1 && pgid != my_group && groups.insert(pgid) {
                    signal_group(pgid, libc::SIGKILL);
                }
                crate::sys::signal_process(pid, libc::SIGKILL);
            }
        }
    }
    found
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
