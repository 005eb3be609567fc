//! Routing of admitted requests in `claudecron serve`: which paths need a token before their
//! body is read (`admit_head`), the route table (`/`, `/health`, `/mcp`, `/hooks`, `/trigger/…`, `/metrics`,
//! `/status/…`, `/calendar.ics`), and the small answers of `/`, `/health`, `/hooks` and the
//! calendar key check. It never parses JSON-RPC (see `mcp`) and never touches SQL (see `store`).

use super::App;
use crate::config::AuthMode;
use crate::http::guard::TokenId;
use crate::http::metrics::Gauges;
use crate::http::status::StatusContext;
use crate::http::{HttpRequest, Reply};
use crate::mcp::{Outcome, HEADER_VERSIONS};
use crate::tasks::catalog::Catalog;
use serde_json::json;
use std::net::IpAddr;

fn method_not_allowed(allow: &str) -> Outcome {
    Outcome::Reply(
        Reply::error(
            405,
            &format!("method not allowed; this path accepts {allow}"),
        )
        .with_header("Allow", allow),
    )
}

/// The most body a request may bring: the configured maximum for the routes that take one
/// (`/mcp`, `POST /hooks`), a login form's worth for the status page's forms, 16 KiB for the OAuth
/// server's registration, token requests and consent form (when it is on), none elsewhere. A
/// body beyond it is never read (the connection closes after the answer), so a client without a
/// token cannot make the server buffer a body for a path that takes none.
pub(super) fn body_limit(req: &HttpRequest, max_body_bytes: usize, oauth_on: bool) -> usize {
    match (req.method.as_str(), req.path.as_str()) {
        (_, "/mcp") | ("POST", "/hooks") => max_body_bytes,
        ("POST", p) if p.starts_with(WEBHOOK) => max_body_bytes,
        ("POST", "/status/login" | "/status/logout") => STATUS_FORM_BYTES,
        ("POST", "/token" | "/register" | "/authorize") if oauth_on => {
            crate::http::oauth::FORM_BYTES
        }
        _ => 0,
    }
}

use crate::triggers::webhook::PATH_PREFIX as WEBHOOK;

/// The status page's login and logout forms (a token and little else).
const STATUS_FORM_BYTES: usize = 4096;

/// The checks that need only a request's head, made before its body is read: Host and Origin
/// for every path; for `/mcp` and `POST /hooks` also the client's rate and the bearer token; the
/// rate also for a status page request that carries a bearer token (each one is a guess when
/// wrong). Returns the token that authenticated it.
pub(super) fn admit_head(app: &App, req: &HttpRequest, client: IpAddr) -> Result<TokenId, Reply> {
    app.guard.check_host_and_origin(req)?;
    if (req.path == "/status" || req.path.starts_with("/status/"))
        && req.header("authorization").is_some()
    {
        app.guard.rate_limit(client)?;
    }
    if req.path == "/calendar.ics" {
        // The key is in the query; checked when routed. Guessing is rate-limited here.
        app.guard.rate_limit(client)?;
        return Ok(None);
    }
    if req.path.starts_with(WEBHOOK) {
        // The token in the path is the credential; each wrong one is a guess.
        app.guard.rate_limit(client)?;
        return Ok(None);
    }
    if req.path == "/metrics" {
        app.guard.rate_limit(client)?;
        app.guard.metrics_access(req, client)?;
        return Ok(None);
    }
    if app.oauth.is_some() && crate::http::oauth::is_oauth_path(&req.path) {
        // Open endpoints; all but the metadata documents are rate-limited (registration, token
        // requests, consent pages and forms; wrong passwords have a tighter limit of their own).
        if !req.path.starts_with("/.well-known/") {
            app.guard.rate_limit(client)?;
        }
        return Ok(None);
    }
    let needs_token = match req.path.as_str() {
        "/mcp" => true,
        "/hooks" => req.method == "POST",
        _ => false,
    };
    if !needs_token {
        return Ok(None);
    }
    app.guard.rate_limit(client)?;
    match &app.oauth {
        Some(oauth) if req.path == "/mcp" => oauth.admit(&app.guard, req),
        _ => app.guard.authenticate(req),
    }
}

/// Route an admitted request.
pub(super) fn route(
    app: &App,
    catalog: Option<&Catalog>,
    req: &HttpRequest,
    token: TokenId,
) -> Outcome {
    match req.path.as_str() {
        "/" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(Reply::json(200, &info(app))),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/health" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(health(app, catalog)),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/mcp" => {
            if req.header("x-claudecron-test-panic").is_some() && cfg!(debug_assertions) {
                panic!("test panic requested by header");
            }
            app.mcp.handle(req, token, catalog)
        }
        "/hooks" => {
            if req.method != "POST" {
                return method_not_allowed("POST");
            }
            Outcome::Reply(hook_request(app, catalog, req))
        }
        "/metrics" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(metrics(app, catalog)),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/calendar.ics" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(calendar(app, catalog, req)),
            _ => method_not_allowed("GET, HEAD"),
        },
        p if p.starts_with(WEBHOOK) => match req.method.as_str() {
            "POST" => Outcome::Reply(webhook_request(app, catalog, req, &p[WEBHOOK.len()..])),
            _ => method_not_allowed("POST"),
        },
        p if p == "/status" || p.starts_with("/status/") => {
            Outcome::Reply(crate::http::status::route(
                &StatusContext {
                    guard: &app.guard,
                    sessions: &app.status,
                    catalog,
                    client: app.guard.client_addr(req),
                },
                req,
            ))
        }
        p if crate::http::oauth::is_oauth_path(p) && app.oauth.is_some() => {
            match &app.oauth {
                Some(oauth) => Outcome::Reply(oauth.route(req, app.guard.client_addr(req))),
                None => Outcome::Reply(Reply::error(404, "not found")),
            }
        }
        _ => Outcome::Reply(Reply::error(
            404,
            "not found; endpoints: /, /health, /mcp, /hooks, /trigger/{token}, /metrics, /status, /calendar.ics",
        )),
    }
}

/// `POST /hooks`: a Claude Code hook payload. Matching tasks are fired, then the answer is
/// `{}` (never plain text, never a decision: claudecron does not steer Claude Code).
fn hook_request(app: &App, catalog: Option<&Catalog>, req: &HttpRequest) -> Reply {
    if req.body_too_large {
        return Reply::error(
            413,
            &format!(
                "the hook payload is larger than max_body_bytes = {}",
                app.config.max_body_bytes
            ),
        );
    }
    let payload: serde_json::Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return Reply::error(
                400,
                &format!(
                    "the body is not valid JSON ({e}); send the hook input as Claude Code gives it"
                ),
            )
        }
    };
    let event = payload
        .get("hook_event_name")
        .and_then(serde_json::Value::as_str);
    if !payload.is_object() || event.is_none() {
        return Reply::error(400, "the body must be a JSON object with \"hook_event_name\" (the hook input as Claude Code sends it)");
    }
    let Some(catalog) = catalog else {
        return Reply::error(503, "the database is not available; see the server log");
    };
    let raw = String::from_utf8_lossy(&req.body);
    match catalog.hook_event(&payload, &raw, false) {
        Ok(matched) => {
            if !matched.is_empty() {
                log::info!(
                    "hook {}: {} tasks matched",
                    event.unwrap_or(""),
                    matched.len()
                );
            }
            Reply::json(200, &json!({}))
        }
        Err(e) => {
            log::error!("hook dispatch failed: {e}");
            Reply::error(500, "the hook could not be dispatched; see the server log")
        }
    }
}

/// `POST /trigger/{token}`: fire the webhook task the token belongs to with the body; 202
/// `{"run_id"}`. The token is never logged: the log names the task.
fn webhook_request(app: &App, catalog: Option<&Catalog>, req: &HttpRequest, token: &str) -> Reply {
    use crate::tasks::catalog::WebhookRefusal as R;
    if req.body_too_large {
        let cap = app.config.max_body_bytes;
        return Reply::error(
            413,
            &format!("the body is larger than max_body_bytes = {cap}"),
        );
    }
    let Some(catalog) = catalog else {
        return Reply::error(503, "the database is not available; see the server log");
    };
    match catalog.webhook_fire(token, &req.body) {
        Ok(run_id) => Reply::json(202, &json!({ "run_id": run_id })),
        Err(R::Unknown) => Reply::error(404, "not found"),
        Err(R::Disabled(text)) => Reply::error(409, &text),
        Err(R::Unavailable(text)) => Reply::error(503, &text),
        Err(R::Internal(text)) => {
            log::error!("webhook fire failed: {text}");
            Reply::error(500, "the webhook could not be handled; see the server log")
        }
    }
}

fn metrics(app: &App, catalog: Option<&Catalog>) -> Reply {
    let (scheduler_up, running_runs) = app.catalogs.engine_state();
    let started =
        chrono::Utc::now() - chrono::Duration::from_std(app.started.elapsed()).unwrap_or_default();
    crate::http::metrics::render(
        catalog,
        &Gauges {
            running_runs,
            mcp_sessions: app.mcp.sessions.len(),
            status_sessions: app.status.live(),
            start_time: started.timestamp_millis() as f64 / 1000.0,
            scheduler_up,
        },
    )
}

/// `/calendar.ics?key=…`: the feed when `calendar_token` is set and the key matches.
fn calendar(app: &App, catalog: Option<&Catalog>, req: &HttpRequest) -> Reply {
    use crate::http::calendar;
    match calendar::authorized(req, app.config.calendar_token.as_deref()) {
        None => Reply::error(
            404,
            "the calendar feed is off; set calendar_token and use /calendar.ics?key=<calendar_token>",
        ),
        Some(false) => Reply::error(
            403,
            "the calendar key is not valid; use /calendar.ics?key=<calendar_token>",
        ),
        Some(true) => calendar::feed(catalog),
    }
}

fn info(app: &App) -> serde_json::Value {
    json!({
        "name": "claudecron",
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersions": HEADER_VERSIONS,
        "endpoints": {"mcp": "/mcp", "health": "/health", "hooks": "/hooks", "metrics": "/metrics", "status": "/status"},
        "auth": match app.config.auth { AuthMode::Token => "bearer", AuthMode::None => "none" },
        "authRequired": app.config.auth == AuthMode::Token,
        // OAuth sign-in (claude.ai connectors): where its protected resource metadata is.
        "oauth": app.config.public_url.as_deref().filter(|_| app.oauth.is_some())
            .map(|url| crate::oauth::Urls::new(url).resource_metadata()),
    })
}

fn health(app: &App, catalog: Option<&Catalog>) -> Reply {
    let uptime = app.started.elapsed().as_secs();
    // A real write (one row, committed) proves the database accepts writes: a deleted or
    // replaced file, a read-only file or file system, a full disk or a lock held elsewhere
    // answer 503 naming the cause. A worker without a catalog retries the open to learn why.
    let reopened;
    let catalog = match catalog {
        Some(c) => Ok(c),
        None => {
            reopened = app.catalogs.open();
            reopened.as_ref().map_err(|e| e.to_string())
        }
    };
    let db = catalog.and_then(|c| {
        c.store_health(chrono::Utc::now())
            .map_err(|e| e.to_string())
    });
    let (scheduler_ok, running) = app.catalogs.engine_state();
    match db {
        Ok((tasks, enabled)) if scheduler_ok => Reply::json(
            200,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": uptime,
                "database": "ok",
                "scheduler": "running",
                "tasks": tasks,
                "enabled_tasks": enabled,
                "running_runs": running,
                "sessions": app.mcp.sessions.len(),
                // The pause of everything (pause_all): {reason, since}, or false.
                "paused": app.catalogs.pause_view().unwrap_or(json!(false)),
            }),
        ),
        other => Reply::json(
            503,
            &json!({
                "status": "unavailable",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": uptime,
                "database": other.as_ref().err().cloned().unwrap_or_else(|| "ok".into()),
                "scheduler": if scheduler_ok { "running" } else { "stopped: the engine thread ended; see the log" },
            }),
        ),
    }
}
