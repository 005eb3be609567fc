//! The OAuth 2.1 authorization server's pure rules (issue 12): PKCE S256, the redirect-URI
//! allow-list, token and code hashing, the owner password's hash (PBKDF2-SHA256), the metadata
//! documents (RFC 9728, RFC 8414), the OAuth error codes and the decisions on codes and refresh
//! tokens. No I/O, no clock (callers pass `now`), no logging; it never keeps a secret, only hashes.

use serde_json::{json, Value};
use std::num::NonZeroU32;

/// How long an authorization code lives (seconds).
pub const CODE_SECS: i64 = 60;
/// How long an owner's one-time approval code (`claudecron oauth approve`) lives (seconds).
pub const APPROVAL_SECS: i64 = 600;
/// PBKDF2 iterations of a new password hash.
const PBKDF2_ITERATIONS: u32 = 100_000;
/// The special allow-list entry admitting loopback redirect URIs on any port (Claude Code).
pub const LOOPBACK: &str = "loopback";
/// The default redirect-URI allow-list.
pub const DEFAULT_REDIRECT_URIS: &str =
    "https://claude.ai/api/mcp/auth_callback,https://claude.com/api/mcp/auth_callback,loopback";

/// An OAuth error code (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidTarget,
    AccessDenied,
    InvalidRedirectUri,
    InvalidClientMetadata,
    UnsupportedResponseType,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidTarget => "invalid_target",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::InvalidRedirectUri => "invalid_redirect_uri",
            OAuthError::InvalidClientMetadata => "invalid_client_metadata",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
        }
    }

    /// The HTTP status of the error at the token and registration endpoints.
    pub fn status(self) -> u16 {
        match self {
            OAuthError::InvalidClient => 401,
            _ => 400,
        }
    }
}

/// A refusal: the code and a description saying what was wrong and what is accepted.
pub type Refusal = (OAuthError, String);

fn refuse<T>(code: OAuthError, text: &str) -> Result<T, Refusal> {
    Err((code, text.to_string()))
}

/// The URLs of this server, from `public_url` (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// The issuer: `public_url` itself.
    pub issuer: String,
    /// The protected resource: the public MCP URL.
    pub resource: String,
}

impl Urls {
    pub fn new(public_url: &str) -> Urls {
        let base = public_url.trim_end_matches('/').to_string();
        Urls {
            resource: format!("{base}/mcp"),
            issuer: base,
        }
    }

    /// Where the protected resource metadata is (named in `WWW-Authenticate`).
    pub fn resource_metadata(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.issuer)
    }

    /// RFC 9728 protected resource metadata.
    pub fn protected_resource_doc(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "claudecron",
        })
    }

    /// RFC 8414 authorization server metadata.
    pub fn authorization_server_doc(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "registration_endpoint": format!("{}/register", self.issuer),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
        })
    }
}

/// SHA-256 of a secret, lower-case hex: the form in which codes and tokens are stored.
pub fn secret_hash(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Base64url without padding (RFC 7636's encoding of the S256 challenge).
pub fn base64url(bytes: &[u8]) -> String {
    crate::util::base64url_encode(bytes)
}

/// Decode standard base64 (padding optional), e.g. an `Authorization: Basic` value.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    crate::util::base64_decode(text)
}

/// May the server fetch from this address (a client ID metadata document)? Only public
/// unicast addresses: never loopback, private, link-local, shared (CGNAT), unspecified,
/// multicast or documentation ranges, so a client_id URL cannot make the server probe its own
/// network.
pub fn public_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240 // reserved, and the broadcast address
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 192 && b == 88 && v4.octets()[2] == 99)) // 6to4 relay anycast
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
            // (64:ff9b::/96; 64:ff9b:1::/48 is local-use translation), 6to4 (2002:AABB:CCDD::):
            // judged by the IPv4 address they reach.
            let embedded = match s {
                [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
                    Some((hi, lo))
                }
                [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some((hi, lo)),
                [0x2002, hi, lo, ..] => Some((hi, lo)),
                _ => None,
            };
            if let Some((hi, lo)) = embedded {
                let v4 = std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
                return public_address(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] == 0x64 && s[1] == 0xff9b) // 64:ff9b:1::/48, local NAT64
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed by some)
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// The S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Whether a PKCE value (verifier or S256 challenge) has RFC 7636's form: 43 to 128 of
/// `[A-Za-z0-9-._~]`.
pub fn pkce_value_ok(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Does the verifier match the stored S256 challenge (compared in constant time)?
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    pkce_value_ok(verifier) && constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

/// Constant-time equality (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Is this a loopback `http` redirect URI (any port, any path, no fragment)?
fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let port_ok = match authority
        .rsplit_once("]:")
        .or_else(|| (!authority.starts_with('[')).then(|| authority.split_once(':'))?)
    {
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1") && port_ok && !uri.contains('#')
}

/// A loopback redirect URI without its port: (host, path and query), for RFC 8252 §7.3.
fn loopback_without_port(uri: &str) -> Option<(&str, &str)> {
    if !is_loopback_redirect(uri) {
        return None;
    }
    let rest = uri.strip_prefix("http://")?;
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(cut);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    Some((host, tail))
}

/// Does a presented redirect URI match a registered one? Exactly; or, both loopback, equal but
/// for the port (RFC 8252 §7.3, OAuth 2.1 §8.4.2: native clients pick a free port each time).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    registered == presented
        || matches!(
            (loopback_without_port(registered), loopback_without_port(presented)),
            (Some(a), Some(b)) if a == b
        )
}

/// Is a redirect URI on the allow-list: equal to an entry, or loopback with `loopback` listed?
pub fn redirect_allowed(uri: &str, allow: &[String]) -> bool {
    uri_characters_only(uri)
        && allow
            .iter()
            .any(|a| a == uri || (a == LOOPBACK && is_loopback_redirect(uri)))
}

/// Only the characters a URI may hold (RFC 3986 §2: unreserved, reserved, `%`): a redirect
/// URI goes into a `Location` header, and a CR or LF there would add headers of the client's
/// choosing to the answer; spaces, quotes, `\` and non-ASCII have no place in one either.
fn uri_characters_only(uri: &str) -> bool {
    !uri.is_empty()
        && uri
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b))
}

/// Check a client's redirect URIs (registration or metadata document): at least one, each on
/// the allow-list.
pub fn check_redirect_uris(uris: &[String], allow: &[String]) -> Result<(), Refusal> {
    if uris.is_empty() {
        return refuse(
            OAuthError::InvalidRedirectUri,
            "redirect_uris must list at least one URI",
        );
    }
    match uris.iter().find(|u| !redirect_allowed(u, allow)) {
        Some(bad) => Err((
            OAuthError::InvalidRedirectUri,
            format!(
                "redirect URI {bad:?} is not allowed; this server accepts: {} (oauth_redirect_uris)",
                allow.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// A new PBKDF2-SHA256 hash of the owner's password: `pbkdf2-sha256$ITER$SALT$HASH` (hex).
pub fn hash_password(password: &str, salt: &[u8; 16]) -> String {
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        hex(salt),
        hex(&out)
    )
}

/// The parts of a stored password hash, or None when it has not the form `hash_password` makes.
fn parse_password_hash(stored: &str) -> Option<(NonZeroU32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if parts.next()? != "pbkdf2-sha256" {
        return None;
    }
    let iterations = NonZeroU32::new(parts.next()?.parse().ok()?)?;
    let salt = unhex(parts.next()?)?;
    let hash = unhex(parts.next()?)?;
    (parts.next().is_none() && hash.len() == 32 && !salt.is_empty())
        .then_some((iterations, salt, hash))
}

/// Whether a configured hash has the accepted form.
pub fn password_hash_ok(stored: &str) -> bool {
    parse_password_hash(stored).is_some()
}

/// Does the password match the stored hash (ring compares in constant time)?
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some((iterations, salt, hash)) = parse_password_hash(stored) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A stored authorization code, as the token endpoint sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub resource: String,
    pub expires_at: i64,
    /// The grant it was already exchanged for (a second use revokes that grant).
    pub redeemed_grant: Option<i64>,
}

/// What a token request with a code presents.
#[derive(Debug, Clone, Default)]
pub struct CodeExchange<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    /// The `resource` parameter, if sent.
    pub resource: Option<&'a str>,
}

/// The decision on a code exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeDecision {
    /// Issue tokens for this resource.
    Issue {
        resource: String,
    },
    /// The code was used before: refuse, and revoke the grant it gave.
    Reused {
        grant_id: i64,
    },
    Refuse(Refusal),
}

/// Decide a code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707).
pub fn decide_code(code: &CodeRecord, req: &CodeExchange, now: i64) -> CodeDecision {
    use CodeDecision::Refuse;
    let grant = |text: &str| Refuse((OAuthError::InvalidGrant, text.to_string()));
    if let Some(grant_id) = code.redeemed_grant {
        return CodeDecision::Reused { grant_id };
    }
    if now >= code.expires_at {
        return grant("the authorization code has expired; start the authorization again");
    }
    if code.client_id != req.client_id {
        return grant("the authorization code was issued to another client");
    }
    if code.redirect_uri != req.redirect_uri {
        return grant("redirect_uri differs from the one of the authorization request");
    }
    if !pkce_matches(req.code_verifier, &code.challenge) {
        return grant("code_verifier does not match the code_challenge (S256)");
    }
    if let Some(resource) = req.resource {
        if resource != code.resource {
            return Refuse((
                OAuthError::InvalidTarget,
                format!(
                    "resource {resource:?} is not the one authorized; this server's resource is {:?}",
                    code.resource
                ),
            ));
        }
    }
    CodeDecision::Issue {
        resource: code.resource.clone(),
    }
}

/// A stored refresh token with its grant and client, as the token endpoint sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    pub grant_id: i64,
    pub client_id: String,
    pub resource: String,
    pub expires_at: i64,
    pub used: bool,
    pub grant_revoked: bool,
    pub client_revoked: bool,
}

/// The decision on a refresh.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshDecision {
    /// Rotate: the old token is spent, a new pair is issued in the same grant.
    Rotate,
    /// A spent token came back: refuse and revoke the whole grant (its family).
    ReuseRevoke,
    Refuse(Refusal),
}

/// Decide a refresh (OAuth 2.1 §4.3, rotation with reuse detection).
pub fn decide_refresh(
    token: &RefreshRecord,
    client_id: &str,
    resource: Option<&str>,
    now: i64,
) -> RefreshDecision {
    use RefreshDecision::Refuse;
    if token.client_revoked {
        return Refuse((
            OAuthError::InvalidClient,
            "the client was revoked by the owner".into(),
        ));
    }
    if token.grant_revoked {
        return Refuse((
            OAuthError::InvalidGrant,
            "the refresh token was revoked".into(),
        ));
    }
    if token.client_id != client_id {
        return Refuse((
            OAuthError::InvalidGrant,
            "the refresh token was issued to another client".into(),
        ));
    }
    if token.used {
        return RefreshDecision::ReuseRevoke;
    }
    if now >= token.expires_at {
        return Refuse((
            OAuthError::InvalidGrant,
            "the refresh token has expired".into(),
        ));
    }
    if resource.is_some_and(|r| r != token.resource) {
        return Refuse((
            OAuthError::InvalidTarget,
            format!("resource must be {:?}", token.resource),
        ));
    }
    RefreshDecision::Rotate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_known_answer() {
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(pkce_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches("short", &s256("short")));
    }

    #[test]
    fn redirect_allow_list() {
        let allow: Vec<String> = DEFAULT_REDIRECT_URIS.split(',').map(String::from).collect();
        assert!(redirect_allowed(
            "https://claude.ai/api/mcp/auth_callback",
            &allow
        ));
        assert!(redirect_allowed("http://127.0.0.1:33418/callback", &allow));
        assert!(redirect_allowed("http://localhost/cb", &allow));
        assert!(redirect_allowed("http://[::1]:80/cb", &allow));
        assert!(!redirect_allowed(
            "https://claude.ai/api/mcp/auth_callback/x",
            &allow
        ));
        assert!(!redirect_allowed("http://127.0.0.1.evil.com/cb", &allow));
        assert!(!redirect_allowed("http://localhost:80@evil.com/cb", &allow));
        assert!(!redirect_allowed("https://evil.example/cb", &allow));
        assert!(check_redirect_uris(&[], &allow).is_err());
        assert!(redirect_matches(
            "http://localhost/callback",
            "http://localhost:49152/callback"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1:1/cb?x=1",
            "http://127.0.0.1:2/cb?x=1"
        ));
        assert!(!redirect_matches(
            "http://localhost/callback",
            "http://localhost:1/other"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://127.0.0.1/cb"
        ));
        assert!(!redirect_matches(
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.ai:8443/api/mcp/auth_callback"
        ));
    }

    #[test]
    fn basic_auth_and_public_addresses() {
        assert_eq!(base64_decode("YWI6Yw==").as_deref(), Some(&b"ab:c"[..]));
        assert_eq!(base64_decode("YWI6Yw").as_deref(), Some(&b"ab:c"[..]));
        assert_eq!(base64_decode("*"), None);
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            // IPv4 reached through IPv6 (NAT64, 6to4, compatible) and other reserved ranges.
            "64:ff9b::a00:5",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "fec0::1",
            "240.0.0.1",
            "192.0.0.8",
            "192.88.99.1",
        ] {
            assert!(!public_address(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "160.79.104.10",
            "2606:4700::1111",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            assert!(public_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse", &[7u8; 16]);
        assert!(password_hash_ok(&h));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsf", &h));
        assert!(!verify_password("x", "plain"));
    }

    #[test]
    fn refresh_reuse_revokes() {
        let mut t = RefreshRecord {
            grant_id: 1,
            client_id: "c".into(),
            resource: "r".into(),
            expires_at: 100,
            used: false,
            grant_revoked: false,
            client_revoked: false,
        };
        assert_eq!(decide_refresh(&t, "c", None, 50), RefreshDecision::Rotate);
        t.used = true;
        assert_eq!(
            decide_refresh(&t, "c", None, 50),
            RefreshDecision::ReuseRevoke
        );
    }
}
