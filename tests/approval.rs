//! Owner approval (`require_approval`) against the real binary, with signed approvals: an
//! approval is the owner's Ed25519 signature (`claudecron approve`, which reads the private key)
//! of a task's full content hash, checked by the server with the public key at every fire.
//! When the tests run as root the server runs as `nobody` with its data directory, and the key
//! pair is root's (the service layout): a process of the server's user cannot read the private
//! key, so `claudecron approve` run as that user fails, and root's `approve` writes the
//! database as its owner. Checked: a task added over MCP is pending and never fires
//! (every-second schedule, zero run rows while an approved twin fires several times) — also
//! with a forged approval row (right hash, no or someone else's signature) written straight
//! into the database; `approve --content <full hash>` makes it fire; a short hash, and
//! `approve` without `--content` and without a terminal, are refused; a command edit makes it
//! pending again; on a terminal `approve` shows the content and asks; hook and file events for
//! a pending task record nothing; without the public key nothing runs and the log says why; a
//! task from before the switch waits until approved; `pending` escapes bidi characters.
//! Waits are for conditions with deadlines.

mod common;

use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Generous: the test machine is small and shared.
const WAIT: Duration = Duration::from_secs(40);
const NOBODY: u32 = 65534;

fn root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The owner's key pair, made by `claudecron approve --init-key` in a directory of its own.
struct Keys {
    _dir: TempDir,
    private: PathBuf,
    public: PathBuf,
}

impl Keys {
    fn new() -> Keys {
        let dir = TempDir::new("cc-approval-keys");
        let keys = Keys {
            private: dir.path().join("approval.key"),
            public: dir.path().join("approval.pub"),
            _dir: dir,
        };
        let made = cli(&keys, None, &["approve", "--init-key"]);
        assert_eq!(made.status.code(), Some(0), "{}", describe(&made));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys.private), 0o600);
        assert_eq!(mode(&keys.public), 0o644);
        let again = cli(&keys, None, &["approve", "--init-key"]);
        assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("refusing to replace"),
            "{}",
            describe(&again)
        );
        keys
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}; stdout {}; stderr {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `claudecron ARGS` on the host with the key paths (and `--db` when given), with none of the
/// developer's settings, no terminal, as `uid` when given.
fn cli_as(keys: &Keys, db: Option<&Path>, args: &[&str], uid: Option<u32>) -> Output {
    command(keys, db, args, uid)
        .stdin(Stdio::null())
        .output()
        .expect("run claudecron")
}

fn command(keys: &Keys, db: Option<&Path>, args: &[&str], uid: Option<u32>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args);
    if let Some(db) = db {
        cmd.arg("--db").arg(db);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAUDECRON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", keys.private.parent().unwrap())
        .env("CLAUDECRON_REQUIRE_APPROVAL", "true")
        .env("CLAUDECRON_APPROVAL_KEY", &keys.private)
        .env("CLAUDECRON_APPROVAL_PUBLIC_KEY", &keys.public);
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    cmd
}

/// `claudecron ARGS --db …` on a terminal (a pseudo-terminal): waits for the y/N question,
/// answers `answer`, and returns the exit code and everything the terminal showed.
fn on_a_terminal(server: &Server, keys: &Keys, args: &[&str], answer: &str) -> (i32, String) {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    use std::sync::{Arc, Mutex};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty(3) with valid out-parameters and no name, termios or window size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned here alone.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut cmd = command(keys, Some(&db(server)), args, None);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().expect("run claudecron on a terminal");
    drop(cmd); // the parent's copies of the terminal's slave side
    let shown = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&shown);
    let mut reader = master.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    wait_until("the y/N question", WAIT, || {
        text().contains("[y/N]").then_some(())
    });
    (&master).write_all(answer.as_bytes()).unwrap();
    let status = wait_until("claudecron to end", WAIT, || child.try_wait().unwrap());
    drop(master);
    let _ = reading.join();
    (status.code().unwrap_or(-1), text())
}

fn cli(keys: &Keys, db: Option<&Path>, args: &[&str]) -> Output {
    cli_as(keys, db, args, None)
}

/// The server with approvals on and the key pair; as `nobody` with its data directory when
/// the tests run as root (so the private key is out of its reach, as in the service layout).
fn start(keys: &Keys, public_key: &Path) -> Server {
    let data = TempDir::new("cc-approval-data");
    let mut options = Options::default()
        .env("CLAUDECRON_REQUIRE_APPROVAL", "true")
        .env("CLAUDECRON_APPROVAL_KEY", &keys.private.to_string_lossy())
        .env(
            "CLAUDECRON_APPROVAL_PUBLIC_KEY",
            &public_key.to_string_lossy(),
        );
    if root() {
        std::os::unix::fs::chown(data.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
        options = options.uid(NOBODY);
    }
    Server::start_in(options, data)
}

fn db(server: &Server) -> PathBuf {
    server.dir.path().join("tasks.db")
}

fn host(server: &Server, keys: &Keys, args: &[&str]) -> Output {
    cli(keys, Some(&db(server)), args)
}

fn ok_host(server: &Server, keys: &Keys, args: &[&str]) -> String {
    succeeded(&host(server, keys, args), &format!("claudecron {args:?}"))
}

/// The ids `claudecron pending --json` lists, with their full content hashes.
fn pending(server: &Server, keys: &Keys) -> Vec<(String, String)> {
    let out: Value = serde_json::from_str(&ok_host(server, keys, &["pending", "--json"]))
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

fn hash_of(server: &Server, keys: &Keys, id: &str) -> String {
    pending(server, keys)
        .into_iter()
        .find(|(i, _)| i == id)
        .unwrap_or_else(|| panic!("{id} is not pending"))
        .1
}

/// Approve tasks the signed way: each with the full hash `pending` shows.
fn approve(server: &Server, keys: &Keys, ids: &[&str]) {
    let hashes: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.to_string(), hash_of(server, keys, id)))
        .collect();
    let mut args = vec!["approve"];
    for (id, hash) in &hashes {
        args.extend([id.as_str(), "--content", hash.as_str()]);
    }
    let out = ok_host(server, keys, &args);
    assert!(out.contains("approved task"), "{out}");
}

/// Wait until `task` has `n` more successful runs than now (an approved twin ticking).
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

/// Write an approval row straight into the database, as any process of the server's user can.
fn forge(server: &Server, task: &str, hash: &str, signature: Option<&str>) {
    let conn = rusqlite::Connection::open(db(server)).expect("open the db");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "INSERT OR REPLACE INTO task_approvals (task_id, content_sha256, approved_at, approved_by, signature)
         VALUES (?1, ?2, '2026-01-01T00:00:00.000Z', 'claudecron approve', ?3)",
        rusqlite::params![task, hash, signature],
    )
    .expect("forge a row");
}

fn signature_of(server: &Server, task: &str) -> String {
    let conn = rusqlite::Connection::open(db(server)).expect("open the db");
    conn.query_row(
        "SELECT signature FROM task_approvals WHERE task_id = ?1",
        [task],
        |r| r.get(0),
    )
    .expect("a signed row")
}

#[test]
fn a_task_written_over_mcp_runs_only_after_the_owner_signs_its_full_content() {
    let keys = Keys::new();
    let server = start(&keys, &keys.public);
    let mcp = Mcp::new(&server);
    let every_second = json!({"type": "interval", "every": "1s"});
    assert!(
        !server.stderr().contains("could forge") || !root(),
        "the server (nobody) cannot read root's private key: {}",
        server.stderr()
    );

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
    let how = format!("claudecron approve {ticker} --content <full hash>");
    let text = added["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("PENDING APPROVAL")
            && text.contains(&how)
            && text.contains("claudecron pending"),
        "the tool result says approval is pending and how it is given: {text}"
    );
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

    // `claudecron pending` shows the content and the full hash, and the command to run.
    let hash = hash_of(&server, &keys, &ticker);
    assert_eq!(hash.len(), 64);
    let listing = ok_host(&server, &keys, &["pending"]);
    let line = format!("claudecron approve {ticker} --content {hash}");
    assert!(
        listing.contains("ticker") && listing.contains("echo tick") && listing.contains(&line),
        "{listing}"
    );

    // An approved twin ticks.
    let twin = mcp
        .add(json!({"name": "twin", "type": "bash", "trigger": every_second, "command": "true"}));
    approve(&server, &keys, &[&twin]);
    assert_eq!(
        pending(&server, &keys),
        vec![(ticker.clone(), hash.clone())]
    );
    ticks(&mcp, &twin, 2);

    // Forged rows — the right hash with no signature, with garbage, with the twin's real
    // signature (another task's) — approve nothing: the pending task never fires.
    let twin_signature = signature_of(&server, &twin);
    for signature in [None, Some("00".repeat(64)), Some(twin_signature)] {
        forge(&server, &ticker, &hash, signature.as_deref());
        ticks(&mcp, &twin, 3);
        assert!(
            mcp.history(&ticker).is_empty(),
            "a forged approval ({signature:?}) made it fire: {:?}",
            mcp.history(&ticker)
        );
        assert_eq!(mcp.task(&ticker)["pending_approval"], json!(true));
    }
    assert_eq!(pending(&server, &keys).len(), 1);

    // A manual run is refused with the reason and the way out.
    let refused = mcp.call("claudecron_run_task", json!({"taskId": ticker}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("pending_approval") && text.contains(&how),
        "{text}"
    );

    // A short hash is refused; so is approving without --content off a terminal (one task or
    // --all), with the message naming --content. Nothing is approved by any of them.
    let short = host(
        &server,
        &keys,
        &["approve", &ticker, "--content", &hash[..12]],
    );
    assert_eq!(short.status.code(), Some(2), "{}", describe(&short));
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("64 hex"),
        "{}",
        describe(&short)
    );
    for args in [vec!["approve", ticker.as_str()], vec!["approve", "--all"]] {
        let blind = host(&server, &keys, &args);
        assert_eq!(blind.status.code(), Some(2), "{}", describe(&blind));
        let err = String::from_utf8_lossy(&blind.stderr);
        assert!(
            err.contains("--content")
                && err.contains("terminal")
                && err.contains("nothing was approved"),
            "{err}"
        );
    }
    // The server's own user (any run) cannot sign: the private key is root's.
    if root() {
        let run_user = cli_as(
            &keys,
            Some(&db(&server)),
            &["approve", &ticker, "--content", &hash],
            Some(NOBODY),
        );
        assert_eq!(run_user.status.code(), Some(1), "{}", describe(&run_user));
        assert!(
            String::from_utf8_lossy(&run_user.stderr).contains("cannot be read"),
            "{}",
            describe(&run_user)
        );
    }
    assert_eq!(pending(&server, &keys).len(), 1);
    assert!(mcp.history(&ticker).is_empty());

    // The owner signs the full hash: it fires.
    let out = ok_host(&server, &keys, &["approve", &ticker, "--content", &hash]);
    assert!(out.contains(&hash), "{out}");
    wait_until("the approved task fires", WAIT, || {
        (successes(&mcp, &ticker) >= 1).then_some(())
    });
    let view = mcp.task(&ticker);
    assert_eq!(view["pending_approval"], json!(false), "{view}");
    assert_eq!(view["approval"]["state"], "approved", "{view}");
    assert_eq!(view["approval"]["approved_by"], "claudecron approve");
    assert!(pending(&server, &keys).is_empty());
    if root() {
        // root's `approve` wrote as the database's owner: no file of the server's is root's.
        for entry in std::fs::read_dir(server.dir.path()).unwrap() {
            let entry = entry.unwrap();
            assert_eq!(
                entry.metadata().unwrap().uid(),
                NOBODY,
                "{} is not the server's",
                entry.path().display()
            );
        }
    }

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
    let stale = host(&server, &keys, &["approve", &ticker, "--content", &hash]);
    assert_eq!(stale.status.code(), Some(1), "{}", describe(&stale));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("has changed"));
    assert_eq!(pending(&server, &keys).len(), 1);
    approve(&server, &keys, &[&ticker]);
    wait_until("the re-approved command runs", WAIT, || {
        mcp.finished_runs(&ticker)
            .iter()
            .any(|r| mcp.output(id_of(r)).contains("changed"))
            .then_some(())
    });
}

#[test]
fn hook_and_file_events_for_a_pending_task_record_nothing() {
    let keys = Keys::new();
    let server = start(&keys, &keys.public);
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-approval-watch");
    if root() {
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    }
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
    approve(&server, &keys, &[&hook_twin, &watch_twin]);

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
    approve(&server, &keys, &[&hook_pending, &watch_pending]);
    assert!(pending(&server, &keys).is_empty());
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

/// The engine's cursor of a task (the last fire time dealt with), from the database.
fn cursor(server: &Server, task: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let conn = rusqlite::Connection::open(db(server)).ok()?;
    let text: String = conn
        .query_row(
            "SELECT cursor FROM task_state WHERE task_id = ?1",
            [task],
            |r| r.get(0),
        )
        .ok()?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[test]
fn without_the_public_key_nothing_runs_and_the_log_says_why() {
    let made = Keys::new();
    let missing = made.public.with_file_name("missing.pub");
    // The server and the host commands look for the public key where there is none.
    let keys = Keys {
        public: missing.clone(),
        ..made
    };
    let server = start(&keys, &missing);
    let mcp = Mcp::new(&server);
    let log = server.stderr();
    assert!(
        log.contains(&missing.display().to_string())
            && log.contains("every task is pending approval and nothing runs"),
        "{log}"
    );
    let id = mcp.add(json!({"name": "t", "type": "bash", "trigger": {"type": "interval", "every": "1s"}, "command": "echo hi"}));
    // The owner signs it (`approve` warns that the server cannot check it) ...
    let hash = hash_of(&server, &keys, &id);
    let out = host(&server, &keys, &["approve", &id, "--content", &hash]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no readable approval public key"),
        "{}",
        describe(&out)
    );
    // ... yet fire times pass (the cursor moves) and nothing runs.
    let signed_at = chrono::Utc::now();
    wait_until("three fire times dealt with", WAIT, || {
        cursor(&server, &id)
            .filter(|c| *c > signed_at + chrono::Duration::seconds(3))
            .map(|_| ())
    });
    assert!(mcp.history(&id).is_empty(), "{:?}", mcp.history(&id));
    let view = mcp.task(&id);
    assert_eq!(view["pending_approval"], json!(true), "{view}");
    assert!(
        view["approval"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("public key"),
        "{view}"
    );
    let refused = mcp.call("claudecron_run_task", json!({"taskId": id}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
}

#[test]
fn tasks_written_while_approval_was_off_wait_for_the_owner_once_it_is_switched_on() {
    let keys = Keys::new();
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = mcp.add(json!({"name": "old", "type": "bash", "trigger": {"type": "manual"}, "command": "echo old"}));
    assert!(mcp.task(&id).get("pending_approval").is_none());
    assert_eq!(mcp.run_task(&id, 30)["status"], "success");
    let (_, _, dir) = server.terminate(Duration::from_secs(10));
    // Same user as the server here, so the private key is readable: the log warns loudly.
    let options = Options::default()
        .env("CLAUDECRON_REQUIRE_APPROVAL", "true")
        .env("CLAUDECRON_APPROVAL_KEY", &keys.private.to_string_lossy())
        .env(
            "CLAUDECRON_APPROVAL_PUBLIC_KEY",
            &keys.public.to_string_lossy(),
        );
    let server = Server::start_in(options, dir);
    assert!(
        server.stderr().contains("could forge approvals"),
        "{}",
        server.stderr()
    );
    let mcp = Mcp::new(&server);
    assert_eq!(mcp.task(&id)["pending_approval"], json!(true));
    let refused = mcp.call("claudecron_run_task", json!({"taskId": id}));
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert_eq!(mcp.history(&id).len(), 1, "only the run from before");
    assert_eq!(pending(&server, &keys).len(), 1);
    approve(&server, &keys, &[&id]);
    assert_eq!(mcp.run_task(&id, 30)["status"], "success");
    assert!(pending(&server, &keys).is_empty());
}

/// `pending` shows what a control or bidi character hides as an escape.
#[test]
fn pending_escapes_bidi_and_control_characters() {
    let keys = Keys::new();
    let server = start(&keys, &keys.public);
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "trojan", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo safe \u{202e}# \u{2066}hidden\u{2069}\u{7f}"}),
    );
    let listing = ok_host(&server, &keys, &["pending"]);
    for bad in ['\u{202e}', '\u{2066}', '\u{2069}', '\u{7f}'] {
        assert!(!listing.contains(bad), "{bad:?} shown raw: {listing}");
    }
    assert!(
        listing.contains("\\u202e") && listing.contains("\\u2066"),
        "{listing}"
    );
    let json_out = ok_host(&server, &keys, &["pending", "--json"]);
    assert!(!json_out.contains('\u{202e}'), "{json_out}");
    let parsed: Value = serde_json::from_str(&json_out).unwrap();
    assert!(parsed["pending"][0]["content"]["command"]
        .as_str()
        .unwrap()
        .contains('\u{202e}'));
}

/// On a terminal, `approve TASK` and `approve --all` show exactly the content they sign (its
/// bidi characters escaped) with the full hash and ask; anything but yes approves nothing.
#[test]
fn on_a_terminal_approve_shows_the_content_and_asks() {
    let keys = Keys::new();
    let server = start(&keys, &keys.public);
    let mcp = Mcp::new(&server);
    let one = mcp.add(
        json!({"name": "one", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo first \u{202e}txt.exe"}),
    );
    let two = mcp.add(
        json!({"name": "two", "type": "bash", "trigger": {"type": "manual"},
        "command": "echo second"}),
    );
    let hash = hash_of(&server, &keys, &one);

    let (code, shown) = on_a_terminal(&server, &keys, &["approve", &one], "n\n");
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("echo first \\u202etxt.exe")
            && shown.contains(&hash)
            && shown.contains("not confirmed"),
        "{shown}"
    );
    assert!(!shown.contains('\u{202e}'), "{shown}");
    assert_eq!(pending(&server, &keys).len(), 2, "a no approves nothing");

    let (code, shown) = on_a_terminal(&server, &keys, &["approve", &one], "y\n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("approved task \"one\""), "{shown}");
    assert_eq!(pending(&server, &keys).len(), 1);
    assert_eq!(mcp.run_task(&one, 30)["status"], "success");

    let (code, shown) = on_a_terminal(&server, &keys, &["approve", "--all"], "yes\n");
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("echo second") && shown.contains("approved task \"two\""),
        "{shown}"
    );
    assert!(pending(&server, &keys).is_empty());
    assert_eq!(mcp.run_task(&two, 30)["status"], "success");
}
