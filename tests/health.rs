//! `/health` and task writes when the database cannot be written, against the real binary: the
//! database file deleted while serving (writes refused, no empty database created in its place),
//! made read-only, its disk full, locked by another process. `/health` makes a real write and
//! answers 503 naming the cause; `add_task` and `run_task` errors carry the same cause; the
//! server recovers once the cause is gone.
//!
//! Making a file read-only for a server that runs as root needs more than `chmod` (root ignores
//! permission bits): the read-only test sets the immutable attribute (`chattr +i`, which stops
//! writes even through descriptors opened earlier) and the full-disk test puts the database on a
//! small tmpfs. Both need root (CAP_LINUX_IMMUTABLE, CAP_SYS_ADMIN) and say so on stderr and
//! return when they cannot set that up.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn health(server: &Server) -> (u16, Value) {
    let resp = Req::get("/health").send(server.port);
    (resp.status, resp.json())
}

/// `add_task` of a manual task: the error text (the call must fail).
fn add_fails(mcp: &Mcp, name: &str) -> String {
    let result = mcp.call(
        "claudecron_add_task",
        json!({"name": name, "type": "bash", "command": "true", "trigger": {"type": "manual"}}),
    );
    assert_eq!(result["isError"], true, "{result}");
    text_of(&result)
}

fn manual(mcp: &Mcp, name: &str) -> String {
    mcp.add(json!({"name": name, "type": "bash", "command": "true", "trigger": {"type": "manual"}}))
}

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `/health` until it answers `status` (it writes to the database at most once a second while
/// that succeeds, so a new fault may take a second to show); the last body.
fn health_becomes(server: &Server, status: u16) -> Value {
    wait_until(
        &format!("/health to answer {status}"),
        Duration::from_secs(10),
        || {
            let (got, body) = health(server);
            (got == status).then_some(body)
        },
    )
}

/// Make every lane open its catalog's database connection (a lane opens it at its first
/// request): while another connection holds the write lock, each `/health` whose write check
/// is due keeps its lane busy for its lock wait, so more concurrent checks than lanes reach
/// every one of them.
fn open_every_lane(server: &Server) {
    let db = rusqlite::Connection::open(server.dir.path().join("tasks.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // the last write check is stale
    std::thread::scope(|s| {
        for _ in 0..12 {
            s.spawn(|| health(server));
        }
    });
    db.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn health_writes_to_the_database_and_says_ok() {
    let server = Server::start_default();
    let (status, body) = health(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    // The write is real: the health row holds the time of the last check.
    let db = rusqlite::Connection::open(server.dir.path().join("tasks.db")).unwrap();
    let checked: String = db
        .query_row("SELECT checked_at FROM health WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(checked.ends_with('Z'), "{checked}");
}

#[test]
fn a_deleted_database_file_is_503_and_refuses_writes_without_making_a_new_one() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let task = manual(&mcp, "before");
    // A worker that has never opened the database answers tool calls with a generic message
    // (src/mcp/mod.rs has no catalog to ask for the cause); a server that has been serving for
    // a while has opened it on every worker.
    open_every_lane(&server);
    let db = server.dir.path().join("tasks.db");
    std::fs::remove_file(&db).unwrap();

    let (status, body) = health(&server);
    assert_eq!(status, 503, "{body}");
    let problem = body["database"].as_str().unwrap_or("");
    assert!(problem.contains("was deleted"), "{body}");
    assert!(problem.contains("tasks.db"), "names the file: {body}");

    let text = add_fails(&mcp, "after");
    assert!(
        text.contains("was deleted") && text.contains("tasks.db"),
        "{text}"
    );
    // A run is refused too (the engine cannot record it), with the cause.
    let result = mcp.call("claudecron_run_task", json!({"taskId": task}));
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        text_of(&result).contains("was deleted"),
        "{}",
        text_of(&result)
    );
    // Every worker (each opens its own connection) answers the same, and none of them, nor a
    // run, created an empty database in its place.
    for _ in 0..12 {
        assert_eq!(health(&server).0, 503);
    }
    assert!(!db.exists(), "no new, empty database at the path");
    let log = server.stop();
    assert!(log.contains("was deleted"), "logged: {log}");
}

/// Clears the immutable attribute of the files when dropped, so the temp dir can be removed
/// whatever happened.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: Vec<PathBuf>) -> Option<Immutable> {
        let mut guard = Immutable(Vec::new());
        for f in files {
            if !run("chattr", &["+i", f.to_str()?]) {
                return None;
            }
            guard.0.push(f);
        }
        Some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = run("chattr", &["-i", f.to_str().unwrap_or("")]);
        }
    }
}

#[test]
fn a_read_only_database_is_503_and_writes_name_the_cause() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    manual(&mcp, "before");
    open_every_lane(&server);
    let db = server.dir.path().join("tasks.db");
    let wal = server.dir.path().join("tasks.db-wal");
    assert!(wal.exists(), "WAL mode: commits go to {}", wal.display());
    let Some(guard) = Immutable::set(vec![db, wal]) else {
        eprintln!(
            "skipped: chattr +i needs root (CAP_LINUX_IMMUTABLE) and a file system with attributes"
        );
        return;
    };

    let body = health_becomes(&server, 503);
    assert!(
        body["database"]
            .as_str()
            .unwrap_or("")
            .contains("read-only"),
        "{body}"
    );
    let text = add_fails(&mcp, "after");
    assert!(text.contains("read-only"), "{text}");
    assert!(!text.contains("internal error"), "{text}");

    drop(guard);
    health_becomes(&server, 200);
    manual(&mcp, "after");
    let log = server.stop();
    assert!(log.contains("read-only"), "logged: {log}");
}

/// A small tmpfs mounted on a directory; unmounted when dropped (the server must be gone).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.to_str()?,
            ],
        )
        .then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.0.to_str().unwrap_or("")]);
    }
}

#[test]
fn a_full_disk_is_503_and_writes_name_the_cause() {
    let dir = TempDir::new("claudecron-full");
    let Some(_mount) = Tmpfs::mount(dir.path(), "2m") else {
        eprintln!("skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    };
    let server = Server::start_in(Options::default(), TempDir(dir.path().to_path_buf()));
    let mcp = Mcp::new(&server);
    manual(&mcp, "before");
    // Fill the disk.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&[0u8; 512]);
        let _ = f.sync_all();
    }
    // A failed task write is reported by the next /health at once.
    let text = add_fails(&mcp, "after");
    assert!(text.contains("full"), "{text}");
    let (status, body) = health(&server);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["database"].as_str().unwrap_or("").contains("full"),
        "{body}"
    );

    std::fs::remove_file(&filler).unwrap();
    health_becomes(&server, 200);
    manual(&mcp, "after");
    // Dropped in reverse order: the server (its files), the mount, then the empty directory.
}

#[test]
fn a_database_locked_by_another_process_is_503_and_then_ok() {
    let server = Server::start_default();
    let db = rusqlite::Connection::open(server.dir.path().join("tasks.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = health_becomes(&server, 503);
    assert!(
        body["database"].as_str().unwrap_or("").contains("locked"),
        "{body}"
    );
    let started = std::time::Instant::now();
    assert_eq!(health(&server).0, 503, "the fault is checked again at once");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "/health answers quickly"
    );
    db.execute_batch("ROLLBACK").unwrap();
    health_becomes(&server, 200);
}
