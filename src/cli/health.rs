//! `claudecron health`: GET the running server's `/health` and exit 0 when it answers 200, 1
//! otherwise (the container image's HEALTHCHECK, which has no curl). It sends no token (the
//! endpoint needs none), prints one line, and never starts or changes anything.

use super::CliError;
use crate::config::{self, Sources};
use std::time::Duration;

/// How long the whole check may take; a health check that hangs is a failed one.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the answer's body that is read and printed.
const MAX_BODY: u64 = 4096;

/// Run `claudecron health [--url URL]`: Ok (exit 0) when `/health` answers 200; Failed (exit 1)
/// when it answers anything else, cannot be reached, or the config cannot say where it is.
pub fn run(rest: &[String], sources: &Sources) -> Result<(), CliError> {
    let mut url: Option<String> = None;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match super::flags::split_flag(arg) {
            ("--url", inline) => {
                url = Some(inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage(
                        "--url needs a value, e.g. --url http://127.0.0.1:3010/health".into(),
                    )
                })?)
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `health`; accepted: --url URL, --config FILE"
                )))
            }
        }
    }
    let url = match url {
        Some(u) => u,
        None => {
            let config = config::load(sources).map_err(|e| {
                CliError::Failed(format!(
                    "unhealthy: the configuration does not load, so the server's address is unknown: {e}"
                ))
            })?;
            super::forward::default_url(&config)
                .trim_end_matches("/hooks")
                .to_string()
                + "/health"
        }
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(CliError::Usage(format!(
            "--url \"{url}\" is not an http(s) URL; e.g. http://127.0.0.1:3010/health"
        )));
    }
    let line = check(&url).map_err(CliError::Failed)?;
    println!("{line}");
    Ok(())
}

/// One GET of `url`: Ok(a line saying it is healthy) on 200, Err(why not) otherwise.
pub fn check(url: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("unhealthy: could not reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .unwrap_or_default();
    let body = body.trim();
    if status == 200 {
        Ok(format!("healthy: {url} answered 200 {body}"))
    } else {
        Err(format!("unhealthy: {url} answered {status} {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server on a free loopback port answering `status` with `body`.
    fn answer_once(status: &str, body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let status = status.to_string();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://127.0.0.1:{port}/health")
    }

    #[test]
    fn a_200_is_healthy_and_the_body_is_shown() {
        let url = answer_once("200 OK", r#"{"status":"ok"}"#);
        let line = check(&url).expect("200 is healthy");
        assert!(line.starts_with("healthy:"), "{line}");
        assert!(line.contains(r#"{"status":"ok"}"#), "{line}");
    }

    #[test]
    fn a_503_is_unhealthy_with_the_reason() {
        let url = answer_once("503 Service Unavailable", r#"{"database":"disk full"}"#);
        let why = check(&url).expect_err("503 is unhealthy");
        assert!(why.contains("answered 503"), "{why}");
        assert!(why.contains("disk full"), "{why}");
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let why = check(&format!("http://127.0.0.1:{port}/health")).expect_err("nothing listens");
        assert!(why.contains("could not reach"), "{why}");
    }
}
