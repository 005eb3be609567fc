//! The command line (SPEC §7, issue 2), run as the real binary. Every child gets an empty
//! environment apart from PATH and a temporary HOME, so the real ~/.claudecron, a
//! CLAUDECRON_CONFIG or an ANTHROPIC_API_KEY of whoever runs the tests is never touched or read.

mod common;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Utc, Weekday};
use common::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

impl TempDir {
    /// A fresh temp dir with an empty `home` in it (the child's HOME).
    fn with_home(label: &str) -> TempDir {
        let dir = TempDir::new(&format!("claudecron-cli-test-{label}"));
        std::fs::create_dir_all(dir.home()).unwrap();
        dir
    }

    fn home(&self) -> PathBuf {
        self.path().join("home")
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run the binary with `args`, HOME = the temp dir's home, and only `env` besides PATH.
fn run(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args)
        .env_clear()
        .env("HOME", dir.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run claudecron");
    Run {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn usage_error(r: &Run, says: &[&str]) {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stdout.is_empty(),
        "usage errors go to stderr: {}",
        r.stdout
    );
    for s in says {
        assert!(
            r.stderr.contains(s),
            "{:?} does not contain {s:?}",
            r.stderr
        );
    }
}

#[test]
fn every_command_accepts_help_and_prints_its_usage() {
    let dir = TempDir::with_home("command-help");
    // Every command the full usage lists under "Commands:" (new ones included).
    let full = run(&dir, &["--help"], &[]).stdout;
    let commands: Vec<String> = full
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for command in commands.iter().map(String::as_str) {
        for args in [
            vec![command, "--help"],
            vec![command, "-h"],
            vec!["help", command],
        ] {
            let r = run(&dir, &args, &[]);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
            assert!(
                r.stdout.contains("Usage:")
                    && r.stdout.contains(&format!("  claudecron {command}")),
                "{args:?}: {}",
                r.stdout
            );
            assert!(
                !r.stdout.contains("Commands:"),
                "{args:?} prints that command's usage, not the whole list: {}",
                r.stdout
            );
        }
    }
    // After other flags too, and before anything is read or started: no config, no database,
    // no token file, no listener.
    let r = run(&dir, &["serve", "--port", "1", "--help"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("claudecron serve [--config FILE]"));
    let r = run(&dir, &["token", "--rotate", "-h"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !dir.home().join(".claudecron").exists(),
        "help created nothing"
    );
}

#[test]
fn version() {
    let dir = TempDir::with_home("version");
    for flag in ["--version", "-V"] {
        let r = run(&dir, &[flag], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            r.stdout,
            format!("claudecron {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn help_lists_every_command() {
    let dir = TempDir::with_home("help");
    for flag in ["--help", "-h", "help"] {
        let r = run(&dir, &[flag], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("Usage:"), "{}", r.stdout);
        for command in [
            "claudecron serve",
            "claudecron check",
            "claudecron token [--rotate]",
            "claudecron preview-schedule EXPR [--tz TZ] [--count N]",
            "claudecron --version",
        ] {
            assert!(r.stdout.contains(command), "{flag}: missing {command}");
        }
        // Where settings come from, in order.
        assert!(r.stdout.contains("CLAUDECRON_<KEY>"));
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_was_expected() {
    let dir = TempDir::with_home("usage");
    let expected = "expected one of: serve, check, token, preview-schedule";
    usage_error(
        &run(&dir, &["frobnicate"], &[]),
        &[
            "unknown command \"frobnicate\"",
            expected,
            "claudecron --help",
        ],
    );
    usage_error(&run(&dir, &[], &[]), &["no command given", expected]);
    usage_error(
        &run(&dir, &["--frobnicate"], &[]),
        &["unknown option \"--frobnicate\"", "serve, check, token"],
    );
    usage_error(
        &run(&dir, &["check", "extra"], &[]),
        &["unexpected argument \"extra\" for `check`"],
    );
    usage_error(
        &run(&dir, &["token", "--rotat"], &[]),
        &["\"--rotat\"", "accepted: --rotate"],
    );
    usage_error(
        &run(&dir, &["check", "--config"], &[]),
        &["--config FILE needs a value"],
    );
    // Nothing was created by any of these.
    assert!(!dir.home().join(".claudecron").exists());
}

/// The fire times printed by preview-schedule: (local, utc) per line after "Next N fire times:".
fn fire_times(stdout: &str) -> Vec<(DateTime<FixedOffset>, DateTime<Utc>)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Next ") && l.ends_with(" fire times:"))
        .unwrap_or_else(|| panic!("no 'Next N fire times:' line in {stdout}"));
    lines[start + 1..]
        .iter()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let local = parts.next().unwrap();
            let utc = parts
                .next()
                .unwrap()
                .trim_start_matches('(')
                .trim_end_matches(')');
            (
                DateTime::parse_from_rfc3339(local).unwrap(),
                DateTime::parse_from_rfc3339(utc)
                    .unwrap()
                    .with_timezone(&Utc),
            )
        })
        .collect()
}

#[test]
fn preview_schedule_weekdays_in_moscow() {
    let dir = TempDir::with_home("preview");
    let before = Utc::now();
    let r = run(
        &dir,
        &[
            "preview-schedule",
            "0 9 * * 1-5",
            "--tz",
            "Europe/Moscow",
            "--count",
            "3",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.contains("0 9 * * 1-5") && first.contains("Europe/Moscow"),
        "{first}"
    );
    assert!(r.stdout.contains("Next 3 fire times:"), "{}", r.stdout);
    // The description is one line of words, not the expression again.
    let description = r.stdout.lines().nth(1).unwrap();
    assert!(description.contains("09:00"), "{description}");
    assert!(
        description.contains("Monday") && description.contains("Friday"),
        "{description}"
    );

    let times = fire_times(&r.stdout);
    assert_eq!(times.len(), 3, "{}", r.stdout);
    let mut previous: Option<DateTime<Utc>> = None;
    for (local, utc) in &times {
        // Moscow is UTC+03:00 all year; 09:00 there is 06:00Z.
        assert_eq!(local.offset().local_minus_utc(), 3 * 3600, "{local}");
        assert_eq!((local.hour(), local.minute(), local.second()), (9, 0, 0));
        assert!(
            !matches!(local.weekday(), Weekday::Sat | Weekday::Sun),
            "{local} is a weekend"
        );
        assert_eq!(local.with_timezone(&Utc), *utc, "local and UTC agree");
        assert_eq!((utc.hour(), utc.minute()), (6, 0));
        assert!(*utc > before, "{utc} is not in the future");
        if let Some(p) = previous {
            assert!(*utc > p, "times go forward");
            // Consecutive weekdays: one day apart, or three over a weekend.
            let gap = *utc - p;
            assert!(
                gap == Duration::days(1) || gap == Duration::days(3),
                "{gap}"
            );
        }
        previous = Some(*utc);
    }
    // The first one is the next weekday 09:00: within 3 days + 1 hour (Friday after 09:00 → Monday).
    assert!(times[0].1 - before <= Duration::hours(73), "{:?}", times[0]);
}

#[test]
fn preview_schedule_refuses_bad_input() {
    let dir = TempDir::with_home("preview-bad");
    for count in ["0", "51", "abc", "-1", ""] {
        usage_error(
            &run(&dir, &["preview-schedule", "@daily", "--count", count], &[]),
            &["--count", "whole number from 1 to 50"],
        );
    }
    usage_error(
        &run(&dir, &["preview-schedule", "@daily", "--count"], &[]),
        &["whole number from 1 to 50"],
    );
    usage_error(
        &run(&dir, &["preview-schedule"], &[]),
        &[
            "needs a cron expression",
            "preview-schedule \"0 9 * * 1-5\"",
        ],
    );
    usage_error(
        &run(&dir, &["preview-schedule", "0", "9", "*", "*", "*"], &[]),
        &["unexpected argument \"9\"", "quote EXPR"],
    );
    usage_error(
        &run(&dir, &["preview-schedule", "@daily", "--tz"], &[]),
        &["--tz needs an IANA zone"],
    );
    usage_error(
        &run(
            &dir,
            &["preview-schedule", "@daily", "--tz", "Europe/Moskow"],
            &[],
        ),
        &["timezone", "did you mean \"Europe/Moscow\"?"],
    );
    usage_error(
        &run(&dir, &["preview-schedule", "0 0 31 2 *"], &[]),
        &["schedule", "never fires"],
    );
    usage_error(
        &run(&dir, &["preview-schedule", "61 * * * *"], &[]),
        &["schedule", "0-59"],
    );
}

#[test]
fn preview_schedule_defaults_to_five_times_in_the_configured_zone() {
    let dir = TempDir::with_home("preview-default");
    let r = run(
        &dir,
        &["preview-schedule", "@hourly"],
        &[("CLAUDECRON_DEFAULT_TIMEZONE", "Asia/Tokyo")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().next().unwrap().contains("(Asia/Tokyo)"));
    let times = fire_times(&r.stdout);
    assert_eq!(times.len(), 5);
    for (local, _) in &times {
        assert_eq!(local.offset().local_minus_utc(), 9 * 3600);
        assert_eq!((local.minute(), local.second()), (0, 0));
    }
}

#[test]
fn check_prints_effective_settings_and_masks_secrets() {
    let dir = TempDir::with_home("check");
    let db = dir.path().join("data/tasks.db");
    let db_text = db.to_string_lossy().into_owned();
    let r = run(
        &dir,
        &["check", "--port", "3999"],
        &[
            ("CLAUDECRON_DB_PATH", db_text.as_str()),
            ("CLAUDECRON_ANTHROPIC_API_KEY", "sk-secret-123"),
            ("CLAUDECRON_AUTH_TOKENS", "tok-secret-abcdef0123456789"),
            ("CLAUDECRON_DEFAULT_TIMEZONE", "Europe/Moscow"),
        ],
    );
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("sk-secret-123"), "{all}");
    assert!(!all.contains("tok-secret-abcdef0123456789"), "{all}");

    // One `key = value` line per setting, showing the layer that won.
    let setting = |key: &str| -> String {
        r.stdout
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {key} line in {}", r.stdout))
    };
    assert_eq!(setting("port"), "3999");
    assert_eq!(setting("host"), "127.0.0.1");
    assert_eq!(setting("db_path"), db_text);
    assert_eq!(
        setting("token_file"),
        dir.path().join("data/token").to_string_lossy()
    );
    assert_eq!(setting("default_timezone"), "Europe/Moscow");
    assert_eq!(setting("anthropic_api_key"), "(set, hidden)");
    assert_eq!(setting("auth_tokens"), "(1 set, hidden)");
    assert_eq!(setting("max_concurrent_tasks"), "10");

    // The database was created and checked.
    assert!(db.is_file());
    let db_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("database:"))
        .unwrap();
    assert!(db_line.contains("schema version"), "{db_line}");
    assert!(db_line.contains("integrity ok"), "{db_line}");
    assert!(db_line.contains("0 tasks"), "{db_line}");
    assert_eq!(r.stdout.lines().last(), Some("ok"));
    // Nothing under the (fake) home was used.
    assert!(!dir.home().join(".claudecron").exists());

    // Again on the same database: it is reopened, not recreated.
    let r2 = run(
        &dir,
        &["check"],
        &[("CLAUDECRON_DB_PATH", db_text.as_str())],
    );
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert!(r2.stdout.contains("anthropic_api_key"));
    assert!(r2.stdout.contains("(none)"));
}

#[test]
fn check_uses_home_for_the_default_paths() {
    let dir = TempDir::with_home("check-home");
    let r = run(&dir, &["check"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.home().join(".claudecron/tasks.db").is_file());
    assert!(r
        .stdout
        .contains(&dir.home().join(".claudecron/token").display().to_string()));
}

#[test]
fn check_refuses_a_bad_config_with_exit_2() {
    let dir = TempDir::with_home("check-bad");
    let r = run(&dir, &["check"], &[("CLAUDECRON_PORT", "99999")]);
    usage_error(
        &r,
        &[
            "configuration error",
            "port",
            "CLAUDECRON_PORT",
            "\"99999\"",
            "0 to 65535",
        ],
    );
    let missing = dir.path().join("missing.toml");
    let r = run(&dir, &["check", "--config", missing.to_str().unwrap()], &[]);
    usage_error(
        &r,
        &["configuration error", "missing.toml", "does not exist"],
    );
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "prot = 1\n").unwrap();
    let r = run(
        &dir,
        &["check", &format!("--config={}", cfg.display())],
        &[],
    );
    usage_error(&r, &["unknown key \"prot\"", "accepted keys:"]);
    // A refused config creates nothing.
    assert!(!dir.home().join(".claudecron").exists());
}

fn is_token(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn token_is_created_0600_and_rotated() {
    let dir = TempDir::with_home("token");
    let db = dir.path().join("data/tasks.db");
    let db_text = db.to_string_lossy().into_owned();
    let env = [("CLAUDECRON_DB_PATH", db_text.as_str())];
    let token_file = dir.path().join("data/token");
    assert!(!token_file.exists());

    let r = run(&dir, &["token"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stdout.trim_end_matches('\n').to_string();
    assert_eq!(r.stdout, format!("{first}\n"), "exactly one line");
    assert!(is_token(&first), "{first:?} is not 64 hex characters");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), first);

    // Asked again: the same token.
    let r = run(&dir, &["token"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), first);

    // Rotated: a new token, in the file, still 0600; the user is told to restart.
    let r = run(&dir, &["token", "--rotate"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let second = r.stdout.trim().to_string();
    assert!(is_token(&second), "{second:?}");
    assert_ne!(second, first);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), second);
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    assert!(r.stderr.contains("Restart the server"), "{}", r.stderr);
    let r = run(&dir, &["token"], &env);
    assert_eq!(r.stdout.trim(), second);
}

#[test]
fn token_defaults_to_the_data_dir_under_home() {
    let dir = TempDir::with_home("token-home");
    let r = run(&dir, &["token"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = dir.home().join(".claudecron/token");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        r.stdout.trim()
    );
    assert!(is_token(r.stdout.trim()));
}

#[test]
fn token_refuses_a_world_readable_file_and_reports_configured_tokens() {
    let dir = TempDir::with_home("token-perms");
    let file = dir.path().join("token");
    std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file_text = file.to_string_lossy().into_owned();
    let r = run(
        &dir,
        &["token"],
        &[("CLAUDECRON_TOKEN_FILE", file_text.as_str())],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.is_empty(),
        "the token is not printed: {}",
        r.stdout
    );
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);

    // auth_tokens from the environment: printed, and rotation is refused (it lives there).
    let env = [("CLAUDECRON_AUTH_TOKENS", "configured-token-0123456789")];
    let r = run(&dir, &["token"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "configured-token-0123456789\n");
    let r = run(&dir, &["token", "--rotate"], &env);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("auth_tokens"), "{}", r.stderr);
}
