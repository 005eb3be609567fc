//! The status page `/status` for people: who may see it (a login form that takes the bearer
//! token and sets a session cookie; the cookie holds a random session id, never the token), the
//! login sessions, and the routes of the pages (task list with the last 50 runs, one run's
//! output). Every page is server-rendered HTML without JavaScript under a strict CSP; the HTML
//! itself is written by `status::pages`. It never logs a token or a cookie value.

pub(crate) mod pages;

use crate::http::guard::Guard;
use crate::http::{form_field, HttpRequest, Reply};
use crate::tasks::catalog::Catalog;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "claudecron_status";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Logins held at once; the oldest goes when a new one would exceed it.
pub const MAX_SESSIONS: usize = 1000;

/// Content-Security-Policy of every status page: nothing but our own stylesheet, no scripts,
/// no frames, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Status page logins: random session id → (expiry, which token logged in).
#[derive(Default)]
pub struct StatusSessions(Mutex<HashMap<String, (Instant, Option<usize>)>>);

impl StatusSessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<usize>)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open a login for `token` (its index); the new session id (256 random bits).
    fn open(&self, token: Option<usize>, now: Instant) -> std::io::Result<String> {
        let id = crate::ids::random_hex(32)?;
        let mut map = self.map();
        map.retain(|_, (expires, _)| *expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), (now + SESSION_LIFETIME, token));
        Ok(id)
    }

    /// Whether this session id is a live login.
    fn valid(&self, id: &str, now: Instant) -> bool {
        let mut map = self.map();
        match map.get(id) {
            Some((expires, _)) if *expires > now => true,
            Some(_) => {
                map.remove(id);
                false
            }
            None => false,
        }
    }

    fn close(&self, id: &str) {
        self.map().remove(id);
    }

    /// Live logins.
    pub fn live(&self) -> usize {
        let now = Instant::now();
        self.map().values().filter(|(e, _)| *e > now).count()
    }
}

/// The value of one cookie of the request.
fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A page of HTML with the status page's headers (CSP, no caching, no sniffing, no framing).
fn html(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![
            ("Content-Type".into(), "text/html; charset=utf-8".into()),
            ("Content-Security-Policy".into(), CSP.into()),
            ("Cache-Control".into(), "no-store".into()),
            ("X-Content-Type-Options".into(), "nosniff".into()),
            ("X-Frame-Options".into(), "DENY".into()),
            // Not `no-referrer`: with it Chromium sends `Origin: null` on form posts, which the
            // same-origin check must refuse.
            ("Referrer-Policy".into(), "same-origin".into()),
        ],
        body: body.into_bytes(),
    }
}

fn redirect(to: &str) -> Reply {
    Reply {
        status: 303,
        headers: vec![
            ("Location".into(), to.into()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: Vec::new(),
    }
}

/// A state-changing form post must come from our own page. Browsers say where a request comes
/// from in `Sec-Fetch-Site` (a header pages cannot set): it must be `same-origin`. Without it
/// (an older browser), `Origin` must name the same host and port as `Host`. The guard already
/// refused origins we do not serve, and `SameSite=Strict` keeps the cookie off cross-site
/// requests as well.
fn same_origin(req: &HttpRequest) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return site.trim().eq_ignore_ascii_case("same-origin");
    }
    let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) else {
        return false;
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
}

/// The relative way from a status path back to the server's root ("" for `/status`, "../"
/// for `/status/login`): links and redirects are relative, so they also work under a reverse
/// proxy's prefix (`/cron/status`).
fn root_of(path: &str) -> String {
    "../".repeat(path.matches('/').count().saturating_sub(1))
}

/// Everything a status route needs.
pub struct StatusContext<'a> {
    pub guard: &'a Guard,
    pub sessions: &'a StatusSessions,
    pub catalog: Option<&'a Catalog>,
    pub client: IpAddr,
}

impl StatusContext<'_> {
    /// Logged in: auth is off, a bearer header carries an accepted token, or the cookie names a
    /// live login.
    fn logged_in(&self, req: &HttpRequest) -> bool {
        if !self.guard.auth_required() || self.guard.authenticate(req).is_ok() {
            return true;
        }
        cookie(req, COOKIE).is_some_and(|id| self.sessions.valid(id, Instant::now()))
    }
}

/// Route a request under `/status`.
pub fn route(ctx: &StatusContext, req: &HttpRequest) -> Reply {
    let path = req.path.as_str();
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let root = &root_of(path);
    let message = |title: &str, text: &str| pages::message(title, text, root);
    match path {
        "/status/style.css" if get => Reply {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/css; charset=utf-8".into()),
                ("Cache-Control".into(), "max-age=3600".into()),
                ("X-Content-Type-Options".into(), "nosniff".into()),
            ],
            body: pages::STYLE.as_bytes().to_vec(),
        },
        "/status/login" if get => html(200, pages::login(None, root)),
        "/status/login" if req.method == "POST" => login(ctx, req, root),
        "/status/logout" if req.method == "POST" => {
            if !same_origin(req) {
                return html(403, message("Refused", "The logout form must be sent from this site's own page (the Origin header did not match)."));
            }
            if let Some(id) = cookie(req, COOKIE) {
                ctx.sessions.close(id);
            }
            redirect(&format!("{root}status/login")).with_header("Set-Cookie", &clear_cookie())
        }
        "/status/login" | "/status/logout" | "/status/style.css" => html(
            405,
            message("Method not allowed", "Use the page's own links and forms."),
        ),
        _ if !get => html(
            405,
            message("Method not allowed", "The status pages are read with GET."),
        ),
        _ if !ctx.logged_in(req) => redirect(&format!("{root}status/login")),
        "/status" | "/status/" => match ctx.catalog {
            Some(c) => pages::overview(c, ctx.guard.auth_required(), root),
            None => Err("the database is not available; see the server log".into()),
        }
        .map(|body| html(200, body))
        .unwrap_or_else(|e| html(503, message("Unavailable", &e))),
        p if p.starts_with("/status/run/") => {
            let Ok(id) = p["/status/run/".len()..].parse::<i64>() else {
                return html(
                    404,
                    message("Not found", "A run's page is /status/run/<number>."),
                );
            };
            match ctx.catalog {
                Some(c) => pages::run(c, id, root),
                None => Err((
                    503,
                    "the database is not available; see the server log".into(),
                )),
            }
            .map(|body| html(200, body))
            .unwrap_or_else(|(status, e)| html(status, message("Run not shown", &e)))
        }
        _ => html(
            404,
            message("Not found", "Pages: /status, /status/run/<id>."),
        ),
    }
}

/// The cookie of a login: HttpOnly (no script reads it), Secure (sent only over HTTPS, or to
/// loopback, which browsers treat as a secure context), SameSite=Strict (never on a request
/// another site starts). No `Path`: the browser scopes it to the directory of the login form,
/// `/status` directly or `/cron/status` behind the proxy.
fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        SESSION_LIFETIME.as_secs()
    )
}

fn clear_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// `POST /status/login`: a same-origin form with `token`; a good token opens a login.
fn login(ctx: &StatusContext, req: &HttpRequest, root: &str) -> Reply {
    let message = |title: &str, text: &str| pages::message(title, text, root);
    if !same_origin(req) {
        return html(
            403,
            message(
                "Refused",
                "The login form must be sent from this site's own page (the Origin header did not match).",
            ),
        );
    }
    if let Err(reply) = ctx.guard.rate_limit(ctx.client) {
        return reply;
    }
    if req.body_too_large {
        return html(
            413,
            message("Refused", "The login form is larger than a token needs."),
        );
    }
    let token = form_field(&req.body, "token").unwrap_or_default();
    let index = if ctx.guard.auth_required() {
        match ctx.guard.token_index(token.trim()) {
            Some(i) => Some(i),
            None => {
                log::warn!("{}: status page login with a wrong token", ctx.client);
                return html(401, pages::login(Some("That token is not valid."), root));
            }
        }
    } else {
        None
    };
    match ctx.sessions.open(index, Instant::now()) {
        Ok(id) => {
            redirect(&format!("{root}status")).with_header("Set-Cookie", &session_cookie(&id))
        }
        Err(e) => {
            log::error!("cannot make a status session id: {e}");
            html(
                500,
                message("Error", "No login could be opened; see the server log."),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_cookies_are_read() {
        let req = HttpRequest {
            method: "GET".into(),
            path: "/status".into(),
            query: String::new(),
            headers: vec![("Cookie".into(), "a=1; claudecron_status=xyz".into())],
            body: Vec::new(),
            peer: "127.0.0.1".parse().unwrap(),
            body_too_large: false,
        };
        assert_eq!(cookie(&req, COOKIE), Some("xyz"));
        assert_eq!(root_of("/status"), "");
        assert_eq!(root_of("/status/"), "../");
        assert_eq!(root_of("/status/run/7"), "../../");
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = StatusSessions::default();
        let t0 = Instant::now();
        let id = s.open(Some(0), t0).unwrap();
        assert!(s.valid(&id, t0));
        assert!(!s.valid("other", t0));
        assert!(!s.valid(&id, t0 + SESSION_LIFETIME + Duration::from_secs(1)));
        for _ in 0..MAX_SESSIONS + 3 {
            s.open(None, t0).unwrap();
        }
        assert_eq!(s.map().len(), MAX_SESSIONS);
    }
}
