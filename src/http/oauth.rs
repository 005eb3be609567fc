//! The OAuth 2.1 authorization server's endpoints (issue 12, on when `oauth_enabled`): protected
//! resource and authorization server metadata under `/.well-known/`, dynamic client registration
//! (`POST /register`), client ID metadata documents (fetched by `cimd`, cached in the store),
//! `POST /token` (code with PKCE, refresh rotation with reuse detection) and the `/mcp`
//! admission of OAuth access tokens next to the bearer tokens. The consent page is `consent`.
//! Decisions are `crate::oauth`'s; it never logs a code, token, password or client secret.

mod cimd;
mod consent;

use crate::config::OAuthConfig;
use crate::http::guard::{bearer, Guard, RateLimiter, TokenId, OAUTH_GRANT_BASE};
use crate::http::{form_field, HttpRequest, Reply};
use crate::oauth::{self as rules, OAuthError, Refusal, Urls};
use crate::store::{OAuthClient, Store, TokenPair};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

/// The most a registration, token request or consent form may bring.
pub const FORM_BYTES: usize = 16 * 1024;
/// A fetched metadata document is used this long before it is fetched again (seconds).
const CIMD_CACHE_SECS: i64 = 3600;
/// Clients at most, registered and metadata-document ones (registration is open; each needs an
/// owner's approval to matter). When full, clients unused for `UNUSED_CLIENT_SECS` make room.
const MAX_CLIENTS: usize = 10_000;
/// A client that got no grant within this long may be forgotten to make room (seconds).
const UNUSED_CLIENT_SECS: i64 = 3600;
/// Store connections kept for OAuth lookups (more are opened when needed, then closed).
const POOL_KEEP: usize = 4;

/// Is this one of the OAuth server's paths?
pub fn is_oauth_path(path: &str) -> bool {
    matches!(path, "/authorize" | "/token" | "/register")
        || path.starts_with("/.well-known/oauth-protected-resource")
        || path.starts_with("/.well-known/oauth-authorization-server")
}

/// The authorization server: its URLs, settings, a few store connections of its own (access
/// tokens are checked before a request gets a lane), the consent forms in progress and the
/// password guess limiter.
pub struct OAuthServer {
    urls: Urls,
    config: OAuthConfig,
    stores: crate::store::StorePool,
    pending: Mutex<HashMap<String, consent::Pending>>,
    guesses: RateLimiter,
    /// How long a code lives (`rules::CODE_SECS`; debug builds take
    /// `CLAUDECRON_TEST_OAUTH_CODE_SECS`, so the integration test can see a code expire).
    code_secs: i64,
}

/// Unix seconds now.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An OAuth error answer (RFC 6749 §5.2), never cached.
fn oauth_error((code, text): Refusal) -> Reply {
    no_store(Reply::json(
        code.status(),
        &json!({"error": code.as_str(), "error_description": text}),
    ))
}

fn no_store(reply: Reply) -> Reply {
    reply
        .with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

fn internal(what: &str, e: impl std::fmt::Display) -> Reply {
    log::error!("oauth: {what}: {e}");
    Reply::error(500, "the authorization server failed; see the server log")
}

impl OAuthServer {
    /// The server for `public_url` (required when OAuth is on; the config checks it).
    pub fn new(public_url: &str, config: OAuthConfig, db_path: PathBuf) -> OAuthServer {
        let host = public_url
            .strip_prefix("http://")
            .and_then(|r| r.split(['/', ':']).next());
        if host.is_some_and(|h| !crate::config::is_loopback_host(h)) {
            log::warn!(
                "oauth_enabled with a plain http public_url: the owner password and tokens cross the network unencrypted; put TLS in front (nginx.conf) and use https"
            );
        }
        OAuthServer {
            urls: Urls::new(public_url),
            config,
            stores: crate::store::StorePool::new(&db_path, POOL_KEEP),
            pending: Mutex::new(HashMap::new()),
            guesses: RateLimiter::new(10),
            code_secs: std::env::var("CLAUDECRON_TEST_OAUTH_CODE_SECS")
                .ok()
                .filter(|_| cfg!(debug_assertions))
                .and_then(|v| v.parse().ok())
                .unwrap_or(rules::CODE_SECS),
        }
    }

    /// Run `f` on a store connection of the pool (opened when none is idle).
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T, String> {
        let store = self.stores.take().map_err(|e| e.to_string())?;
        Ok(f(&store))
    }

    /// `/mcp` admission: a bearer token from `auth_tokens`, or a live OAuth access token for
    /// this resource (its grant then owns the session). Otherwise 401 naming the resource
    /// metadata (RFC 9728 §5.1).
    pub fn admit(&self, guard: &Guard, req: &HttpRequest) -> Result<TokenId, Reply> {
        let refused = match guard.authenticate(req) {
            Ok(token) => return Ok(token),
            Err(reply) => reply,
        };
        let presented = bearer(req);
        if !presented.is_empty() {
            let hash = rules::secret_hash(presented);
            let found =
                self.with_store(|s| s.oauth_access_grant(&hash, &self.urls.resource, now()));
            match found {
                Ok(Ok(Some(grant))) => {
                    return Ok(Some(OAUTH_GRANT_BASE.saturating_add(grant.max(0) as usize)))
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return Err(internal("access token lookup", e)),
                Err(e) => return Err(internal("access token lookup", e)),
            }
        }
        let mut challenge = format!(
            "Bearer resource_metadata=\"{}\"",
            self.urls.resource_metadata()
        );
        if !presented.is_empty() {
            challenge.push_str(", error=\"invalid_token\"");
        }
        let mut reply = refused;
        reply
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("www-authenticate"));
        Err(reply.with_header("WWW-Authenticate", &challenge))
    }

    /// Answer an OAuth path (`is_oauth_path`).
    pub fn route(&self, req: &HttpRequest, client: IpAddr) -> Reply {
        let method = req.method.as_str();
        let path = req.path.as_str();
        if path.starts_with("/.well-known/") {
            if method != "GET" && method != "HEAD" {
                return Reply::error(405, "method not allowed; this path accepts GET, HEAD")
                    .with_header("Allow", "GET, HEAD");
            }
            let doc = if path.starts_with("/.well-known/oauth-protected-resource") {
                self.urls.protected_resource_doc()
            } else {
                self.urls.authorization_server_doc()
            };
            return Reply::json(200, &doc).with_header("Cache-Control", "max-age=300");
        }
        match (method, path) {
            ("GET" | "HEAD", "/authorize") => self.authorize_page(req),
            ("POST", "/authorize") => self.authorize_submit(req, client),
            ("POST", "/token") => self.token(req),
            ("POST", "/register") => self.register(req),
            (_, "/authorize") => {
                Reply::error(405, "method not allowed; /authorize accepts GET, POST")
                    .with_header("Allow", "GET, POST")
            }
            _ => Reply::error(405, "method not allowed; this path accepts POST")
                .with_header("Allow", "POST"),
        }
    }

    /// A client by id: registered, or (an https URL) its metadata document, fetched when not
    /// cached or older than `CIMD_CACHE_SECS`.
    fn client(&self, client_id: &str) -> Result<OAuthClient, Refusal> {
        let unknown = || {
            (
                OAuthError::InvalidClient,
                "unknown client_id; register first (POST /register) or use a client ID metadata document URL".to_string(),
            )
        };
        let stored = self
            .with_store(|s| s.oauth_client(client_id))
            .map_err(|e| (OAuthError::InvalidRequest, format!("database: {e}")))?
            .map_err(|e| (OAuthError::InvalidRequest, format!("database: {e}")))?;
        let fresh =
            |c: &OAuthClient| c.kind == "registered" || now() - c.fetched_at < CIMD_CACHE_SECS;
        match stored {
            Some(c) if c.revoked => Err((
                OAuthError::InvalidClient,
                "this client was revoked by the owner (claudecron oauth revoke)".into(),
            )),
            Some(c) if fresh(&c) => Ok(c),
            stale if client_id.starts_with("https://") => {
                let known = stale.is_some();
                let (name, uris) = match (cimd::fetch(client_id), stale) {
                    (Ok(doc), _) => doc,
                    // Fetched before and unreachable now: the last copy serves until it is back.
                    (Err((_, why)), Some(c)) => {
                        log::warn!("oauth: client metadata document {client_id}: {why}; using the copy from before");
                        return Ok(c);
                    }
                    (Err(refusal), None) => return Err(refusal),
                };
                // Only the document's redirect URIs this server allows are kept (at least one).
                let allowed: Vec<String> = uris
                    .iter()
                    .filter(|u| rules::redirect_allowed(u, &self.config.redirect_uris))
                    .cloned()
                    .collect();
                if allowed.is_empty() {
                    rules::check_redirect_uris(&uris, &self.config.redirect_uris)?;
                }
                let uris = allowed;
                let at = now();
                self.with_store(|s| {
                    if !known && !s.oauth_room_for_client(MAX_CLIENTS, at - UNUSED_CLIENT_SECS)? {
                        return Err(crate::store::StoreError::Db(format!(
                            "this server holds {MAX_CLIENTS} clients already"
                        )));
                    }
                    s.oauth_put_client(client_id, &name, &uris, "metadata", at)
                })
                .map_err(|e| (OAuthError::InvalidRequest, e))?
                .map_err(|e| (OAuthError::InvalidRequest, e.to_string()))?;
                Ok(OAuthClient {
                    client_id: client_id.into(),
                    name,
                    redirect_uris: uris,
                    kind: "metadata".into(),
                    created_at: now(),
                    fetched_at: now(),
                    revoked: false,
                    active_grants: 0,
                })
            }
            _ => Err(unknown()),
        }
    }

    /// `POST /register` (RFC 7591): a public client (`none`) with allowed redirect URIs.
    fn register(&self, req: &HttpRequest) -> Reply {
        if req.body_too_large {
            return Reply::error(
                413,
                &format!("the registration is larger than {FORM_BYTES} bytes"),
            );
        }
        let meta: Value = match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return oauth_error((
                    OAuthError::InvalidClientMetadata,
                    "the body must be a JSON object of client metadata (RFC 7591), e.g. {\"redirect_uris\": [\"https://claude.ai/api/mcp/auth_callback\"], \"client_name\": \"Claude\"}".into(),
                ))
            }
        };
        match self.register_client(&meta) {
            Ok(doc) => no_store(Reply::json(201, &doc)),
            Err(refusal) => oauth_error(refusal),
        }
    }

    fn register_client(&self, meta: &Value) -> Result<Value, Refusal> {
        let bad = |text: &str| (OAuthError::InvalidClientMetadata, text.to_string());
        let uris: Vec<String> = match meta.get("redirect_uris") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|u| u.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("redirect_uris must be an array of strings"))?,
            _ => {
                return Err((
                    OAuthError::InvalidRedirectUri,
                    "redirect_uris (an array of URIs) is required".into(),
                ))
            }
        };
        if uris.len() > 10 || uris.iter().any(|u| u.len() > 2000) {
            return Err(bad("at most 10 redirect_uris of at most 2000 characters"));
        }
        rules::check_redirect_uris(&uris, &self.config.redirect_uris)?;
        // grant_types, response_types and token_endpoint_auth_method asked for are not refused:
        // the answer says what was registered (RFC 7591 §3.2.1: code, refresh_token, none).
        let name: String = match meta.get("client_name") {
            Some(Value::String(s)) => s.chars().take(200).collect(),
            None | Some(Value::Null) => "unnamed client".into(),
            Some(_) => return Err(bad("client_name must be a string")),
        };
        let id = crate::ids::random_hex(16)
            .map_err(|e| (OAuthError::InvalidRequest, format!("no randomness: {e}")))?;
        let client_id = format!("ccc_{id}");
        let issued = now();
        let stored = self.with_store(|s| -> Result<(), String> {
            if !s
                .oauth_room_for_client(MAX_CLIENTS, issued - UNUSED_CLIENT_SECS)
                .map_err(|e| e.to_string())?
            {
                return Err(format!("this server holds {MAX_CLIENTS} clients already; revoke unused ones (claudecron oauth clients, revoke)"));
            }
            s.oauth_put_client(&client_id, &name, &uris, "registered", issued)
                .map_err(|e| e.to_string())
        });
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => return Err((OAuthError::InvalidRequest, e)),
        }
        log::info!("oauth: client registered: {client_id} ({:?})", name);
        Ok(json!({
            "client_id": client_id,
            "client_id_issued_at": issued,
            "client_name": name,
            "redirect_uris": uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
    }

    /// `POST /token`: `authorization_code` (PKCE, resource) or `refresh_token` (rotation).
    fn token(&self, req: &HttpRequest) -> Reply {
        if req.body_too_large {
            return Reply::error(
                413,
                &format!("the token request is larger than {FORM_BYTES} bytes"),
            );
        }
        let field = |name: &str| form_field(&req.body, name).filter(|v| !v.is_empty());
        // A public client names itself in the body; one that sends HTTP Basic
        // (client_secret_basic) is read for its id only (no secret is issued or checked).
        let client_id = field("client_id")
            .or_else(|| basic_client_id(req))
            .unwrap_or_default();
        let outcome = match field("grant_type").as_deref() {
            Some("authorization_code") => self.exchange_code(&field, &client_id),
            Some("refresh_token") => self.refresh(&field, &client_id),
            Some(other) => Err((
                OAuthError::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported; accepted: authorization_code, refresh_token"),
            )),
            None => Err((
                OAuthError::InvalidRequest,
                "grant_type is required (form-urlencoded body): authorization_code or refresh_token".into(),
            )),
        };
        match outcome {
            Ok(doc) => no_store(Reply::json(200, &doc)),
            Err(refusal) => oauth_error(refusal),
        }
    }

    /// A new access + refresh pair: the secrets for the answer, the hashes for the store.
    fn new_pair(&self) -> Result<(String, String), Refusal> {
        let random = |prefix: &str| {
            crate::ids::random_hex(32)
                .map(|h| format!("{prefix}{h}"))
                .map_err(|e| (OAuthError::InvalidRequest, format!("no randomness: {e}")))
        };
        Ok((random("ccat_")?, random("ccrt_")?))
    }

    fn token_answer(&self, access: &str, refresh: &str) -> Value {
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_secs,
            "refresh_token": refresh,
        })
    }

    fn exchange_code(
        &self,
        field: &dyn Fn(&str) -> Option<String>,
        client_id: &str,
    ) -> Result<Value, Refusal> {
        let required = |name: &str| {
            field(name).ok_or_else(|| {
                (
                    OAuthError::InvalidRequest,
                    format!("{name} is required for grant_type=authorization_code"),
                )
            })
        };
        let code = required("code")?;
        let (redirect_uri, verifier) = (required("redirect_uri")?, required("code_verifier")?);
        let client_id = if client_id.is_empty() {
            required("client_id")?
        } else {
            client_id.to_string()
        };
        self.client(&client_id)?;
        let hash = rules::secret_hash(&code);
        let db = |e: String| (OAuthError::InvalidRequest, format!("database: {e}"));
        let record = self
            .with_store(|s| s.oauth_code(&hash))
            .map_err(db)?
            .map_err(|e| db(e.to_string()))?
            .ok_or((
                OAuthError::InvalidGrant,
                "the authorization code is not valid".to_string(),
            ))?;
        let resource = field("resource");
        let exchange = rules::CodeExchange {
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            code_verifier: &verifier,
            resource: resource.as_deref(),
        };
        let now = now();
        match rules::decide_code(&record, &exchange, now) {
            rules::CodeDecision::Refuse(refusal) => Err(refusal),
            rules::CodeDecision::Reused { grant_id } => {
                log::warn!("oauth: an authorization code of {client_id} was used twice; its grant {grant_id} is revoked");
                let _ = self.with_store(|s| s.oauth_revoke_grant(grant_id, now));
                Err((
                    OAuthError::InvalidGrant,
                    "the authorization code was already used".into(),
                ))
            }
            rules::CodeDecision::Issue { resource } => {
                let (access, refresh) = self.new_pair()?;
                let (a, r) = (rules::secret_hash(&access), rules::secret_hash(&refresh));
                let pair = self.pair(&a, &r, now);
                let redeemed = self
                    .with_store(|s| s.oauth_redeem_code(&hash, &client_id, &resource, &pair, now))
                    .map_err(db)?
                    .map_err(|e| db(e.to_string()))?;
                match redeemed {
                    Some(grant) => {
                        log::info!("oauth: tokens issued to {client_id} (grant {grant})");
                        Ok(self.token_answer(&access, &refresh))
                    }
                    None => Err((
                        OAuthError::InvalidGrant,
                        "the authorization code was already used".into(),
                    )),
                }
            }
        }
    }

    fn pair<'a>(&self, access: &'a str, refresh: &'a str, now: i64) -> TokenPair<'a> {
        TokenPair {
            access_sha256: access,
            access_expires: now + self.config.access_token_secs as i64,
            refresh_sha256: refresh,
            refresh_expires: now + self.config.refresh_token_secs as i64,
        }
    }

    fn refresh(
        &self,
        field: &dyn Fn(&str) -> Option<String>,
        client_id: &str,
    ) -> Result<Value, Refusal> {
        let token = field("refresh_token").ok_or((
            OAuthError::InvalidRequest,
            "refresh_token is required for grant_type=refresh_token".to_string(),
        ))?;
        let hash = rules::secret_hash(&token);
        let db = |e: String| (OAuthError::InvalidRequest, format!("database: {e}"));
        let record = self
            .with_store(|s| s.oauth_refresh_token(&hash))
            .map_err(db)?
            .map_err(|e| db(e.to_string()))?
            .ok_or((
                OAuthError::InvalidGrant,
                "the refresh token is not valid".to_string(),
            ))?;
        // A public client names itself; without client_id the token's own client is meant.
        let client_id = if client_id.is_empty() {
            record.client_id.clone()
        } else {
            client_id.to_string()
        };
        let resource = field("resource");
        let now = now();
        match rules::decide_refresh(&record, &client_id, resource.as_deref(), now) {
            rules::RefreshDecision::Refuse(refusal) => Err(refusal),
            rules::RefreshDecision::ReuseRevoke => {
                log::warn!(
                    "oauth: a spent refresh token of {client_id} came back; grant {} (every token of it) is revoked",
                    record.grant_id
                );
                let _ = self.with_store(|s| s.oauth_revoke_grant(record.grant_id, now));
                Err((
                    OAuthError::InvalidGrant,
                    "the refresh token was already used; the grant is revoked, sign in again"
                        .into(),
                ))
            }
            rules::RefreshDecision::Rotate => {
                let (access, refresh) = self.new_pair()?;
                let (a, r) = (rules::secret_hash(&access), rules::secret_hash(&refresh));
                let pair = self.pair(&a, &r, now);
                let rotated = self
                    .with_store(|s| s.oauth_rotate(&hash, record.grant_id, &pair, now))
                    .map_err(db)?
                    .map_err(|e| db(e.to_string()))?;
                if rotated {
                    Ok(self.token_answer(&access, &refresh))
                } else {
                    Err((
                        OAuthError::InvalidGrant,
                        "the refresh token was already used".into(),
                    ))
                }
            }
        }
    }
}

/// The client id of an `Authorization: Basic` header (RFC 6749 §2.3.1: form-encoded id).
fn basic_client_id(req: &HttpRequest) -> Option<String> {
    let value = req.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(rules::base64_decode(encoded)?).ok()?;
    let id = crate::http::form_decode(decoded.split(':').next()?);
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_paths() {
        assert!(is_oauth_path(
            "/.well-known/oauth-protected-resource/cron/mcp"
        ));
        assert!(is_oauth_path("/.well-known/oauth-authorization-server"));
        assert!(is_oauth_path("/token"));
        assert!(!is_oauth_path("/mcp"));
    }
}
