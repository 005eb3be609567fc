//! The operator commands against the real binary: a live `claudecron serve` on a free loopback
//! port, driven by `claudecron tasks|task|runs|logs|run|cancel|enable|disable` (and
//! `import-crontab`, `export`) as a person or a script would run them; `--json` answers parsed,
//! exit codes checked, the server-down message, and `logs --follow` seeing lines as they come.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous: the test machine is small and shared.
const RUN_WAIT: Duration = Duration::from_secs(60);

/// `claudecron ARGS` with only our settings (nothing from the developer's environment).
fn cli_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAUDECRON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "HOME",
        std::env::temp_dir().join("claudecron-cli-ops-nohome"),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Run the CLI against `server` (URL and token by flag); its output.
fn cli(server: &Server, args: &[&str]) -> Output {
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", &url, "--token", server.token()]);
    cli_command(&all, &[]).output().expect("run claudecron")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The CLI exited with `code`; its stdout.
fn expect_code(out: &Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// `--json` output parsed (fails the test when it is not JSON).
fn json_of(out: &Output, what: &str) -> Value {
    let text = expect_code(out, 0, what);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{text}"))
}

#[test]
fn every_task_and_run_command_against_a_live_server() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "nightly", "type": "bash", "schedule": "0 9 1 * 1",
                   "timezone": "Europe/Berlin", "command": "echo nightly"}),
    );
    mcp.add(
        json!({"name": "hello", "type": "bash", "trigger": {"type": "manual"},
                   "command": "echo hello from the cli"}),
    );
    mcp.add(
        json!({"name": "broken", "type": "bash", "trigger": {"type": "manual"},
                   "command": "echo about to fail; exit 3"}),
    );
    mcp.add(
        json!({"name": "sleeper", "type": "bash", "trigger": {"type": "manual"},
                   "command": "sleep 60"}),
    );

    // tasks: every task, with the cron task's next run in its zone.
    let tasks = json_of(&cli(&server, &["tasks", "--json"]), "tasks --json");
    let names: Vec<&str> = tasks["tasks"]
        .as_array()
        .expect("tasks array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["broken", "hello", "nightly", "sleeper"]);
    let nightly = &tasks["tasks"][2];
    assert!(
        nightly["next_run"]["local"]
            .as_str()
            .is_some_and(|t| t.ends_with(":00+01:00") || t.ends_with(":00+02:00")),
        "next run in Europe/Berlin: {nightly}"
    );
    let table = expect_code(&cli(&server, &["tasks"]), 0, "tasks");
    assert!(table.starts_with("NAME"), "a header row: {table}");
    assert!(
        table.contains("At 09:00, on day 1 or Monday"),
        "trigger in words: {table}"
    );

    // task: in full.
    let task = json_of(&cli(&server, &["task", "nightly", "--json"]), "task --json");
    assert_eq!(task["task"]["command"], "echo nightly");
    assert_eq!(task["task"]["next_runs"].as_array().map(Vec::len), Some(5));
    let text = expect_code(&cli(&server, &["task", "nightly"]), 0, "task");
    assert!(
        text.contains("next runs") && text.contains("Europe/Berlin"),
        "{text}"
    );

    // run --wait: the output, then exit 0 for success and 1 for a failed run.
    let out = cli(&server, &["run", "hello", "--wait"]);
    assert_eq!(
        expect_code(&out, 0, "run hello --wait"),
        "hello from the cli\n"
    );
    assert!(stderr(&out).contains("success"), "{}", stderr(&out));
    let out = cli(&server, &["run", "broken", "--wait", "--json"]);
    let text = expect_code(&out, 1, "run broken --wait --json");
    let last: Value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("JSON lines: {text}"));
    assert_eq!(last["run"]["status"], "failed");
    assert_eq!(last["run"]["exit_code"], 3);
    assert!(stderr(&out).contains("failed, exit 3"), "{}", stderr(&out));

    // runs: filtered by task and status, newest first.
    let runs = json_of(
        &cli(
            &server,
            &[
                "runs", "hello", "--status", "success", "--limit", "5", "--json",
            ],
        ),
        "runs --json",
    );
    let rows = runs["runs"].as_array().expect("runs array");
    assert_eq!(rows.len(), 1, "{runs}");
    assert_eq!(rows[0]["status"], "success");
    let hello_run = rows[0]["id"].as_i64().expect("run id");
    let all = expect_code(&cli(&server, &["runs"]), 0, "runs");
    assert!(all.contains("broken") && all.contains("failed"), "{all}");

    // logs: the whole output, plain and as JSON.
    let run_id = hello_run.to_string();
    let out = cli(&server, &["logs", &run_id]);
    assert_eq!(expect_code(&out, 0, "logs"), "hello from the cli\n");
    let logs = json_of(&cli(&server, &["logs", &run_id, "--json"]), "logs --json");
    assert_eq!(logs["run"]["output"], "hello from the cli\n");

    // disable / enable: the server's state changes.
    let off = json_of(&cli(&server, &["disable", "nightly", "--json"]), "disable");
    assert_eq!(off["task"]["enabled"], false);
    assert_eq!(mcp.task("nightly")["enabled"], false);
    let text = expect_code(&cli(&server, &["enable", "nightly"]), 0, "enable");
    assert!(text.contains("nightly enabled"), "{text}");
    assert_eq!(mcp.task("nightly")["enabled"], true);

    // run (no wait) then cancel.
    let started = json_of(&cli(&server, &["run", "sleeper", "--json"]), "run sleeper");
    let sleeper = started["run"]["id"].as_i64().expect("run id");
    wait_until("the sleeper to run", RUN_WAIT, || {
        (mcp.run(sleeper)["status"] == "running").then_some(())
    });
    let cancelled = json_of(
        &cli(&server, &["cancel", &sleeper.to_string(), "--json"]),
        "cancel",
    );
    assert_eq!(cancelled["run"]["status"], "cancelled");

    // Not found: exit 1 with the server's message; usage errors: exit 2.
    let out = cli(&server, &["task", "no-such-task"]);
    expect_code(&out, 1, "task no-such-task");
    assert!(stderr(&out).contains("no-such-task"), "{}", stderr(&out));
    let out = cli(&server, &["logs", "999999"]);
    expect_code(&out, 1, "logs of a missing run");
    let out = cli(&server, &["runs", "--limit", "0"]);
    expect_code(&out, 2, "runs --limit 0");
    assert!(stderr(&out).contains("from 1 to 500"), "{}", stderr(&out));
    let out = cli(&server, &["logs", "abc"]);
    expect_code(&out, 2, "logs abc");
}

#[test]
fn url_and_token_come_from_the_config_and_token_file() {
    let server = Server::start(Options::default().auth(Auth::TokenFile));
    let token_file = server.dir.path().join("token");
    let port = server.port.to_string();
    let env = [
        ("CLAUDECRON_PORT", port.as_str()),
        (
            "CLAUDECRON_TOKEN_FILE",
            token_file.to_str().expect("utf-8 path"),
        ),
    ];
    let out = cli_command(&["tasks", "--json"], &env)
        .output()
        .expect("run");
    let tasks = json_of(&out, "tasks with config and token file");
    assert_eq!(tasks["tasks"], json!([]));
}

#[test]
fn server_down_and_wrong_token_have_their_own_exit_codes() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli_command(&["tasks", "--url", &url, "--token", "x"], &[])
        .output()
        .expect("run");
    expect_code(&out, 3, "tasks with no server");
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the claudecron server") && err.contains(&url),
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    let server = Server::start_default();
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = cli_command(
        &[
            "tasks",
            "--url",
            &url,
            "--token",
            "not-the-token-at-all-000",
        ],
        &[],
    )
    .output()
    .expect("run");
    expect_code(&out, 4, "tasks with a wrong token");
    let err = stderr(&out);
    assert!(err.contains("refused the token"), "{err}");
    assert!(
        !err.contains("not-the-token-at-all-000"),
        "the token is never printed: {err}"
    );
}

#[test]
fn logs_follow_prints_lines_as_the_run_writes_them() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "ticker", "type": "bash", "trigger": {"type": "manual"},
                   "command": "for i in $(seq 1 15); do echo tick $i; sleep 0.3; done"}),
    );
    let run = mcp.run_task("ticker", 0);
    let id = id_of(&run).to_string();
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut child = cli_command(
        &[
            "logs",
            &id,
            "--follow",
            "--url",
            &url,
            "--token",
            server.token(),
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn logs --follow");
    let started = Instant::now();
    let mut arrivals: Vec<(Duration, String)> = Vec::new();
    let reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    for line in reader.lines() {
        let line = line.expect("read a line");
        arrivals.push((started.elapsed(), line));
    }
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "logs --follow: {status}; stderr: {err}");
    let lines: Vec<&str> = arrivals.iter().map(|(_, l)| l.as_str()).collect();
    let expected: Vec<String> = (1..=15).map(|i| format!("tick {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
    assert!(
        err.contains("success"),
        "the end is reported on stderr: {err}"
    );
    // The lines came while the run was writing them (about 4.5 s), not all at its end.
    let first = arrivals[0].0;
    let last = arrivals[arrivals.len() - 1].0;
    assert!(
        last - first >= Duration::from_millis(1500),
        "lines arrived as they came: first at {first:?}, last at {last:?}"
    );
    let finished = ts(&mcp.run(id_of(&run))["finished_at"]);
    let first_seen_before_end = arrivals
        .iter()
        .filter(|(t, _)| *t + Duration::from_millis(1000) < last)
        .count();
    assert!(
        first_seen_before_end >= 3,
        "several lines were printed well before the run ended at {finished}: {arrivals:?}"
    );
}

/// The UTC fire times `claudecron preview-schedule EXPR --tz TZ --count N` prints.
fn preview_utc(expr: &str, tz: &str, count: usize) -> Vec<String> {
    let out = cli_command(
        &[
            "preview-schedule",
            expr,
            "--tz",
            tz,
            "--count",
            &count.to_string(),
        ],
        &[],
    )
    .output()
    .expect("run preview-schedule");
    let text = expect_code(&out, 0, "preview-schedule");
    text.lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.trim_end().strip_suffix(')'))
        .filter_map(|l| l.rsplit_once('(').map(|(_, utc)| utc.to_string()))
        .collect()
}

/// `later` (computed a moment after `earlier`) is the same list, or moved on by one fire time
/// that came due in between.
fn same_fire_times(earlier: &[String], later: &[String]) -> bool {
    earlier == later || (earlier.len() == later.len() && earlier[1..] == later[..later.len() - 1])
}

const CRONTAB: &str = "\
# m h dom mon dow   command
MAILTO=ops@example.com
GREETING = \"hello there\"

# Say hello every ten minutes
*/10 * * * * echo \"$GREETING\"
CRON_TZ=America/New_York
30 2 * * 0 /opt/scripts/backup.sh --full
0 9 1 * mon certbot renew -q
@weekly /opt/scripts/backup.sh --incremental
@monthly /opt/scripts/backup.sh --incremental
@reboot /usr/local/bin/start-agent
15 1 * 3,11 0 tr a-z A-Z%hello%world
0 9 */2 * 1 odd-days-and-mondays
";

#[test]
fn import_crontab_creates_tasks_that_fire_when_cron_would() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "backup", "type": "bash", "trigger": {"type": "manual"},
                   "command": "true"}),
    );
    let dir = TempDir::new("claudecron-import");
    let file = dir.path().join("crontab");
    std::fs::write(&file, CRONTAB).expect("write crontab");
    let file = file.to_str().expect("utf-8 path");

    // --dry-run: what would be created, nothing created.
    let dry = json_of(
        &cli(
            &server,
            &["import-crontab", file, "--dry-run", "--tz", "UTC", "--json"],
        ),
        "import-crontab --dry-run",
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tasks"].as_array().map(Vec::len), Some(6), "{dry}");
    let listed = mcp.ok("claudecron_list_tasks", json!({}));
    assert_eq!(listed["total"], 1, "a dry run creates nothing: {listed}");

    // The real import.
    let out = json_of(
        &cli(&server, &["import-crontab", file, "--tz", "UTC", "--json"]),
        "import-crontab",
    );
    let created = out["tasks"].as_array().expect("tasks");
    let names: Vec<&str> = created
        .iter()
        .filter_map(|t| t["task"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "echo",
            "backup-2",
            "certbot-renew",
            "backup-3",
            "backup-4",
            "tr-a-z"
        ],
        "names from the commands, unique against the server's and each other"
    );
    let skipped: Vec<(u64, &str)> = out["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap_or(0),
                s["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, 12);
    assert!(
        skipped[0].1.contains("@reboot is not importable"),
        "{skipped:?}"
    );
    assert_eq!(skipped[1].0, 14);
    assert!(skipped[1].1.contains("AND"), "{skipped:?}");
    assert!(
        out["notes"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("MAILTO")),
        "{out}"
    );

    // Each task fires when `preview-schedule` says the original line fires.
    let lines: Vec<&str> = CRONTAB.lines().collect();
    for row in created {
        let name = row["task"]["name"].as_str().expect("name");
        let line = lines[row["line"].as_u64().expect("line") as usize - 1];
        let task = mcp.task(name);
        let tz = task["timezone"].as_str().expect("timezone");
        let expr = task["trigger"]["schedule"].as_str().expect("schedule");
        let original = if line.starts_with('@') {
            line.split_whitespace().next().unwrap_or("").to_string()
        } else {
            line.split_whitespace()
                .take(5)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(expr, original, "{name}: the schedule as written");
        let expected_tz = if row["line"].as_u64() < Some(7) {
            "UTC"
        } else {
            "America/New_York"
        };
        assert_eq!(tz, expected_tz, "{name}: CRON_TZ");
        let task_times: Vec<String> = task["next_runs"]
            .as_array()
            .expect("next_runs")
            .iter()
            .filter_map(|t| t["utc"].as_str().map(str::to_string))
            .collect();
        assert_eq!(task_times.len(), 5, "{name}: {task}");
        let preview = preview_utc(&original, expected_tz, 5);
        assert!(
            same_fire_times(&task_times, &preview),
            "{name} ({original} in {expected_tz}): task {task_times:?}, preview {preview:?}"
        );
    }
    let echo = mcp.task("echo");
    assert_eq!(echo["env"]["GREETING"], "hello there");
    assert!(!echo["env"]
        .as_object()
        .is_some_and(|e| e.contains_key("MAILTO")));
    assert!(
        echo["description"]
            .as_str()
            .is_some_and(|d| d.contains("Say hello every ten minutes")),
        "{echo}"
    );

    // `%` became standard input, as cron does it.
    let run = mcp.run_task("tr-a-z", 30);
    let run = mcp.wait_finished(id_of(&run), RUN_WAIT);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(mcp.output(id_of(&run)), "HELLO\nWORLD");
}

#[test]
fn import_user_crontab_reads_crontab_l() {
    let server = Server::start_default();
    // A stand-in `crontab` first on PATH: `crontab -l` prints a user's crontab.
    let bin = TempDir::new("claudecron-fake-crontab");
    let script = bin.path().join("crontab");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = -l ] || exit 9\necho 'CRON_TZ=Europe/Berlin'\necho '0 7 * * 1-5 /usr/local/bin/morning.sh'\n",
    )
    .expect("write fake crontab");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = cli_command(
        &[
            "import-crontab",
            "--user",
            "--json",
            "--url",
            &url,
            "--token",
            server.token(),
        ],
        &[("PATH", &path)],
    )
    .output()
    .expect("run import-crontab --user");
    let result = json_of(&out, "import-crontab --user");
    assert_eq!(result["tasks"][0]["task"]["name"], "morning");
    assert_eq!(result["tasks"][0]["task"]["timezone"], "Europe/Berlin");
    let mcp = Mcp::new(&server);
    assert_eq!(mcp.task("morning")["trigger"]["schedule"], "0 7 * * 1-5");
}

#[test]
fn export_reads_the_tasks_from_the_server_and_lists_what_cannot_move() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    mcp.add(
        json!({"name": "backup", "type": "bash", "schedule": "0 9 1 * 1",
                   "timezone": "America/New_York", "command": "tar czf /tmp/b.tgz /etc",
                   "catch_up": "once", "retries": {"max_attempts": 2}}),
    );
    let dir = TempDir::new("claudecron-export-watch");
    mcp.add(
        json!({"name": "on-change", "type": "bash", "command": "true",
                   "trigger": {"type": "file-watch", "path": dir.path().to_str().expect("path")}}),
    );

    let out = cli(&server, &["export", "--format", "systemd", "--json"]);
    let text = expect_code(&out, 1, "export with a file-watch task");
    let export: Value = serde_json::from_str(&text).expect("export --json");
    let files: Vec<&str> = export["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        files,
        ["claudecron-backup.service", "claudecron-backup.timer"]
    );
    let timer = export["files"][1]["content"].as_str().expect("timer");
    assert!(
        timer.contains("OnCalendar=*-*-01 09:00:00 America/New_York\n"),
        "{timer}"
    );
    assert!(
        timer.contains("OnCalendar=Mon *-*-* 09:00:00 America/New_York\n"),
        "{timer}"
    );
    assert!(timer.contains("Persistent=true\n"), "{timer}");
    assert_eq!(export["skipped"][0]["task"], "on-change");
    assert!(export["skipped"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("file-watch")));
    assert!(
        stderr(&out).contains("1 of 2 task(s) could not be expressed"),
        "{}",
        stderr(&out)
    );

    // Named tasks only, into a directory; k8s carries the retries.
    let out_dir = TempDir::new("claudecron-export-out");
    let out = cli(
        &server,
        &[
            "export",
            "--format",
            "k8s",
            "backup",
            "--image",
            "alpine:3",
            "--out",
            out_dir.path().to_str().expect("path"),
        ],
    );
    expect_code(&out, 0, "export --format k8s backup");
    let yaml = std::fs::read_to_string(out_dir.path().join("backup.yaml")).expect("backup.yaml");
    assert!(
        yaml.contains("  timeZone: \"America/New_York\"\n"),
        "{yaml}"
    );
    assert!(yaml.contains("      backoffLimit: 2\n"), "{yaml}");
    assert!(yaml.contains("image: \"alpine:3\""), "{yaml}");

    let out = cli(&server, &["export", "--format", "nomad"]);
    expect_code(&out, 2, "export --format nomad");
    assert!(
        stderr(&out).contains("one of: systemd, k8s, crontab"),
        "{}",
        stderr(&out)
    );
}
