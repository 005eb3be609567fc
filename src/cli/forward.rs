//! `claudecron hook`: forward a Claude Code hook payload from stdin to the running server's
//! `/hooks` within a 2-second budget. It prints nothing on stdout (Claude Code feeds some hooks'
//! stdout to the model) and never fails Claude Code: every outcome exits 0, problems go to stderr.

use crate::config::{self, Config, Sources};
use std::io::Read;
use std::time::{Duration, Instant};

/// The whole budget: reading stdin and the POST.
pub const BUDGET: Duration = Duration::from_secs(2);
/// The most we read from stdin.
const MAX_PAYLOAD: u64 = 16 << 20;

/// Where the server listens for hooks, from the config: its own host and port (a wildcard
/// listen address becomes loopback).
pub fn default_url(config: &Config) -> String {
    let host = match config.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" | "[::]" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    format!("http://{host}:{}/hooks", config.port)
}

/// The token to send: `--token`, else `$CLAUDECRON_TOKEN`, else the config's first token, else
/// the token file (read, never created here).
pub(super) fn token(
    flag: Option<String>,
    sources: &Sources,
    config: Option<&Config>,
) -> Option<String> {
    flag.or_else(|| sources.env.get("CLAUDECRON_TOKEN").cloned())
        .filter(|t| !t.is_empty())
        .or_else(|| config.and_then(|c| c.auth_tokens.first().cloned()))
        .or_else(|| {
            let c = config?;
            std::fs::read_to_string(&c.token_file)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        })
}

/// Run `claudecron hook [--url URL] [--token TOKEN]`; always returns normally (exit 0).
pub fn run(rest: &[String], sources: &Sources) {
    let started = Instant::now();
    let mut url: Option<String> = None;
    let mut token_flag: Option<String> = None;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = super::flags::split_flag(arg);
        match flag {
            "--url" => url = inline.or_else(|| iter.next().cloned()),
            "--token" => token_flag = inline.or_else(|| iter.next().cloned()),
            _ => eprintln!("claudecron hook: ignoring unknown argument \"{arg}\" (accepted: --url URL, --token TOKEN)"),
        }
    }
    let config = config::load(sources);
    if let Err(e) = &config {
        eprintln!("claudecron hook: config not loaded ({e}); using defaults");
    }
    let config = config.ok();
    let url = url.unwrap_or_else(|| {
        config
            .as_ref()
            .map(default_url)
            .unwrap_or_else(|| "http://127.0.0.1:3010/hooks".into())
    });
    let token = token(token_flag, sources, config.as_ref());

    // Read stdin on a helper thread so a stdin that never closes cannot hold Claude Code up.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
    let _ = std::thread::Builder::new()
        .name("hook-stdin".into())
        .spawn(move || {
            let mut payload = Vec::new();
            let _ = std::io::stdin().take(MAX_PAYLOAD).read_to_end(&mut payload);
            let _ = tx.send(payload);
        });
    let payload = match rx.recv_timeout(BUDGET.saturating_sub(started.elapsed())) {
        Ok(p) => p,
        Err(_) => {
            eprintln!(
                "claudecron hook: no payload on stdin within {} s; nothing sent",
                BUDGET.as_secs()
            );
            return;
        }
    };
    let remaining = BUDGET
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(remaining))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(&url).header("Content-Type", "application/json");
    if let Some(t) = &token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    match request.send(&payload[..]) {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => eprintln!(
            "claudecron hook: the server at {url} answered {}",
            resp.status()
        ),
        Err(e) => eprintln!("claudecron hook: could not reach {url}: {e}"),
    }
}
