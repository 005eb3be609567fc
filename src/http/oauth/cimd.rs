//! Client ID metadata documents (an `https://` client_id, draft-ietf-oauth-client-id-metadata-
//! document): fetched with ureq from public addresses only, HTTPS only, no redirects, within 5 s
//! and 16 KiB, at most two at once (a failed URL refused for a minute); the document must name
//! itself. It only fetches and reads; caching good documents is the store's.

use crate::oauth::{self as rules, OAuthError, Refusal};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A client ID metadata document larger than this is refused.
const CIMD_MAX_BYTES: u64 = 16 * 1024;
/// How long fetching a metadata document may take.
const CIMD_TIMEOUT: Duration = Duration::from_secs(5);

/// How many fetches may be under way at once: each holds the lane of the request that caused
/// it (anyone may send a made-up client_id URL), so a few slow hosts must not take the lanes
/// `/mcp` needs.
const CIMD_CONCURRENT: usize = 2;
/// How long a name may take to resolve (getaddrinfo has no time limit of its own).
const CIMD_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// A URL whose fetch failed is refused at once for this long.
const CIMD_FAILED_FOR: Duration = Duration::from_secs(60);

static UNDER_WAY: AtomicUsize = AtomicUsize::new(0);
static FAILED: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

/// One of the `CIMD_CONCURRENT` fetch slots, free again when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        UNDER_WAY
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < CIMD_CONCURRENT).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        UNDER_WAY.fetch_sub(1, Ordering::AcqRel);
    }
}

fn failed_lately(url: &str) -> bool {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    failed.retain(|(_, at)| at.elapsed() < CIMD_FAILED_FOR);
    failed.iter().any(|(u, _)| u == url)
}

fn remember_failure(url: &str) {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    if failed.len() >= 1000 {
        failed.remove(0);
    }
    failed.push((url.to_string(), Instant::now()));
}

/// Fetch a client ID metadata document: HTTPS only, no redirects, within `CIMD_TIMEOUT` and
/// `CIMD_MAX_BYTES`; its `client_id` must be the URL itself. Returns its name and redirect URIs.
/// At most `CIMD_CONCURRENT` at once; a URL that failed is refused for `CIMD_FAILED_FOR`.
pub(super) fn fetch(url: &str) -> Result<(String, Vec<String>), Refusal> {
    if failed_lately(url) {
        return Err((
            OAuthError::InvalidClient,
            "the client ID metadata document could not be fetched a moment ago; try again in a minute".into(),
        ));
    }
    let (name, port) = target(url)?;
    let slot = Slot::take().ok_or_else(|| {
        (
            OAuthError::InvalidClient,
            "too many client ID metadata documents are being fetched; try again shortly".into(),
        )
    })?;
    let fetched = fetch_from(url, name, port, slot);
    if fetched.is_err() {
        remember_failure(url);
    }
    fetched
}

/// The host name and port of a metadata document URL (https, a path, no userinfo or fragment).
fn target(url: &str) -> Result<(&str, u16), Refusal> {
    let bad = |text: String| (OAuthError::InvalidClient, text);
    let host = url
        .strip_prefix("https://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    if host.is_empty()
        || host.contains('@')
        || url.contains('#')
        || url.len() > 2000
        || !url["https://".len() + host.len()..].starts_with('/')
    {
        return Err(bad(
            "a client ID metadata document URL must be an https URL with a path".into(),
        ));
    }
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (name, after) = v6.split_once(']').unwrap_or((v6, ""));
            (name, after.strip_prefix(':').unwrap_or("443"))
        }
        None => host.rsplit_once(':').unwrap_or((host, "443")),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the client ID metadata document URL has a bad port".into()))?;
    Ok((name, port))
}

fn fetch_from(
    url: &str,
    name: &str,
    port: u16,
    slot: Slot,
) -> Result<(String, Vec<String>), Refusal> {
    let bad = |text: String| (OAuthError::InvalidClient, text);
    // Only public addresses (checked on this resolution; the fetch resolves again, so a name
    // that changes its answer in between could still slip through: the document is only read
    // as JSON, never shown, and the request is bounded in time and size).
    // Resolved on a thread of its own, waited for at most CIMD_RESOLVE_TIMEOUT; the thread
    // keeps the slot until the resolver answers, so stuck lookups stay bounded too.
    let (tx, rx) = std::sync::mpsc::channel();
    let lookup = (name.to_string(), port);
    let resolver = std::thread::Builder::new()
        .name("oauth-resolve".into())
        .spawn(move || {
            use std::net::ToSocketAddrs;
            let addrs = lookup
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<std::net::SocketAddr>>());
            let _ = tx.send((addrs, slot));
        });
    if resolver.is_err() {
        return Err(bad(
            "cannot resolve the client ID metadata document's host now".into(),
        ));
    }
    let (addrs, _slot) = match rx.recv_timeout(CIMD_RESOLVE_TIMEOUT) {
        Ok(answer) => answer,
        Err(_) => {
            return Err(bad(format!(
                "the client ID metadata document's host did not resolve within {} s",
                CIMD_RESOLVE_TIMEOUT.as_secs()
            )))
        }
    };
    let addrs = addrs.map_err(|e| {
        bad(format!(
            "the client ID metadata document's host does not resolve: {e}"
        ))
    })?;
    if addrs.is_empty() || addrs.iter().any(|a| !rules::public_address(a.ip())) {
        return Err(bad(
            "the client ID metadata document's host is not a public address".into(),
        ));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(CIMD_TIMEOUT))
        .max_redirects(0)
        .https_only(true)
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| {
            bad(format!(
                "the client ID metadata document could not be fetched: {e}"
            ))
        })?;
    if response.status().as_u16() != 200 {
        return Err(bad(format!(
            "the client ID metadata document answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(CIMD_MAX_BYTES)
        .read_to_string()
        .map_err(|e| {
            bad(format!(
                "the client ID metadata document is unreadable or over {CIMD_MAX_BYTES} bytes: {e}"
            ))
        })?;
    parse(url, &text)
}

/// A metadata document's name and redirect URIs; its `client_id` must equal `url`.
fn parse(url: &str, text: &str) -> Result<(String, Vec<String>), Refusal> {
    let bad = |text: &str| {
        (
            OAuthError::InvalidClient,
            format!("client ID metadata document: {text}"),
        )
    };
    let doc: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(bad("its client_id must be the document's own URL"));
    }
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .unwrap_or(url)
        .chars()
        .take(200)
        .collect();
    Ok((name, uris))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_are_capped_and_a_failed_url_is_refused_for_a_while() {
        let slots: Vec<Slot> = std::iter::from_fn(Slot::take).take(10).collect();
        assert_eq!(slots.len(), CIMD_CONCURRENT);
        assert!(fetch("https://a.example/m.json")
            .unwrap_err()
            .1
            .contains("too many"));
        drop(slots);
        // A refusal for being busy is not remembered as the URL's failure.
        assert!(!failed_lately("https://a.example/m.json"));
        let first = fetch("https://invalid./client.json").unwrap_err().1;
        assert!(first.contains("resolve"), "{first}");
        let again = fetch("https://invalid./client.json").unwrap_err().1;
        assert!(again.contains("a moment ago"), "{again}");
    }

    #[test]
    fn metadata_documents_must_name_themselves() {
        let url = "https://app.example/client.json";
        let ok = r#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["https://claude.ai/api/mcp/auth_callback"]}"#;
        let (name, uris) = parse(url, ok).unwrap();
        assert_eq!(name, "App");
        assert_eq!(uris, vec!["https://claude.ai/api/mcp/auth_callback"]);
        assert!(parse("https://other.example/c.json", ok).is_err());
        assert!(parse(url, "<html>").is_err());
        assert!(fetch("http://app.example/c.json").is_err());
        // Never towards this host's own network (checked before any request is made).
        for url in [
            "https://127.0.0.1/c.json",
            "https://[::1]:8443/c.json",
            "https://localhost/c.json",
            "https://user@10.0.0.1/c.json",
        ] {
            let (_, why) = fetch(url).unwrap_err();
            assert!(
                why.contains("public address") || why.contains("https URL"),
                "{url}: {why}"
            );
        }
    }
}
