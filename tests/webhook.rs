//! The inbound webhook trigger against the real binary: `POST /trigger/{token}` fires the task
//! with the body on stdin and in `CLAUDECRON_PAYLOAD` byte for byte, answers 202 with the run id;
//! a wrong token is 404 and records nothing; a body over `max_body_bytes` is 413 and records
//! nothing; a disabled task is 409; rotation makes the old token 404; a burst is 429; the token
//! never reaches the server log.

mod common;

use common::{is_terminal, poll, Mcp, Options, Req, Server};
use serde_json::{json, Value};
use std::time::Duration;

fn post(server: &Server, path: &str, body: &[u8]) -> common::Response {
    Req::post(path).body(body.to_vec()).send(server.port)
}

/// The run id of a 202 answer.
fn run_id(resp: &common::Response) -> i64 {
    assert_eq!(resp.status, 202, "{}", resp.describe());
    let v: Value = serde_json::from_slice(&resp.body).expect("a JSON answer");
    v["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run_id in {v}"))
}

fn url_path(result: &Value) -> String {
    result["webhook"]["url_path"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook.url_path in {result}"))
        .to_string()
}

#[test]
fn webhook_fires_with_the_body_and_refuses_wrong_tokens_big_bodies_and_old_tokens() {
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_BODY_BYTES", "4096"));
    let mcp = Mcp::new(&server);
    let out = server.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let command = format!(
        "printf '%s' \"$CLAUDECRON_PAYLOAD\" > {0}/env.$CLAUDECRON_RUN_ID; cat > {0}/stdin.$CLAUDECRON_RUN_ID",
        out.display()
    );
    let added = mcp.ok(
        "claudecron_add_task",
        json!({"name": "hooked", "type": "bash", "trigger": {"type": "webhook"}, "command": command}),
    );
    let task = added["task"]["id"].as_str().expect("task id").to_string();
    let path = url_path(&added);
    let token = path
        .strip_prefix("/trigger/")
        .expect("path prefix")
        .to_string();
    assert_eq!(token.len(), 64, "{path}");

    // get_task tells how to fire it but never shows the token again.
    let view = mcp.task(&task);
    assert_eq!(view["trigger"]["type"], "webhook");
    assert!(
        !view.to_string().contains(&token),
        "get_task shows the token: {view}"
    );

    // The body reaches stdin and CLAUDECRON_PAYLOAD byte for byte.
    let body = "{\"ref\":\"refs/heads/main\",\"msg\":\"it's \\\"quoted\\\"\\n\",\"ü\":\"日本\"}\nsecond line $HOME `x`";
    let id = run_id(&post(&server, &path, body.as_bytes()));
    let run = mcp.wait_finished(id, Duration::from_secs(60));
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["trigger"], "webhook", "{run}");
    assert_eq!(
        std::fs::read(out.join(format!("stdin.{id}"))).unwrap(),
        body.as_bytes()
    );
    assert_eq!(
        std::fs::read(out.join(format!("env.{id}"))).unwrap(),
        body.as_bytes()
    );

    // A wrong token (well formed or not) is 404 and records nothing.
    let runs_before = mcp.history(&task).len();
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
    assert_eq!(
        post(&server, &format!("/trigger/{wrong}"), b"x").status,
        404
    );
    assert_eq!(post(&server, "/trigger/nope", b"x").status, 404);
    assert_eq!(post(&server, "/trigger/", b"x").status, 404);
    assert_eq!(Req::get(&path).send(server.port).status, 405);

    // A body over max_body_bytes is 413 and records nothing.
    let big = vec![b'a'; 8192];
    assert_eq!(post(&server, &path, &big).status, 413);
    assert_eq!(
        mcp.history(&task).len(),
        runs_before,
        "a refused request recorded a run"
    );

    // A disabled task refuses with 409, recording nothing.
    mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": task, "enabled": false}),
    );
    let refused = post(&server, &path, b"x");
    assert_eq!(refused.status, 409, "{}", refused.describe());
    assert_eq!(mcp.history(&task).len(), runs_before);
    mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": task, "enabled": true}),
    );

    // While everything is paused the fire is refused with 503 naming the pause.
    mcp.ok(
        "claudecron_pause_all",
        json!({"reason": "maintenance window"}),
    );
    let paused = post(&server, &path, b"x");
    assert_eq!(paused.status, 503, "{}", paused.describe());
    assert!(
        String::from_utf8_lossy(&paused.body).contains("maintenance window"),
        "{}",
        paused.describe()
    );
    mcp.ok("claudecron_resume_all", json!({}));
    assert_eq!(mcp.history(&task).len(), runs_before);

    // Rotation: the old token is 404 at once, the new one works.
    let rotated = mcp.ok(
        "claudecron_update_task",
        json!({"taskId": task, "rotate_webhook_token": true}),
    );
    let new_path = url_path(&rotated);
    assert_ne!(new_path, path);
    assert_eq!(post(&server, &path, b"old").status, 404);
    let id2 = run_id(&post(&server, &new_path, b"new"));
    let run2 = mcp.wait_finished(id2, Duration::from_secs(60));
    assert_eq!(run2["status"], "success", "{run2}");
    assert_eq!(
        std::fs::read(out.join(format!("stdin.{id2}"))).unwrap(),
        b"new"
    );
    let done = poll(Duration::from_secs(30), || {
        let h = mcp.history(&task);
        h.iter().all(is_terminal).then_some(h.len())
    });
    assert_eq!(done, Some(runs_before + 1));

    // Neither token ever reaches the log or the database files (only its SHA-256 is stored).
    let log = server.stderr();
    let mut db = Vec::new();
    for entry in std::fs::read_dir(server.dir.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("tasks.db") {
            db.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    let db = String::from_utf8_lossy(&db);
    assert!(db.contains("webhook"), "the database files were not read");
    for t in [token.as_str(), new_path.trim_start_matches("/trigger/")] {
        assert!(!db.contains(t), "a webhook token is in the database files");
        assert!(!log.contains(t), "a webhook token is in the log:\n{log}");
    }
}

#[test]
fn a_burst_of_webhook_requests_is_rate_limited() {
    let server = Server::start(Options::default().env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "5"));
    let guess = format!("/trigger/{}", "ab".repeat(32));
    let statuses: Vec<u16> = (0..12)
        .map(|_| post(&server, &guess, b"x").status)
        .collect();
    assert!(statuses.iter().take(5).all(|s| *s == 404), "{statuses:?}");
    assert!(statuses.iter().skip(5).all(|s| *s == 429), "{statuses:?}");
}

#[test]
fn rotation_is_refused_for_other_triggers_and_a_trigger_changed_to_webhook_gets_a_token() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let task = mcp.add(
        json!({"name": "plain", "type": "bash", "trigger": {"type": "manual"}, "command": "cat"}),
    );
    let refused = mcp.call(
        "claudecron_update_task",
        json!({"taskId": task, "rotate_webhook_token": true, "command": "echo changed"}),
    );
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.contains("rotate_webhook_token"), "{text}");
    assert_eq!(
        mcp.task(&task)["command"],
        "cat",
        "a refused update saved a field"
    );

    let changed = mcp.ok(
        "claudecron_update_task",
        json!({"taskId": task, "trigger": {"type": "webhook"}}),
    );
    let path = url_path(&changed);
    let id = run_id(&post(&server, &path, b"via update"));
    assert_eq!(
        mcp.wait_finished(id, Duration::from_secs(60))["status"],
        "success"
    );
    assert_eq!(mcp.output(id), "via update");

    // Back to manual: the token is dropped.
    mcp.ok(
        "claudecron_update_task",
        json!({"taskId": task, "trigger": {"type": "manual"}}),
    );
    assert_eq!(post(&server, &path, b"x").status, 404);
}
