//! Client ID metadata documents (an `https://` client_id, draft-ietf-oauth-client-id-metadata-
//! document): fetched with ureq from public addresses only, HTTPS only, no redirects, within 5 s
//! and 16 KiB; the document must name itself. It only fetches and reads; caching is the store's.

use crate::oauth::{self as rules, OAuthError, Refusal};
use serde_json::Value;
use std::time::Duration;

/// A client ID metadata document larger than this is refused.
const CIMD_MAX_BYTES: u64 = 16 * 1024;
/// How long fetching a metadata document may take.
const CIMD_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetch a client ID metadata document: HTTPS only, no redirects, within `CIMD_TIMEOUT` and
/// `CIMD_MAX_BYTES`; its `client_id` must be the URL itself. Returns its name and redirect URIs.
pub(super) fn fetch(url: &str) -> Result<(String, Vec<String>), Refusal> {
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
    // Only public addresses (checked once here; the fetch below resolves again, so a name that
    // changes its answer in between could still slip through: the document is only read as
    // JSON, never shown, and the request is bounded in time and size).
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
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| {
            bad(format!(
                "the client ID metadata document's host does not resolve: {e}"
            ))
        })?
        .collect();
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
