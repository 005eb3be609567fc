//! The safety switches against the real binary: `pause-all` / `resume-all` (CLI and MCP tools)
//! with an every-second task, a hook task and manual runs; the pause surviving a restart;
//! auto-pause after N failures in a row (the task's own `pause_after_failures` and the
//! config's default).
//! Waiting is for a condition with a deadline; the one plain wait is the pause window itself,
//! whose point is to let wall-clock time pass while paused.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Generous: the test machine is small and shared.
const WAIT: Duration = Duration::from_secs(30);

/// `claudecron ARGS --url … --token …` against `server`, with none of the developer's settings.
fn cli(server: &Server, args: &[&str]) -> Output {
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args)
        .args(["--url", &url, "--token", server.token()]);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAUDECRON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "HOME",
        std::env::temp_dir().join("claudecron-safety-nohome"),
    )
    .stdin(Stdio::null())
    .output()
    .expect("run claudecron")
}

fn ok_cli(server: &Server, args: &[&str]) -> String {
    succeeded(&cli(server, args), &format!("claudecron {args:?}"))
}

fn health(server: &Server) -> Value {
    Req::get("/health").send(server.port).json()
}

fn post_hook(server: &Server, body: &Value) -> Value {
    Req::post("/hooks")
        .bearer(server.token())
        .json(body)
        .send(server.port)
        .json()
}

/// A manual run refused while paused: the tool error names the pause, its reason and the way out.
fn assert_manual_run_refused(mcp: &Mcp, task: &str, reason: &str) {
    let refused = mcp.call("claudecron_run_task", json!({"taskId": task}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("paused") && text.contains(reason) && text.contains("resume"),
        "the refusal names the pause and how it ends: {text}"
    );
}

#[test]
fn pause_all_stops_every_fire_until_resume_and_keeps_the_flags() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let ticker = mcp.add(json!({
        "name": "ticker", "type": "bash", "schedule": "* * * * * *", "command": "true"
    }));
    let hooked = mcp.add(json!({
        "name": "hooked", "type": "bash", "command": "cat",
        "trigger": {"type": "hook", "event": "PostToolUse"}
    }));
    let manual = mcp.add(json!({
        "name": "by-hand", "type": "bash", "command": "echo hi",
        "trigger": {"type": "manual"}
    }));
    wait_until("two ticks before the pause", WAIT, || {
        (mcp.finished_runs(&ticker).len() >= 2).then_some(())
    });
    assert_eq!(health(&server)["paused"], json!(false));

    // Pause from the host's CLI.
    let said = ok_cli(&server, &["pause-all", "disk", "swap"]);
    assert!(
        said.contains("paused since") && said.contains("disk swap"),
        "{said}"
    );
    let again: Value =
        serde_json::from_str(&ok_cli(&server, &["pause-all", "again", "--json"])).unwrap();
    assert_eq!(again["already_paused"], json!(true), "{again}");
    assert_eq!(
        again["reason"], "disk swap",
        "a second pause keeps the first"
    );
    let since = ts(&again["since"]);

    let shown = health(&server)["paused"].clone();
    assert_eq!(
        shown["reason"], "disk swap",
        "/health shows the pause: {shown}"
    );
    let task = mcp.task(&ticker);
    assert_eq!(task["paused_all"]["reason"], "disk swap", "{task}");
    assert_eq!(task["enabled"], json!(true), "the task's flag is untouched");

    // Manual runs refused, hook events record nothing.
    assert_manual_run_refused(&mcp, &manual, "disk swap");
    let answer = post_hook(
        &server,
        &json!({"hook_event_name": "PostToolUse", "tool_name": "Write", "session_id": "s"}),
    );
    // The pause window: wall-clock time passing is the point here.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        mcp.history(&hooked).is_empty(),
        "hook while paused: {answer}"
    );
    assert!(mcp.history(&manual).is_empty());
    let in_window = |runs: &[Value], until| {
        runs.iter()
            .filter(|r| !r["started_at"].is_null())
            .filter(|r| ts(&r["started_at"]) >= since && ts(&r["started_at"]) <= until)
            .count()
    };
    let now = chrono::Utc::now();
    assert_eq!(
        in_window(&mcp.runs(&ticker), now),
        0,
        "no run started while paused: {:?}",
        mcp.runs(&ticker)
    );

    // Resume over MCP: the ticker runs again, the missed seconds are recorded as skipped for
    // the pause (catch_up = skip), and the flags never changed.
    let resumed = mcp.ok("claudecron_resume_all", json!({}));
    assert_eq!(resumed["was_paused"], json!(true), "{resumed}");
    let resumed_at = ts(&resumed["resumed_at"]);
    assert_eq!(health(&server)["paused"], json!(false));
    wait_until("a tick after the resume", WAIT, || {
        mcp.finished_runs(&ticker)
            .iter()
            .any(|r| r["status"] == "success" && ts(&r["started_at"]) > resumed_at)
            .then_some(())
    });
    let runs = mcp.runs(&ticker);
    assert_eq!(in_window(&runs, resumed_at), 0, "{runs:?}");
    let missed: Vec<&Value> = runs
        .iter()
        .filter(|r| r["status"] == "skipped")
        .filter(|r| r["error"].as_str().unwrap_or("").contains("paused"))
        .collect();
    assert!(
        missed.len() >= 4,
        "the seconds missed while paused are recorded as skipped: {runs:?}"
    );
    for r in &missed {
        let at = ts(&r["scheduled_for"]);
        assert!(at >= since && at <= resumed_at, "{r}");
    }
    assert_eq!(mcp.task(&ticker)["enabled"], json!(true));
    assert!(mcp.task(&ticker).get("paused_all").is_none());
    let run = mcp.run_task(&manual, 30);
    assert_eq!(run["status"], "success", "manual runs work again: {run}");
    post_hook(
        &server,
        &json!({"hook_event_name": "PostToolUse", "tool_name": "Write"}),
    );
    wait_until("the hook task runs again", WAIT, || {
        (!mcp.finished_runs(&hooked).is_empty()).then_some(())
    });
    let again = mcp.ok("claudecron_resume_all", json!({}));
    assert_eq!(again["was_paused"], json!(false));
}

#[test]
fn the_pause_survives_a_restart_and_catch_up_once_runs_once_after_it() {
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let manual = mcp.add(json!({
        "name": "by-hand", "type": "bash", "command": "echo hi", "trigger": {"type": "manual"}
    }));
    let ticker = mcp.add(json!({
        "name": "ticker", "type": "bash", "schedule": "* * * * * *", "command": "true",
        "catch_up": "once"
    }));
    let bad = mcp.call("claudecron_pause_all", json!({"reason": "  "}));
    assert_eq!(bad["isError"], json!(true), "{bad}");
    let paused = mcp.ok(
        "claudecron_pause_all",
        json!({"reason": "maintenance window"}),
    );
    let since = ts(&paused["since"]);
    drop(mcp);
    let (_status, _log, dir) = server.terminate(Duration::from_secs(20));

    let server = Server::start_in(options, dir);
    let mcp = Mcp::new(&server);
    assert_eq!(health(&server)["paused"]["reason"], "maintenance window");
    assert_manual_run_refused(&mcp, &manual, "maintenance window");
    // Past a few more fire times while paused after the restart.
    wait_until("three seconds paused after the restart", WAIT, || {
        (chrono::Utc::now() - since >= chrono::Duration::seconds(3)).then_some(())
    });
    let before = mcp.runs(&ticker);
    // `resume` is SPEC §9's name for resume-all.
    let out = ok_cli(&server, &["resume"]);
    assert!(
        out.contains("resumed") && out.contains("maintenance window"),
        "{out}"
    );
    let catch_up = wait_until("one catch-up run after the resume", WAIT, || {
        mcp.finished_runs(&ticker)
            .into_iter()
            .find(|r| r["trigger"] == "catch-up")
    });
    assert_eq!(catch_up["status"], "success", "{catch_up}");
    assert!(ts(&catch_up["scheduled_for"]) >= since);
    let runs = mcp.runs(&ticker);
    assert_eq!(
        runs.iter().filter(|r| r["trigger"] == "catch-up").count(),
        1,
        "before resume {before:?}, after {runs:?}"
    );
    assert_eq!(mcp.run_task(&manual, 30)["status"], "success");
}

/// Started runs of a task that failed (or timed out), oldest first.
fn failed_runs(mcp: &Mcp, task: &str) -> Vec<Value> {
    mcp.finished_runs(task)
        .into_iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "timeout")
        .collect()
}

#[test]
fn a_failing_every_second_task_is_paused_after_exactly_three_failures() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "broken", "type": "bash", "schedule": "* * * * * *", "command": "exit 3",
        "pause_after_failures": 3
    }));
    let paused = wait_until("the task disabled for its failures", WAIT, || {
        let task = mcp.task(&id);
        (task["enabled"] == json!(false)).then_some(task)
    });
    let reason = paused["paused_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("3 failed") && reason.contains("pause_after_failures = 3"),
        "{paused}"
    );
    assert_eq!(paused["failures_in_a_row"], json!(3), "{paused}");
    assert!(paused["paused_at"].is_string(), "{paused}");
    // Two more fire times pass: nothing more starts (the point of this wait is time passing).
    std::thread::sleep(Duration::from_secs(2));
    let runs = mcp.runs(&id);
    assert!(runs.iter().all(is_terminal), "{runs:?}");
    assert_eq!(
        failed_runs(&mcp, &id).len(),
        3,
        "exactly 3 failed runs: {runs:?}"
    );
    assert_eq!(
        runs.iter().filter(|r| !r["started_at"].is_null()).count(),
        3,
        "no other run started: {runs:?}"
    );
    let listed = mcp.ok("claudecron_list_tasks", json!({"status": "disabled"}));
    assert_eq!(listed["tasks"][0]["paused_reason"], reason, "{listed}");
    let text = mcp.call("claudecron_get_task", json!({"taskId": id}))["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(text.contains("Paused for its failures"), "{text}");

    // Enabling it again clears the reason and the count: three more failures pause it again.
    let enabled = mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": id, "enabled": true}),
    )["task"]
        .clone();
    assert!(enabled.get("paused_reason").is_none(), "{enabled}");
    assert!(enabled.get("failures_in_a_row").is_none(), "{enabled}");
    let again = wait_until("paused again after three new failures", WAIT, || {
        let task = mcp.task(&id);
        (task["enabled"] == json!(false)).then_some(task)
    });
    assert_eq!(again["failures_in_a_row"], json!(3), "{again}");
    assert_eq!(failed_runs(&mcp, &id).len(), 6, "{:?}", mcp.runs(&id));
}

#[test]
fn the_config_default_pauses_tasks_without_their_own_limit_and_success_resets_the_count() {
    let server = Server::start(Options::default().env("CLAUDECRON_PAUSE_AFTER_FAILURES", "2"));
    let mcp = Mcp::new(&server);
    let flag = TempDir::new("claudecron-autopause");
    let ok_file = flag.path().join("ok");
    let command = format!("test -e {}", ok_file.display());
    let flaky = mcp.add(json!({
        "name": "flaky", "type": "bash", "trigger": {"type": "manual"}, "command": command
    }));
    let never = mcp.add(json!({
        "name": "never", "type": "bash", "trigger": {"type": "manual"}, "command": "false",
        "pause_after_failures": 0
    }));
    // fail, succeed, fail: never two in a row, so the task stays enabled.
    assert_eq!(mcp.run_task(&flaky, 30)["status"], "failed");
    std::fs::write(&ok_file, "").unwrap();
    assert_eq!(mcp.run_task(&flaky, 30)["status"], "success");
    std::fs::remove_file(&ok_file).unwrap();
    assert_eq!(mcp.run_task(&flaky, 30)["status"], "failed");
    assert_eq!(mcp.task(&flaky)["enabled"], json!(true));
    assert_eq!(mcp.task(&flaky)["failures_in_a_row"], json!(1));
    // The second failure in a row pauses it (config default 2).
    assert_eq!(mcp.run_task(&flaky, 30)["status"], "failed");
    let task = wait_until("flaky disabled", WAIT, || {
        let t = mcp.task(&flaky);
        (t["enabled"] == json!(false)).then_some(t)
    });
    assert!(task["paused_reason"]
        .as_str()
        .unwrap_or("")
        .contains("pause_after_failures = 2"));
    // Its own 0 wins over the default: never paused.
    for _ in 0..3 {
        assert_eq!(mcp.run_task(&never, 30)["status"], "failed");
    }
    let t = mcp.task(&never);
    assert_eq!(t["enabled"], json!(true), "{t}");
    assert!(t.get("paused_reason").is_none());
}
