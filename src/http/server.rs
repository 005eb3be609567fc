//! `claudecron serve`: start-up (logging, token, database check, bind), serving each request on
//! the thread of its connection (head checks, body within a deadline, routing in one of the
//! `WORKERS` lanes with a lent catalog, the answer written; so a slow or stalled client holds
//! only its own connection's thread), panic isolation per request, and the housekeeping thread
//! (session expiry). The route table is in `routes`. It never parses JSON-RPC (see `mcp`).

mod routes;
use routes::{admit_head, route};

use crate::config::{AuthMode, Config};
use crate::engine::{EngineSettings, RunListener};
use crate::exec::run::RunSettings;
use crate::exec::subagent::SubagentSettings;
use crate::http::guard::Guard;
use crate::http::lanes::{Busy, Lanes};
use crate::http::metrics::route_label;
use crate::http::sse::SseStream;
use crate::http::{HttpRequest, Reply};
use crate::mcp::session::{lock, Sessions};
use crate::mcp::{Mcp, Outcome};
use crate::sys::StopSignals;
use crate::tasks::catalog::{Catalog, CatalogSource, Defaults, Services};
use crate::tasks::runs::RunEvent;
use crate::triggers::hooks::HookDispatcher;
use crate::triggers::watch::{self, WatchHandle};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests routed at once (each with its catalog: one SQLite connection); SSE streams and
/// waits for a run hold none.
pub const WORKERS: usize = 8;
/// Requests waiting for a lane before new ones get 503.
const QUEUE: usize = 256;
/// Requests of one client address being read or answered at once before its next gets 503.
const MAX_IN_FLIGHT_PER_CLIENT: usize = 64;
/// Connections one peer address may hold open (unless it is the trusted loopback proxy).
const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// A request's body must have arrived within this, from the end of its head.
const BODY_DEADLINE: Duration = Duration::from_secs(20);
/// How often idle sessions are looked for.
const SESSION_SWEEP: Duration = Duration::from_secs(15);

/// Everything the connection threads share.
pub struct App {
    pub config: Config,
    pub guard: Guard,
    pub mcp: Mcp,
    /// Opens catalogs (each its own store connection).
    pub catalogs: CatalogSource,
    /// The routing lanes and the catalogs they lend.
    pub lanes: Lanes<Catalog>,
    pub started: Instant,
    /// Set once a stop signal arrived.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Requests in flight per client address.
    pub clients: ClientSlots,
    /// Status page logins.
    pub status: crate::http::status::StatusSessions,
    /// The OAuth authorization server (`oauth_enabled`).
    pub oauth: Option<crate::http::oauth::OAuthServer>,
}

/// Requests in flight per client address (the proxy's `X-Real-IP` behind a trusted proxy).
#[derive(Default)]
pub struct ClientSlots(std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>);

/// One request of a client in flight; released when dropped.
pub struct ClientSlot<'a> {
    slots: &'a ClientSlots,
    client: IpAddr,
}

impl ClientSlots {
    /// Count a request of `client`; None when it already has `MAX_IN_FLIGHT_PER_CLIENT`.
    fn enter(&self, client: IpAddr) -> Option<ClientSlot<'_>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(client).or_insert(0);
        if *n >= MAX_IN_FLIGHT_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self,
            client,
        })
    }
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

/// Between SIGTERM and SIGKILL for a run's process group (timeouts, cancels, shutdown).
pub const RUN_GRACE: Duration = Duration::from_secs(5);
/// Idle database connections kept for run threads (a burst of runs opens more; these stay).
const RUN_STORES_KEPT: usize = 8;

/// What happens when a run is recorded as finished: the file watcher's self-trigger guard
/// hears of it, and sessions that set a log level get a message on their GET stream.
fn run_listener(sessions: Arc<Sessions>, watch: WatchHandle) -> RunListener {
    Arc::new(move |event: &RunEvent| {
        watch.run_finished(&event.task_id);
        crate::mcp::notify_run_finished(&sessions, event);
    })
}

/// Wait for SIGTERM or SIGINT, then stop: no new requests, every running process group ended
/// (grace, then kill) and recorded, event streams closed, exit 0.
fn wait_for_shutdown(signals: StopSignals, app: &App, server: &tiny_http::Server) {
    let name = match signals.wait() {
        Ok(name) => name,
        Err(rc) => {
            log::error!("sigwait failed ({rc}); stop signals are not handled");
            return;
        }
    };
    log::info!(
        "{name} received: stopping (running tasks get SIGTERM, then SIGKILL after {} s)",
        RUN_GRACE.as_secs()
    );
    app.stopping.store(true, Ordering::Release);
    crate::sdnotify::notify("STOPPING=1");
    server.unblock();
    app.catalogs
        .shutdown_engine(RUN_GRACE + Duration::from_secs(10));
    app.mcp.sessions.close_all();
    log::info!("stopped");
    std::process::exit(0);
}

/// Run the server until the process is stopped.
pub fn serve(config: Config) -> Result<(), String> {
    crate::sys::limit_malloc_arenas(1); // one heap: threads allocate mostly from their tcache
    crate::logger::init(&config.log_level, config.log_path.as_deref())?;
    let tokens = crate::token::accepted_tokens(&config)?;
    {
        let store = crate::store::Store::open(&config.db_path)
            .map_err(|e| format!("database {}: {e}", config.db_path.display()))?;
        let version = store.schema_version().map_err(|e| e.to_string())?;
        log::info!(
            "database {} ready (schema version {version})",
            config.db_path.display()
        );
    }
    // SIGTERM/SIGINT are taken by a dedicated thread (sigwait); block them here, before any
    // other thread exists, so every thread inherits the mask (run children clear it again).
    let signals = StopSignals::block();
    if signals.is_none() {
        log::warn!(
            "cannot block SIGTERM/SIGINT; a stop signal will end the server without recording runs"
        );
    }
    let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the listener has no address: {e}"))?;

    let approval_key = approval_key(&config);
    let subagent_settings = SubagentSettings {
        claude_path: config.claude_path.clone(),
        api_key: config.anthropic_api_key.clone(),
        base_url: config.anthropic_base_url.clone(),
        default_model: config.default_model.clone(),
        prices: config.api_prices.clone(),
    };
    let sessions = Arc::new(Sessions::new(
        Duration::from_secs(config.session_timeout_secs),
        config.max_sessions,
        config.max_sessions_per_token,
    ));
    // The watcher's inbox exists before the engine starts, so the engine's run listener can
    // hold its handle; the watcher itself starts once the engine runs.
    let (watch_handle, watch_inbox) = watch::channel();
    let engine = crate::engine::start(
        EngineSettings {
            db_path: config.db_path.clone(),
            max_concurrent: config.max_concurrent_tasks,
            history_keep_per_task: config.history_keep_per_task as i64,
            daily_budget_usd: config.daily_budget_usd,
            pause_after_failures: config.pause_after_failures,
            require_approval: config.require_approval,
            approval_key,
            run: RunSettings {
                subagent: subagent_settings.clone(),
                output_max_bytes: config.output_max_bytes,
                default_timeout_secs: config.task_timeout_secs,
                grace: RUN_GRACE,
                worktree_root: config.worktree_root(),
                worktree_keep: config.worktree_keep_per_task,
                notify_channels: std::sync::Arc::new(config.notify_channels.clone()),
                stores: std::sync::Arc::new(crate::store::StorePool::new(
                    &config.db_path,
                    RUN_STORES_KEPT,
                )),
            },
        },
        run_listener(Arc::clone(&sessions), watch_handle.clone()),
    )?;
    watch::start(watch_inbox, config.db_path.clone(), engine.clone())?;
    let hooks = HookDispatcher::start(engine.clone())?;
    let catalogs = CatalogSource::new(
        config.db_path.clone(),
        Defaults {
            timezone: config.default_timezone.clone(),
            task_timeout_secs: config.task_timeout_secs,
            subagent: subagent_settings,
            worktree_root: config.worktree_root(),
            notify_channels: config
                .notify_channels
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            require_approval: config.require_approval,
            approval_key,
            secrets_file: crate::secrets::path(&config.data_dir()),
        },
        Services {
            engine,
            watch: watch_handle,
            hooks,
        },
    );
    let opener = catalogs.clone();
    let lanes = Lanes::new(
        Box::new(move || {
            opener
                .open()
                .map_err(|e| log::error!("cannot open the database for a request: {e}"))
                .ok()
        }),
        WORKERS,
        QUEUE,
    );
    let app = Arc::new(App {
        guard: Guard::new(&config, tokens),
        mcp: Mcp {
            sessions,
            max_body_bytes: config.max_body_bytes,
            source: catalogs.clone(),
        },
        catalogs,
        lanes,
        started: Instant::now(),
        stopping: std::sync::atomic::AtomicBool::new(false),
        clients: ClientSlots::default(),
        status: Default::default(),
        oauth: match (&config.public_url, config.oauth.enabled) {
            (Some(url), true) => Some(crate::http::oauth::OAuthServer::new(
                url,
                config.oauth.clone(),
                config.db_path.clone(),
            )),
            _ => None,
        },
        config,
    });
    // Each request is served on the thread of its connection (tiny_http keeps one per open
    // connection): it checks the head (Host, Origin, rate, token) before reading any body, reads
    // the body within a deadline, routes it in a lane and writes the answer. A client that is
    // slow to send or to read holds its own connection's thread, never a lane; a request
    // crosses no thread on its way.
    let limits = tiny_http::ConnectionLimits {
        per_address: Some(MAX_CONNECTIONS_PER_ADDRESS),
        // Behind a reverse proxy every client arrives from loopback; the proxy limits them.
        exempt_loopback: app.config.trust_proxy,
    };
    let handler: tiny_http::RequestHandler = {
        let app = Arc::clone(&app);
        Arc::new(move |request| serve_request(&app, request))
    };
    let server = tiny_http::Server::from_listener_with_handler(listener, None, limits, handler)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let server = Arc::new(server);
    if let Some(set) = signals {
        let app = Arc::clone(&app);
        let server = Arc::clone(&server);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || wait_for_shutdown(set, &app, &server))
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    }
    announce(&app.config, addr);

    {
        let app = Arc::clone(&app);
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || loop {
                std::thread::sleep(SESSION_SWEEP);
                app.mcp.sessions.expire_idle(Instant::now());
                // What a burst (many runs at once, a big page) freed goes back to the system.
                crate::sys::release_free_heap();
            })
            .map_err(|e| format!("cannot start housekeeping thread: {e}"))?;
    }

    crate::sys::release_free_heap();
    crate::sdnotify::notify(&format!("READY=1\nSTATUS=listening on {addr}"));
    // The connection threads serve; this loop only ends: at a stop signal, or when accepting
    // has failed for good.
    for _ in server.incoming_requests() {}
    if app.stopping.load(Ordering::Acquire) {
        // A stop signal unblocked the listener; the signal thread finishes and exits 0.
        loop {
            std::thread::park();
        }
    }
    // Otherwise tiny_http ends the request stream only when its accept loop failed (e.g. out of
    // file descriptors) and will never accept again: exit with an error so the service manager
    // restarts us, rather than idling as a server that answers nobody.
    Err("the listener stopped accepting connections (see the error above); exiting".into())
}

/// With `require_approval`: the owner's public key, or None (every task stays pending) with
/// the reason logged; a loud warning when this process can read the private key, since then
/// any run could sign approvals.
fn approval_key(config: &Config) -> Option<crate::tasks::approval::PublicKey> {
    if !config.require_approval {
        return None;
    }
    let files = &config.approval_keys;
    if files.private_readable() {
        log::warn!(
            "require_approval: the approval PRIVATE key {} is readable by the server's user, so any run could forge approvals; keep it where the service user cannot read it (root:root 0600 in the service layout)",
            files.private.display()
        );
    }
    match files.load_public() {
        Ok(key) => {
            log::info!(
                "require_approval: approvals are checked with the public key {}",
                files.public.display()
            );
            Some(key)
        }
        Err(e) => {
            log::error!(
                "require_approval: {e}; until then every task is pending approval and nothing runs"
            );
            None
        }
    }
}

fn announce(config: &Config, addr: std::net::SocketAddr) {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    eprintln!(
        "claudecron {} listening on http://{addr} (MCP endpoint {base}/mcp)",
        env!("CARGO_PKG_VERSION")
    );
    match config.auth {
        AuthMode::None => eprintln!("auth: none (loopback only) — no token needed"),
        AuthMode::Token if !config.auth_tokens.is_empty() => {
            eprintln!("auth: bearer token from auth_tokens");
            eprintln!(
                "connect Claude Code: claude mcp add --transport http claudecron {base}/mcp --header \"Authorization: Bearer <your token>\""
            );
        }
        AuthMode::Token => {
            eprintln!("auth: bearer token in {}", config.token_file.display());
            eprintln!(
                "connect Claude Code: claude mcp add --transport http claudecron {base}/mcp --header \"Authorization: Bearer $(cat {})\"",
                config.token_file.display()
            );
        }
    }
}

/// On the request's connection thread: check its head (Host, Origin, rate, token) before
/// anything else, read its body within `BODY_DEADLINE`, route it in a lane, write the answer (or
/// take the connection over as an event stream), log one line.
fn serve_request(app: &App, mut request: tiny_http::Request) {
    let started = Instant::now();
    let mut req = HttpRequest::head(&request);
    let client = app.guard.client_addr(&req);
    // As they go into the log: a control character in a request line (a bare CR or LF) cannot
    // forge or hide a log line.
    // A webhook's path is its credential: the log shows only which kind of path it was.
    let (method, path) = (
        req.method.escape_debug().to_string(),
        if req.path.starts_with(crate::triggers::webhook::PATH_PREFIX) {
            "/trigger/(token hidden)".to_string()
        } else {
            req.path.escape_debug().to_string()
        },
    );
    let refuse = |mut request: tiny_http::Request, reply: Reply| {
        // The body is not read (nor drained) any further: the connection closes after the answer.
        request.abandon_body();
        let status = reply.status;
        reply.send(request);
        crate::metrics::global().http_request(route_label(&path), status);
        log::info!(
            "{client} {method} {path} -> {status} (body not read) in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    };
    let token = match admit_head(app, &req, client) {
        Ok(token) => token,
        Err(reply) => return refuse(request, reply),
    };
    let Some(_slot) = app.clients.enter(client) else {
        log::warn!("{client} has {MAX_IN_FLIGHT_PER_CLIENT} requests in flight; answering 503");
        return refuse(
            request,
            Reply::error(
                503,
                &format!("too many requests in flight from your address (at most {MAX_IN_FLIGHT_PER_CLIENT}); retry shortly"),
            )
            .with_header("Retry-After", "1"),
        );
    };
    if req
        .read_body(
            &mut request,
            routes::body_limit(&req, app.config.max_body_bytes, app.oauth.is_some()),
            started + BODY_DEADLINE,
        )
        .is_err()
    {
        return refuse(
            request,
            Reply::error(
                408,
                &format!(
                    "the request body did not arrive within {} s",
                    BODY_DEADLINE.as_secs()
                ),
            ),
        );
    }
    let routed = app.lanes.with(|catalog| {
        catch_unwind(AssertUnwindSafe(|| route(app, catalog, &req, token))).map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into())
        })
    });
    let outcome = routed.unwrap_or_else(|Busy| {
        log::warn!("{QUEUE} requests already wait for a lane; answering 503");
        Ok(Outcome::Reply(
            Reply::error(503, "server busy; retry shortly").with_header("Retry-After", "1"),
        ))
    });
    let (status, label) = match outcome {
        Ok(Outcome::Reply(reply)) => {
            let status = reply.status;
            reply.send(request);
            (status, "")
        }
        Ok(Outcome::WaitForRun(wait)) => wait.respond(request),
        Ok(Outcome::OpenStream {
            session,
            last_event_id,
        }) => match SseStream::open(request, &[]) {
            Ok(stream) => {
                lock(&session).attach_stream(stream, last_event_id.as_deref());
                (200, " (event stream opened)")
            }
            Err(e) => {
                log::debug!("event stream could not be opened: {e}");
                (200, " (event stream failed)")
            }
        },
        Err(what) => {
            log::error!("panic while handling {method} {path}: {what}");
            crate::mcp::panic_reply().send(request);
            (500, " (panic)")
        }
    };
    crate::metrics::global().http_request(route_label(&path), status);
    log::info!(
        "{client} {method} {path} -> {status}{label} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}
