//! Owner approval (`require_approval`) against the real binary: a task added over MCP is
//! `pending_approval` and never fires (every-second schedule, zero run rows while an approved
//! task beside it fires several times) until `claudecron approve` — the real CLI writing the
//! database on the host — after which it fires; editing its command over MCP makes it pending
//! again (a rename does not); `claudecron pending` lists it with the content an approval binds;
//! a manual run is refused with the way out; a hook event (`POST /hooks`) and a file event for a
//! pending task record nothing; no tool approves; tasks approved while the setting was off keep
//! running when it is switched on. Waits are for conditions with deadlines: "nothing happened"
//! is asserted once an approved twin of the task has visibly fired.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Generous: the test machine is small and shared.
const WAIT: Duration = Duration::from_secs(40);

fn approval_on() -> Options {
    Options::default().env("CLAUDECRON_REQUIRE_APPROVAL", "true")
}

/// `claudecron ARGS --db <the server's db>` on the host, with none of the developer's settings.
fn host_cli(server: &Server, args: &[&str]) -> Output {
    let db = server.dir.path().join("tasks.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args).arg("--db").arg(&db);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAUDECRON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", server.dir.path())
        .env("CLAUDECRON_REQUIRE_APPROVAL", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run claudecron")
}

fn ok_host_cli(server: &Server, args: &[&str]) -> String {
    let out = host_cli(server, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "claudecron {args:?}: stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The ids `claudecron pending --json` lists, with their content hashes.
fn pending(server: &Server) -> Vec<(String, String)> {
    let out: Value = serde_json::from_str(&ok_host_cli(server, &["pending", "--json"]))
        .expect("pending --json is JSON");
    out["pending"]
        .as_array()
        .expect("pending list")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or("").to_string(),
                p["content_sha256"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Wait until `task` has `n` more successful runs than `from` (an approved twin ticking).
fn ticks(mcp: &Mcp, task: &str, n: usize) {
    let from = successes(mcp, task);
    wait_until(&format!("{n} more runs of {task}"), WAIT, || {
        (successes(mcp, task) >= from + n).then_some(())
    });
}

fn successes(mcp: &Mcp, task: &str) -> usize {
    mcp.finished_runs(task)
        .iter()
        .filter(|r| r["status"] == "success")
        .count()
}

#[test]
fn a_task_written_over_mcp_runs_only_after_the_owner_approves_it_on_the_host() {
    let server = Server::start(approval_on());
    let mcp = Mcp::new(&server);
    let every_second = json!({"type": "interval", "every": "1s"});

    // Added over MCP: pending, and the result says so and how the owner approves.
    let added = mcp.call(
        "claudecron_add_task",
        json!({"name": "ticker", "type": "bash", "trigger": every_second, "command": "echo tick"}),
    );
    assert_eq!(added["isError"], json!(false), "{added}");
    let task = &added["structuredContent"]["task"];
    let ticker = task["id"].as_str().expect("id").to_string();
    assert_eq!(task["pending_approval"], json!(true), "{task}");
    assert_eq!(task["approval"]["state"], "pending_approval", "{task}");
    let how = format!("claudecron approve {ticker}");
    let text = added["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("PENDING APPROVAL") && text.contains(&how),
        "the tool result says approval is pending and how it is given: {text}"
    );
    assert_eq!(mcp.task(&ticker)["pending_approval"], json!(true));
    let listed = mcp.ok("claudecron_list_tasks", json!({}));
    let row = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == ticker.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["pending_approval"], json!(true), "{row}");

    // No tool can approve: nothing in the tool list speaks of approving.
    let tools = server.rpc(&mcp.session, "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("approv")),
        "no approving tool: {names:?}"
    );

    // `claudecron pending` lists it, with what approving binds and the command to run.
    let listing = ok_host_cli(&server, &["pending"]);
    assert!(
        listing.contains("ticker") && listing.contains("echo tick") && listing.contains(&how),
        "{listing}"
    );

    // An approved twin ticks; the pending one records nothing meanwhile.
    let twin = mcp
        .add(json!({"name": "twin", "type": "bash", "trigger": every_second, "command": "true"}));
    let approved = ok_host_cli(&server, &["approve", "twin"]);
    assert!(approved.contains("approved task \"twin\""), "{approved}");
    let waiting = pending(&server);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].0, ticker);
    ticks(&mcp, &twin, 3);
    assert!(
        mcp.history(&ticker).is_empty(),
        "a pending task never fires: {:?}",
        mcp.history(&ticker)
    );

    // A manual run is refused with the reason and the way out.
    let refused = mcp.call("claudecron_run_task", json!({"taskId": ticker}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("pending_approval") && text.contains(&how),
        "{text}"
    );
    assert!(mcp.history(&ticker).is_empty());

    // The owner approves the content `pending` showed: it fires.
    let hash = waiting[0].1.clone();
    ok_host_cli(&server, &["approve", &ticker, "--content", &hash[..12]]);
    wait_until("the approved task fires", WAIT, || {
        (successes(&mcp, &ticker) >= 1).then_some(())
    });
    let view = mcp.task(&ticker);
    assert_eq!(view["pending_approval"], json!(false), "{view}");
    assert_eq!(view["approval"]["state"], "approved", "{view}");
    assert_eq!(view["approval"]["approved_by"], "claudecron approve");
    assert!(pending(&server).is_empty());

    // A rename keeps the approval; a new command over MCP makes it pending again.
    let renamed = mcp.ok(
        "claudecron_update_task",
        json!({"taskId": ticker, "name": "ticker2", "description": "renamed"}),
    );
    assert_eq!(
        renamed["task"]["pending_approval"],
        json!(false),
        "{renamed}"
    );
    let edited = mcp.call(
        "claudecron_update_task",
        json!({"taskId": ticker, "command": "echo changed"}),
    );
    assert_eq!(edited["isError"], json!(false), "{edited}");
    assert_eq!(
        edited["structuredContent"]["task"]["pending_approval"],
        json!(true),
        "{edited}"
    );
    assert!(edited["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("PENDING APPROVAL"));
    let after_edit = chrono::Utc::now();
    ticks(&mcp, &twin, 3);
    let late: Vec<Value> = mcp
        .runs(&ticker)
        .into_iter()
        .filter(|r| !r["started_at"].is_null() && ts(&r["started_at"]) > after_edit)
        .collect();
    assert!(late.is_empty(), "no run after the edit: {late:?}");
    let outputs: Vec<String> = mcp
        .finished_runs(&ticker)
        .iter()
        .map(|r| mcp.output(id_of(r)))
        .collect();
    assert!(
        outputs.iter().all(|o| !o.contains("changed")),
        "the unapproved command never ran: {outputs:?}"
    );

    // The old content's hash no longer approves it: the owner is told it changed.
    let stale = host_cli(&server, &["approve", &ticker, "--content", &hash[..12]]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("has changed"));
    assert_eq!(pending(&server).len(), 1);
    ok_host_cli(&server, &["approve", "ticker2"]);
    wait_until("the re-approved command runs", WAIT, || {
        mcp.finished_runs(&ticker)
            .iter()
            .any(|r| mcp.output(id_of(r)).contains("changed"))
            .then_some(())
    });
}

#[test]
fn hook_and_file_events_for_a_pending_task_record_nothing() {
    let server = Server::start(approval_on());
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-approval-watch");
    let file = dir.path().join("watched.txt");
    std::fs::write(&file, "one\n").unwrap();
    let hook = json!({"type": "hook", "event": "PostToolUse", "matcher": "Write"});
    let watch = json!({"type": "file-watch", "path": file.to_string_lossy(), "debounce_ms": 200});
    let hook_pending = mcp
        .add(json!({"name": "hook-pending", "type": "bash", "trigger": hook, "command": "true"}));
    let hook_twin =
        mcp.add(json!({"name": "hook-twin", "type": "bash", "trigger": hook, "command": "true"}));
    let watch_pending = mcp
        .add(json!({"name": "watch-pending", "type": "bash", "trigger": watch, "command": "true"}));
    let watch_twin =
        mcp.add(json!({"name": "watch-twin", "type": "bash", "trigger": watch, "command": "true"}));
    ok_host_cli(&server, &["approve", "hook-twin", "watch-twin"]);

    // POST /hooks: the approved twin's run row exists when /hooks answers; the pending one has none.
    let answer = Req::post("/hooks")
        .bearer(server.token())
        .json(&json!({"hook_event_name": "PostToolUse", "tool_name": "Write", "session_id": "s"}))
        .send(server.port);
    assert_eq!(answer.status, 200, "{}", answer.describe());
    assert_eq!(mcp.history(&hook_twin).len(), 1);
    assert!(mcp.history(&hook_pending).is_empty());

    // A file change: the twin fires after its quiet period; the pending task records nothing.
    std::fs::write(&file, "two\n").unwrap();
    wait_until("the approved file-watch twin fires", WAIT, || {
        (!mcp.finished_runs(&watch_twin).is_empty()).then_some(())
    });
    assert!(mcp.history(&watch_pending).is_empty());

    // Approved, the same events run it.
    ok_host_cli(&server, &["approve", "--all"]);
    assert!(pending(&server).is_empty());
    Req::post("/hooks")
        .bearer(server.token())
        .json(&json!({"hook_event_name": "PostToolUse", "tool_name": "Write"}))
        .send(server.port);
    assert_eq!(mcp.history(&hook_pending).len(), 1);
    std::fs::write(&file, "three\n").unwrap();
    wait_until("the approved file-watch task fires", WAIT, || {
        (!mcp.finished_runs(&watch_pending).is_empty()).then_some(())
    });
}

#[test]
fn tasks_written_while_approval_was_off_keep_running_when_it_is_switched_on() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({"name": "old", "type": "bash", "trigger": {"type": "manual"}, "command": "echo old"}));
    assert!(mcp.task(&id).get("pending_approval").is_none());
    let options = Options::default();
    let (_, _, dir) = server.terminate(Duration::from_secs(10));
    let server = Server::start_in(options.env("CLAUDECRON_REQUIRE_APPROVAL", "true"), dir);
    let mcp = Mcp::new(&server);
    assert_eq!(mcp.task(&id)["pending_approval"], json!(false));
    let run = mcp.run_task(&id, 30);
    assert_eq!(run["status"], "success", "{run}");
    assert!(pending(&server).is_empty());
    // Its first change over MCP now waits for the owner.
    mcp.ok(
        "claudecron_update_task",
        json!({"taskId": id, "command": "echo new"}),
    );
    assert_eq!(pending(&server).len(), 1);
    let refused = mcp.call("claudecron_run_task", json!({"taskId": id}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
}
