//! The OAuth authorization server's settings (issue 12): `oauth_enabled`, the owner's password
//! hash, token lifetimes and the redirect-URI allow-list, read from the typed key values and
//! checked (`public_url` required when on). It never shows the password hash.

use super::{Kind, Typed};

/// The OAuth keys (next to `config::KEYS`): name, type, default.
pub(super) const KEYS: &[(&str, Kind, Option<&str>)] = &[
    ("oauth_enabled", Kind::Bool, Some("false")),
    ("oauth_password_hash", Kind::OptStr, None),
    (
        "oauth_access_token_secs",
        Kind::Int {
            min: 60,
            max: 86_400,
        },
        Some("3600"),
    ),
    (
        "oauth_refresh_token_secs",
        Kind::Int {
            min: 300,
            max: 365 * 86_400,
        },
        Some("2592000"),
    ),
    ("oauth_redirect_uris", Kind::List, Some("")),
];

/// The OAuth settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    pub enabled: bool,
    /// `pbkdf2-sha256$…` from `claudecron oauth set-password` (None: only one-time codes).
    pub password_hash: Option<String>,
    pub access_token_secs: u64,
    pub refresh_token_secs: u64,
    /// Exact redirect URIs, and `loopback` for http://127.0.0.1|localhost|[::1] on any port.
    pub redirect_uris: Vec<String>,
}

/// Read and check the `oauth_*` keys.
pub(super) fn build(
    take: &mut impl FnMut(&str) -> Typed,
    public_url: Option<&str>,
) -> Result<OAuthConfig, String> {
    let enabled = matches!(take("oauth_enabled"), Typed::Bool(true));
    let password_hash = match take("oauth_password_hash") {
        Typed::Str(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    };
    if password_hash
        .as_deref()
        .is_some_and(|h| !crate::oauth::password_hash_ok(h))
    {
        return Err("oauth_password_hash: not a hash made by `claudecron oauth set-password` (expected pbkdf2-sha256$ITERATIONS$SALT$HASH; value not shown)".into());
    }
    let int = |t: Typed| match t {
        Typed::Int(n) => n,
        _ => 0,
    };
    let access_token_secs = int(take("oauth_access_token_secs"));
    let refresh_token_secs = int(take("oauth_refresh_token_secs"));
    let redirect_uris = match take("oauth_redirect_uris") {
        Typed::List(l) if !l.is_empty() => l,
        _ => crate::oauth::DEFAULT_REDIRECT_URIS
            .split(',')
            .map(String::from)
            .collect(),
    };
    for uri in &redirect_uris {
        let fine = uri == crate::oauth::LOOPBACK
            || ((uri.starts_with("https://") || uri.starts_with("http://"))
                && !uri.contains('#')
                && !uri.contains(char::is_whitespace));
        if !fine {
            return Err(format!(
                "oauth_redirect_uris: \"{uri}\" is not accepted; expected exact http(s) URIs without a fragment, or \"loopback\""
            ));
        }
    }
    if enabled && public_url.is_none() {
        return Err("oauth_enabled: needs public_url (the URL clients reach this server at, e.g. https://mcp.example.com/cron); the OAuth resource is public_url + \"/mcp\"".into());
    }
    Ok(OAuthConfig {
        enabled,
        password_hash,
        access_token_secs,
        refresh_token_secs,
        redirect_uris,
    })
}

impl OAuthConfig {
    /// `check`'s lines (the hash hidden).
    pub(super) fn describe(&self) -> Vec<(String, String)> {
        let hash = match self.password_hash {
            Some(_) => "(set, hidden)",
            None => "(none; one-time codes from `claudecron oauth approve`)",
        };
        vec![
            ("oauth_enabled".into(), self.enabled.to_string()),
            ("oauth_password_hash".into(), hash.into()),
            (
                "oauth_access_token_secs".into(),
                self.access_token_secs.to_string(),
            ),
            (
                "oauth_refresh_token_secs".into(),
                self.refresh_token_secs.to_string(),
            ),
            (
                "oauth_redirect_uris".into(),
                format!("[{}]", self.redirect_uris.join(", ")),
            ),
        ]
    }
}
