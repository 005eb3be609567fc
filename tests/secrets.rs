//! Secrets by reference against the real binary: `claudecron secret set NAME` (value on stdin)
//! fills the 0600 store in the data directory; a task's `env: {"X": {"secret": NAME}}` gets the
//! value at run time (the run writes it to a file and the test compares), and the value is found
//! nowhere else: not in any tool result, the database file and its WAL, the server's log (at
//! debug level) or a notification sink's bodies; output that prints it (live and final) shows
//! `***`. A reference to a secret that is not set is accepted with a warning, and its run fails
//! naming the secret. `secret list` shows names only; `secret rm` removes one. A subagent task
//! (a fake `claude`) gets its env secret the same way, and its answer is masked.

mod common;

use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Generous: the test machine is small and shared.
const WAIT: Duration = Duration::from_secs(40);

fn ok_host_cli(server: &Server, args: &[&str], stdin: &[u8]) -> String {
    succeeded(
        &host_cli(server, args, stdin),
        &format!("claudecron {args:?}"),
    )
}

/// Every tool result of the test, kept to be searched at the end.
struct Recorded<'a> {
    mcp: Mcp<'a>,
    seen: Vec<String>,
}

impl Recorded<'_> {
    fn ok(&mut self, name: &str, args: Value) -> Value {
        let result = self.mcp.call(name, args.clone());
        self.seen.push(result.to_string());
        assert_eq!(result["isError"], json!(false), "{name} {args}: {result}");
        result["structuredContent"].clone()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_secret_reaches_the_run_and_nothing_else() {
    let (port, sunk) = sink();
    let server = Server::start(Options::default().env("CLAUDECRON_LOG_LEVEL", "debug"));
    let secret = format!("s3cr3t-{}-q7Zx", std::process::id());
    let said = ok_host_cli(
        &server,
        &["secret", "set", "gh"],
        format!("{secret}\n").as_bytes(),
    );
    assert!(said.contains("\"gh\"") && !said.contains(&secret), "{said}");
    let store = server.dir.path().join("secrets.json");
    let mode = std::fs::metadata(&store)
        .expect("the store")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let listed = ok_host_cli(&server, &["secret", "list"], b"");
    assert_eq!(listed.trim(), "gh");

    let out_dir = TempDir::new("cc-secret-out");
    let got_file = out_dir.path().join("got");
    let mut rec = Recorded {
        mcp: Mcp::new(&server),
        seen: Vec::new(),
    };
    let added = rec.ok(
        "claudecron_add_task",
        json!({
            "name": "uses-secret", "type": "bash", "trigger": {"type": "manual"},
            "env": {"GITHUB_TOKEN": {"secret": "gh"}, "OUT": got_file.to_string_lossy()},
            "command": "printf %s \"$GITHUB_TOKEN\" > \"$OUT\"; echo \"token is $GITHUB_TOKEN\"; echo \"$GITHUB_TOKEN\" >&2; exit 3",
            "notify": {"url": format!("http://127.0.0.1:{port}/n"), "on": "always"}
        }),
    );
    let task = added["task"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        added["task"]["env"]["GITHUB_TOKEN"],
        json!({"secret": "gh"})
    );
    assert!(added["task"].get("warning").is_none(), "{added}");

    // The run gets the value; what it printed is masked in the run.
    let run = rec.ok(
        "claudecron_run_task",
        json!({"taskId": task, "wait_seconds": 30}),
    )["run"]
        .clone();
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        std::fs::read_to_string(&got_file).expect("the run wrote the value"),
        secret
    );
    let run_id = id_of(&run);
    let full = rec.ok("claudecron_get_run", json!({"runId": run_id}));
    let output = full["run"]["output"].as_str().unwrap_or("");
    assert!(output.contains("token is ***"), "{output}");
    assert_eq!(output.matches("***").count(), 2, "{output}");

    // Live output is masked too.
    let live_task = rec.ok(
        "claudecron_add_task",
        json!({"name": "live", "type": "bash", "trigger": {"type": "manual"},
               "env": {"T": {"secret": "gh"}}, "command": "echo \"live $T\"; sleep 3"}),
    )["task"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = rec.ok("claudecron_run_task", json!({"taskId": live_task}));
    let live_id = started["run"]["id"].as_i64().expect("run id");
    let live = wait_until("live output while running", WAIT, || {
        let r = rec.mcp.run(live_id);
        let text = r["output"].as_str().unwrap_or("").to_string();
        (r["status"] == "running" && !text.is_empty()).then_some(text)
    });
    assert!(
        live.contains("live ***") && !live.contains(&secret),
        "{live}"
    );
    rec.mcp.wait_finished(live_id, WAIT);

    // The notification went out (with the masked excerpt).
    wait_until("the notification", WAIT, || {
        rec.mcp.run(run_id).get("notify").cloned()
    });
    let bodies: Vec<Vec<u8>> = sunk
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.body.clone())
        .collect();
    assert!(!bodies.is_empty());
    assert!(bodies.iter().any(|b| contains(b, "token is ***")));

    // Every view the model can read.
    rec.ok("claudecron_get_task", json!({"taskId": task}));
    rec.ok("claudecron_list_tasks", json!({}));
    rec.ok("claudecron_get_history", json!({"taskId": task}));
    rec.ok("claudecron_get_history", json!({}));
    rec.ok("claudecron_get_run", json!({"runId": live_id}));
    rec.ok(
        "claudecron_update_task",
        json!({"taskId": task, "description": "still secret"}),
    );

    // A reference to a secret that is not set: accepted with a warning; the run fails naming it.
    let missing = rec.ok(
        "claudecron_add_task",
        json!({"name": "missing", "type": "bash", "trigger": {"type": "manual"},
               "env": {"X": {"secret": "nope"}}, "command": "echo should-not-run"}),
    );
    let warning = missing["task"]["warning"].as_str().unwrap_or("");
    assert!(
        warning.contains("nope") && warning.contains("claudecron secret set"),
        "{missing}"
    );
    let failed = rec.ok(
        "claudecron_run_task",
        json!({"taskId": "missing", "wait_seconds": 30}),
    )["run"]
        .clone();
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or("");
    assert!(
        error.contains("\"nope\"") && error.contains("env X"),
        "{error}"
    );
    assert!(!failed.to_string().contains("should-not-run"));

    // Found nowhere else: tool results, database and WAL, the log, the sink's bodies.
    for seen in &rec.seen {
        assert!(
            !seen.contains(&secret),
            "a tool result holds the value: {seen}"
        );
    }
    for file in ["tasks.db", "tasks.db-wal"] {
        let path = server.dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(!contains(&bytes, &secret), "{file} holds the value");
        }
    }
    assert!(std::fs::read(server.dir.path().join("tasks.db")).is_ok());
    for body in sunk.lock().unwrap().iter() {
        assert!(
            !contains(&body.body, &secret),
            "a notification holds the value"
        );
    }
    let log = server.stop();
    assert!(
        log.contains("uses-secret"),
        "the log is the server's: {log}"
    );
    assert!(!log.contains(&secret), "the log holds the value");
}

#[test]
fn secret_commands_refuse_bad_input_and_remove() {
    let server = Server::start_default();
    let bad = host_cli(&server, &["secret", "set", "bad name"], b"x");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a secret name"));
    let empty = host_cli(&server, &["secret", "set", "gh"], b"\n");
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("empty"));
    let argv = host_cli(&server, &["secret", "set", "gh", "value"], b"");
    assert_eq!(argv.status.code(), Some(2), "a value is never an argument");
    ok_host_cli(&server, &["secret", "set", "gh"], b"v1-value");
    ok_host_cli(&server, &["secret", "set", "other"], b"v2-value");
    let listed = ok_host_cli(&server, &["secret", "list"], b"");
    assert_eq!(listed, "gh\nother\n");
    ok_host_cli(&server, &["secret", "rm", "gh"], b"");
    assert_eq!(ok_host_cli(&server, &["secret", "list"], b""), "other\n");
    let gone = host_cli(&server, &["secret", "rm", "gh"], b"");
    assert_eq!(gone.status.code(), Some(1));

    // A reference that is not an object of one "secret" string is refused, naming the field.
    let mcp = Mcp::new(&server);
    let refused = mcp.call(
        "claudecron_add_task",
        json!({"name": "x", "type": "bash", "trigger": {"type": "manual"}, "command": "true",
               "env": {"T": {"secret": "gh", "also": 1}}}),
    );
    assert_eq!(refused["isError"], json!(true));
    assert!(refused["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("env.T"));
}

#[test]
fn a_subagent_task_gets_its_secret_env_and_its_answer_is_masked() {
    let fake = TempDir::new("cc-secret-claude");
    let got = fake.path().join("got");
    let script = fake.path().join("claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > /dev/null\nprintf %s \"$GITHUB_TOKEN\" > '{}'\nprintf '{{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"num_turns\":1,\"session_id\":\"s\",\"total_cost_usd\":0,\"result\":\"the token is %s\"}}\\n' \"$GITHUB_TOKEN\"\n",
            got.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server =
        Server::start(Options::default().env("CLAUDECRON_CLAUDE_PATH", &script.to_string_lossy()));
    let secret = format!("agent-s3cr3t-{}-Wq", std::process::id());
    ok_host_cli(&server, &["secret", "set", "gh"], secret.as_bytes());
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({
        "name": "agent", "type": "subagent", "runner": "claude-code", "trigger": {"type": "manual"},
        "prompt": "Say the token.", "env": {"GITHUB_TOKEN": {"secret": "gh"}}
    }));
    let run = mcp.run_task(&id, 60);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        std::fs::read_to_string(&got).expect("the fake wrote it"),
        secret
    );
    let full = mcp.run(id_of(&run));
    assert!(
        full["output"]
            .as_str()
            .unwrap_or("")
            .contains("the token is ***"),
        "{full}"
    );
    assert!(!full.to_string().contains(&secret), "{full}");
    assert!(!run.to_string().contains(&secret), "{run}");
}
