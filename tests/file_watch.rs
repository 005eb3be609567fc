//! File-watch triggers against the real binary: real file operations on a temp directory (write,
//! append, save by rename, delete and recreate, paths that appear later, subdirectories, globs,
//! bursts), the runs they cause seen only through MCP tools over HTTP (`claudecron_add_task`,
//! `claudecron_get_history`, `claudecron_get_run`, …), and what the run's command saw in its
//! environment (`CLAUDECRON_FILE_PATH`, `_PATHS`, `_EVENT`), echoed into its output.
//!
//! A task is armed asynchronously after `add_task` returns; the tests wait for the server's
//! "task NAME armed on PATH" log line before touching files. Runs are awaited by polling the
//! history with a deadline; "no run happened" is a quiet window several times the debounce.
//! After a run, the self-trigger guard ignores the task's events for 1 s: tests wait that out
//! (`settle`) before the next change they expect to fire.
//!
//! Run with `cargo test --test file_watch -- --nocapture` to see the measured latency.

mod common;

use chrono::Utc;
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Debounce used by the tests' tasks.
const DEBOUNCE_MS: u64 = 200;
/// How long to wait for an expected run.
const RUN_TIMEOUT: Duration = Duration::from_secs(15);
/// A window with no expected run: several debounce periods.
const QUIET: Duration = Duration::from_millis(800);
/// Longer than the self-trigger guard's settle period (1 s) after a run.
const SETTLE: Duration = Duration::from_millis(1300);

/// The command tasks run: what the watcher told it, in a parseable shape.
const ECHO_ENV: &str = r#"printf 'PATH=%s\nEVENT=%s\nTRIGGER=%s\nPATHS<<\n%s\n>>\n' "$CLAUDECRON_FILE_PATH" "$CLAUDECRON_FILE_EVENT" "$CLAUDECRON_TRIGGER" "$CLAUDECRON_FILE_PATHS""#;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What only the file-watch tests ask of a session.
impl Mcp<'_> {
    /// Add a file-watch task and wait until it is armed; returns its id.
    fn add_watch(&self, name: &str, trigger: Value, command: &str) -> String {
        let before = self.armed_count(name);
        let id =
            self.add(json!({"name": name, "type": "bash", "trigger": trigger, "command": command}));
        self.wait_armed(name, before + 1);
        id
    }

    fn armed_count(&self, name: &str) -> usize {
        self.server
            .stderr()
            .matches(&format!("file-watch: task {name} armed on "))
            .count()
    }

    /// Wait for the `n`th "armed" log line of a task.
    fn wait_armed(&self, name: &str, n: usize) {
        wait_until(&format!("task {name} armed (#{n})"), RUN_TIMEOUT, || {
            (self.armed_count(name) >= n).then_some(())
        });
    }

    /// Wait until the task has at least `n` runs, all finished; returns them oldest first.
    fn wait_runs(&self, task: &str, n: usize) -> Vec<Value> {
        wait_until(
            &format!("{n} finished run(s) of {task}"),
            RUN_TIMEOUT,
            || {
                let runs = self.runs(task);
                (runs.len() >= n && runs.iter().all(is_terminal)).then_some(runs)
            },
        )
    }

    /// Let a quiet window pass and check the task still has exactly `n` runs.
    fn assert_runs_stay(&self, task: &str, n: usize, window: Duration, why: &str) -> Vec<Value> {
        std::thread::sleep(window);
        let runs = self.runs(task);
        assert_eq!(runs.len(), n, "{why}: runs of {task}: {runs:#?}");
        runs
    }

    /// What the ECHO_ENV command printed for a run.
    fn seen(&self, run: &Value) -> Seen {
        assert_eq!(run["status"], "success", "run: {run}");
        assert_eq!(run["trigger"], "file-watch", "run: {run}");
        Seen::parse(&self.output(id_of(run)))
    }
}

/// The environment a run's command saw.
#[derive(Debug)]
struct Seen {
    path: String,
    event: String,
    trigger: String,
    paths: Vec<String>,
}

impl Seen {
    fn parse(output: &str) -> Seen {
        let field = |key: &str| {
            output
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in output: {output:?}"))
                .to_string()
        };
        let paths = output
            .split("PATHS<<\n")
            .nth(1)
            .and_then(|rest| rest.split("\n>>").next())
            .unwrap_or_else(|| panic!("no PATHS in output: {output:?}"))
            .lines()
            .map(str::to_string)
            .collect();
        Seen {
            path: field("PATH="),
            event: field("EVENT="),
            trigger: field("TRIGGER="),
            paths,
        }
    }
}

fn settle() {
    std::thread::sleep(SETTLE);
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn file_watch(path: &Path) -> Value {
    json!({"type": "file-watch", "path": s(path), "debounce_ms": DEBOUNCE_MS})
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// Save the way editors, `sed -i` and deploy tools do: write a temp file beside the target,
/// then rename it over the target (a new inode at the same path).
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    let mut f = fs::File::create(&tmp).expect("create temp");
    f.write_all(text.as_bytes()).expect("write temp");
    f.sync_all().expect("fsync temp");
    drop(f);
    fs::rename(&tmp, path).expect("rename over");
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Write, then append, to a watched file: one run each, with the file's path and `modify`.
/// Prints the event → run latency (write to the run's start, less the debounce).
#[test]
fn write_and_append_each_fire_once_with_the_file_env() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-write");
    let file = dir.path().join("data.txt");
    fs::write(&file, "one\n").expect("write");
    let id = mcp.add_watch("write-append", file_watch(&file), ECHO_ENV);

    let before = Utc::now();
    fs::write(&file, "two\n").expect("write");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&file));
    assert_eq!(seen.event, "modify");
    assert_eq!(seen.trigger, "file-watch");
    assert_eq!(seen.paths, vec![s(&file)]);
    let latency = (ts(&runs[0]["started_at"]) - before).num_milliseconds();
    println!(
        "write → run start: {latency} ms (debounce {DEBOUNCE_MS} ms, so {} ms beyond it)",
        latency - DEBOUNCE_MS as i64
    );
    assert!(
        latency >= DEBOUNCE_MS as i64 - 5,
        "fired before the quiet period: {latency} ms"
    );
    assert!(latency < 3000, "event → run took {latency} ms");
    settle();

    append(&file, "three\n");
    let runs = mcp.wait_runs(&id, 2);
    let seen = mcp.seen(&runs[1]);
    assert_eq!(seen.path, s(&file));
    assert_eq!(seen.event, "modify");
    mcp.assert_runs_stay(&id, 2, QUIET, "one run per change");
}

/// A save by rename over the watched file fires (as `create`), and the watch survives the new
/// inode: a second save fires again.
#[test]
fn save_by_rename_fires_and_the_watch_survives_the_inode_change() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-rename");
    let file = dir.path().join("app.conf");
    fs::write(&file, "v1\n").expect("write");
    let id = mcp.add_watch("rename-save", file_watch(&file), ECHO_ENV);

    save_by_rename(&file, "v2\n");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&file));
    assert_eq!(seen.event, "create");
    // The temp file beside it is not the watched file.
    assert_eq!(seen.paths, vec![s(&file)]);
    settle();

    save_by_rename(&file, "v3\n");
    let runs = mcp.wait_runs(&id, 2);
    assert_eq!(mcp.seen(&runs[1]).path, s(&file));
    settle();
    append(&file, "v4\n");
    mcp.wait_runs(&id, 3);
    mcp.assert_runs_stay(&id, 3, QUIET, "one run per save");
}

/// Deleting the watched file fires `remove`; creating it again fires again.
#[test]
fn delete_then_recreate_fires_both_times() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-delete");
    let file = dir.path().join("state.json");
    fs::write(&file, "{}").expect("write");
    let id = mcp.add_watch("delete-recreate", file_watch(&file), ECHO_ENV);

    fs::remove_file(&file).expect("rm");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&file));
    assert_eq!(seen.event, "remove");
    settle();

    fs::write(&file, "{\"again\":true}").expect("write");
    let runs = mcp.wait_runs(&id, 2);
    let seen = mcp.seen(&runs[1]);
    assert_eq!(seen.path, s(&file));
    assert!(
        seen.event == "create" || seen.event == "modify",
        "recreate: {seen:?}"
    );
    mcp.assert_runs_stay(&id, 2, QUIET, "one run per change");
}

/// A path whose directories do not exist yet: nothing fires for other files on the way, and the
/// task fires once when `mkdir -p` and the file appear in one go.
#[test]
fn a_path_that_does_not_exist_yet_fires_when_created() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-missing");
    let target = dir.path().join("later/deeper/app.conf");
    let id = mcp.add_watch("missing-path", file_watch(&target), ECHO_ENV);
    // And a directory that does not exist yet, for *.csv files in it.
    let incoming = dir.path().join("later/incoming");
    let mut csv = file_watch(&incoming);
    csv["pattern"] = json!("*.csv");
    let csv_id = mcp.add_watch("missing-dir", csv, ECHO_ENV);
    assert!(
        mcp.task(&id).get("trigger_error").is_none(),
        "a missing path is not an error"
    );

    // Siblings on the way do not count.
    fs::create_dir_all(dir.path().join("later")).expect("mkdir");
    fs::write(dir.path().join("later/other.conf"), "x").expect("write");
    fs::write(dir.path().join("app.conf"), "x").expect("write");
    mcp.assert_runs_stay(&id, 0, QUIET, "only the target path counts");

    // The rest of the path and the file at once (the watcher has to catch up).
    fs::create_dir_all(target.parent().expect("parent")).expect("mkdir -p");
    fs::write(&target, "hello\n").expect("write");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&target));
    assert_eq!(seen.paths, vec![s(&target)]);
    mcp.assert_runs_stay(&id, 1, QUIET, "one run for the creation");

    // Now armed on the file itself.
    settle();
    append(&target, "more\n");
    let runs = mcp.wait_runs(&id, 2);
    assert_eq!(mcp.seen(&runs[1]).event, "modify");

    // The directory and its first files at once: what is already in it when the watcher gets
    // there still counts, through the pattern.
    mcp.assert_runs_stay(&csv_id, 0, Duration::ZERO, "nothing yet");
    fs::create_dir_all(&incoming).expect("mkdir");
    fs::write(incoming.join("a.csv"), "1,2\n").expect("write");
    fs::write(incoming.join("b.txt"), "x").expect("write");
    let runs = mcp.wait_runs(&csv_id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.paths, vec![s(&incoming.join("a.csv"))]);
    // `create` when the file was there before the watch (reported by the scan), `modify` when
    // the watch saw the write that followed the creation.
    assert!(seen.event == "create" || seen.event == "modify", "{seen:?}");
    mcp.assert_runs_stay(&csv_id, 1, QUIET, "one run for the new directory");
}

/// A watched file that is a symlink (nginx `sites-enabled/x -> ../sites-available/x`): editing
/// the file it points to fires, under the link's path; so does replacing the link.
#[test]
fn a_symlinked_file_fires_when_the_file_it_points_to_changes() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-symlink");
    let available = dir.path().join("sites-available");
    let enabled = dir.path().join("sites-enabled");
    fs::create_dir_all(&available).expect("mkdir");
    fs::create_dir_all(&enabled).expect("mkdir");
    fs::write(available.join("site"), "server {}\n").expect("write");
    fs::write(available.join("site2"), "server {}\n").expect("write");
    let link = enabled.join("site");
    std::os::unix::fs::symlink("../sites-available/site", &link).expect("ln -s");
    let id = mcp.add_watch("symlinked", file_watch(&link), ECHO_ENV);

    append(&available.join("site"), "# edited\n");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&link));
    assert_eq!(seen.event, "modify");
    settle();

    // Point the link elsewhere (ln -sfn: a new link renamed over the old one).
    let tmp = enabled.join(".site.tmp");
    std::os::unix::fs::symlink("../sites-available/site2", &tmp).expect("ln -s");
    fs::rename(&tmp, &link).expect("rename");
    let runs = mcp.wait_runs(&id, 2);
    assert_eq!(mcp.seen(&runs[1]).path, s(&link));
    settle();
    // Now the new file is the one that counts.
    append(&available.join("site"), "# old one\n");
    mcp.assert_runs_stay(&id, 2, QUIET, "the old file no longer counts");
    append(&available.join("site2"), "# new one\n");
    mcp.wait_runs(&id, 3);
}

/// Two tasks on one directory (one inotify watch, recursive wins): a file in a subdirectory
/// fires only the recursive task; a file at the top fires both.
#[test]
fn subdirectory_changes_fire_only_with_recursive() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-recursive");
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub/inner")).expect("mkdir");
    let mut deep = file_watch(&tree);
    deep["recursive"] = json!(true);
    let mut flat = file_watch(&tree);
    flat["recursive"] = json!(false);
    let deep_id = mcp.add_watch("tree-recursive", deep, ECHO_ENV);
    let flat_id = mcp.add_watch("tree-flat", flat, ECHO_ENV);

    let nested = tree.join("sub/inner/deep.txt");
    fs::write(&nested, "x").expect("write");
    let runs = mcp.wait_runs(&deep_id, 1);
    assert_eq!(mcp.seen(&runs[0]).path, s(&nested));
    mcp.assert_runs_stay(&flat_id, 0, QUIET, "non-recursive ignores subdirectories");
    settle();

    let top = tree.join("top.txt");
    fs::write(&top, "x").expect("write");
    let runs = mcp.wait_runs(&deep_id, 2);
    assert_eq!(mcp.seen(&runs[1]).path, s(&top));
    let runs = mcp.wait_runs(&flat_id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.path, s(&top));
    assert_eq!(seen.paths, vec![s(&top)]);
}

/// `pattern` without a `/` matches the file name at any depth; with a `/` it matches the path
/// relative to the watched directory (`*` not crossing `/`).
#[test]
fn pattern_filters_by_name_or_relative_path() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-pattern");
    let root = dir.path().join("conf");
    fs::create_dir_all(root.join("sites")).expect("mkdir");
    fs::create_dir_all(root.join("other")).expect("mkdir");
    let mut by_name = file_watch(&root);
    by_name["pattern"] = json!("*.conf");
    let mut by_path = file_watch(&root);
    by_path["pattern"] = json!("sites/*.conf");
    let name_id = mcp.add_watch("pattern-name", by_name, ECHO_ENV);
    let path_id = mcp.add_watch("pattern-path", by_path, ECHO_ENV);

    fs::write(root.join("notes.txt"), "x").expect("write");
    fs::write(root.join("sites/readme.md"), "x").expect("write");
    mcp.assert_runs_stay(&name_id, 0, QUIET, "*.conf ignores other names");
    mcp.assert_runs_stay(
        &path_id,
        0,
        Duration::ZERO,
        "sites/*.conf ignores other names",
    );

    let top = root.join("top.conf");
    fs::write(&top, "x").expect("write");
    let runs = mcp.wait_runs(&name_id, 1);
    assert_eq!(mcp.seen(&runs[0]).paths, vec![s(&top)]);
    mcp.assert_runs_stay(&path_id, 0, QUIET, "top.conf is not under sites/");
    settle();

    let other = root.join("other/x.conf");
    fs::write(&other, "x").expect("write");
    let runs = mcp.wait_runs(&name_id, 2);
    assert_eq!(mcp.seen(&runs[1]).path, s(&other));
    mcp.assert_runs_stay(&path_id, 0, QUIET, "other/x.conf is not under sites/");
    settle();

    let site = root.join("sites/app.conf");
    fs::write(&site, "x").expect("write");
    let runs = mcp.wait_runs(&path_id, 1);
    assert_eq!(mcp.seen(&runs[0]).paths, vec![s(&site)]);
    let runs = mcp.wait_runs(&name_id, 3);
    assert_eq!(mcp.seen(&runs[2]).path, s(&site));
}

/// 100 writes to 10 files within the debounce: one run listing the 10 paths once each.
#[test]
fn a_burst_of_100_writes_is_one_run() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-burst");
    let root = dir.path().join("out");
    fs::create_dir_all(&root).expect("mkdir");
    let id = mcp.add_watch("burst", file_watch(&root), ECHO_ENV);

    let files: Vec<PathBuf> = (0..10).map(|i| root.join(format!("f{i}.log"))).collect();
    let started = Instant::now();
    for i in 0..100 {
        append(&files[i % 10], &format!("line {i}\n"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(DEBOUNCE_MS),
        "the burst took longer than the debounce; the test cannot judge coalescing"
    );
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    let want: Vec<String> = files.iter().map(|f| s(f)).collect();
    assert_eq!(seen.paths, want, "first-seen order, each path once");
    assert_eq!(seen.path, s(&files[9]));
    assert_eq!(seen.event, "modify");
    mcp.assert_runs_stay(&id, 1, QUIET, "100 writes in a burst are one run");
}

/// Updating the trigger's path re-arms at once: the old file no longer fires, the new one does.
#[test]
fn update_rearms_on_the_new_path() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-update");
    let old = dir.path().join("old.conf");
    let new_dir = dir.path().join("elsewhere");
    fs::create_dir_all(&new_dir).expect("mkdir");
    let new = new_dir.join("new.conf");
    fs::write(&old, "x").expect("write");
    fs::write(&new, "x").expect("write");
    let id = mcp.add_watch("rearm", file_watch(&old), ECHO_ENV);

    let armed = mcp.armed_count("rearm");
    mcp.ok(
        "claudecron_update_task",
        json!({"taskId": id, "trigger": file_watch(&new)}),
    );
    mcp.wait_armed("rearm", armed + 1);
    assert!(
        server
            .stderr()
            .contains(&format!("task rearm armed on {}", s(&new))),
        "re-armed on the new path"
    );

    fs::write(&old, "changed").expect("write");
    mcp.assert_runs_stay(&id, 0, QUIET, "the old path is disarmed");
    fs::write(&new, "changed").expect("write");
    let runs = mcp.wait_runs(&id, 1);
    assert_eq!(mcp.seen(&runs[0]).path, s(&new));
}

/// Disabled: nothing; enabled again: fires; deleted: nothing (the command leaves a mark in a
/// file outside the watched directory, so a run of a deleted task would still show).
#[test]
fn nothing_fires_after_disable_or_delete() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-disable");
    let watched = dir.path().join("watched");
    fs::create_dir_all(&watched).expect("mkdir");
    let file = watched.join("f.txt");
    fs::write(&file, "x").expect("write");
    let marks = dir.path().join("marks");
    let command = format!("echo run >> '{}'", s(&marks));
    let id = mcp.add_watch("toggled", file_watch(&file), &command);
    let count_marks = || {
        fs::read_to_string(&marks)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };

    mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": id, "enabled": false}),
    );
    wait_until("disarmed", RUN_TIMEOUT, || {
        server
            .stderr()
            .contains("file-watch: task toggled disarmed")
            .then_some(())
    });
    fs::write(&file, "while disabled").expect("write");
    mcp.assert_runs_stay(&id, 0, QUIET, "a disabled task does not fire");

    let armed = mcp.armed_count("toggled");
    mcp.ok(
        "claudecron_toggle_task",
        json!({"taskId": id, "enabled": true}),
    );
    mcp.wait_armed("toggled", armed + 1);
    fs::write(&file, "enabled again").expect("write");
    mcp.wait_runs(&id, 1);
    assert_eq!(count_marks(), 1);

    let unwatched = format!("file-watch: no longer watching {}", s(&watched));
    let dropped = server.stderr().matches(&unwatched).count();
    mcp.ok("claudecron_delete_task", json!({"taskId": id}));
    wait_until("the watch dropped after delete", RUN_TIMEOUT, || {
        (server.stderr().matches(&unwatched).count() > dropped).then_some(())
    });
    fs::write(&file, "after delete").expect("write");
    std::thread::sleep(QUIET);
    assert_eq!(count_marks(), 1, "a deleted task does not fire");
}

/// A task whose command appends to its own watched file runs once per outside change, not in a
/// loop; after the guard's settle period an outside change fires it again.
#[test]
fn self_trigger_guard_stops_a_task_that_writes_its_own_file() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-guard");
    let file = dir.path().join("journal.log");
    fs::write(&file, "start\n").expect("write");
    let id = mcp.add_watch(
        "self-writer",
        file_watch(&file),
        r#"echo "ran $CLAUDECRON_RUN_ID" >> "$CLAUDECRON_FILE_PATH"; sleep 0.2; echo again >> "$CLAUDECRON_FILE_PATH""#,
    );

    append(&file, "outside 1\n");
    mcp.wait_runs(&id, 1);
    // Debounce + settle + margin, several times over: a loop would have run again by now.
    mcp.assert_runs_stay(
        &id,
        1,
        Duration::from_millis(2500),
        "its own writes do not fire it",
    );
    let text = fs::read_to_string(&file).expect("read");
    assert_eq!(
        text.matches("ran ").count(),
        1,
        "the command ran once: {text}"
    );

    append(&file, "outside 2\n");
    mcp.wait_runs(&id, 2);
    mcp.assert_runs_stay(&id, 2, Duration::from_millis(2000), "again exactly once");
}

/// One batch with a create, a modify and a remove in a watched directory: all three paths in
/// first-seen order, the last path and its event.
#[test]
fn env_names_the_batch_paths_the_last_path_and_its_event() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-env");
    let root = dir.path().join("inbox");
    fs::create_dir_all(&root).expect("mkdir");
    let existing = root.join("existing.txt");
    let old = root.join("old.txt");
    fs::write(&existing, "x").expect("write");
    fs::write(&old, "x").expect("write");
    let id = mcp.add_watch("env-batch", file_watch(&root), ECHO_ENV);

    let created = root.join("new.txt");
    fs::write(&created, "x").expect("write");
    append(&existing, "y");
    fs::remove_file(&old).expect("rm");
    let runs = mcp.wait_runs(&id, 1);
    let seen = mcp.seen(&runs[0]);
    assert_eq!(seen.paths, vec![s(&created), s(&existing), s(&old)]);
    assert_eq!(seen.path, s(&old));
    assert_eq!(seen.event, "remove");
    assert_eq!(seen.trigger, "file-watch");
}

/// The seed's `config-watcher` shape (default debounce 1 s) fires exactly once when the config
/// is saved the way vim does (rename the original to a backup, write a new file, drop the
/// backup), and the command sees the new content.
#[test]
fn seed_config_watcher_fires_once_on_an_editor_save() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-nginx");
    let etc = dir.path().join("etc/nginx");
    fs::create_dir_all(&etc).expect("mkdir");
    let conf = etc.join("nginx.conf");
    fs::write(&conf, "worker_processes 1;\n").expect("write");
    let before = mcp.armed_count("config-watcher");
    let id = mcp.add(json!({"name": "config-watcher", "type": "bash",
           "trigger": {"type": "file-watch", "path": s(&conf)},
           "command": "echo \"checking $CLAUDECRON_FILE_PATH\"; cat \"$CLAUDECRON_FILE_PATH\""}));
    mcp.wait_armed("config-watcher", before + 1);

    // vim's default save on Linux (backupcopy=auto with a hard-linked or special file, or
    // `:set backupcopy=no`): rename to backup, write anew, fsync, remove the backup.
    let backup = etc.join("nginx.conf~");
    fs::rename(&conf, &backup).expect("rename to backup");
    let mut f = fs::File::create(&conf).expect("create");
    f.write_all(b"worker_processes 4;\n").expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    fs::remove_file(&backup).expect("rm backup");
    // A swap file coming and going beside it does not count.
    fs::write(etc.join(".nginx.conf.swp"), "swap").expect("swap");
    fs::remove_file(etc.join(".nginx.conf.swp")).expect("rm swap");

    let runs = mcp.wait_runs(&id, 1);
    assert_eq!(runs[0]["status"], "success", "run: {}", runs[0]);
    assert_eq!(runs[0]["trigger"], "file-watch");
    let output = mcp.output(id_of(&runs[0]));
    assert!(
        output.contains(&format!("checking {}", s(&conf)))
            && output.contains("worker_processes 4;"),
        "output: {output}"
    );
    mcp.assert_runs_stay(
        &id,
        1,
        Duration::from_millis(2500),
        "one editor save is one run",
    );
}

/// A directory the server cannot read: the task shows a `trigger_error` naming it (not a dead
/// watcher); once readable, an update re-arms it, the error is gone and the task fires. The
/// server runs as `nobody` when the tests run as root (root reads everything).
#[test]
fn an_unreadable_directory_is_a_trigger_error_until_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let data = TempDir::new("cc-fw-perm-data");
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut options = Options::default();
    if root {
        const NOBODY: u32 = 65534;
        // SAFETY: chown(2) on a path we own, with a NUL-terminated copy of it.
        let c = std::ffi::CString::new(s(data.path())).expect("path");
        assert_eq!(unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) }, 0);
        options = options.uid(NOBODY);
    }
    let server = Server::start_in(options, data);
    let mcp = Mcp::new(&server);
    let dir = TempDir::new("cc-fw-perm");
    let locked = dir.path().join("locked");
    fs::create_dir_all(&locked).expect("mkdir");
    let file = locked.join("app.conf");
    fs::write(&file, "x").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::set_permissions(
        &locked,
        fs::Permissions::from_mode(if root { 0o700 } else { 0o000 }),
    )
    .expect("chmod");

    let id = mcp.add(
        json!({"name": "locked-out", "type": "bash", "trigger": file_watch(&file),
           "command": ECHO_ENV}),
    );
    let error = wait_until("a trigger_error on the task", RUN_TIMEOUT, || {
        mcp.task(&id)
            .get("trigger_error")
            .and_then(|e| e["error"].as_str().map(str::to_string))
    });
    assert!(
        error.contains(&s(&locked)) && error.contains("permission denied"),
        "error: {error}"
    );
    assert!(
        server.stderr().contains("is not armed"),
        "logged: {}",
        server.stderr()
    );

    // Fix the permissions, touch the task: armed, error cleared, and it fires.
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
    let armed = mcp.armed_count("locked-out");
    mcp.ok(
        "claudecron_update_task",
        json!({"taskId": id, "description": "permissions fixed"}),
    );
    mcp.wait_armed("locked-out", armed + 1);
    assert!(
        mcp.task(&id).get("trigger_error").is_none(),
        "error cleared: {}",
        mcp.task(&id)
    );
    append(&file, "y");
    let runs = mcp.wait_runs(&id, 1);
    assert_eq!(mcp.seen(&runs[0]).path, s(&file));
}

/// Tasks are armed at start-up from the database: after a restart the watch works again.
#[test]
fn a_restart_arms_the_stored_tasks() {
    let server = Server::start_default();
    let options = Options::default().auth(Auth::Tokens(server.tokens.clone()));
    let dir = TempDir::new("cc-fw-restart");
    let file = dir.path().join("watched.conf");
    fs::write(&file, "x").expect("write");
    let id = Mcp::new(&server).add_watch("survivor", file_watch(&file), ECHO_ENV);
    let (_, _, data) = server.terminate(Duration::from_secs(10));

    let server = Server::start_in(options, data);
    let mcp = Mcp::new(&server);
    mcp.wait_armed("survivor", 1);
    save_by_rename(&file, "y");
    let runs = mcp.wait_runs(&id, 1);
    assert_eq!(mcp.seen(&runs[0]).path, s(&file));
}
