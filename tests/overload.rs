//! Robustness against one client taking more than its share, against the real binary: one
//! token cannot fill the session table, an open GET event stream that is never read disturbs
//! no other client nor the scheduler, and a flood of runs is bounded and admitted fairly.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn initialize_with(server: &Server, token: &str) -> Response {
    Req::post("/mcp")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .bearer(token)
        .json(&initialize_body("2025-11-25"))
        .send(server.port)
}

#[test]
fn one_token_cannot_fill_the_session_table() {
    let (a, b) = (new_token(), new_token());
    let server = Server::start(
        Options::default()
            .auth(Auth::Tokens(vec![a.clone(), b.clone()]))
            .env("CLAUDECRON_MAX_SESSIONS_PER_TOKEN", "3"),
    );
    for n in 0..3 {
        let resp = initialize_with(&server, &a);
        assert_eq!(
            resp.status,
            200,
            "session {n} of token a: {}",
            resp.describe()
        );
    }
    let refused = initialize_with(&server, &a);
    assert_eq!(refused.status, 503, "{}", refused.describe());
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("max_sessions_per_token"), "{message}");
    assert!(refused.header("mcp-session-id").is_none());
    let other = initialize_with(&server, &b);
    assert_eq!(
        other.status,
        200,
        "token b still gets a session: {}",
        other.describe()
    );
}

/// Loopback buffers (MiBs) absorb what this test can make the server send, so the server's
/// writes to the unread stream never block here: this checks the everyday case end to end. That
/// a stream whose writes do block costs only itself is proven by
/// `http::sse::tests::a_reader_that_stops_costs_only_its_own_stream` (a writer that blocks
/// forever) and by scenario 3 of scripts/chaos.sh (the server's socket buffer cut to 4 KiB).
#[test]
fn an_open_unread_event_stream_disturbs_no_other_client() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    // A client opens its GET stream, asks for every log message, and never reads again.
    let lazy = server.session();
    let level = server.rpc(&lazy, "logging/setLevel", json!({"level": "debug"}));
    assert!(level.get("error").is_none(), "{level}");
    let stream = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "text/event-stream")
        .header("MCP-Session-Id", &lazy)
        .header("MCP-Protocol-Version", "2025-11-25")
        .open(server.port)
        .expect("GET stream");
    assert_eq!(stream.status, 200);
    // A busy task: each run ends with a notification queued for the lazy stream.
    let task = mcp.add(json!({"name": "chatty", "type": "bash", "schedule": "* * * * * *", "command": "true", "overlap": "allow"}));
    let deadline = Instant::now() + Duration::from_secs(60);
    while mcp.finished_runs(&task).len() < 5 && Instant::now() < deadline {
        // Meanwhile others are served promptly: health, a new session, a tool call.
        let started = Instant::now();
        let health = Req::get("/health").send(server.port);
        assert_eq!(health.status, 200, "{}", health.describe());
        let other = server.session();
        let listed = server.call_tool(&other, "claudecron_list_tasks", json!({}));
        assert_eq!(listed["isError"], false, "{listed}");
        let ended = Req::new("DELETE", "/mcp")
            .bearer(server.token())
            .header("MCP-Session-Id", &other)
            .send(server.port);
        assert!((200..300).contains(&ended.status), "{}", ended.describe());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "health + initialize + a tool call took {:?} with an unread stream open",
            started.elapsed()
        );
    }
    let runs = mcp.finished_runs(&task);
    assert!(
        runs.len() >= 5,
        "the every-second task kept firing: {runs:?}"
    );
    assert!(
        runs.iter().all(|r| r["status"] == "success"),
        "no fire was skipped or failed: {runs:?}"
    );
    drop(stream);
}

#[test]
fn a_flood_of_hook_runs_is_bounded_and_does_not_starve_a_schedule() {
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_MAX_CONCURRENT_TASKS", "2")
            .env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "100000")
            .env("CLAUDECRON_HISTORY_KEEP_PER_TASK", "1000"),
    );
    let mcp = Mcp::new(&server);
    let hook = mcp.add(
        json!({"name": "flooded", "type": "bash", "command": "sleep 0.3",
        "overlap": "allow", "trigger": {"type": "hook", "event": "Stop"}}),
    );
    let cron = mcp.add(
        json!({"name": "heartbeat", "type": "bash", "command": "true",
        "schedule": "* * * * * *"}),
    );
    // 150 hook events at once: 2 run, at most 50 wait, the rest are recorded as overloaded.
    for _ in 0..150 {
        let resp = Req::post("/hooks")
            .bearer(server.token())
            .header("Content-Type", "application/json")
            .body(r#"{"hook_event_name":"Stop","session_id":"s"}"#)
            .send(server.port);
        assert_eq!(resp.status, 200, "{}", resp.describe());
    }
    let flooded = mcp.history(&hook);
    let overloaded = flooded
        .iter()
        .filter(|r| {
            r["status"] == "skipped" && r["error"].as_str().unwrap_or("").contains("overloaded")
        })
        .count();
    // Whatever had started by now took a slot; beyond that at most 50 could wait.
    let started = flooded
        .iter()
        .filter(|r| r["status"] != "skipped" && r["status"] != "queued")
        .count();
    assert!(
        overloaded > 0 && overloaded + started + 50 >= 150,
        "at most 50 fires wait: {overloaded} refused as overloaded, {started} started, of 150"
    );
    // The every-second task keeps its turn while the backlog drains: each of its runs is the
    // first of its task in the queue, so it is admitted ahead of the flood's later runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ran = Vec::new();
    while Instant::now() < deadline {
        ran = mcp.finished_runs(&cron);
        if ran.iter().filter(|r| r["status"] == "success").count() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let successes = ran.iter().filter(|r| r["status"] == "success").count();
    assert!(successes >= 4, "the schedule ran during the flood: {ran:?}");
    let waiting = mcp
        .history(&hook)
        .iter()
        .filter(|r| r["status"] == "queued")
        .count();
    assert!(
        waiting > 0,
        "the flood was still draining when the schedule ran 4 times"
    );
}
