//! `claudecron backup DEST` copies the live database while the server is serving and checks
//! the copy.

mod common;

use common::{Server, TempDir};
use serde_json::json;
use std::process::Command;

#[test]
fn backup_while_serving_gives_a_checked_copy_with_the_tasks_and_runs() {
    let server = Server::start_default();
    let sid = server.session();
    let added = server.call_tool(
        &sid,
        "claudecron_add_task",
        json!({"name": "backed-up", "type": "bash", "trigger": {"type": "manual"}, "command": "echo hi"}),
    );
    assert_eq!(added["isError"], false, "{added}");
    let run = server.call_tool(
        &sid,
        "claudecron_run_task",
        json!({"taskId": "backed-up", "wait_seconds": 10}),
    );
    assert_eq!(
        run["structuredContent"]["run"]["status"], "success",
        "{run}"
    );

    let out_dir = TempDir::new("claudecron-backup");
    let dest = out_dir.path().join("copy.db");
    let db = server.dir.path().join("tasks.db");
    let output = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["backup", dest.to_str().unwrap()])
        .env_clear()
        .env("HOME", out_dir.path())
        .env("CLAUDECRON_DB_PATH", &db)
        .output()
        .expect("run claudecron backup");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 tasks, 1 runs, integrity ok"), "{stdout}");

    // The copy is a database claudecron can open on its own.
    let check = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["check"])
        .env_clear()
        .env("HOME", out_dir.path())
        .env("CLAUDECRON_DB_PATH", &dest)
        .output()
        .expect("run claudecron check");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("integrity ok, 1 tasks"), "{text}");

    // The server kept serving throughout.
    let list = server.call_tool(&sid, "claudecron_list_tasks", json!({}));
    assert_eq!(list["structuredContent"]["count"], 1);

    // A directory destination gets a dated file.
    let output = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["backup", out_dir.path().to_str().unwrap()])
        .env_clear()
        .env("HOME", out_dir.path())
        .env("CLAUDECRON_DB_PATH", &db)
        .output()
        .expect("run claudecron backup into a directory");
    assert!(output.status.success());
    let dated = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("claudecron-"))
        .count();
    assert_eq!(dated, 1);
}
