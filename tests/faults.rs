//! Faults under the real binary: the disk fills up while a run is going. The run's end cannot
//! be written then; it must not stay `running` for good — the engine records it as soon as the
//! store takes writes again, saying what happened.

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Lazily unmounts a tmpfs when dropped (declared after the server, so it goes first).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mounted(dir.to_path_buf()))
}

/// Write zeros until the file system says it is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.flush();
}

#[test]
fn a_run_whose_end_cannot_be_written_is_recorded_once_the_disk_has_room() {
    let dir = TempDir::new("cc-faults-full");
    let Some(mount) = mount_tmpfs(dir.path(), "3m") else {
        // Only where the platform truly cannot: mounting needs root (CI runs as root).
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); the full-disk test did not run");
        return;
    };
    let server = Server::start_in(Options::default(), dir);
    let _unmount = mount;
    let mcp = Mcp::new(&server);
    let task = mcp.add(
        json!({"name": "writer", "type": "bash", "trigger": {"type": "manual"},
        "command": "sleep 2; head -c 300000 /dev/zero | tr '\\0' x"}),
    );
    let run = id_of(&mcp.run_task(&task, 0));
    let filler = server.dir.path().join("filler");
    fill(&filler);
    // The run ends while the disk is full: its end is refused by the store.
    wait_until(
        "the server logs that the end could not be recorded",
        Duration::from_secs(30),
        || {
            server
                .stderr()
                .contains(&format!("run {run} ended"))
                .then_some(())
        },
    );
    assert_eq!(
        mcp.run(run)["status"],
        "running",
        "while the disk is full the row cannot change"
    );
    std::fs::remove_file(&filler).expect("free the disk");
    let ended = mcp.wait_finished(run, Duration::from_secs(30));
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["error"].as_str().unwrap_or("");
    assert!(
        error.contains("ended success") && error.contains("could not be saved"),
        "the reason says what happened: {error}"
    );
    // And the server goes on recording runs.
    let again = mcp.run_task(&task, 30);
    assert_eq!(again["status"], "success", "{again}");
}
