//! Run notifications against the real binary and a local HTTP sink: what each preset posts
//! (Slack, Discord, Telegram, ntfy, generic JSON — the shapes documented in
//! docs/notify-presets.md), which events send (changed, recovered, nothing else), a
//! `CLAUDECRON_SILENT` run sending nothing, a sink that is down leaving the run's status
//! alone while the failed delivery is recorded on the run, and the dead-man alert (`expect`):
//! `missed` once, not again after a restart, `recovered` once.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Generous: the test machine is small and shared.
const WAIT: Duration = Duration::from_secs(40);

/// What the sink received (`common::sink`).
type Got = Sunk;

fn received(got: &Arc<Mutex<Vec<Got>>>, path: &str) -> Vec<Got> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|g| g.path == path)
        .cloned()
        .collect()
}

/// Wait until the run's notification outcome is recorded; returns it.
fn notify_outcome(mcp: &Mcp, run_id: i64) -> Value {
    wait_until(
        &format!("run {run_id}'s notification outcome"),
        WAIT,
        || {
            let run = mcp.run(run_id);
            run.get("notify").cloned()
        },
    )
}

#[test]
fn each_preset_posts_its_documented_shape() {
    let (port, got) = sink();
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
    let presets = ["slack", "discord", "telegram", "ntfy", "generic"];
    let mut runs = Vec::new();
    for preset in presets {
        let mut notify = json!({"url": url(preset), "preset": preset, "on": "failure"});
        if preset == "telegram" {
            notify["chat_id"] = json!("-1001234567890");
        }
        let id = mcp.add(json!({
            "name": format!("nightly-{preset}"), "type": "bash", "trigger": {"type": "manual"},
            "command": "echo 'disk <!channel> full & more'; exit 2", "notify": notify
        }));
        let run = mcp.run_task(&id, 30);
        assert_eq!(run["status"], "failed", "{run}");
        runs.push((preset, id_of(&run)));
    }
    for (preset, run_id) in &runs {
        let outcome = notify_outcome(&mcp, *run_id);
        assert_eq!(outcome["status"], "delivered", "{preset}: {outcome}");
        assert_eq!(outcome["event"], "failure", "{preset}: {outcome}");
        assert!(
            !outcome.to_string().contains("127.0.0.1"),
            "no URL recorded"
        );
        let sent = received(&got, &format!("/{preset}"));
        assert_eq!(sent.len(), 1, "{preset}: one message: {sent:?}");
        let sent = &sent[0];
        let name = format!("nightly-{preset}");
        let says = |text: &str| {
            text.contains(&name)
                && text.contains("failed")
                && text.contains(&format!("run {run_id}"))
                && text.contains("full")
        };
        match *preset {
            "slack" => {
                let body = sent.json();
                let text = body["text"].as_str().unwrap_or("");
                assert!(says(text), "{body}");
                assert!(text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"));
                assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
            }
            "discord" => {
                let body = sent.json();
                assert!(says(body["content"].as_str().unwrap_or("")), "{body}");
                assert_eq!(body["allowed_mentions"], json!({"parse": []}), "{body}");
            }
            "telegram" => {
                let body = sent.json();
                assert_eq!(body["chat_id"], "-1001234567890", "{body}");
                assert!(says(body["text"].as_str().unwrap_or("")), "{body}");
                assert_eq!(body["disable_web_page_preview"], json!(true));
            }
            "ntfy" => {
                assert!(sent.header("content-type").starts_with("text/plain"));
                assert!(says(&String::from_utf8_lossy(&sent.body)), "{sent:?}");
                assert_eq!(sent.header("title"), format!("claudecron: {name} failed"));
                assert_eq!(sent.header("priority"), "high");
                assert_eq!(sent.header("tags"), "x");
            }
            _ => {
                let body = sent.json();
                assert_eq!(body["event"], "run_finished", "{body}");
                assert_eq!(body["alert"], "failure", "{body}");
                assert_eq!(body["run"]["id"], json!(run_id), "{body}");
                assert_eq!(body["run"]["exit_code"], 2, "{body}");
                assert_eq!(body["task"]["name"], name.as_str(), "{body}");
            }
        }
        assert!(sent.header("content-type").contains(if *preset == "ntfy" {
            "text/plain"
        } else {
            "application/json"
        }));
    }
}

#[test]
fn changed_and_recovered_send_exactly_when_they_happen_and_silent_runs_send_nothing() {
    let (port, got) = sink();
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-alerts");
    let out = dir.path().join("out");
    let code = dir.path().join("code");
    let id = mcp.add(json!({
        "name": "watcher", "type": "bash", "trigger": {"type": "manual"},
        "command": format!("cat {}; exit $(cat {})", out.display(), code.display()),
        "notify": {"url": format!("http://127.0.0.1:{port}/w"), "on": ["changed", "recovered"]}
    }));
    // (output, exit code, expected event)
    let steps: [(&str, &str, Option<&str>); 6] = [
        ("a\n", "0", None),                    // first run: nothing to compare with
        ("a\n", "0", None),                    // same output
        ("b\n", "0", Some("changed")),         // output changed
        ("b\n", "1", None),                    // failure is not asked for, output same
        ("b\n", "0", Some("recovered")),       // success after a failure
        ("CLAUDECRON_SILENT\nc\n", "0", None), // changed, but the run asked for quiet
    ];
    let mut expected = Vec::new();
    for (i, (text, exit, event)) in steps.iter().enumerate() {
        std::fs::write(&out, text).unwrap();
        std::fs::write(&code, exit).unwrap();
        let run = mcp.run_task(&id, 30);
        let run_id = id_of(&run);
        let want = if *exit == "0" { "success" } else { "failed" };
        assert_eq!(run["status"], want, "step {i}: {run}");
        if let Some(event) = event {
            let outcome = notify_outcome(&mcp, run_id);
            assert_eq!(outcome["status"], "delivered", "step {i}: {outcome}");
            assert_eq!(outcome["event"], *event, "step {i}: {outcome}");
            expected.push((run_id, *event));
        }
        if i == 5 {
            let outcome = notify_outcome(&mcp, run_id);
            assert_eq!(outcome["status"], "silent", "{outcome}");
        }
    }
    let sent: Vec<(i64, String)> = received(&got, "/w")
        .iter()
        .map(|g| {
            let b = g.json();
            (
                b["run"]["id"].as_i64().unwrap_or(0),
                b["alert"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(i64, String)> = expected
        .into_iter()
        .map(|(r, e)| (r, e.to_string()))
        .collect();
    assert_eq!(sent, expected, "exactly the changed and the recovered run");
}

#[test]
fn a_sink_that_is_down_changes_nothing_about_the_run_and_the_failure_is_recorded() {
    // A port with nothing listening: bind, note it, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let ok = mcp.add(json!({
        "name": "fine", "type": "bash", "trigger": {"type": "manual"}, "command": "echo fine",
        "notify": {"url": format!("http://127.0.0.1:{port}/down?token=s3cret"), "on": "always", "preset": "slack"}
    }));
    let run = mcp.run_task(&ok, 30);
    assert_eq!(run["status"], "success", "{run}");
    let outcome = notify_outcome(&mcp, id_of(&run));
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["attempts"], 3, "{outcome}");
    assert!(
        !outcome["error"].as_str().unwrap_or("").is_empty(),
        "{outcome}"
    );
    assert!(!outcome.to_string().contains("s3cret"), "{outcome}");
    assert_eq!(mcp.run(id_of(&run))["status"], "success");
    assert!(
        !server.stderr().contains("s3cret"),
        "the URL's token is never logged"
    );
}

#[test]
fn auto_pause_and_missed_fires_notify_when_asked() {
    let (port, got) = sink();
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");
    // paused: the run that paused the task carries the notification's outcome.
    let broken = mcp.add(json!({
        "name": "broken", "type": "bash", "trigger": {"type": "manual"}, "command": "echo nope; exit 1",
        "pause_after_failures": 2, "notify": {"url": url("paused"), "on": ["paused"]}
    }));
    mcp.run_task(&broken, 30);
    let second = mcp.run_task(&broken, 30);
    let outcome = wait_until("the paused notification's outcome", WAIT, || {
        mcp.run(id_of(&second)).get("notify_paused").cloned()
    });
    assert_eq!(outcome["status"], "delivered", "{outcome}");
    let sent = received(&got, "/paused");
    assert_eq!(sent.len(), 1, "one message, for the pause only: {sent:?}");
    let body = sent[0].json();
    assert_eq!(body["event"], "task_paused", "{body}");
    assert_eq!(body["alert"], "paused", "{body}");
    assert_eq!(body["run"]["id"], second["id"], "{body}");
    assert!(body["run"]["error"]
        .as_str()
        .unwrap_or("")
        .contains("pause_after_failures = 2"));

    // missed: fire times missed while everything was paused, one message per wake.
    let ticker = mcp.add(json!({
        "name": "ticker", "type": "bash", "schedule": "* * * * * *", "command": "true",
        "notify": {"url": url("missed"), "on": "missed", "preset": "slack"}
    }));
    wait_until("a first tick", WAIT, || {
        (!mcp.finished_runs(&ticker).is_empty()).then_some(())
    });
    mcp.ok("claudecron_pause_all", json!({"reason": "test"}));
    wait_until("three seconds paused", WAIT, || {
        let t = mcp.task(&ticker);
        let since = ts(&t["paused_all"]["since"]);
        (chrono::Utc::now() - since >= chrono::Duration::seconds(3)).then_some(())
    });
    mcp.ok("claudecron_resume_all", json!({}));
    let outcome = wait_until("the missed notification's outcome", WAIT, || {
        mcp.runs(&ticker)
            .iter()
            .filter(|r| r["status"] == "skipped")
            .find_map(|r| mcp.run(id_of(r)).get("notify_missed").cloned())
    });
    assert_eq!(outcome["status"], "delivered", "{outcome}");
    let sent = received(&got, "/missed");
    assert_eq!(sent.len(), 1, "one message for the wake: {sent:?}");
    let text = sent[0].json()["text"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains("ticker") && text.contains("missed") && text.contains("paused"),
        "{text}"
    );
}

#[test]
fn configured_channels_carry_url_preset_and_an_hmac_signature() {
    let (port, got) = sink();
    let channels = json!([
        {"name": "ops", "url": format!("http://127.0.0.1:{port}/ops"), "secret": "k3y-s3cret"},
        {"name": "chat", "url": format!("http://127.0.0.1:{port}/chat"), "preset": "slack"}
    ]);
    let server =
        Server::start(Options::default().env("CLAUDECRON_NOTIFY_CHANNELS", &channels.to_string()));
    let mcp = Mcp::new(&server);
    // A channel that is not configured, or one with its own preset, is refused with the names.
    let unknown = mcp.call(
        "claudecron_add_task",
        json!({"name": "x", "type": "bash", "command": "true", "trigger": {"type": "manual"},
               "notify": {"channel": "pager"}}),
    );
    assert_eq!(unknown["isError"], json!(true), "{unknown}");
    let text = unknown["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("notify.channel") && text.contains("ops, chat"),
        "{text}"
    );
    let both = mcp.call(
        "claudecron_add_task",
        json!({"name": "x", "type": "bash", "command": "true", "trigger": {"type": "manual"},
               "notify": {"channel": "ops", "preset": "slack"}}),
    );
    assert_eq!(both["isError"], json!(true), "{both}");

    let signed = mcp.add(json!({
        "name": "signed", "type": "bash", "trigger": {"type": "manual"}, "command": "exit 4",
        "notify": {"channel": "ops"}
    }));
    let chatty = mcp.add(json!({
        "name": "chatty", "type": "bash", "trigger": {"type": "manual"}, "command": "echo ok",
        "notify": {"channel": "chat", "on": "success"}
    }));
    let task = mcp.task(&signed);
    assert_eq!(
        task["notify"],
        json!({"channel": "ops", "on": ["failure"]}),
        "{task}"
    );
    let run = mcp.run_task(&signed, 30);
    assert_eq!(notify_outcome(&mcp, id_of(&run))["status"], "delivered");
    let sent = received(&got, "/ops");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k3y-s3cret");
    let tag = ring::hmac::sign(&key, &sent[0].body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        sent[0].header("x-claudecron-signature"),
        format!("sha256={hex}"),
        "the signature is HMAC-SHA256 of the body with the channel's secret"
    );
    assert_eq!(sent[0].json()["alert"], "failure");

    let run = mcp.run_task(&chatty, 30);
    assert_eq!(notify_outcome(&mcp, id_of(&run))["preset"], "slack");
    let sent = received(&got, "/chat");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].json()["text"]
        .as_str()
        .unwrap_or("")
        .contains("chatty"));
    assert!(sent[0].header("x-claudecron-signature").is_empty());
    let log = server.stderr();
    assert!(!log.contains("k3y-s3cret"), "the secret is never logged");
}

/// The generic bodies the sink got at `path` whose `event` is `event`.
fn events(got: &Arc<Mutex<Vec<Got>>>, path: &str, event: &str) -> Vec<(Got, Value)> {
    received(got, path)
        .into_iter()
        .map(|g| {
            let body = g.json();
            (g, body)
        })
        .filter(|(_, b)| b["event"] == event)
        .collect()
}

/// Wait until `n` more runs of `task` with `status` finished after run `after`; returns the
/// newest run id.
fn more_runs(mcp: &Mcp, task: &str, status: &str, after: i64, n: usize) -> i64 {
    wait_until(&format!("{n} more {status} runs of {task}"), WAIT, || {
        let runs: Vec<i64> = mcp
            .finished_runs(task)
            .iter()
            .filter(|r| r["status"] == status && id_of(r) > after)
            .map(id_of)
            .collect();
        (runs.len() >= n).then(|| runs[runs.len() - 1])
    })
}

fn newest_run(mcp: &Mcp, task: &str) -> i64 {
    mcp.runs(task).last().map(id_of).unwrap_or(0)
}

#[test]
fn dead_man_reports_missed_once_keeps_quiet_across_a_restart_and_recovers_once() {
    let (port, got) = sink();
    let options = Options::default();
    let server = Server::start(options.clone());
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("claudecron-deadman");
    let code = dir.path().join("code");
    std::fs::write(&code, "1").unwrap();
    let before = chrono::Utc::now();
    // Fires every second and never succeeds: overdue 5 s after it was created.
    let id = mcp.add(json!({
        "name": "heartbeat", "type": "bash", "trigger": {"type": "interval", "every": "1s"},
        "command": format!("exit $(cat {})", code.display()),
        "expect": {"within": "5s"},
        "notify": {"url": format!("http://127.0.0.1:{port}/dm"), "on": ["missed"]}
    }));
    // grace: a success within 2 s of each fire time of a cron task (every second).
    let cron = mcp.add(json!({
        "name": "every-second", "type": "bash", "schedule": "* * * * * *", "command": "exit 3",
        "expect": {"grace": "2s"},
        "notify": {"url": format!("http://127.0.0.1:{port}/grace"), "on": "missed", "preset": "slack"}
    }));
    let task = mcp.task(&id);
    assert_eq!(task["expect"], json!({"within": "5s"}), "{task}");
    let start = ts(&task["deadman"]["window_start"]);
    assert!(start >= before - chrono::Duration::seconds(1), "{task}");
    assert_eq!(
        ts(&task["deadman"]["success_due_by"]),
        start + chrono::Duration::seconds(5),
        "{task}"
    );
    assert_eq!(task["deadman"]["overdue"], json!(false), "{task}");

    let (missed, body) = wait_until("the dead-man missed message", WAIT, || {
        events(&got, "/dm", "deadman_missed").into_iter().next()
    });
    let after = (missed.at - start).num_milliseconds();
    assert!(
        after >= 5000,
        "not before 5 s: {after} ms after the window start"
    );
    assert_eq!(body["alert"], "missed", "{body}");
    assert_eq!(body["task"]["name"], "heartbeat", "{body}");
    assert_eq!(body["expect"], json!({"within": "5s"}), "{body}");
    assert_eq!(
        ts(&body["overdue_since"]),
        start + chrono::Duration::seconds(5),
        "{body}"
    );
    let task = wait_until("the missed message's outcome", WAIT, || {
        let t = mcp.task(&id);
        (t["deadman"]["notify"]["status"] == "delivered").then_some(t)
    });
    let state = &task["deadman"];
    assert_eq!(state["overdue"], json!(true), "{task}");
    assert_eq!(state["alerted"], json!(true), "{task}");
    assert_eq!(state["notify"]["event"], "missed", "{task}");
    assert_eq!(state["last_success"], Value::Null, "{task}");
    assert!(!state.to_string().contains("127.0.0.1"), "no URL: {task}");
    // (Found by its words: fire times missed on a busy host would notify too.)
    let text = wait_until("the grace task's missed message", WAIT, || {
        received(&got, "/grace")
            .iter()
            .filter_map(|g| g.json()["text"].as_str().map(String::from))
            .find(|t| t.contains("no successful run"))
    });
    assert!(
        text.contains("every-second")
            && text.contains("no successful run since")
            && text.contains("within 2s of each fire time")
            && text.contains("(missed)"),
        "{text}"
    );

    // Failing on: no second message (three more failed runs after the first one was seen).
    more_runs(&mcp, &id, "failed", newest_run(&mcp, &id), 3);
    assert_eq!(events(&got, "/dm", "deadman_missed").len(), 1);

    // A restart while overdue neither sends it again nor forgets it. Down across fire times:
    // those are missed fires, which notify on their own (`fires_missed`).
    let last = newest_run(&mcp, &id);
    drop(mcp);
    let (status, _log, data) = server.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    std::thread::sleep(Duration::from_secs(2)); // stay down past two fire times
    let server = Server::start_in(options, data);
    let mcp = Mcp::new(&server);
    let fires_missed = wait_until("the missed fires' message", WAIT, || {
        events(&got, "/dm", "fires_missed").into_iter().next()
    });
    assert!(
        fires_missed.1["run"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not running"),
        "{}",
        fires_missed.1
    );
    more_runs(&mcp, &id, "failed", last, 3);
    assert_eq!(
        events(&got, "/dm", "deadman_missed").len(),
        1,
        "one missed message, also after the restart"
    );
    let grace_sent = received(&got, "/grace")
        .iter()
        .filter(|g| {
            g.json()["text"]
                .as_str()
                .unwrap_or("")
                .contains("no successful run")
        })
        .count();
    assert_eq!(grace_sent, 1, "the grace task too");
    let task = mcp.task(&id);
    assert_eq!(task["deadman"]["alerted"], json!(true), "{task}");
    assert_eq!(
        ts(&task["deadman"]["overdue_since"]),
        start + chrono::Duration::seconds(5),
        "{task}"
    );

    // It succeeds: one "back on time" message, not one per success.
    let last = newest_run(&mcp, &id);
    std::fs::write(&code, "0").unwrap();
    let (_, body) = wait_until("the recovered message", WAIT, || {
        events(&got, "/dm", "deadman_recovered").into_iter().next()
    });
    assert_eq!(body["alert"], "recovered", "{body}");
    assert_eq!(body["run"]["status"], "success", "{body}");
    let success = body["run"]["id"].as_i64().unwrap_or(0);
    assert_eq!(mcp.run(success)["status"], "success");
    assert!(success > last, "{body}");
    more_runs(&mcp, &id, "success", success, 3);
    assert_eq!(events(&got, "/dm", "deadman_recovered").len(), 1);
    assert_eq!(events(&got, "/dm", "deadman_missed").len(), 1);
    let task = mcp.task(&id);
    let state = &task["deadman"];
    assert_eq!(state["overdue"], json!(false), "{task}");
    assert_eq!(state["alerted"], json!(false), "{task}");
    assert!(ts(&state["last_success"]) > start, "{task}");
    assert!(
        ts(&state["success_due_by"]) > ts(&state["last_success"]),
        "{task}"
    );
    mcp.ok("claudecron_delete_task", json!({"taskId": cron}));
}

#[test]
fn dead_man_alerts_for_a_task_that_never_ran_also_while_everything_is_paused() {
    let (port, got) = sink();
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.ok(
        "claudecron_pause_all",
        json!({"reason": "maintenance window"}),
    );
    let id = mcp.add(json!({
        "name": "nightly-report", "type": "bash", "trigger": {"type": "manual"}, "command": "echo done",
        "expect": {"within": "3s"},
        "notify": {"url": format!("http://127.0.0.1:{port}/p"), "on": "missed", "preset": "discord"}
    }));
    // The state is there as soon as the task is: its window starts at its creation.
    let task = mcp.task(&id);
    let start = ts(&task["deadman"]["window_start"]);
    let created = ts(&task["created_at"]); // to the second
    assert!(
        start >= created && start - created < chrono::Duration::seconds(1),
        "{task}"
    );
    let sent = wait_until("the missed message while paused", WAIT, || {
        received(&got, "/p").into_iter().next()
    });
    assert!((sent.at - start).num_milliseconds() >= 3000);
    let text = sent.json()["content"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains("\"nightly-report\" has had no successful run since")
            && text.contains("a success at least every 3s")
            && text.contains("reason: claudecron is paused")
            && text.contains("maintenance window"),
        "{text}"
    );
    assert!(mcp.runs(&id).is_empty(), "nothing ran");
    assert_eq!(mcp.task(&id)["deadman"]["alerted"], json!(true));

    // After the resume, its first success: back on time, one message.
    mcp.ok("claudecron_resume_all", json!({}));
    let run = mcp.run_task(&id, 30);
    assert_eq!(run["status"], "success", "{run}");
    let back = wait_until("the back-on-time message", WAIT, || {
        received(&got, "/p").into_iter().nth(1)
    });
    let text = back.json()["content"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains(&format!("is back on time: run {} succeeded", id_of(&run)))
            && text.contains("done"),
        "{text}"
    );
    let task = wait_until("the back-on-time outcome", WAIT, || {
        let t = mcp.task(&id);
        (t["deadman"]["notify"]["event"] == "recovered").then_some(t)
    });
    assert_eq!(task["deadman"]["notify"]["status"], "delivered", "{task}");
    assert_eq!(task["deadman"]["overdue"], json!(false), "{task}");
    mcp.run_task(&id, 30);
    assert_eq!(
        received(&got, "/p").len(),
        2,
        "no message for a success on time"
    );
}
