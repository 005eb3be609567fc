//! `claudecron backup DEST` copies the live database while the server is serving and checks
//! the copy.

mod common;

use common::{Mcp, Server, TempDir};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

/// Run the binary with `args`, HOME = `home` and the database at `db`, nothing else set.
fn claudecron(args: &[&str], home: &Path, db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("CLAUDECRON_DB_PATH", db)
        .output()
        .unwrap_or_else(|e| panic!("run claudecron {args:?}: {e}"))
}

#[test]
fn backup_while_serving_gives_a_checked_copy_with_the_tasks_and_runs() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "backed-up", "type": "bash", "trigger": {"type": "manual"}, "command": "echo hi"}),
    );
    let run = mcp.run_task("backed-up", 10);
    assert_eq!(run["status"], "success", "{run}");

    let out_dir = TempDir::new("claudecron-backup");
    let dest = out_dir.path().join("copy.db");
    let db = server.dir.path().join("tasks.db");
    let output = claudecron(&["backup", dest.to_str().unwrap()], out_dir.path(), &db);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 tasks, 1 runs, integrity ok"), "{stdout}");

    // The copy is a database claudecron can open on its own.
    let check = claudecron(&["check"], out_dir.path(), &dest);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("integrity ok, 1 tasks"), "{text}");

    // The server kept serving throughout.
    let list = mcp.call("claudecron_list_tasks", json!({}));
    assert_eq!(list["structuredContent"]["count"], 1);

    // A directory destination gets a dated file.
    let output = claudecron(
        &["backup", out_dir.path().to_str().unwrap()],
        out_dir.path(),
        &db,
    );
    assert!(output.status.success());
    let dated = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("claudecron-"))
        .count();
    assert_eq!(dated, 1);
}
