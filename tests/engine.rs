//! The execution engine against the real binary: real processes, real signals, the real clock.
//! Every test starts its own `claudecron serve` (tests/common), drives it only through MCP tools
//! over HTTP (`claudecron_add_task`, `claudecron_run_task`, `claudecron_get_history`,
//! `claudecron_get_run`, …) and, where the test is about process groups, looks at /proc.
//!
//! Waiting is always for a condition with a deadline (`wait_until`); the only plain waits are the
//! ones whose point is to let wall-clock time pass while the server is down.
//!
//! Run with `cargo test --test engine -- --nocapture` to see the measured fire lateness.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Timelike, Utc};
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Let wall-clock time pass until `t` (used only while the server is down, to miss fires).
fn sleep_until(t: DateTime<Utc>) {
    while let Ok(left) = (t - Utc::now()).to_std() {
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

fn ms(d: ChronoDuration) -> i64 {
    d.num_milliseconds()
}

/// The `pid=N` line a task command printed with `echo pid=$$` (its shell is the leader of the
/// run's process group, so N is also the group id).
fn pid_in(output: &str) -> Option<i32> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.trim().parse().ok())
}

/// Wait until a running run has printed its `pid=` line (live output is stored about once a
/// second); returns the process group id.
fn wait_pgid(mcp: &Mcp, run_id: i64) -> i32 {
    wait_until(
        &format!("run {run_id} to show its pid"),
        Duration::from_secs(10),
        || pid_in(&mcp.output(run_id)),
    )
}

/// Disable a task and wait (bounded) until none of its runs is active; returns every run.
fn disable_and_drain(mcp: &Mcp, task: &str) -> Vec<Value> {
    mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": task, "enabled": false}),
    );
    wait_until(
        "no run of the disabled task active",
        Duration::from_secs(10),
        || {
            let all = mcp.history(task);
            all.iter().all(is_terminal).then_some(all)
        },
    )
}

fn bash(name: &str, command: &str) -> Value {
    json!({"name": name, "type": "bash", "trigger": {"type": "manual"}, "command": command})
}

/// Print one line per run: scheduled time, actual start and the lateness between them.
fn print_lateness(label: &str, runs: &[Value]) -> Vec<i64> {
    let mut lateness = Vec::new();
    for run in runs {
        if run["scheduled_for"].is_null() {
            continue;
        }
        let head = format!(
            "[{label}] run {:>3} {:<8} {:<11} scheduled {}",
            run["id"],
            run["trigger"].as_str().unwrap_or(""),
            run["status"].as_str().unwrap_or(""),
            run["scheduled_for"].as_str().unwrap_or(""),
        );
        if run["started_at"].is_null() {
            println!(
                "{head}  (never started: {})",
                run["error"].as_str().unwrap_or("")
            );
            continue;
        }
        let late = ms(ts(&run["started_at"]) - ts(&run["scheduled_for"]));
        println!(
            "{head}  started {}  lateness {late} ms",
            run["started_at"].as_str().unwrap_or("")
        );
        lateness.push(late);
    }
    lateness
}

// ---------------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------------

#[test]
fn every_second_cron_fires_once_per_second_with_no_gap_and_no_double() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "every-second", "type": "bash", "schedule": "* * * * * *", "command": "true"
    }));
    // Six fires span five seconds.
    wait_until("six finished fires", Duration::from_secs(15), || {
        (mcp.finished_runs(&id).len() >= 6).then_some(())
    });
    let mut runs = disable_and_drain(&mcp, &id);
    runs.sort_by_key(|r| ts(&r["scheduled_for"]));
    assert!(runs.len() >= 6, "{runs:?}");

    let lateness = print_lateness("every-second", &runs);
    let mut seen = HashSet::new();
    for run in &runs {
        assert!(
            seen.insert(run["scheduled_for"].as_str().unwrap_or("").to_string()),
            "a fire time was recorded twice: {runs:#?}"
        );
        assert_eq!(run["trigger"], "cron", "{run}");
        assert_eq!(
            run["status"], "success",
            "every fire ran (no skip, no miss): {run}"
        );
    }
    for pair in runs.windows(2) {
        let gap = ts(&pair[1]["scheduled_for"]) - ts(&pair[0]["scheduled_for"]);
        assert_eq!(
            gap,
            ChronoDuration::seconds(1),
            "consecutive fires must be exactly 1 s apart: {} then {}",
            pair[0],
            pair[1]
        );
    }
    for late in &lateness {
        assert!(
            (0..1000).contains(late),
            "a fire started {late} ms after its time (sanity bound: under 1 s)"
        );
    }
    let mut sorted = lateness.clone();
    sorted.sort_unstable();
    println!(
        "[every-second] {} fires, lateness min {} ms, median {} ms, max {} ms",
        sorted.len(),
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

#[test]
fn once_task_runs_once_then_disables_itself() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let at = Utc::now().trunc_subsecs(0) + ChronoDuration::seconds(3);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = mcp.add(json!({
        "name": "one-shot", "type": "bash", "command": "echo fired",
        "trigger": {"type": "once", "at": at_text}
    }));
    assert_eq!(mcp.task(&id)["enabled"], true);
    let run = wait_until("the once fire", Duration::from_secs(10), || {
        mcp.finished_runs(&id).into_iter().next()
    });
    print_lateness("once", std::slice::from_ref(&run));
    assert_eq!(run["trigger"], "once");
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(ts(&run["scheduled_for"]), at);
    assert!(ts(&run["started_at"]) >= at, "{run}");
    wait_until("the task to disable itself", Duration::from_secs(5), || {
        (mcp.task(&id)["enabled"] == json!(false)).then_some(())
    });
    let task = mcp.task(&id);
    assert_eq!(
        task["next_runs"],
        json!([]),
        "a fired once task has no next run: {task}"
    );
    assert_eq!(mcp.history(&id).len(), 1, "exactly one run");
}

// ---------------------------------------------------------------------------------------------
// Process groups: timeout, cancel, live output, environment
// ---------------------------------------------------------------------------------------------

#[test]
fn timeout_kills_the_whole_group_including_a_grandchild() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let mut task = bash("sleeper", "echo pid=$$; sleep 300 & sleep 300");
    task["timeout_seconds"] = json!(1);
    let id = mcp.add(task);
    let started = Instant::now();
    let run = mcp.run_task(&id, 30);
    let waited = started.elapsed();
    assert_eq!(run["status"], "timeout", "{run}");
    assert!(
        run["error"].as_str().unwrap_or("").contains("timed out"),
        "{run}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "a 1 s timeout took {waited:?}"
    );
    let pgid = pid_in(run["output"].as_str().unwrap_or(""))
        .unwrap_or_else(|| panic!("no pid in the output: {run}"));
    assert_group_gone(pgid, "after the timeout");
}

#[test]
fn run_task_waits_for_the_finished_run() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("quick", "echo hello; echo oops >&2; exit 0"));
    let started = Instant::now();
    let run = mcp.run_task(&id, 20);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "returned when the run ended, not at the end of the wait ({:?})",
        started.elapsed()
    );
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["output"], "hello\noops\n");
    assert_eq!(run["trigger"], "manual");
    assert!(run.get("note").is_none(), "{run}");

    // A failing command: its exit code is there too.
    let id = mcp.add(bash("fails", "echo no; exit 7"));
    let run = mcp.run_task(&id, 20);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["exit_code"], 7);
    assert_eq!(run["output"], "no\n");
}

#[test]
fn run_task_wait_shorter_than_the_run_then_cancel_ends_the_group() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("long", "echo pid=$$; sleep 300 & sleep 300"));
    let started = Instant::now();
    let run = mcp.run_task(&id, 1);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(run["status"], "running", "{run}");
    let note = run["note"].as_str().unwrap_or("");
    assert!(
        note.contains("still running") && note.contains("claudecron_get_run"),
        "the answer says the run goes on: {run}"
    );
    let run_id = id_of(&run);
    let pgid = wait_pgid(&mcp, run_id);
    assert!(
        live_group_members(pgid).len() >= 2,
        "the shell and its background sleep are running"
    );

    let result = mcp.call("claudecron_cancel_run", json!({"runId": run_id}));
    assert_eq!(result["isError"], false, "{result}");
    let cancelled = &result["structuredContent"]["run"];
    assert_eq!(cancelled["status"], "cancelled", "{result}");
    assert_group_gone(pgid, "after cancel_run");
    assert_eq!(mcp.run(run_id)["status"], "cancelled");

    // Cancelling it again: the run is over, which is a tool error.
    let again = mcp.call("claudecron_cancel_run", json!({"runId": run_id}));
    assert_eq!(again["isError"], true, "{again}");
    let text = again["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.contains("not active"), "{again}");
    // And a run that never existed.
    let none = mcp.call("claudecron_cancel_run", json!({"runId": 999_999}));
    assert_eq!(none["isError"], true, "{none}");
}

#[test]
fn get_run_shows_live_output_while_the_run_prints() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash(
        "slow-printer",
        "for i in 1 2 3 4 5; do echo line$i; sleep 1; done",
    ));
    let run_id = id_of(&mcp.run_task(&id, 0));
    let started = Instant::now();
    // Every distinct partial output seen while the run was running, with when it was seen.
    let mut partial: Vec<(Duration, String)> = Vec::new();
    let finished = wait_until("the printer to finish", Duration::from_secs(20), || {
        let run = mcp.run(run_id);
        let output = run["output"].as_str().unwrap_or("").to_string();
        if run["status"] == "running"
            && !output.is_empty()
            && partial.last().map(|(_, o)| o) != Some(&output)
        {
            partial.push((started.elapsed(), output));
        }
        is_terminal(&run).then_some(run)
    });
    for (at, output) in &partial {
        println!(
            "[live-output] at {:>5} ms: {:?}",
            at.as_millis(),
            output.trim_end()
        );
    }
    assert_eq!(finished["status"], "success", "{finished}");
    let full = "line1\nline2\nline3\nline4\nline5\n";
    assert_eq!(finished["output"], full);
    assert!(
        partial.len() >= 3,
        "at least three different partial outputs were visible while it ran: {partial:?}"
    );
    for (_, output) in &partial {
        assert!(
            full.starts_with(output.as_str()),
            // (The last one may already be whole: the command sleeps after its last line.)
            "a partial output is a prefix of the final one: {output:?}"
        );
    }
}

#[test]
fn run_environment_cwd_env_and_interleaved_output() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let work = TempDir::new("claudecron-cwd");
    let cwd = std::fs::canonicalize(work.path()).expect("canonical cwd");
    let command = "echo \"id=$CLAUDECRON_TASK_ID\"; echo \"name=$CLAUDECRON_TASK_NAME\"; \
                   echo \"run=$CLAUDECRON_RUN_ID\"; echo \"trigger=$CLAUDECRON_TRIGGER\"; \
                   echo \"scheduled=$CLAUDECRON_SCHEDULED_AT\"; echo \"greeting=$GREETING\"; \
                   echo \"cwd=$(pwd -P)\"; \
                   echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3";
    let id = mcp.add(json!({
        "name": "env-check", "type": "bash", "trigger": {"type": "manual"},
        "command": command, "cwd": cwd.to_string_lossy(), "env": {"GREETING": "hello there"}
    }));
    let run = mcp.run_task(&id, 20);
    assert_eq!(run["status"], "success", "{run}");
    let output = run["output"].as_str().unwrap_or("");
    let value = |key: &str| -> String {
        output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= line in {output:?}"))
            .to_string()
    };
    assert_eq!(value("id"), id);
    assert_eq!(value("name"), "env-check");
    assert_eq!(value("run"), run["id"].to_string());
    assert_eq!(value("trigger"), "manual");
    let scheduled = value("scheduled");
    let scheduled_at = DateTime::parse_from_rfc3339(&scheduled)
        .unwrap_or_else(|e| panic!("CLAUDECRON_SCHEDULED_AT {scheduled:?} is not RFC 3339: {e}"));
    let started = ts(&run["started_at"]);
    assert!(
        (scheduled_at.with_timezone(&Utc) - started)
            .num_seconds()
            .abs()
            <= 2,
        "a manual run's scheduled time is about its start: {scheduled} vs {started}"
    );
    assert_eq!(value("greeting"), "hello there");
    assert_eq!(value("cwd"), cwd.to_string_lossy());
    assert!(
        output.ends_with("out1\nerr1\nout2\nerr2\nout3\n"),
        "stdout and stderr interleaved in the order written: {output:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Policies: overlap, concurrency cap, retries, after, history
// ---------------------------------------------------------------------------------------------

#[test]
fn overlap_skip_records_the_second_fire_as_skipped() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("busy", "sleep 30"));
    let first = mcp.run_task(&id, 0);
    let second = mcp.run_task(&id, 0);
    assert!(
        matches!(first["status"].as_str(), Some("queued") | Some("running")),
        "{first}"
    );
    assert_eq!(second["status"], "skipped", "{second}");
    let reason = second["error"].as_str().unwrap_or("");
    assert!(
        reason.contains("overlap") && reason.contains(&first["id"].to_string()),
        "the skip says why and which run is active: {second}"
    );
    assert_eq!(mcp.history(&id).len(), 2);
    // End the first run; the skipped one stays skipped.
    let result = mcp.call("claudecron_cancel_run", json!({"runId": id_of(&first)}));
    assert_eq!(result["structuredContent"]["run"]["status"], "cancelled");
    assert_eq!(mcp.run(id_of(&second))["status"], "skipped");
}

#[test]
fn overlap_queue_runs_the_second_fire_after_the_first() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let mut task = bash("queued", "echo run $CLAUDECRON_RUN_ID; sleep 1.5");
    task["overlap"] = json!("queue");
    let id = mcp.add(task);
    let first = mcp.run_task(&id, 0);
    let second = mcp.run_task(&id, 0);
    assert_eq!(second["status"], "queued", "{second}");
    assert_eq!(
        mcp.run(id_of(&second))["status"],
        "queued",
        "still waiting while the first runs"
    );
    let first = mcp.wait_finished(id_of(&first), Duration::from_secs(15));
    let second = mcp.wait_finished(id_of(&second), Duration::from_secs(15));
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(second["status"], "success", "{second}");
    assert!(
        ts(&second["started_at"]) >= ts(&first["finished_at"]),
        "the queued run started after the first ended: {first} / {second}"
    );
}

#[test]
fn max_concurrent_tasks_one_queues_across_tasks() {
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_CONCURRENT_TASKS", "1"));
    let mcp = Mcp::new(&server);
    let a = mcp.add(bash("first", "sleep 3"));
    let b = mcp.add(bash("second", "echo second"));
    let run_a = mcp.run_task(&a, 0);
    let run_a = wait_until("the first to run", Duration::from_secs(5), || {
        let r = mcp.run(id_of(&run_a));
        (r["status"] == "running").then_some(r)
    });
    let run_b = mcp.run_task(&b, 0);
    assert_eq!(run_b["status"], "queued", "{run_b}");
    let c = mcp.add(bash("third", "echo third"));
    let run_c = mcp.run_task(&c, 0);
    assert_eq!(run_c["status"], "queued", "{run_c}");
    assert_eq!(mcp.run(id_of(&run_a))["status"], "running");
    assert_eq!(
        mcp.run(id_of(&run_b))["status"],
        "queued",
        "the other task waits for the global slot"
    );
    // A queued run can be cancelled before it starts.
    let cancelled = mcp.call("claudecron_cancel_run", json!({"runId": id_of(&run_c)}));
    assert_eq!(
        cancelled["structuredContent"]["run"]["status"], "cancelled",
        "{cancelled}"
    );
    let done_a = mcp.wait_finished(id_of(&run_a), Duration::from_secs(15));
    let done_b = mcp.wait_finished(id_of(&run_b), Duration::from_secs(15));
    assert_eq!(done_a["status"], "success");
    assert_eq!(done_b["status"], "success");
    assert_eq!(done_b["output"], "second\n");
    assert!(
        ts(&done_b["started_at"]) >= ts(&done_a["finished_at"]),
        "B started only when A had ended: {done_a} / {done_b}"
    );
    let done_c = mcp.run(id_of(&run_c));
    assert_eq!(done_c["status"], "cancelled", "{done_c}");
    assert!(done_c["started_at"].is_null(), "it never started: {done_c}");
}

#[test]
fn retries_count_spacing_and_chain_then_after_on_the_final_outcome() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "flaky", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo attempt $CLAUDECRON_ATTEMPT; exit 1",
        "retries": {"max_attempts": 2, "backoff_seconds": 1, "doubling": true}
    }));
    // Fires once, on the final outcome only.
    let follower = mcp.add(json!({
        "name": "on-flaky-failure", "type": "bash",
        "command": "echo upstream $CLAUDECRON_AFTER_RUN_ID $CLAUDECRON_AFTER_STATUS",
        "trigger": {"type": "after", "task": "flaky", "on": "failure"}
    }));
    let first = mcp.run_task(&id, 20);
    assert_eq!(first["status"], "failed", "{first}");
    let follow = wait_until("the follower to run", Duration::from_secs(20), || {
        mcp.finished_runs(&follower).into_iter().next()
    });
    let runs: Vec<Value> = mcp
        .finished_runs(&id)
        .iter()
        .map(|r| mcp.run(id_of(r)))
        .collect();
    assert_eq!(runs.len(), 3, "one run and two retries: {runs:#?}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["attempt"], json!(i + 1), "{run}");
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["output"], format!("attempt {}\n", i + 1));
        if i == 0 {
            assert_eq!(run["trigger"], "manual");
            assert!(run["retry_of"].is_null(), "{run}");
        } else {
            assert_eq!(run["trigger"], "retry");
            assert_eq!(run["retry_of"], runs[i - 1]["id"], "{run}");
        }
    }
    let gap1 = ms(ts(&runs[1]["started_at"]) - ts(&runs[0]["finished_at"]));
    let gap2 = ms(ts(&runs[2]["started_at"]) - ts(&runs[1]["finished_at"]));
    println!("[retries] gap after attempt 1: {gap1} ms, after attempt 2: {gap2} ms");
    assert!((1000..2500).contains(&gap1), "backoff 1 s: {gap1} ms");
    assert!((2000..3500).contains(&gap2), "doubled to 2 s: {gap2} ms");

    assert_eq!(follow["status"], "success", "{follow}");
    assert_eq!(follow["trigger"], "after");
    assert_eq!(
        follow["output_excerpt"],
        format!("upstream {} failed\n", runs[2]["id"]),
        "the follower saw the final run"
    );
    assert!(ts(&follow["started_at"]) >= ts(&runs[2]["finished_at"]));
    assert_eq!(
        mcp.history(&follower).len(),
        1,
        "the follower fired once, not per attempt"
    );
}

#[test]
fn retries_of_a_cron_task_do_not_take_the_place_of_its_regular_fires() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    // Each fire fails at once and is retried 1 s later, i.e. right at the next regular fire.
    let id = mcp.add(json!({
        "name": "failing-every-second", "type": "bash", "schedule": "* * * * * *",
        "command": "exit 1", "overlap": "queue",
        "retries": {"max_attempts": 1, "backoff_seconds": 1}
    }));
    wait_until("five regular fires", Duration::from_secs(15), || {
        let n = mcp
            .finished_runs(&id)
            .iter()
            .filter(|r| r["trigger"] == "cron")
            .count();
        (n >= 5).then_some(())
    });
    let runs = disable_and_drain(&mcp, &id);
    let mut regular: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == "cron").collect();
    regular.sort_by_key(|r| ts(&r["scheduled_for"]));
    for pair in regular.windows(2) {
        assert_eq!(
            ts(&pair[1]["scheduled_for"]) - ts(&pair[0]["scheduled_for"]),
            ChronoDuration::seconds(1),
            "no regular fire is lost to a retry due at the same second: {runs:#?}"
        );
    }
    let retries = runs.iter().filter(|r| r["trigger"] == "retry").count();
    assert!(
        retries + 1 >= regular.len(),
        "each failed regular fire was retried once: {runs:#?}"
    );
    assert!(runs.iter().all(|r| r["status"] == "failed"), "{runs:#?}");
}

#[test]
fn after_chaining_follows_success_failure_and_always() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(bash("good", "true"));
    mcp.add(bash("bad", "exit 1"));
    let after = |name: &str, upstream: &str, on: &str| {
        mcp.add(json!({
            "name": name, "type": "bash", "command": "echo $CLAUDECRON_AFTER_STATUS",
            "trigger": {"type": "after", "task": upstream, "on": on}
        }))
    };
    let good_success = after("good-success", "good", "success");
    let good_failure = after("good-failure", "good", "failure");
    let bad_success = after("bad-success", "bad", "success");
    let bad_failure = after("bad-failure", "bad", "failure");
    let bad_always = after("bad-always", "bad", "always");

    assert_eq!(mcp.run_task("good", 20)["status"], "success");
    assert_eq!(mcp.run_task("bad", 20)["status"], "failed");
    // The ones that must fire: once each, successfully, as `after`.
    for (task, upstream_status) in [
        (&good_success, "success"),
        (&bad_failure, "failed"),
        (&bad_always, "failed"),
    ] {
        let run = wait_until(
            &format!("follower {task} to run"),
            Duration::from_secs(15),
            || mcp.finished_runs(task).into_iter().next(),
        );
        assert_eq!(run["trigger"], "after", "{run}");
        assert_eq!(run["status"], "success", "{run}");
        assert_eq!(run["output_excerpt"], format!("{upstream_status}\n"));
        assert_eq!(mcp.history(task).len(), 1);
    }
    // By now both upstream outcomes were handled: the others did not fire.
    assert_eq!(
        mcp.history(&good_failure).len(),
        0,
        "no failure follower on success"
    );
    assert_eq!(
        mcp.history(&bad_success).len(),
        0,
        "no success follower on failure"
    );
}

#[test]
fn history_is_pruned_to_history_keep_per_task() {
    let server = Server::start(Options::default().env("CLAUDECRON_HISTORY_KEEP_PER_TASK", "3"));
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("often", "echo $CLAUDECRON_RUN_ID"));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let run = mcp.run_task(&id, 20);
        assert_eq!(run["status"], "success", "{run}");
        ids.push(id_of(&run));
    }
    let kept = wait_until("pruning to 3 runs", Duration::from_secs(5), || {
        let h = mcp.history(&id);
        (h.len() == 3).then_some(h)
    });
    let mut kept: Vec<i64> = kept.iter().map(id_of).collect();
    kept.sort_unstable();
    assert_eq!(kept, ids[2..].to_vec(), "the newest three remain");
    let gone = mcp.call("claudecron_get_run", json!({"runId": ids[0]}));
    assert_eq!(gone["isError"], true, "the oldest run was deleted: {gone}");
}

#[test]
fn notify_webhook_receives_the_failed_run() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<(String, Vec<(String, String)>, Vec<u8>)>();
    std::thread::spawn(move || {
        // One request: head, Content-Length body, then 200.
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let (got, mut stream) = read_request(stream);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        let _ = tx.send((got.request_line, got.headers, got.body));
    });

    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "alerting", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo something broke; exit 3",
        "notify": {"url": format!("http://127.0.0.1:{port}/hook"), "on": "failure"}
    }));
    let run = mcp.run_task(&id, 20);
    assert_eq!(run["status"], "failed");
    let (request_line, headers, body) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the webhook was called");
    assert!(request_line.starts_with("POST /hook "), "{request_line}");
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    assert!(content_type.starts_with("application/json"), "{headers:?}");
    let body: Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(body["task"]["id"], id.as_str(), "{body}");
    assert_eq!(body["task"]["name"], "alerting", "{body}");
    assert_eq!(body["run"]["id"], run["id"], "{body}");
    assert_eq!(body["run"]["status"], "failed", "{body}");
    assert_eq!(body["run"]["exit_code"], 3, "{body}");
    assert!(
        body["output_excerpt"]
            .as_str()
            .unwrap_or("")
            .contains("something broke"),
        "{body}"
    );
}

#[test]
fn a_webhook_that_never_answers_does_not_hold_up_the_run() {
    // A receiver that takes the connection and the request, then never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let _ = tx.send(());
            held.push(stream);
        }
    });
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_CONCURRENT_TASKS", "1"));
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "silent-hook", "type": "bash", "trigger": {"type": "manual"},
        "command": "exit 1",
        "notify": {"url": format!("http://127.0.0.1:{port}/hook"), "on": "failure"}
    }));
    let follower = mcp.add(json!({
        "name": "after-silent-hook", "type": "bash", "command": "echo next",
        "trigger": {"type": "after", "task": "silent-hook", "on": "failure"}
    }));
    let started = Instant::now();
    let run = mcp.run_task(&id, 20);
    let waited = started.elapsed();
    assert_eq!(run["status"], "failed", "{run}");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the webhook was called");
    assert!(
        waited < Duration::from_secs(5),
        "run_task answered when the run ended, not after the webhook gave up ({waited:?})"
    );
    // The engine moved on too: the follower got the (only) slot at once.
    let next = wait_until("the follower", Duration::from_secs(5), || {
        mcp.finished_runs(&follower).into_iter().next()
    });
    assert_eq!(next["status"], "success", "{next}");
    assert!(
        ms(ts(&next["started_at"]) - ts(&run["finished_at"])) < 2000,
        "the follower started right after the upstream run: {run} / {next}"
    );
}

// ---------------------------------------------------------------------------------------------
// Restarts, crashes and signals
// ---------------------------------------------------------------------------------------------

/// Wait until the wall clock is `phase` seconds (mod `period`) past `grid`, at least 0.1 s into
/// that second and before its middle: a moment that is clearly *not* a fire time.
fn wait_for_phase(grid: DateTime<Utc>, period: i64, phase: i64, not_before: DateTime<Utc>) {
    sleep_until(not_before);
    wait_until("an off-grid moment", Duration::from_secs(10), || {
        let now = Utc::now();
        let since = now - grid;
        let in_second = now.nanosecond() % 1_000_000_000;
        (since.num_seconds().rem_euclid(period) == phase
            && (100_000_000..500_000_000).contains(&in_second))
        .then_some(())
    });
}

/// What happened around a stop / wait / restart of a time-triggered task.
struct Restarted {
    /// The first fire of the task (the grid's origin).
    first: DateTime<Utc>,
    /// When the first server had exited.
    stopped: DateTime<Utc>,
    /// Just before the second server was started.
    restarted: DateTime<Utc>,
    /// Every run, in fire-time order.
    runs: Vec<Value>,
    /// SIGTERM's exit status.
    exit_code: Option<i32>,
}

/// Add the task, let it fire, stop the server with SIGTERM, stay down for at least `down`,
/// restart on the same database at an off-grid moment, wait for the first regular fire after
/// the restart, and return every run.
fn across_a_restart(task: Value, period: i64, down: i64) -> Restarted {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let id = mcp.add(task);
    let first_run = wait_until("the first fire", Duration::from_secs(10), || {
        mcp.finished_runs(&id).into_iter().next()
    });
    let first = ts(&first_run["scheduled_for"]);
    drop(mcp);
    let (status, _log, dir) = server.terminate(Duration::from_secs(20));
    let stopped = Utc::now();
    // Down past several fire times, then back at a moment between two of them.
    wait_for_phase(
        first,
        period,
        period - 1,
        stopped + ChronoDuration::seconds(down),
    );
    let restarted = Utc::now();
    let server = Server::start_in(options, dir);
    let mcp = Mcp::new(&server);
    wait_until(
        "a regular fire after the restart",
        Duration::from_secs(15),
        || {
            mcp.finished_runs(&id)
                .iter()
                .any(|r| ts(&r["scheduled_for"]) > restarted && r["trigger"] != "catch-up")
                .then_some(())
        },
    );
    let mut runs = disable_and_drain(&mcp, &id);
    runs.sort_by_key(|r| ts(&r["scheduled_for"]));
    Restarted {
        first,
        stopped,
        restarted,
        runs,
        exit_code: status.code(),
    }
}

impl Restarted {
    /// Common checks: SIGTERM exit 0; every fire time on the grid, recorded once, none left out
    /// from the first to the last; the ones while the server was down are not regular runs; the
    /// ones after the restart are.
    fn check(&self, label: &str, regular: &str, period: i64) -> Vec<&Value> {
        print_lateness(label, &self.runs);
        println!(
            "[{label}] first fire {}, stopped {}, restarted {}",
            self.first, self.stopped, self.restarted
        );
        assert_eq!(self.exit_code, Some(0), "SIGTERM ends the server with 0");
        let mut expected = self.first;
        for run in &self.runs {
            let at = ts(&run["scheduled_for"]);
            assert_eq!(
                at, expected,
                "fire times follow the grid from the first fire, each recorded once and none left out: {:#?}",
                self.runs
            );
            expected += ChronoDuration::seconds(period);
        }
        let mut down = Vec::new();
        for run in &self.runs {
            let at = ts(&run["scheduled_for"]);
            if at > self.stopped && at < self.restarted {
                down.push(run);
            } else if at >= self.restarted {
                assert!(
                    run["status"] == "success" && run["trigger"] == regular,
                    "a fire after the restart runs as usual: {run}"
                );
            } else if at < self.stopped - ChronoDuration::seconds(1) {
                assert_eq!(run["status"], "success", "{run}");
                assert_eq!(run["trigger"], regular, "{run}");
            }
        }
        assert!(
            down.len() >= 2,
            "the server was down over at least two fire times: {:#?}",
            self.runs
        );
        down
    }
}

#[test]
fn interval_across_a_restart_keeps_its_grid_and_records_missed_slots() {
    let start_at = Utc::now().trunc_subsecs(0) + ChronoDuration::seconds(1);
    let outcome = across_a_restart(
        json!({
            "name": "every-2s", "type": "bash", "command": "true",
            "trigger": {"type": "interval", "every": "2s",
                        "start_at": start_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}
        }),
        2,
        5,
    );
    assert_eq!(outcome.first, start_at, "the first fire is start_at");
    let down = outcome.check("interval", "interval", 2);
    for run in down {
        assert_eq!(
            run["status"], "skipped",
            "catch_up = skip: a slot missed while down is recorded skipped: {run}"
        );
        assert!(
            run["error"].as_str().unwrap_or("").contains("missed"),
            "{run}"
        );
    }
}

#[test]
fn catch_up_skip_across_a_restart_records_missed_fires() {
    let outcome = across_a_restart(
        json!({
            "name": "even-seconds", "type": "bash", "command": "true",
            "schedule": "*/2 * * * * *", "catch_up": "skip"
        }),
        2,
        5,
    );
    assert_eq!(outcome.first.second() % 2, 0);
    let down = outcome.check("catch-up skip", "cron", 2);
    for run in down {
        assert_eq!(
            run["status"], "skipped",
            "a fire missed while down is recorded skipped: {run}"
        );
        let reason = run["error"].as_str().unwrap_or("");
        assert!(
            reason.contains("missed") && reason.contains("catch_up = skip"),
            "the reason is recorded: {run}"
        );
    }
}

#[test]
fn catch_up_once_across_a_restart_runs_exactly_once() {
    let outcome = across_a_restart(
        json!({
            "name": "even-seconds-once", "type": "bash", "command": "true",
            "schedule": "*/2 * * * * *", "catch_up": "once"
        }),
        2,
        5,
    );
    let down = outcome.check("catch-up once", "cron", 2);
    let catch_ups: Vec<&&Value> = down.iter().filter(|r| r["trigger"] == "catch-up").collect();
    assert_eq!(
        catch_ups.len(),
        1,
        "exactly one catch-up run for the missed period: {:#?}",
        outcome.runs
    );
    assert_eq!(catch_ups[0]["status"], "success", "{}", catch_ups[0]);
    assert!(
        ts(&catch_ups[0]["started_at"]) >= outcome.restarted,
        "the catch-up ran after the restart"
    );
    assert_eq!(
        catch_ups[0]["scheduled_for"],
        down.last()
            .map(|r| r["scheduled_for"].clone())
            .unwrap_or_default(),
        "it stands for the latest missed fire"
    );
    for run in down.iter().filter(|r| r["trigger"] != "catch-up") {
        assert_eq!(
            run["status"], "skipped",
            "the other misses are recorded: {run}"
        );
    }
    let all_catch_ups = outcome
        .runs
        .iter()
        .filter(|r| r["trigger"] == "catch-up")
        .count();
    assert_eq!(all_catch_ups, 1, "{:#?}", outcome.runs);
}

#[test]
fn kill_9_mid_run_then_restart_records_interrupted_and_keeps_firing() {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let work = TempDir::new("claudecron-kill9");
    // The first fire sleeps; every later fire finishes at once.
    let id = mcp.add(json!({
        "name": "crashy", "type": "bash", "schedule": "* * * * * *",
        "cwd": work.path().to_string_lossy(),
        "command": "if mkdir first.lock 2>/dev/null; then echo pid=$$; sleep 30; else echo later; fi"
    }));
    let running = wait_until("the long first run", Duration::from_secs(10), || {
        mcp.history(&id)
            .into_iter()
            .find(|r| r["status"] == "running")
    });
    let run_id = id_of(&running);
    let pgid = wait_pgid(&mcp, run_id);
    drop(mcp);
    let (_log, dir) = server.kill9();
    let restarted = Utc::now();
    let server = Server::start_in(options, dir);
    let mcp = Mcp::new(&server);
    let run = mcp.run(run_id);
    // The crashed server could not end its run's group; the restarted one finds it by the
    // run's environment and ends it.
    assert_group_gone(pgid, "the orphaned group after the restart");
    assert_eq!(
        run["status"], "interrupted",
        "no run stays running after the restart: {run}"
    );
    assert!(run["finished_at"].is_string(), "{run}");
    let later = wait_until("a fire after the restart", Duration::from_secs(10), || {
        mcp.finished_runs(&id)
            .into_iter()
            .find(|r| r["status"] == "success" && ts(&r["started_at"]) > restarted)
    });
    assert_eq!(later["trigger"], "cron", "{later}");
    assert_eq!(later["output_excerpt"], "later\n");
    assert!(
        mcp.history(&id)
            .iter()
            .all(|r| r["status"] != "running" || ts(&r["started_at"]) > restarted),
        "nothing from before the crash is still running"
    );
}

#[test]
fn sigterm_mid_run_ends_the_group_records_the_run_and_exits_0() {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("long-job", "echo pid=$$; sleep 300 & sleep 300"));
    let run_id = id_of(&mcp.run_task(&id, 0));
    let pgid = wait_pgid(&mcp, run_id);
    assert!(
        live_group_members(pgid).len() >= 2,
        "shell + background sleep"
    );
    drop(mcp);
    let started = Instant::now();
    let (status, log, dir) = server.terminate(Duration::from_secs(20));
    println!(
        "[sigterm] the server exited {status} after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0), "exit 0 on SIGTERM; log:\n{log}");
    assert_group_gone(pgid, "after the server's SIGTERM shutdown");

    // The run was recorded by the shutdown itself (not left for the next start to fix up).
    let server = Server::start_in(options, dir);
    let mcp = Mcp::new(&server);
    let run = mcp.run(run_id);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or("")
            .contains("process group was ended"),
        "recorded at shutdown, after ending the group: {run}"
    );
    assert!(run["duration_ms"].is_number(), "{run}");
    assert!(
        run["output"].as_str().unwrap_or("").contains("pid="),
        "{run}"
    );
}

#[test]
fn a_retry_pending_at_shutdown_runs_after_the_restart() {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "retry-later", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo attempt $CLAUDECRON_ATTEMPT; [ $CLAUDECRON_ATTEMPT -ge 2 ]",
        "retries": {"max_attempts": 1, "backoff_seconds": 3}
    }));
    let first = mcp.run_task(&id, 20);
    assert_eq!(first["status"], "failed", "{first}");
    let pending = wait_until("the pending retry", Duration::from_secs(5), || {
        mcp.history(&id)
            .into_iter()
            .find(|r| r["trigger"] == "retry")
    });
    assert_eq!(pending["status"], "queued", "{pending}");
    let due = ts(&pending["scheduled_for"]);
    drop(mcp);
    let (status, _log, dir) = server.terminate(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let server = Server::start_in(options, dir);
    let mcp = Mcp::new(&server);
    let retried = mcp.wait_finished(id_of(&pending), Duration::from_secs(15));
    let retried = mcp.run(id_of(&retried));
    assert_eq!(retried["status"], "success", "{retried}");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["retry_of"], first["id"]);
    assert_eq!(retried["output"], "attempt 2\n");
    assert!(
        ts(&retried["started_at"]) >= due,
        "not before its due time: {retried}"
    );
}

/// libfaketime, which lets the test move the server's wall clock while its monotonic clock runs
/// on (scripts/test.sh installs it from Debian's packages when absent).
fn libfaketime() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

#[test]
fn a_wall_clock_jump_counts_the_fire_times_jumped_over_as_missed() {
    // The clock-jump rule itself is table-tested in src/engine/plan/tests.rs; this test proves
    // the real binary notices a real wall-clock move. It fails (never passes silently) without
    // libfaketime, which scripts/test.sh installs from Debian's packages.
    let lib = libfaketime().expect(
        "libfaketime is not installed: apt-get install libfaketime (scripts/test.sh does it as root)",
    );
    let clock = TempDir::new("claudecron-faketime");
    let offset_file = clock.path().join("offset");
    std::fs::write(&offset_file, "+0s\n").unwrap();
    let server = Server::start(
        Options::default()
            .env("LD_PRELOAD", lib)
            .env("FAKETIME_TIMESTAMP_FILE", offset_file.to_str().unwrap())
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    );
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "ticking", "type": "bash", "schedule": "* * * * * *", "command": "true"
    }));
    wait_until("two fires on time", Duration::from_secs(10), || {
        (mcp.finished_runs(&id).len() >= 2).then_some(())
    });
    // The host "sleeps" 30 s: its wall clock steps forward, the monotonic clock does not.
    std::fs::write(&offset_file, "+30s\n").unwrap();
    let skipped = wait_until(
        "the jumped-over fires as skipped",
        Duration::from_secs(10),
        || {
            let skipped: Vec<Value> = mcp
                .history(&id)
                .into_iter()
                .filter(|r| r["status"] == "skipped")
                .collect();
            (skipped.len() >= 20).then_some(skipped)
        },
    );
    for run in &skipped {
        let error = run["error"].as_str().unwrap_or("");
        assert!(
            error.contains("wall clock jumped"),
            "the reason names the jump: {run}"
        );
    }
    // ... and it goes on firing on time after the jump.
    let after_jump = skipped
        .iter()
        .map(|r| ts(&r["scheduled_for"]))
        .max()
        .unwrap();
    wait_until("a fire after the jump", Duration::from_secs(10), || {
        mcp.finished_runs(&id)
            .into_iter()
            .find(|r| r["status"] == "success" && ts(&r["scheduled_for"]) > after_jump)
    });
    assert!(
        server.stderr().contains("the wall clock jumped forward"),
        "the jump is logged"
    );
}

/// The server's secrets (its bearer tokens and the other secret settings, given as
/// `CLAUDECRON_*` variables) are not in a run's environment: run output reaches the model, the
/// store, the status page and webhooks.
#[test]
fn a_run_never_sees_the_servers_secrets_in_its_environment() {
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_METRICS_TOKEN", "metrics-secret-0123456789")
            .env("CLAUDECRON_CALENDAR_TOKEN", "calendar-secret-0123456789"),
    );
    let mcp = Mcp::new(&server);
    let id = mcp.add(bash("env-dump", "env"));
    let run = mcp.run_task(&id, 20);
    assert_eq!(run["status"], "success", "{run}");
    let output = mcp.call("claudecron_get_run", json!({"runId": id_of(&run)}))["structuredContent"]
        ["run"]["output"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        output.contains("CLAUDECRON_RUN_ID="),
        "the run's own variables are there: {output}"
    );
    for secret in server
        .tokens
        .iter()
        .map(String::as_str)
        .chain(["metrics-secret-0123456789", "calendar-secret-0123456789"])
    {
        assert!(
            !output.contains(secret),
            "a secret reached the run's environment"
        );
    }
    for name in [
        "CLAUDECRON_AUTH_TOKENS",
        "CLAUDECRON_METRICS_TOKEN",
        "CLAUDECRON_CALENDAR_TOKEN",
    ] {
        assert!(
            !output.contains(name),
            "{name} reached the run's environment"
        );
    }
}
