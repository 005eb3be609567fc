//! Unit tests of the parent module.

use super::*;

fn sources(env: &[(&str, &str)]) -> Sources {
    Sources {
        config_file: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        flags: Vec::new(),
        home: Some(PathBuf::from("/nonexistent-home")),
    }
}

#[test]
fn defaults_follow_the_spec() {
    let c = load(&sources(&[])).unwrap();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 3010);
    assert_eq!(
        c.db_path,
        PathBuf::from("/nonexistent-home/.claudecron/tasks.db")
    );
    assert_eq!(
        c.token_file,
        PathBuf::from("/nonexistent-home/.claudecron/token")
    );
    assert_eq!(c.rate_limit_per_minute, 100);
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.auth, AuthMode::Token);
    assert_eq!(c.output_max_bytes, 262_144);
}

#[test]
fn env_lists_are_comma_separated() {
    let c = load(&sources(&[(
        "CLAUDECRON_ALLOWED_ORIGINS",
        "https://a.example, https://b.example",
    )]))
    .unwrap();
    assert_eq!(
        c.allowed_origins,
        vec!["https://a.example", "https://b.example"]
    );
}

#[test]
fn bad_values_name_the_key_and_what_is_accepted() {
    let err = load(&sources(&[("CLAUDECRON_PORT", "70000")])).unwrap_err();
    assert!(err.contains("port") && err.contains("0 to 65535"), "{err}");
    let err = load(&sources(&[
        ("CLAUDECRON_AUTH", "none"),
        ("CLAUDECRON_HOST", "0.0.0.0"),
    ]))
    .unwrap_err();
    assert!(err.contains("auth") && err.contains("loopback"), "{err}");
    let err = load(&sources(&[("CLAUDECRON_DEFAULT_TIMEZONE", "Mars/Base")])).unwrap_err();
    assert!(err.starts_with("default_timezone"), "{err}");
}
