//! Configuration (SPEC §6, issue 2): file < env < flag, `~` expansion, the data dir, env lists,
//! and refusals that name the key, the value and what is accepted. Every test builds `Sources`
//! by hand (its own env map, flags and a fake home), so the real environment is never read.

mod common;

use claudecron::config::{load, AuthMode, Config, Sources};
use common::TempDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl TempDir {
    /// Write `text` to `name` inside the directory and return its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Sources with a config file holding `toml`, the given env and flags, and `home` as HOME.
fn sources(
    dir: &TempDir,
    toml: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> Sources {
    Sources {
        config_file: toml.map(|t| dir.file("config.toml", t)),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        flags: flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        home: Some(dir.path().join("home")),
    }
}

fn ok(s: &Sources) -> Config {
    load(s).unwrap_or_else(|e| panic!("expected a valid config, got: {e}"))
}

fn refused(s: &Sources) -> String {
    match load(s) {
        Ok(c) => panic!("expected a refusal, got {c:?}"),
        Err(e) => e,
    }
}

fn assert_says(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "{message:?} does not contain {n:?}");
    }
}

#[test]
fn defaults_follow_spec_section_6() {
    let dir = TempDir::new("claudecron-config-test-defaults");
    let c = ok(&sources(&dir, Some(""), &[], &[]));
    let home = dir.path().join("home");
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 3010);
    assert_eq!(c.public_url, None);
    assert!(c.allowed_origins.is_empty() && c.allowed_hosts.is_empty());
    assert!(c.auth_tokens.is_empty());
    assert_eq!(c.auth, AuthMode::Token);
    assert!(!c.trust_proxy);
    assert_eq!(c.rate_limit_per_minute, 100);
    assert_eq!(c.session_timeout_secs, 3600);
    assert_eq!(c.max_sessions, 1000);
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.db_path, home.join(".claudecron/tasks.db"));
    assert_eq!(c.token_file, home.join(".claudecron/token"));
    assert_eq!(c.log_level, "info");
    assert_eq!(c.log_path, None);
    assert_eq!(c.max_concurrent_tasks, 10);
    assert_eq!(c.task_timeout_secs, 300);
    assert_eq!(c.output_max_bytes, 262_144);
    assert_eq!(c.history_keep_per_task, 200);
    assert_eq!(c.default_timezone, "UTC");
    assert_eq!(c.anthropic_api_key, None);
    assert_eq!(c.anthropic_base_url, "https://api.anthropic.com");
    assert_eq!(c.default_model, "claude-sonnet-4-20250514");
    assert_eq!(c.claude_path, "claude");
    assert_eq!(c.source_file, Some(dir.path().join("config.toml")));
}

#[test]
fn precedence_is_file_then_env_then_flag() {
    let dir = TempDir::new("claudecron-config-test-precedence");
    let toml = r#"
host = "127.0.0.2"
port = 4000
db_path = "/srv/file/tasks.db"
log_level = "debug"
max_concurrent_tasks = 3
default_timezone = "Europe/Moscow"
allowed_hosts = ["file.example"]
"#;
    // File only.
    let c = ok(&sources(&dir, Some(toml), &[], &[]));
    assert_eq!(c.host, "127.0.0.2");
    assert_eq!(c.port, 4000);
    assert_eq!(c.db_path, PathBuf::from("/srv/file/tasks.db"));
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.max_concurrent_tasks, 3);
    assert_eq!(c.default_timezone, "Europe/Moscow");
    assert_eq!(c.allowed_hosts, vec!["file.example"]);

    // Env over file, for some keys; the rest still from the file.
    let env = [
        ("CLAUDECRON_PORT", "5000"),
        ("CLAUDECRON_HOST", "127.0.0.3"),
        ("CLAUDECRON_DB_PATH", "/srv/env/tasks.db"),
        ("CLAUDECRON_LOG_LEVEL", "warn"),
        ("CLAUDECRON_ALLOWED_HOSTS", "env.example"),
    ];
    let c = ok(&sources(&dir, Some(toml), &env, &[]));
    assert_eq!(c.port, 5000);
    assert_eq!(c.host, "127.0.0.3");
    assert_eq!(c.db_path, PathBuf::from("/srv/env/tasks.db"));
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.allowed_hosts, vec!["env.example"]);
    assert_eq!(c.max_concurrent_tasks, 3, "not in env: from the file");
    assert_eq!(
        c.default_timezone, "Europe/Moscow",
        "not in env: from the file"
    );

    // Flags over env and file.
    let flags = [
        ("port", "6000"),
        ("host", "localhost"),
        ("db_path", "/srv/flag/tasks.db"),
    ];
    let c = ok(&sources(&dir, Some(toml), &env, &flags));
    assert_eq!(c.port, 6000);
    assert_eq!(c.host, "localhost");
    assert_eq!(c.db_path, PathBuf::from("/srv/flag/tasks.db"));
    assert_eq!(c.token_file, PathBuf::from("/srv/flag/token"));
    assert_eq!(c.log_level, "warn", "no flag: from env");
    assert_eq!(c.max_concurrent_tasks, 3, "no flag, no env: from the file");

    // Flag over file with no env in between; a later flag wins over an earlier one.
    let c = ok(&sources(
        &dir,
        Some(toml),
        &[],
        &[("port", "7000"), ("port", "7001")],
    ));
    assert_eq!(c.port, 7001);
    assert_eq!(c.host, "127.0.0.2");

    // A bad value in a lower layer does not matter once a higher layer overrides it...
    let c = ok(&sources(
        &dir,
        Some("port = 99999"),
        &[("CLAUDECRON_PORT", "3011")],
        &[],
    ));
    assert_eq!(c.port, 3011);
    // ...and a bad value in a higher layer is refused naming where it came from.
    let e = refused(&sources(
        &dir,
        Some("port = 3011"),
        &[("CLAUDECRON_PORT", "x")],
        &[],
    ));
    assert_says(&e, &["port", "CLAUDECRON_PORT", "\"x\""]);
    let e = refused(&sources(&dir, None, &[], &[("port", "-1")]));
    assert_says(&e, &["port", "flag --port", "\"-1\""]);
}

#[test]
fn unrelated_environment_variables_are_ignored() {
    let dir = TempDir::new("claudecron-config-test-unrelated-env");
    let c = ok(&sources(
        &dir,
        Some(""),
        &[
            ("PORT", "1"),
            ("HOST", "0.0.0.0"),
            ("CLAUDECRON_TASK_ID", "abc"),
            ("claudecron_port", "1"),
        ],
        &[],
    ));
    assert_eq!(c.port, 3010);
    assert_eq!(c.host, "127.0.0.1");
}

#[test]
fn tilde_expands_to_home_in_every_path() {
    let dir = TempDir::new("claudecron-config-test-tilde");
    let home = dir.path().join("home");
    let toml = r#"
db_path = "~/state/tasks.db"
token_file = "~/secrets/token"
log_path = "~/logs/claudecron.log"
claude_path = "~/bin/claude"
"#;
    let c = ok(&sources(&dir, Some(toml), &[], &[]));
    assert_eq!(c.db_path, home.join("state/tasks.db"));
    assert_eq!(c.token_file, home.join("secrets/token"));
    assert_eq!(c.log_path, Some(home.join("logs/claudecron.log")));
    assert_eq!(c.claude_path, home.join("bin/claude").to_string_lossy());

    // From env and flags too.
    let c = ok(&sources(
        &dir,
        Some(""),
        &[("CLAUDECRON_DB_PATH", "~/env.db")],
        &[],
    ));
    assert_eq!(c.db_path, home.join("env.db"));
    let c = ok(&sources(&dir, Some(""), &[], &[("db_path", "~/flag/x.db")]));
    assert_eq!(c.db_path, home.join("flag/x.db"));

    // `~` only at the start, and `~user` is not expanded.
    let c = ok(&sources(&dir, Some(r#"db_path = "/srv/~/x.db""#), &[], &[]));
    assert_eq!(c.db_path, PathBuf::from("/srv/~/x.db"));

    // --config itself expands.
    let cfg = dir.file("home/my.toml", "port = 3999");
    assert!(cfg.is_file());
    let s = Sources {
        config_file: Some(PathBuf::from("~/my.toml")),
        env: BTreeMap::new(),
        flags: Vec::new(),
        home: Some(home.clone()),
    };
    let c = ok(&s);
    assert_eq!(c.port, 3999);
    assert_eq!(c.source_file, Some(cfg));
}

#[test]
fn the_default_config_file_is_found_under_home() {
    let dir = TempDir::new("claudecron-config-test-home-file");
    dir.file("home/.claudecron/config.toml", "port = 3555");
    let s = sources(&dir, None, &[], &[]);
    let c = ok(&s);
    assert_eq!(c.port, 3555);
    assert_eq!(
        c.source_file,
        Some(dir.path().join("home/.claudecron/config.toml"))
    );

    // CLAUDECRON_CONFIG beats the home file; --config beats CLAUDECRON_CONFIG.
    let env_file = dir.file("env.toml", "port = 3666");
    let env_name = env_file.to_string_lossy().into_owned();
    let c = ok(&sources(
        &dir,
        None,
        &[("CLAUDECRON_CONFIG", env_name.as_str())],
        &[],
    ));
    assert_eq!(c.port, 3666);
    let c = ok(&sources(
        &dir,
        Some("port = 3777"),
        &[("CLAUDECRON_CONFIG", env_name.as_str())],
        &[],
    ));
    assert_eq!(c.port, 3777);
}

#[test]
fn the_data_dir_is_the_directory_of_db_path() {
    let dir = TempDir::new("claudecron-config-test-datadir");
    let c = ok(&sources(
        &dir,
        Some(r#"db_path = "/var/lib/claudecron/tasks.db""#),
        &[],
        &[],
    ));
    assert_eq!(c.data_dir(), PathBuf::from("/var/lib/claudecron"));
    assert_eq!(c.token_file, PathBuf::from("/var/lib/claudecron/token"));

    // An explicit token_file is kept; the data dir still follows db_path.
    let c = ok(&sources(
        &dir,
        Some("db_path = \"/var/lib/cc/tasks.db\"\ntoken_file = \"/etc/cc/token\""),
        &[],
        &[],
    ));
    assert_eq!(c.data_dir(), PathBuf::from("/var/lib/cc"));
    assert_eq!(c.token_file, PathBuf::from("/etc/cc/token"));

    // A bare file name: the current directory.
    let c = ok(&sources(&dir, Some(r#"db_path = "tasks.db""#), &[], &[]));
    assert_eq!(c.data_dir(), PathBuf::from("."));
    assert_eq!(c.token_file, PathBuf::from("./token"));

    // An empty token_file in env means "unset": back to the default.
    let c = ok(&sources(
        &dir,
        Some(r#"db_path = "/d/tasks.db""#),
        &[("CLAUDECRON_TOKEN_FILE", "")],
        &[],
    ));
    assert_eq!(c.token_file, PathBuf::from("/d/token"));
}

#[test]
fn env_lists_are_comma_separated() {
    let dir = TempDir::new("claudecron-config-test-lists");
    let c = ok(&sources(
        &dir,
        Some(r#"allowed_origins = ["https://file.example"]"#),
        &[
            (
                "CLAUDECRON_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443,,",
            ),
            ("CLAUDECRON_ALLOWED_HOSTS", " cron.example.com ,10.0.0.5 "),
            (
                "CLAUDECRON_AUTH_TOKENS",
                "aaaaaaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbbbbbb",
            ),
        ],
        &[],
    ));
    assert_eq!(
        c.allowed_origins,
        vec!["https://a.example", "https://b.example:8443"]
    );
    assert_eq!(c.allowed_hosts, vec!["cron.example.com", "10.0.0.5"]);
    assert_eq!(
        c.auth_tokens,
        vec!["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"]
    );
    // An empty env list clears the file's list.
    let c = ok(&sources(
        &dir,
        Some(r#"allowed_origins = ["https://file.example"]"#),
        &[("CLAUDECRON_ALLOWED_ORIGINS", "")],
        &[],
    ));
    assert!(c.allowed_origins.is_empty());
}

#[test]
fn env_booleans_and_numbers_are_parsed() {
    let dir = TempDir::new("claudecron-config-test-env-types");
    for (text, expected) in [
        ("true", true),
        ("1", true),
        ("yes", true),
        ("ON", true),
        ("false", false),
        ("0", false),
        ("no", false),
    ] {
        let c = ok(&sources(
            &dir,
            Some(""),
            &[("CLAUDECRON_TRUST_PROXY", text)],
            &[],
        ));
        assert_eq!(c.trust_proxy, expected, "{text}");
    }
    let c = ok(&sources(
        &dir,
        Some(""),
        &[("CLAUDECRON_MAX_BODY_BYTES", " 2048 ")],
        &[],
    ));
    assert_eq!(c.max_body_bytes, 2048);
}

#[test]
fn an_unknown_key_in_the_file_is_refused_with_the_accepted_keys() {
    let dir = TempDir::new("claudecron-config-test-unknown-key");
    let e = refused(&sources(&dir, Some("prot = 3010"), &[], &[]));
    assert_says(
        &e,
        &[
            "unknown key \"prot\"",
            "config.toml",
            "accepted keys:",
            "port",
            "db_path",
            "default_timezone",
        ],
    );
    // A table where a key belongs is unknown too.
    let e = refused(&sources(&dir, Some("[server]\nport = 1"), &[], &[]));
    assert_says(&e, &["unknown key \"server\"", "accepted keys:"]);
    // So is an unknown flag key.
    let e = refused(&sources(&dir, Some(""), &[], &[("prot", "1")]));
    assert_says(&e, &["\"prot\"", "port"]);
}

#[test]
fn wrong_types_are_refused_with_key_value_and_type() {
    let dir = TempDir::new("claudecron-config-test-types");
    let cases: &[(&str, &[&str])] = &[
        (
            r#"port = "3011""#,
            &["port", "\"3011\"", "whole number from 0 to 65535"],
        ),
        ("port = 30.5", &["port", "30.5", "whole number"]),
        (
            "host = 5",
            &["host", "5 is not accepted", "expected a string"],
        ),
        (
            "allowed_origins = [1, 2]",
            &["allowed_origins", "list item 1", "list of strings"],
        ),
        (
            r#"allowed_hosts = "a.example""#,
            &["allowed_hosts", "\"a.example\"", "list of strings"],
        ),
        (
            r#"trust_proxy = "yes""#,
            &["trust_proxy", "\"yes\"", "true or false"],
        ),
        ("db_path = true", &["db_path", "true", "a string"]),
        (
            "max_sessions = -5",
            &["max_sessions", "-5", "from 1 to 100000"],
        ),
    ];
    for (toml, says) in cases {
        let e = refused(&sources(&dir, Some(toml), &[], &[]));
        assert_says(&e, says);
        // Where it came from: the file.
        assert_says(&e, &["config.toml"]);
    }
    let e = refused(&sources(
        &dir,
        Some(""),
        &[("CLAUDECRON_TRUST_PROXY", "maybe")],
        &[],
    ));
    assert_says(
        &e,
        &[
            "trust_proxy",
            "CLAUDECRON_TRUST_PROXY",
            "\"maybe\"",
            "true or false",
        ],
    );
    let e = refused(&sources(
        &dir,
        Some(""),
        &[("CLAUDECRON_MAX_CONCURRENT_TASKS", "ten")],
        &[],
    ));
    assert_says(&e, &["max_concurrent_tasks", "\"ten\"", "from 1 to 1000"]);
    let e = refused(&sources(&dir, Some("port = "), &[], &[]));
    assert_says(&e, &["not valid TOML"]);
}

#[test]
fn out_of_range_and_bad_values_are_refused_with_what_is_accepted() {
    let dir = TempDir::new("claudecron-config-test-range");
    let cases: &[(&str, &[&str])] = &[
        ("port = 70000", &["port", "70000", "from 0 to 65535"]),
        (
            "max_concurrent_tasks = 0",
            &["max_concurrent_tasks", "from 1 to 1000"],
        ),
        (
            "max_body_bytes = 10",
            &["max_body_bytes", "10", "from 1024 to 67108864"],
        ),
        (
            "rate_limit_per_minute = 0",
            &["rate_limit_per_minute", "from 1 to 1000000"],
        ),
        (
            "task_timeout_secs = 604801",
            &["task_timeout_secs", "from 1 to 604800"],
        ),
        (
            r#"log_level = "verbose""#,
            &[
                "log_level",
                "\"verbose\"",
                "error, warn, info, debug, trace, off",
            ],
        ),
        (
            r#"auth = "basic""#,
            &["auth", "\"basic\"", "accepted: token, none"],
        ),
        (
            r#"public_url = "mcp.example.com""#,
            &[
                "public_url",
                "\"mcp.example.com\"",
                "https://mcp.example.com/cron",
            ],
        ),
        (
            r#"allowed_origins = ["claude.ai"]"#,
            &["allowed_origins", "\"claude.ai\"", "https://claude.ai"],
        ),
        (
            r#"anthropic_base_url = "ftp://api.example""#,
            &["anthropic_base_url", "https://api.anthropic.com"],
        ),
        (
            r#"default_timezone = "Europe/Moskow""#,
            &[
                "default_timezone",
                "\"Europe/Moskow\"",
                "did you mean \"Europe/Moscow\"?",
            ],
        ),
        (r#"host = " ""#, &["host", "e.g. 127.0.0.1"]),
        (
            r#"db_path = """#,
            &["db_path", "e.g. ~/.claudecron/tasks.db"],
        ),
        (
            r#"default_model = """#,
            &["default_model", "e.g. claude-sonnet"],
        ),
        (r#"claude_path = "  ""#, &["claude_path", "e.g. claude"]),
    ];
    for (toml, says) in cases {
        let e = refused(&sources(&dir, Some(toml), &[], &[]));
        assert_says(&e, says);
    }
    // The extremes of a range are accepted.
    let c = ok(&sources(
        &dir,
        Some("port = 65535\nmax_body_bytes = 1024\nmax_concurrent_tasks = 1000"),
        &[],
        &[],
    ));
    assert_eq!(
        (c.port, c.max_body_bytes, c.max_concurrent_tasks),
        (65535, 1024, 1000)
    );
    // public_url loses a trailing slash.
    let c = ok(&sources(
        &dir,
        Some(r#"public_url = "https://mcp.example.com/cron/""#),
        &[],
        &[],
    ));
    assert_eq!(
        c.public_url.as_deref(),
        Some("https://mcp.example.com/cron")
    );
}

#[test]
fn auth_none_is_refused_unless_the_host_is_loopback() {
    let dir = TempDir::new("claudecron-config-test-auth-none");
    for host in ["0.0.0.0", "192.168.1.10", "::", "example.com"] {
        let e = refused(&sources(
            &dir,
            Some(&format!("auth = \"none\"\nhost = \"{host}\"")),
            &[],
            &[],
        ));
        assert_says(
            &e,
            &["auth", "\"none\"", host, "not loopback", "auth = \"token\""],
        );
    }
    for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
        let c = ok(&sources(
            &dir,
            Some(&format!("auth = \"none\"\nhost = \"{host}\"")),
            &[],
            &[],
        ));
        assert_eq!(c.auth, AuthMode::None, "{host}");
    }
    // The check sees the final host, whichever layer set it.
    let e = refused(&sources(
        &dir,
        Some("auth = \"none\""),
        &[],
        &[("host", "0.0.0.0")],
    ));
    assert_says(&e, &["not loopback"]);
    // Token auth on a public interface is fine.
    let c = ok(&sources(&dir, Some(""), &[], &[("host", "0.0.0.0")]));
    assert_eq!(c.auth, AuthMode::Token);
}

#[test]
fn a_named_config_file_must_exist() {
    let dir = TempDir::new("claudecron-config-test-missing");
    let missing = dir.path().join("nope.toml");
    let s = Sources {
        config_file: Some(missing.clone()),
        env: BTreeMap::new(),
        flags: Vec::new(),
        home: Some(dir.path().join("home")),
    };
    let e = refused(&s);
    assert_says(
        &e,
        &[&missing.display().to_string(), "--config", "does not exist"],
    );

    let missing_name = missing.to_string_lossy().into_owned();
    let e = refused(&sources(
        &dir,
        None,
        &[("CLAUDECRON_CONFIG", missing_name.as_str())],
        &[],
    ));
    assert_says(&e, &["CLAUDECRON_CONFIG", "does not exist"]);

    // A directory is not a config file.
    let s = Sources {
        config_file: Some(dir.path().to_path_buf()),
        ..s
    };
    assert_says(&refused(&s), &["not a file"]);

    // With nothing named and no default file present, the defaults apply.
    if !Path::new("/etc/claudecron/config.toml").exists() {
        let c = ok(&sources(&dir, None, &[], &[]));
        assert_eq!(c.source_file, None);
        assert_eq!(c.port, 3010);
    }
}

#[test]
fn anthropic_api_key_falls_back_to_the_standard_variable() {
    let dir = TempDir::new("claudecron-config-test-api-key");
    let c = ok(&sources(
        &dir,
        Some(""),
        &[("ANTHROPIC_API_KEY", "sk-standard")],
        &[],
    ));
    assert_eq!(c.anthropic_api_key.as_deref(), Some("sk-standard"));
    // claudecron's own setting wins, from env or file.
    let c = ok(&sources(
        &dir,
        Some(""),
        &[
            ("ANTHROPIC_API_KEY", "sk-standard"),
            ("CLAUDECRON_ANTHROPIC_API_KEY", "sk-own"),
        ],
        &[],
    ));
    assert_eq!(c.anthropic_api_key.as_deref(), Some("sk-own"));
    let c = ok(&sources(
        &dir,
        Some(r#"anthropic_api_key = "sk-file""#),
        &[("ANTHROPIC_API_KEY", "sk-standard")],
        &[],
    ));
    assert_eq!(c.anthropic_api_key.as_deref(), Some("sk-file"));
    // Empty means unset, at either place.
    let c = ok(&sources(
        &dir,
        Some(""),
        &[
            ("ANTHROPIC_API_KEY", ""),
            ("CLAUDECRON_ANTHROPIC_API_KEY", ""),
        ],
        &[],
    ));
    assert_eq!(c.anthropic_api_key, None);
    let c = ok(&sources(&dir, Some(""), &[], &[]));
    assert_eq!(c.anthropic_api_key, None);
}

#[test]
fn secrets_are_masked_in_settings_and_never_echoed_in_errors() {
    let dir = TempDir::new("claudecron-config-test-secrets");
    let c = ok(&sources(
        &dir,
        Some(""),
        &[
            ("CLAUDECRON_ANTHROPIC_API_KEY", "sk-secret-123"),
            ("CLAUDECRON_AUTH_TOKENS", "tok-secret-0123456789abcdef"),
            ("CLAUDECRON_METRICS_TOKEN", "scrape-secret-0123456789"),
        ],
        &[],
    ));
    let shown = c.describe();
    let text = format!("{shown:?}");
    assert!(!text.contains("sk-secret-123"), "{text}");
    assert!(!text.contains("tok-secret-0123456789abcdef"), "{text}");
    assert!(!text.contains("scrape-secret"), "{text}");
    let value = |key: &str| {
        shown
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(value("anthropic_api_key"), "(set, hidden)");
    assert_eq!(value("auth_tokens"), "(1 set, hidden)");
    assert_eq!(value("metrics_token"), "(set, hidden)");
    // Every key of the table is described once.
    assert_eq!(shown.len(), 42);
    // A short metrics token is refused without showing it.
    let e = refused(&sources(
        &dir,
        Some(r#"metrics_token = "scrape-short""#),
        &[],
        &[],
    ));
    assert!(
        e.contains("metrics_token") && !e.contains("scrape-short"),
        "{e}"
    );
    let e = refused(&sources(&dir, Some(r#"metrics_auth = "open""#), &[], &[]));
    assert!(e.contains("token, metrics_token, loopback"), "{e}");

    // Wrongly typed or too short secrets are refused without showing them.
    for toml in [
        r#"auth_tokens = "tok-secret-0123456789abcdef""#,
        r#"auth_tokens = ["tok-secret-0123456789abcdef", 12345]"#,
        r#"auth_tokens = ["tok-secret"]"#,
        r#"anthropic_api_key = ["sk-secret-123"]"#,
    ] {
        let e = refused(&sources(&dir, Some(toml), &[], &[]));
        assert!(
            !e.contains("tok-secret") && !e.contains("sk-secret") && !e.contains("12345"),
            "{toml}: {e}"
        );
        assert!(
            e.contains("auth_tokens") || e.contains("anthropic_api_key"),
            "{toml}: {e}"
        );
        assert!(
            e.contains("list of strings") || e.contains("at least 16") || e.contains("a string"),
            "{toml}: {e}"
        );
    }
}

#[test]
fn spend_caps_and_api_prices_are_read_from_every_layer_and_bad_values_refused() {
    let dir = TempDir::new("claudecron-config-test-budget");
    let c = ok(&sources(
        &dir,
        Some("daily_budget_usd = 5\napi_prices = [\"claude-sonnet-4-5=3/15\", \"claude-opus-4-1 = 15 / 75\"]"),
        &[],
        &[],
    ));
    assert_eq!(c.daily_budget_usd, Some(5.0));
    assert_eq!(c.api_prices.len(), 2);
    let p = claudecron::config::ApiPrice::find(&c.api_prices, "claude-sonnet-4-5-20250929")
        .expect("a dated id matches its prefix entry");
    assert_eq!((p.input_per_mtok, p.output_per_mtok), (3.0, 15.0));
    assert!((p.cost(1_000_000, 100_000) - 4.5).abs() < 1e-9);
    assert!(claudecron::config::ApiPrice::find(&c.api_prices, "claude-sonnet-4-50").is_none());
    let c = ok(&sources(
        &dir,
        None,
        &[("CLAUDECRON_DAILY_BUDGET_USD", "0.5")],
        &[],
    ));
    assert_eq!(c.daily_budget_usd, Some(0.5));
    for (toml, want) in [
        ("daily_budget_usd = 0", "daily_budget_usd (from"),
        ("daily_budget_usd = \"lots\"", "amount in USD above 0"),
        (
            "api_prices = [\"sonnet:3:15\"]",
            "expected model=INPUT/OUTPUT",
        ),
        ("api_prices = [\"m=3/x\"]", "e.g. claude-sonnet-4-5=3/15"),
    ] {
        let e = refused(&sources(&dir, Some(toml), &[], &[]));
        assert!(e.contains(want), "{toml}: {e}");
    }
}

#[test]
fn notify_channels_are_read_from_toml_and_checked_without_showing_urls_or_secrets() {
    let dir = TempDir::new("claudecron-config-test-channels");
    let c = ok(&sources(
        &dir,
        Some(
            "[[notify_channels]]\nname = \"ops\"\nurl = \"https://hooks.example.com/T/s3cret\"\nsecret = \"k3y\"\n\n[[notify_channels]]\nname = \"tg\"\nurl = \"https://api.telegram.org/bot123:tgS3cretTok/sendMessage\"\npreset = \"telegram\"\nchat_id = \"-100\"\n",
        ),
        &[],
        &[],
    ));
    let names: Vec<&str> = c.notify_channels.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ops", "tg"]);
    assert_eq!(c.notify_channels[0].secret.as_deref(), Some("k3y"));
    let shown = format!("{:?} {:?}", c.notify_channels, c.describe());
    assert!(
        !shown.contains("s3cret") && !shown.contains("k3y") && !shown.contains("tgS3cretTok"),
        "{shown}"
    );
    for (bad, says) in [
        ("[[notify_channels]]\nname = \"tg\"\nurl = \"https://x.example/s3cret\"\npreset = \"telegram\"\n", "chat_id"),
        ("[[notify_channels]]\nname = \"a\"\nurl = \"ftp://x.example/s3cret\"\n", "url"),
        ("[[notify_channels]]\nname = \"a\"\nurl = \"https://x.example/s3cret\"\npreset = \"slack\"\nsecret = \"s3cret\"\n", "generic"),
        ("[[notify_channels]]\nname = \"a\"\nurl = \"https://x.example/a\"\n[[notify_channels]]\nname = \"a\"\nurl = \"https://x.example/b\"\n", "unique"),
    ] {
        let e = refused(&sources(&dir, Some(bad), &[], &[]));
        assert_says(&e, &["notify_channels", says]);
        assert!(!e.contains("s3cret"), "{e}");
    }
}
