//! `claudecron serve`: start-up (logging, token, database check, bind), the blocking accept loop,
//! a short-lived I/O thread per request (reads the body, writes the answer, so a slow or stalled
//! client never holds a worker), the fixed pool of worker threads fed over a crossbeam channel,
//! routing of `/`, `/health` and `/mcp`, panic isolation per request, and the housekeeping thread
//! (keep-alives, session expiry). Each worker owns its SQLite connection. It never parses
//! JSON-RPC (see `mcp`).

use crate::catalog::Defaults;
use crate::config::{AuthMode, Config};
use crate::guard::Guard;
use crate::http::{HttpRequest, Reply};
use crate::mcp::session::{lock, Sessions};
use crate::mcp::{Mcp, Outcome, HEADER_VERSIONS};
use crate::sse::SseStream;
use crate::store::Store;
use serde_json::json;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Worker threads that handle requests (SSE streams do not hold one).
pub const WORKERS: usize = 8;
/// Requests waiting for a worker before new ones get 503.
const QUEUE: usize = 256;
/// Requests being read or answered at once (each on its own short-lived I/O thread) before new
/// ones get 503.
const MAX_IN_FLIGHT: usize = 1024;
/// How often idle event streams get a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Everything the workers share.
pub struct App {
    pub config: Config,
    pub guard: Guard,
    pub mcp: Mcp,
    pub started: Instant,
}

fn init_logging(config: &Config) -> Result<(), String> {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&format!("warn,claudecron={}", config.log_level));
    builder.format_timestamp_millis();
    if let Some(path) = &config.log_path {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("log_path {}: {e}", path.display()))?;
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    }
    // A second init (tests running serve twice in one process) is harmless.
    let _ = builder.try_init();
    Ok(())
}

/// Run the server until the process is stopped.
pub fn serve(config: Config) -> Result<(), String> {
    init_logging(&config)?;
    let tokens = crate::token::accepted_tokens(&config)?;
    {
        let store = Store::open(&config.db_path)
            .map_err(|e| format!("database {}: {e}", config.db_path.display()))?;
        let version = store.schema_version().map_err(|e| e.to_string())?;
        log::info!(
            "database {} ready (schema version {version})",
            config.db_path.display()
        );
    }
    let server = tiny_http::Server::http((config.host.as_str(), config.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("the listener has no IP address")?;

    let app = Arc::new(App {
        guard: Guard::new(&config, tokens),
        mcp: Mcp {
            sessions: Sessions::new(
                Duration::from_secs(config.session_timeout_secs),
                config.max_sessions,
            ),
            defaults: Defaults {
                timezone: config.default_timezone.clone(),
                task_timeout_secs: config.task_timeout_secs,
            },
        },
        started: Instant::now(),
        config,
    });
    announce(&app.config, addr);

    let (tx, rx) = crossbeam_channel::bounded::<Job>(QUEUE);
    for n in 0..WORKERS {
        let rx = rx.clone();
        let app = Arc::clone(&app);
        std::thread::Builder::new()
            .name(format!("worker-{n}"))
            .spawn(move || worker(&app, rx))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
    }
    {
        let app = Arc::clone(&app);
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || loop {
                std::thread::sleep(KEEP_ALIVE);
                app.mcp.sessions.keep_alive_all();
                app.mcp.sessions.expire_idle(Instant::now());
            })
            .map_err(|e| format!("cannot start housekeeping thread: {e}"))?;
    }

    // Each request gets a short-lived I/O thread that reads its body, waits for a worker's
    // answer and writes it: a client that is slow to send or to read holds that thread (as it
    // already holds tiny_http's thread for its connection), never one of the few workers.
    let in_flight = Arc::new(AtomicUsize::new(0));
    for request in server.incoming_requests() {
        if in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            log::warn!("{MAX_IN_FLIGHT} requests in flight; answering 503");
            Reply::error(503, "server busy; retry shortly")
                .with_header("Retry-After", "1")
                .send(request);
            continue;
        }
        let guard = InFlight::enter(&in_flight);
        let app = Arc::clone(&app);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("request-io".into())
            .spawn(move || {
                let _guard = guard;
                serve_request(&app, &tx, request);
            });
        if let Err(e) = spawned {
            // The closure (and with it the request) is dropped: tiny_http answers it 500.
            log::error!("cannot start a thread for a request: {e}");
        }
    }
    // tiny_http ends the request stream only when its accept loop failed (e.g. out of file
    // descriptors) and will never accept again: exit with an error so the service manager
    // restarts us, rather than idling as a server that answers nobody.
    Err("the listener stopped accepting connections (see the error above); exiting".into())
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

/// Counts a request in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request read into memory, for a worker to route; the answer goes back on `done`
/// (`Err` with the panic message when handling it panicked).
pub struct Job {
    req: HttpRequest,
    client: IpAddr,
    done: crossbeam_channel::Sender<Result<Outcome, String>>,
}

fn worker(app: &App, rx: crossbeam_channel::Receiver<Job>) {
    let mut store: Option<Store> = None;
    for job in rx {
        if store.is_none() {
            match Store::open(&app.config.db_path) {
                Ok(s) => store = Some(s),
                Err(e) => log::error!("worker cannot open the database: {e}"),
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            route(app, store.as_ref(), &job.req, job.client)
        }))
        .map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into())
        });
        // The I/O thread may be gone only if it panicked itself; nothing to answer then.
        let _ = job.done.send(outcome);
    }
}

/// On a request's I/O thread: read it, have a worker route it, write the answer (or take the
/// connection over as an event stream), log one line.
fn serve_request(
    app: &App,
    workers: &crossbeam_channel::Sender<Job>,
    mut request: tiny_http::Request,
) {
    let started = Instant::now();
    let req = HttpRequest::read(&mut request, app.config.max_body_bytes);
    let client = app.guard.client_addr(&req);
    let (method, path) = (req.method.clone(), req.path.clone());
    let (done, answer) = crossbeam_channel::bounded(1);
    let outcome = match workers.try_send(Job { req, client, done }) {
        Ok(()) => answer
            .recv()
            .unwrap_or_else(|_| Err("the worker handling it stopped".into())),
        Err(_) => {
            log::warn!("all workers busy; answering 503");
            Ok(Outcome::Reply(
                Reply::error(503, "server busy; retry shortly").with_header("Retry-After", "1"),
            ))
        }
    };
    let (status, label) = match outcome {
        Ok(Outcome::Reply(reply)) => {
            let status = reply.status;
            reply.send(request);
            (status, "")
        }
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
            Reply::rpc_error(
                500,
                None,
                -32603,
                "Internal error; the server logged it and keeps serving",
            )
            .send(request);
            (500, " (panic)")
        }
    };
    log::info!(
        "{client} {method} {path} -> {status}{label} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

fn method_not_allowed(allow: &str) -> Outcome {
    Outcome::Reply(
        Reply::error(
            405,
            &format!("method not allowed; this path accepts {allow}"),
        )
        .with_header("Allow", allow),
    )
}

fn route(app: &App, store: Option<&Store>, req: &HttpRequest, client: IpAddr) -> Outcome {
    if let Err(reply) = app.guard.check_host_and_origin(req) {
        return Outcome::Reply(reply);
    }
    match req.path.as_str() {
        "/" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(Reply::json(200, &info(app))),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/health" => match req.method.as_str() {
            "GET" | "HEAD" => Outcome::Reply(health(app, store)),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/mcp" => {
            if let Err(reply) = app.guard.rate_limit(client) {
                return Outcome::Reply(reply);
            }
            let token = match app.guard.authenticate(req) {
                Ok(t) => t,
                Err(reply) => return Outcome::Reply(reply),
            };
            if req.body_too_large {
                return Outcome::Reply(Reply::rpc_error(
                    413,
                    None,
                    -32000,
                    &format!(
                        "Payload Too Large: the limit is max_body_bytes = {}",
                        app.config.max_body_bytes
                    ),
                ));
            }
            if req.path == "/mcp"
                && req.header("x-claudecron-test-panic").is_some()
                && cfg!(debug_assertions)
            {
                panic!("test panic requested by header");
            }
            app.mcp.handle(req, token, store)
        }
        _ => Outcome::Reply(Reply::error(404, "not found; endpoints: /, /health, /mcp")),
    }
}

fn info(app: &App) -> serde_json::Value {
    json!({
        "name": "claudecron",
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersions": HEADER_VERSIONS,
        "endpoints": {"mcp": "/mcp", "health": "/health"},
        "auth": match app.config.auth { AuthMode::Token => "bearer", AuthMode::None => "none" },
        "authRequired": app.config.auth == AuthMode::Token,
    })
}

fn health(app: &App, store: Option<&Store>) -> Reply {
    let uptime = app.started.elapsed().as_secs();
    let db = store
        .ok_or_else(|| "cannot open the database".to_string())
        .and_then(|s| {
            let (tasks, enabled) = s.count_tasks().map_err(|e| e.to_string())?;
            let running = s
                .count_runs_with_status("running")
                .map_err(|e| e.to_string())?;
            Ok((tasks, enabled, running))
        });
    match db {
        Ok((tasks, enabled, running)) => Reply::json(
            200,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": uptime,
                "database": "ok",
                "scheduler": "not built yet (arrives with the execution engine)",
                "tasks": tasks,
                "enabled_tasks": enabled,
                "running_runs": running,
                "sessions": app.mcp.sessions.len(),
            }),
        ),
        Err(reason) => Reply::json(
            503,
            &json!({
                "status": "unavailable",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": uptime,
                "database": reason,
            }),
        ),
    }
}
