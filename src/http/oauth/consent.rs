//! `/authorize`: the authorization request checked (client, exact redirect URI, S256, resource),
//! the consent page (every shown value escaped; CSP with `frame-ancestors 'none'`; a one-use
//! CSRF token that names the request held in memory), the owner's password or one-time code
//! checked (rate-limited, constant time), and the redirect with `code`, `state` and `iss`
//! (RFC 9207). It never logs the password, a code or the CSRF token.

use super::{now, OAuthServer};
use crate::http::status::pages::esc;
use crate::http::{form_field, HttpRequest, Reply};
use crate::oauth::{self as rules, OAuthError};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A consent form in progress: the checked authorization request.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    resource: String,
    created: Instant,
    failures: u32,
}

/// A consent form is good for this long.
const FORM_LIFETIME: Duration = Duration::from_secs(600);
/// Consent forms held at once (the oldest are dropped beyond it).
const MAX_PENDING: usize = 1000;
/// Wrong passwords on one form before it is dropped.
const MAX_FAILURES: u32 = 5;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#222}h1{font-size:1.4em}code{background:#f2f2f2;padding:0 .2em;word-break:break-all}.err{color:#a00;font-weight:bold}input[type=password]{width:100%;padding:.4em;font-size:1em;box-sizing:border-box}button{padding:.5em 1.2em;font-size:1em;margin:.8em .5em 0 0}";

/// Percent-encode a query value.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `uri` with query parameters added.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", query.join("&"))
}

/// The origin (`scheme://authority`) of a URL.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            format!("{scheme}://{}", rest.split(['/', '?']).next().unwrap_or(""))
        }
        None => String::new(),
    }
}

/// Standard base64 with padding (CSP hash sources).
fn base64_std(bytes: &[u8]) -> String {
    let mut s = rules::base64url(bytes).replace('-', "+").replace('_', "/");
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// An HTML page with the consent page's headers; `form_to` is the redirect URI the form may
/// lead to (CSP `form-action` also covers the redirect after the post).
fn page(status: u16, title: &str, body: &str, form_to: Option<&str>) -> Reply {
    let style_hash =
        base64_std(ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes()).as_ref());
    let form_action = match form_to {
        Some(uri) => format!("'self' {}", origin(uri)),
        None => "'none'".into(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{style_hash}'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"referrer\" content=\"same-origin\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    );
    Reply {
        status,
        headers: vec![
            ("Content-Type".into(), "text/html; charset=utf-8".into()),
            ("Content-Security-Policy".into(), csp),
            ("X-Frame-Options".into(), "DENY".into()),
            ("X-Content-Type-Options".into(), "nosniff".into()),
            // Not no-referrer: browsers then send `Origin: null` with the form, which the
            // guard's Origin check refuses.
            ("Referrer-Policy".into(), "same-origin".into()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: html.into_bytes(),
    }
}

/// A page saying what was wrong (no redirect: the redirect URI is not known to be safe).
fn error_page(status: u16, text: &str) -> Reply {
    page(
        status,
        "Sign-in refused",
        &format!("<h1>Sign-in refused</h1><p class=\"err\">{}</p><p>Start the connection again from your client.</p>", esc(text)),
        None,
    )
}

fn redirect(to: &str) -> Reply {
    Reply {
        status: 302,
        headers: vec![
            ("Location".into(), to.to_string()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: Vec::new(),
    }
}

impl OAuthServer {
    /// Redirect an error to the client (RFC 6749 §4.1.2.1), with `iss`.
    fn redirect_error(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        code: OAuthError,
        text: &str,
    ) -> Reply {
        let mut params = vec![("error", code.as_str()), ("error_description", text)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", &self.urls.issuer));
        redirect(&with_query(redirect_uri, &params))
    }

    /// `GET /authorize`: check the request and show the consent page.
    pub(super) fn authorize_page(&self, req: &HttpRequest) -> Reply {
        let q = |name: &str| form_field(req.query.as_bytes(), name).filter(|v| !v.is_empty());
        let Some(client_id) = q("client_id") else {
            return error_page(400, "client_id is missing from the authorization request");
        };
        let client = match self.client(&client_id) {
            Ok(c) => c,
            Err((_, text)) => return error_page(400, &text),
        };
        let redirect_uri = match q("redirect_uri") {
            Some(uri) => uri,
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => {
                return error_page(
                    400,
                    "redirect_uri is required (the client registered several)",
                )
            }
        };
        let registered = client
            .redirect_uris
            .iter()
            .any(|r| rules::redirect_matches(r, &redirect_uri));
        if !registered || !rules::redirect_allowed(&redirect_uri, &self.config.redirect_uris) {
            return error_page(400, "redirect_uri is not one this client registered, or not on this server's allow-list (oauth_redirect_uris); it must match exactly (a loopback one may differ in its port only)");
        }
        let state = q("state");
        let fail =
            |code, text: &str| self.redirect_error(&redirect_uri, state.as_deref(), code, text);
        if q("response_type").as_deref() != Some("code") {
            return fail(
                OAuthError::UnsupportedResponseType,
                "response_type must be code",
            );
        }
        let Some(challenge) = q("code_challenge") else {
            return fail(
                OAuthError::InvalidRequest,
                "code_challenge is required (PKCE, S256)",
            );
        };
        if q("code_challenge_method").as_deref() != Some("S256") {
            return fail(
                OAuthError::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            );
        }
        if !rules::pkce_value_ok(&challenge) {
            return fail(
                OAuthError::InvalidRequest,
                "code_challenge must be 43-128 characters of base64url",
            );
        }
        let resource = self.urls.resource.clone();
        if q("resource").is_some_and(|r| r != resource) {
            return fail(
                OAuthError::InvalidTarget,
                &format!("resource must be {resource}"),
            );
        }
        let csrf = match crate::ids::random_hex(32) {
            Ok(t) => t,
            Err(e) => return super::internal("randomness", e),
        };
        let pending = Pending {
            client_id,
            client_name: client.name,
            redirect_uri,
            state,
            challenge,
            resource,
            created: Instant::now(),
            failures: 0,
        };
        let reply = self.consent_page(200, &csrf, &pending, None);
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < FORM_LIFETIME);
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(csrf, pending);
        reply
    }

    fn consent_page(&self, status: u16, csrf: &str, p: &Pending, error: Option<&str>) -> Reply {
        let error = error
            .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
            .unwrap_or_default();
        let body = format!(
            "<h1>Connect to claudecron?</h1>\
             <p><strong id=\"client-name\">{name}</strong> asks to use this claudecron server: it could list, add, change, run and delete scheduled tasks.</p>\
             <p>Client: <code>{id}</code><br>After approval you go to: <code id=\"redirect\">{redirect}</code><br>Resource: <code>{resource}</code></p>\
             {error}\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <label for=\"password\">Owner password, or a one-time code from <code>claudecron oauth approve</code></label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus>\
             <button type=\"submit\" name=\"decision\" value=\"approve\" id=\"approve\">Approve</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>\
             </form>",
            name = esc(&p.client_name),
            id = esc(&p.client_id),
            redirect = esc(&p.redirect_uri),
            resource = esc(&p.resource),
            action = esc(&format!("{}/authorize", self.urls.issuer)),
            csrf = esc(csrf),
        );
        page(
            status,
            "Connect to claudecron",
            &body,
            Some(&p.redirect_uri),
        )
    }

    /// `POST /authorize`: the consent form. Approve with the owner's password or a one-time
    /// code → redirect with a code; deny → `access_denied`; a wrong secret → the form again.
    pub(super) fn authorize_submit(&self, req: &HttpRequest, client: IpAddr) -> Reply {
        if req.body_too_large {
            return error_page(413, "the form is too large");
        }
        let f = |name: &str| form_field(&req.body, name).unwrap_or_default();
        let csrf = f("csrf_token");
        let taken = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&csrf)
        };
        let Some(mut pending) = taken.filter(|p| p.created.elapsed() < FORM_LIFETIME) else {
            return error_page(400, "this sign-in form is unknown or has expired (forms last 10 minutes and are used once); start again from your client");
        };
        let state = pending.state.clone();
        if f("decision") == "deny" {
            return self.redirect_error(
                &pending.redirect_uri,
                state.as_deref(),
                OAuthError::AccessDenied,
                "the owner denied the request",
            );
        }
        // Wrong passwords are counted per client address (10 a minute); while its budget is
        // spent, no password is even checked. Each attempt takes from the budget before the
        // check (given back when it was right): attempts sent in parallel cannot all pass a
        // look at a budget that none of them has taken from yet.
        let too_many = |wait: u64| {
            error_page(
                429,
                &format!("too many wrong passwords; wait {wait} s and start again"),
            )
            .with_header("Retry-After", &wait.to_string())
        };
        if let Err(wait) = self.guesses.take(client, Instant::now()) {
            return too_many(wait);
        }
        let secret = f("password");
        if self.owner_secret_ok(&secret) {
            self.guesses.give_back(client);
        } else {
            pending.failures += 1;
            log::warn!(
                "oauth: a wrong owner password or code for {} from {client}",
                pending.client_id
            );
            if pending.failures >= MAX_FAILURES {
                return error_page(
                    401,
                    "too many wrong passwords; start again from your client",
                );
            }
            let reply = self.consent_page(
                401,
                &csrf,
                &pending,
                Some("That password or code is not right."),
            );
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(csrf, pending);
            return reply;
        }
        let code = match crate::ids::random_hex(32) {
            Ok(c) => format!("ccac_{c}"),
            Err(e) => return super::internal("randomness", e),
        };
        let now = now();
        let saved = self.with_store(|s| {
            s.oauth_save_code(
                &rules::secret_hash(&code),
                &pending.client_id,
                &pending.redirect_uri,
                &pending.challenge,
                &pending.resource,
                now + self.code_secs,
                now,
            )
        });
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return super::internal("saving a code", e),
            Err(e) => return super::internal("saving a code", e),
        }
        log::info!("oauth: the owner approved {}", pending.client_id);
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = state.as_deref() {
            params.push(("state", s));
        }
        params.push(("iss", &self.urls.issuer));
        redirect(&with_query(&pending.redirect_uri, &params))
    }

    /// The owner's password (against the configured hash) or an unexpired one-time code.
    fn owner_secret_ok(&self, secret: &str) -> bool {
        if secret.is_empty() || secret.len() > 1024 {
            return false;
        }
        if let Some(hash) = &self.config.password_hash {
            if rules::verify_password(secret, hash) {
                return true;
            }
        }
        let code_hash = rules::secret_hash(secret.trim());
        matches!(
            self.with_store(|s| s.oauth_use_approval(&code_hash, now())),
            Ok(Ok(true))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_building_and_origins() {
        assert_eq!(
            with_query(
                "https://a.example/cb?x=1",
                &[("code", "a b&c"), ("iss", "https://h/cron")]
            ),
            "https://a.example/cb?x=1&code=a%20b%26c&iss=https%3A%2F%2Fh%2Fcron"
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/callback?q"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base64_std(b"ab"), "YWI=");
    }
}
