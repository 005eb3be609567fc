//! MCP over Streamable HTTP, dual-era: protocol 2025-11-25 and older (reference/mcp-2025-11-25.md:
//! the `/mcp` endpoint's POST/GET/DELETE rules, sessions, version negotiation, JSON-RPC framing and
//! the method dispatch: initialize, ping, logging/setLevel, tools/*, resources/*) here, and
//! 2026-07-28 (routed by `MCP-Protocol-Version`) in `modern`. It reaches tasks only through
//! `catalog` (never SQL) and trusts `guard` to have authenticated the request.

mod answer;
mod args;
pub mod modern;
pub(crate) mod resources;
mod schema;
pub(crate) mod session;
mod tasks_ext;
pub mod tools;
pub(crate) mod wait;

use crate::http::guard::TokenId;
use crate::http::{accepts, HttpRequest, Reply};
use crate::tasks::catalog::{Catalog, CatalogSource, OpError};
use crate::tasks::runs::{RunEvent, RunStatus};
use answer::ToolAnswer;
use serde_json::{json, Map, Value};
use session::{level_rank, lock, SessionRef, Sessions, LOG_LEVELS};
use std::sync::Arc;

/// The version we speak; listed first.
pub const LATEST_VERSION: &str = "2025-11-25";
/// Versions `initialize` may settle on (answered with the same version).
pub const NEGOTIABLE_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// `MCP-Protocol-Version` values served by the 2025-era (session) path; any other value goes to
/// `modern`.
pub const LEGACY_HEADER_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Values accepted in the `MCP-Protocol-Version` header, newest first.
pub const HEADER_VERSIONS: &[&str] = &[
    "2026-07-28",
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];
/// What `server/discover` and the -32022 error list.
pub const SUPPORTED_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

const INSTRUCTIONS: &str = "claudecron schedules and runs tasks (bash commands or Claude prompts) on its own always-on host and records every run. Use claudecron_preview_schedule to check a cron expression, claudecron_add_task to create a task (give a timezone; schedules fire in it), claudecron_list_tasks / claudecron_get_task to inspect, claudecron_get_history / claudecron_get_run for results. These tasks persist on the server, unlike Claude Code's session-only CronCreate jobs.";

/// The tasks extension's identifier (for docs/API.md).
pub fn tasks_ext_id() -> &'static str {
    tasks_ext::EXTENSION
}

/// What the HTTP layer must do with an `/mcp` request.
pub enum Outcome {
    Reply(Reply),
    /// Open the session's GET event stream, replaying after `last_event_id`.
    OpenStream {
        session: SessionRef,
        last_event_id: Option<String>,
    },
    /// Answer once a run has ended (or the wait ran out), on the request's own thread.
    WaitForRun(Box<wait::RunWait>),
}

/// State shared by all workers for the MCP endpoint.
pub struct Mcp {
    pub sessions: Arc<Sessions>,
    /// Bodies over this were not read (`HttpRequest::body_too_large`): answered 413.
    pub max_body_bytes: usize,
    /// For threads that wait for runs and need their own catalog.
    pub source: CatalogSource,
}

/// A JSON-RPC error body with the given HTTP status (`id` null unless known).
pub fn rpc_error(status: u16, id: Option<&Value>, code: i64, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({
            "jsonrpc": "2.0",
            "id": id.cloned().unwrap_or(Value::Null),
            "error": { "code": code, "message": message },
        }),
    )
}

/// The answer to an `/mcp` request whose handling panicked.
pub fn panic_reply() -> Reply {
    rpc_error(
        500,
        None,
        -32603,
        "Internal error; the server logged it and keeps serving",
    )
}

fn bad_request(code: i64, message: &str) -> Outcome {
    Outcome::Reply(rpc_error(400, None, code, message))
}

impl Mcp {
    /// Handle one authenticated request to `/mcp`.
    pub fn handle(&self, req: &HttpRequest, token: TokenId, catalog: Option<&Catalog>) -> Outcome {
        if req.body_too_large {
            return Outcome::Reply(rpc_error(
                413,
                None,
                -32000,
                &format!(
                    "Payload Too Large: the limit is max_body_bytes = {}",
                    self.max_body_bytes
                ),
            ));
        }
        if let Some(version) = req.header("mcp-protocol-version") {
            if !LEGACY_HEADER_VERSIONS.contains(&version.trim()) {
                // Dual era: 2026-07-28 (and any version we do not speak, answered -32022 there).
                return self.modern(req, version.trim(), catalog);
            }
        }
        match req.method.as_str() {
            "POST" => self.post(req, token, catalog),
            "GET" => self.get(req, token),
            "DELETE" => match self.session_for(req, token) {
                Ok(session) => {
                    let id = lock(&session).id.clone();
                    self.sessions.remove(&id);
                    log::info!("session {} ended by DELETE", session::short(&id));
                    Outcome::Reply(Reply {
                        status: 204,
                        headers: Vec::new(),
                        body: Vec::new(),
                    })
                }
                Err(outcome) => outcome,
            },
            _ => Outcome::Reply(
                rpc_error(
                    405,
                    None,
                    -32000,
                    "Method not allowed; /mcp accepts GET, POST, DELETE",
                )
                .with_header("Allow", "GET, POST, DELETE"),
            ),
        }
    }

    /// The session named by `MCP-Session-Id`, checked against the token that opened it.
    fn session_for(&self, req: &HttpRequest, token: TokenId) -> Result<SessionRef, Outcome> {
        let id = match req.header("mcp-session-id") {
            Some(id) if !id.trim().is_empty() => id.trim(),
            _ => return Err(bad_request(
                -32000,
                "Bad Request: MCP-Session-Id header is required (send initialize first to get one)",
            )),
        };
        let not_found = || {
            Outcome::Reply(rpc_error(
                404,
                None,
                -32001,
                "Session not found: it expired or was ended; send initialize without MCP-Session-Id to start a new one",
            ))
        };
        let session = self.sessions.get(id).ok_or_else(not_found)?;
        if lock(&session).token != token {
            return Err(not_found());
        }
        Ok(session)
    }

    fn get(&self, req: &HttpRequest, token: TokenId) -> Outcome {
        if let Some(accept) = req.header("accept") {
            if !accepts(accept, "text/event-stream") {
                return Outcome::Reply(rpc_error(
                    406,
                    None,
                    -32000,
                    "Not Acceptable: GET /mcp opens an event stream; send Accept: text/event-stream",
                ));
            }
        }
        match self.session_for(req, token) {
            Ok(session) => Outcome::OpenStream {
                session,
                last_event_id: req.header("last-event-id").map(str::to_string),
            },
            Err(outcome) => outcome,
        }
    }

    fn post(&self, req: &HttpRequest, token: TokenId, catalog: Option<&Catalog>) -> Outcome {
        let mut obj = match parse_post(req) {
            Ok(obj) => obj,
            Err(outcome) => return outcome,
        };
        let params = obj.remove("params").unwrap_or(Value::Object(Map::new()));
        let obj = &obj;
        let id = obj.get("id");
        let method = obj.get("method").and_then(Value::as_str);
        let is_response =
            method.is_none() && (obj.contains_key("result") || obj.contains_key("error"));

        if method == Some("initialize") && id.is_some() {
            if req.header("mcp-session-id").is_some() {
                return bad_request(
                    -32600,
                    "Invalid Request: this session is already initialized; POST initialize without MCP-Session-Id to start a new session",
                );
            }
            return match self.initialize(id.cloned().unwrap_or(Value::Null), &params, token) {
                Outcome::Reply(reply) => Outcome::Reply(as_accepted(req, reply)),
                other => other,
            };
        }

        let session = match self.session_for(req, token) {
            Ok(s) => s,
            Err(outcome) => return outcome,
        };
        let Some(method) = method else {
            debug_assert!(is_response);
            return Outcome::Reply(Reply::accepted()); // a response to a server request: nothing pending
        };
        let Some(id) = id.cloned() else {
            if method == "notifications/initialized" {
                lock(&session).initialized = true;
            }
            return Outcome::Reply(Reply::accepted());
        };
        // `resource_link` content came with 2025-06-18: a 2025-03-26 session gets results without.
        let links = lock(&session).version != "2025-03-26";
        if method == "tools/list" && params.get("cursor").is_none_or(Value::is_null) {
            static LIST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let result = tools::list_result_json(&LIST, |v| v);
            return Outcome::Reply(as_accepted(req, answer::raw_result(&id, result)));
        }
        if method == "tools/call" {
            if let Some(outcome) = self.run_tools(req, &id, &params, catalog, links) {
                return outcome;
            }
            let reply = match self.call_tool(&params, catalog) {
                Ok(answer) => answer.encode(&id, links, false),
                Err((code, message)) => Reply::json(
                    200,
                    &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
                ),
            };
            return Outcome::Reply(as_accepted(req, reply));
        }
        let reply = match self.dispatch(method, &params, &session, catalog) {
            Ok(mut result) => {
                if !links {
                    strip_links(&mut result);
                }
                crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": result)
            }
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        };
        Outcome::Reply(as_accepted(req, Reply::json(200, &reply)))
    }
}

/// A POST body checked as one JSON-RPC message (media types, JSON, no batch, `jsonrpc`, a
/// method or a result, the id's type), for both eras.
fn parse_post(req: &HttpRequest) -> Result<Map<String, Value>, Outcome> {
    let content_type = req.header("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Outcome::Reply(rpc_error(
            415,
            None,
            -32000,
            "Unsupported Media Type: POST /mcp takes Content-Type: application/json",
        )));
    }
    if let Some(accept) = req.header("accept") {
        if !accepts(accept, "application/json") && !accepts(accept, "text/event-stream") {
            return Err(Outcome::Reply(rpc_error(
                406,
                None,
                -32000,
                "Not Acceptable: the client must accept application/json or text/event-stream",
            )));
        }
    }
    let message: Value = match std::str::from_utf8(&req.body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
    {
        Some(v) => v,
        None => {
            return Err(bad_request(
                -32700,
                "Parse error: the body is not valid UTF-8 JSON",
            ))
        }
    };
    let obj = match message {
            Value::Array(_) => {
                return Err(bad_request(
                    -32600,
                    "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per POST",
                ))
            }
            Value::Object(o) => o,
            _ => return Err(bad_request(-32600, "Invalid Request: the body must be one JSON-RPC object")),
        };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad_request(
            -32600,
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
        ));
    }
    let id = obj.get("id");
    let method = obj.get("method").and_then(Value::as_str);
    let is_response = method.is_none() && (obj.contains_key("result") || obj.contains_key("error"));
    if method.is_none() && !is_response {
        return Err(bad_request(-32600, "Invalid Request: a message needs \"method\" (request or notification) or \"result\"/\"error\" (response)"));
    }
    if let Some(id) = id {
        if !(id.is_string() || id.is_i64() || id.is_u64() || is_response) {
            return Err(bad_request(
                -32600,
                "Invalid Request: \"id\" must be a string or an integer, never null",
            ));
        }
    }
    Ok(obj)
}

impl Mcp {
    fn initialize(&self, id: Value, params: &Value, token: TokenId) -> Outcome {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LATEST_VERSION);
        let version = NEGOTIABLE_VERSIONS
            .iter()
            .copied()
            .find(|v| *v == requested)
            .unwrap_or(LATEST_VERSION);
        let session_id = match self.sessions.create(token) {
            Ok(id) => id,
            Err(message) => {
                return Outcome::Reply(
                    rpc_error(503, Some(&id), -32000, &message).with_header("Retry-After", "60"),
                )
            }
        };
        if let Some(session) = self.sessions.get(&session_id) {
            lock(&session).version = version;
        }
        log::info!(
            "session {} opened by client \"{}\" with protocol {version}",
            session::short(&session_id),
            client_name(params.pointer("/clientInfo/name"))
        );
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}, "resources": {}, "logging": {}},
            "serverInfo": {"name": "claudecron", "title": "claudecron", "version": env!("CARGO_PKG_VERSION")},
            "instructions": INSTRUCTIONS,
        });
        Outcome::Reply(
            Reply::json(
                200,
                &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": result),
            )
            .with_header("MCP-Session-Id", &session_id),
        )
    }

    fn dispatch(
        &self,
        method: &str,
        params: &Value,
        session: &SessionRef,
        catalog: Option<&Catalog>,
    ) -> Result<Value, (i64, String)> {
        match method {
            "ping" => Ok(json!({})),
            "logging/setLevel" => {
                let level = params.get("level").and_then(Value::as_str).unwrap_or("");
                match level_rank(level) {
                    Some(rank) => {
                        lock(session).log_level = Some(rank);
                        Ok(json!({}))
                    }
                    None => Err((
                        -32602,
                        format!(
                            "Invalid params: level \"{level}\" is not accepted; accepted: {}",
                            LOG_LEVELS.join(", ")
                        ),
                    )),
                }
            }
            // Without a cursor it is answered from the list encoded once (`post`).
            "tools/list" => Err((
                -32602,
                "Invalid params: unknown cursor (tools/list has a single page)".into(),
            )),
            // `post` answers it first (encoded in one pass); kept so the dispatch stays total.
            "tools/call" => self.call_tool(params, catalog).map(ToolAnswer::into_value),
            "resources/list" | "resources/read" | "resources/templates/list" => {
                self.resources(method, params, catalog, -32002)
            }
            "initialize" => Err((
                -32600,
                "Invalid Request: initialize must be a request with an id".into(),
            )),
            other => Err((-32601, format!("Method not found: {other}"))),
        }
    }

    fn call_tool(
        &self,
        params: &Value,
        catalog: Option<&Catalog>,
    ) -> Result<ToolAnswer, (i64, String)> {
        let name = match params.get("name") {
            Some(Value::String(n)) => n.as_str(),
            _ => {
                return Err((
                    -32602,
                    "Invalid params: tools/call needs \"name\", a tool name from tools/list".into(),
                ))
            }
        };
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(a)) => a,
            Some(_) => {
                return Err((
                    -32602,
                    "Invalid params: \"arguments\" must be an object".into(),
                ))
            }
        };
        let Some(tool) = tools::find(name) else {
            return Err((-32602, format!("Unknown tool: {name}")));
        };
        let Some(catalog) = catalog else {
            return Ok(ToolAnswer::Refused(tool_error(&self.no_catalog())));
        };
        let answer = match tool.handler {
            tools::Handler::Now(handler) => {
                handler(catalog, args, chrono::Utc::now()).map(|value| ToolAnswer::Done {
                    summary: (tool.summary)(&value),
                    value,
                })
            }
            tools::Handler::Encoded(handler) => {
                handler(catalog, args, chrono::Utc::now()).map(|e| ToolAnswer::Encoded {
                    summary: (tool.summary)(&e.brief),
                    json: e.json,
                })
            }
            // run_task and cancel_run are answered by `run_tools` before dispatch.
            tools::Handler::Run(_) => {
                return Err((-32603, format!("{name} cannot be called here")));
            }
        };
        Ok(answer.unwrap_or_else(|e| ToolAnswer::Refused(op_error(name, &e))))
    }
}

/// A refused tool call as a tool error result: what was wrong, for the model to read.
fn op_error(tool: &str, e: &OpError) -> Value {
    match e {
        OpError::Internal(msg) => {
            log::error!("tool {tool} failed: {msg}");
            tool_error("internal error: the database failed; see the server log")
        }
        other => tool_error(&other.to_string()),
    }
}

/// The answer to a request in a form the client accepts: JSON, or, when the client accepts an
/// event stream but not JSON, the same message as one SSE event (the stream then ends).
fn as_accepted(req: &HttpRequest, reply: Reply) -> Reply {
    let sse_only = req
        .header("accept")
        .is_some_and(|a| !accepts(a, "application/json") && accepts(a, "text/event-stream"));
    if !sse_only || reply.status != 200 {
        return reply;
    }
    let data = String::from_utf8_lossy(&reply.body).into_owned();
    let mut headers: Vec<(String, String)> = reply
        .headers
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
        .collect();
    headers.push(("Content-Type".into(), "text/event-stream".into()));
    headers.push(("Cache-Control".into(), "no-cache".into()));
    Reply {
        status: reply.status,
        headers,
        body: crate::http::sse::format_event(None, &data).into_bytes(),
    }
}

impl Mcp {
    /// Why this worker has no catalog: its database connection could not be opened. Tried
    /// again here, so the answer names the cause (the file deleted or replaced, read-only, ...).
    fn no_catalog(&self) -> String {
        match self.source.open() {
            Err(e) => e.to_string(),
            Ok(_) => "internal error: the database is not available; see the server log".into(),
        }
    }
}

/// A client's self-reported name for a log line: at most 60 characters, escaped.
fn client_name(name: Option<&Value>) -> String {
    let name: String = name
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .take(60)
        .collect();
    name.escape_debug().to_string()
}

/// Remove `resource_link` blocks from a tool result (for clients older than 2025-06-18).
pub(crate) fn strip_links(result: &mut Value) {
    if let Some(content) = result.get_mut("content").and_then(Value::as_array_mut) {
        content.retain(|c| c["type"] != "resource_link");
    }
}

/// The log level of a run's end: `info` for a success, `error` for a failure, `warning` otherwise.
fn run_log_level(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "info",
        RunStatus::Failed | RunStatus::Timeout | RunStatus::Interrupted => "error",
        _ => "warning",
    }
}

/// Tell the sessions that asked for log messages (`logging/setLevel`) that a run finished:
/// `info` for a success, `error` for a failure, `warning` otherwise.
pub fn notify_run_finished(sessions: &Sessions, event: &RunEvent) {
    let level = run_log_level(event.status);
    let rank = level_rank(level).unwrap_or(0);
    let message = json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {
            "level": level,
            "logger": "claudecron",
            "data": {
                "event": "run_finished",
                "run_id": event.run_id,
                "task_id": event.task_id,
                "task_name": event.task_name,
                "status": event.status,
                "error": event.error,
            }
        }
    })
    .to_string();
    for session in sessions.all() {
        let mut s = lock(&session);
        if s.log_level.is_some_and(|min| rank >= min) {
            s.push_event(message.clone());
        }
    }
}

/// A successful tool result: a readable line, the JSON, and the same JSON as structured content.
/// A result about one run (`structuredContent.run.id`) also carries a `resource_link` to its log.
/// The JSON in the text is compact: no indentation for the model to read past (fewer tokens),
/// and less to encode.
pub(crate) fn tool_result(summary: &str, value: Value) -> Value {
    let mut text = String::with_capacity(summary.len() + 1024);
    text.push_str(summary);
    text.push('\n');
    text.push_str(&serde_json::to_string(&value).unwrap_or_default());
    let mut content = vec![crate::obj!("type": "text", "text": text)];
    content.extend(answer::run_link(&value));
    crate::obj!(
        "content": content,
        "structuredContent": value,
        "isError": false,
    )
}

pub(crate) fn tool_error(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}
