//! Runs against the real binary where a process tries to outlive its run: a child that leaves
//! the run's process group (`setsid`, a double fork) must still be ended when the run ends —
//! by success, timeout or cancel — found by the run's `CLAUDECRON_TASK_ID` / `CLAUDECRON_RUN_ID`
//! in its environment (read here from /proc, as the server does), and nothing of another run
//! (nor the server) may be touched by that.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Live (not zombie) processes whose environment carries this run's marker.
fn marked(task: &str, run: i64) -> Vec<i32> {
    let want_task = format!("CLAUDECRON_TASK_ID={task}");
    let want_run = format!("CLAUDECRON_RUN_ID={run}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let has = |want: &str| vars.contains(&want.as_bytes());
        if has(&want_task) && has(&want_run) {
            found.push(pid);
        }
    }
    found
}

/// Wait (bounded) until no process carries the run's marker. On failure the survivors (still
/// checked to carry the marker) are killed before the test panics, so nothing leaks.
fn assert_none_marked(task: &str, run: i64, what: &str) {
    if poll(Duration::from_secs(5), || {
        marked(task, run).is_empty().then_some(())
    })
    .is_some()
    {
        return;
    }
    let left = marked(task, run);
    for pid in &left {
        // SAFETY: kill only sends a signal; each pid was just seen carrying this run's marker.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    panic!("{what}: processes {left:?} of run {run} are still alive");
}

fn bash(name: &str, command: &str, cwd: &TempDir) -> Value {
    json!({"name": name, "type": "bash", "trigger": {"type": "manual"}, "command": command,
           "cwd": cwd.path().to_string_lossy()})
}

/// Start a child that leaves the run's group and session, wait until it has written its pid,
/// then say so. `$1`-free so it can be embedded in any task command.
const ESCAPE: &str = "setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & \
                      (setsid sh -c 'echo $$ > double.pid; exec sleep 300' > /dev/null 2>&1 &); \
                      while [ ! -s escaped.pid ] || [ ! -s double.pid ]; do sleep 0.05; done; \
                      echo started";

/// The pids the escaped children wrote (they existed, so the test is not vacuous).
fn escaped_pids(dir: &TempDir) -> Vec<i32> {
    ["escaped.pid", "double.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"))
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{f}: {e}"))
        })
        .collect()
}

fn task_id(mcp: &Mcp, args: Value) -> String {
    mcp.add(args)
}

#[test]
fn a_process_that_left_the_group_is_ended_when_the_run_succeeds() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-escape-ok");
    let id = task_id(&mcp, bash("escapes", ESCAPE, &dir));
    let run = mcp.run_task(&id, 30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "started\n", "{run}");
    assert_eq!(escaped_pids(&dir).len(), 2);
    assert_none_marked(&id, id_of(&run), "after a successful run");

    // The brief's plain form too: a background `setsid` child that keeps the output pipe.
    let id = task_id(
        &mcp,
        bash("plain", "setsid sh -c 'sleep 300' & echo started", &dir),
    );
    let run = mcp.run_task(&id, 30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "started\n", "{run}");
    assert_none_marked(&id, id_of(&run), "after a successful run (plain setsid)");
}

#[test]
fn a_process_that_left_the_group_is_ended_on_timeout() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-escape-timeout");
    let mut task = bash("escapes-late", &format!("{ESCAPE}; sleep 300"), &dir);
    task["timeout_seconds"] = json!(2);
    let id = task_id(&mcp, task);
    let run = mcp.run_task(&id, 30);
    assert_eq!(run["status"], "timeout", "{run}");
    assert_eq!(escaped_pids(&dir).len(), 2);
    assert_none_marked(&id, id_of(&run), "after the timeout");
}

#[test]
fn a_process_that_left_the_group_is_ended_on_cancel() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-escape-cancel");
    let id = task_id(
        &mcp,
        bash("escapes-cancel", &format!("{ESCAPE}; sleep 300"), &dir),
    );
    let run_id = id_of(&mcp.run_task(&id, 0));
    wait_until(
        "the run to start its children",
        Duration::from_secs(15),
        || mcp.output(run_id).contains("started").then_some(()),
    );
    assert!(
        marked(&id, run_id).len() >= 3,
        "the run and its escaped children carry the marker"
    );
    let out = mcp.ok("claudecron_cancel_run", json!({"runId": run_id}));
    assert_eq!(out["run"]["status"], "cancelled", "{out}");
    assert_none_marked(&id, run_id, "after cancel_run");
}

#[test]
fn ending_a_run_leaves_other_runs_of_the_same_task_and_the_server_alone() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-escape-other");
    // Two runs of one task side by side: the first stays (with an escaped child of its own),
    // the second ends at once with its own escaped child.
    let mut task = bash(
        "twins",
        "if mkdir first.lock 2>/dev/null; then setsid sh -c 'exec sleep 300' & echo long; sleep 300; \
         else setsid sh -c 'exec sleep 300' & echo short; fi",
        &dir,
    );
    task["overlap"] = json!("allow");
    let id = task_id(&mcp, task);
    let long = id_of(&mcp.run_task(&id, 0));
    wait_until("the long run to start", Duration::from_secs(15), || {
        mcp.output(long).contains("long").then_some(())
    });
    let before = marked(&id, long);
    assert!(
        before.len() >= 3,
        "shell, sleep and escaped sleep: {before:?}"
    );
    let short = mcp.run_task(&id, 30);
    assert_eq!(short["status"], "success", "{short}");
    assert_eq!(short["output"], "short\n");
    assert_none_marked(&id, id_of(&short), "after the short run");
    let after = marked(&id, long);
    assert_eq!(
        after, before,
        "the other run's processes were touched by the short run's end"
    );
    assert_eq!(mcp.run(long)["status"], "running");
    let health = Req::get("/health").send(server.port);
    assert_eq!(health.status, 200, "the server is alive");

    let out = mcp.ok("claudecron_cancel_run", json!({"runId": long}));
    assert_eq!(out["run"]["status"], "cancelled", "{out}");
    assert_none_marked(&id, long, "after cancelling the long run");
}

#[test]
fn a_crashed_servers_escaped_processes_are_ended_at_the_next_start() {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-escape-crash");
    let id = task_id(
        &mcp,
        bash("escapes-crash", &format!("{ESCAPE}; sleep 300"), &dir),
    );
    let run_id = id_of(&mcp.run_task(&id, 0));
    wait_until(
        "the run to start its children",
        Duration::from_secs(15),
        || mcp.output(run_id).contains("started").then_some(()),
    );
    assert!(marked(&id, run_id).len() >= 3);
    drop(mcp);
    let (_log, data) = server.kill9();
    assert!(
        !marked(&id, run_id).is_empty(),
        "a kill -9 leaves the run's processes behind"
    );
    let server = Server::start_in(options, data);
    assert_none_marked(&id, run_id, "after the restart");
    let mcp = Mcp::new(&server);
    assert_eq!(mcp.run(run_id)["status"], "interrupted");
}
