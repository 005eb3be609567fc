//! MCP 2026-07-28 on `/mcp` (spec `basic/versioning.mdx`, `basic/transports/streamable-http.mdx`):
//! a request whose `MCP-Protocol-Version` is not a 2025-era version is served statelessly here —
//! the per-request `_meta` envelope, `Mcp-Method`/`Mcp-Name` checked against the body,
//! `server/discover`, `resultType` on every result, `ttlMs`/`cacheScope` on cacheable ones, the
//! error codes with their HTTP statuses, and the tasks extension. It never reads or makes a
//! session (`Mcp-Session-Id` is ignored) and never builds a GET stream.

use super::{
    rpc_error, tasks_ext, tools, wait::RunStart, Mcp, Outcome, INSTRUCTIONS, SUPPORTED_VERSIONS,
};
use crate::http::{accepts, HttpRequest, Reply};
use crate::tasks::catalog::Catalog;
use serde_json::{json, Map, Value};

/// The modern version we serve.
pub const MODERN_VERSION: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// How long clients may cache what does not change while the binary runs (tools, templates,
/// discover): 5 minutes.
const STATIC_TTL_MS: u64 = 300_000;

/// A JSON-RPC error code and message, with optional data.
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl From<(i64, String)> for RpcError {
    fn from((code, message): (i64, String)) -> Self {
        RpcError {
            code,
            message,
            data: None,
        }
    }
}

/// The HTTP status the spec gives a JSON-RPC error code on this path.
fn status_for(code: i64) -> u16 {
    match code {
        -32700 | -32600 | -32602 | -32020 | -32021 | -32022 => 400,
        -32601 => 404,
        _ => 200,
    }
}

fn error_reply(id: Option<&Value>, e: RpcError) -> Outcome {
    let mut reply = rpc_error(status_for(e.code), id, e.code, &e.message);
    if let Some(data) = e.data {
        let mut body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        body["error"]["data"] = data;
        reply = Reply::json(reply.status, &body);
    }
    Outcome::Reply(reply)
}

fn unsupported(requested: &str) -> RpcError {
    RpcError {
        code: -32022,
        message: format!(
            "Unsupported protocol version \"{}\"; supported: {}",
            requested.escape_debug(),
            SUPPORTED_VERSIONS.join(", ")
        ),
        data: Some(json!({"supported": SUPPORTED_VERSIONS, "requested": requested})),
    }
}

fn mismatch(message: String) -> RpcError {
    RpcError {
        code: -32020,
        message: format!("Header mismatch: {message}"),
        data: None,
    }
}

/// A header value with the `=?base64?…?=` sentinel decoded (None when the sentinel is malformed:
/// not standard padded base64, or not UTF-8).
fn decode_header(value: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    if payload.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() / 4 * 3);
    for chunk in payload.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || chunk[..4 - pad].contains(&b'=') {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk[..4 - pad].iter().enumerate() {
            n |= (ALPHABET.iter().position(|a| a == c)? as u32) << (18 - 6 * i);
        }
        out.extend((0..3 - pad).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    String::from_utf8(out).ok()
}

/// The one value of a routing header; Err when it appears more than once.
fn single_header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, RpcError> {
    let mut values = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name));
    let first = values.next().map(|(_, v)| v.trim());
    if values.next().is_some() {
        return Err(mismatch(format!("{name} header appears more than once")));
    }
    Ok(first)
}

/// The per-request envelope of a request that passed the checks.
struct Envelope {
    capabilities: Value,
    log_level: Option<usize>,
}

/// The validation ladder (the Python SDK's order): the `_meta` envelope, the headers against
/// the body, the version.
fn check_envelope(
    req: &HttpRequest,
    method: &str,
    params: &Value,
    header_version: &str,
) -> Result<Envelope, RpcError> {
    let method_header = single_header(req, "mcp-method")?;
    let name_header = single_header(req, "mcp-name")?;
    single_header(req, "mcp-protocol-version")?;
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        if header_version != MODERN_VERSION {
            return Err(unsupported(header_version));
        }
        return Err((-32602, format!("Invalid params: params._meta must be an object carrying \"{META_VERSION}\" and \"{META_CAPABILITIES}\" (protocol {MODERN_VERSION})")).into());
    };
    let missing: Vec<&str> = [META_VERSION, META_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err((
            -32602,
            format!(
                "Invalid params: params._meta is missing {}",
                missing.join(" and ")
            ),
        )
            .into());
    }
    let body_version = &meta[META_VERSION];
    if body_version.as_str() != Some(header_version) {
        return Err(mismatch(format!(
            "MCP-Protocol-Version header \"{}\" does not match params._meta \"{META_VERSION}\" {body_version}",
            header_version.escape_debug()
        )));
    }
    match method_header {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(mismatch(format!(
                "Mcp-Method header \"{}\" does not match the body's method \"{}\"",
                m.escape_debug(),
                method.escape_debug()
            )))
        }
        None => {
            return Err(mismatch(format!(
                "the Mcp-Method header is required (the body's method is \"{}\")",
                method.escape_debug()
            )))
        }
    }
    let name_key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(key) = name_key {
        if let Some(body_name) = params.get(key).and_then(Value::as_str) {
            match name_header.map(decode_header) {
                Some(Some(h)) if h == body_name => {}
                Some(_) => {
                    return Err(mismatch(format!(
                        "Mcp-Name header does not match the body's \"{key}\""
                    )))
                }
                None => {
                    return Err(mismatch(format!(
                        "the Mcp-Name header is required for {method} (the body's \"{key}\")"
                    )))
                }
            }
        }
    }
    if method.starts_with("tasks/") {
        // The extension: clients MUST send it; we reject a mismatch and tolerate absence.
        if let (Some(h), Some(task_id)) =
            (name_header, params.get("taskId").and_then(Value::as_str))
        {
            if decode_header(h).as_deref() != Some(task_id) {
                return Err(mismatch(
                    "Mcp-Name header does not match the body's \"taskId\"".into(),
                ));
            }
        }
    }
    if header_version != MODERN_VERSION {
        return Err(unsupported(header_version));
    }
    let log_level = meta
        .get(META_LOG_LEVEL)
        .and_then(Value::as_str)
        .and_then(super::session::level_rank);
    Ok(Envelope {
        capabilities: meta[META_CAPABILITIES].clone(),
        log_level,
    })
}

fn complete(mut result: Value) -> Value {
    result["resultType"] = "complete".into();
    result
}

fn cacheable(result: Value, ttl_ms: u64, scope: &str) -> Value {
    let mut result = complete(result);
    result["ttlMs"] = ttl_ms.into();
    result["cacheScope"] = scope.into();
    result
}

/// What `server/discover` answers (also the capabilities we declare on this path).
pub fn discover_result() -> Value {
    cacheable(
        json!({
            "supportedVersions": SUPPORTED_VERSIONS,
            "capabilities": {
                "tools": {},
                "resources": {},
                "prompts": {},
                "extensions": {tasks_ext::EXTENSION: {}},
            },
            "instructions": INSTRUCTIONS,
            "_meta": {"io.modelcontextprotocol/serverInfo": {
                "name": "claudecron", "title": "claudecron", "version": env!("CARGO_PKG_VERSION")
            }},
        }),
        STATIC_TTL_MS,
        "public",
    )
}

impl Mcp {
    /// Serve one request on the 2026-07-28 path (the header names a non-legacy version).
    pub(super) fn modern(
        &self,
        req: &HttpRequest,
        header_version: &str,
        catalog: Option<&Catalog>,
    ) -> Outcome {
        if req.method != "POST" {
            return Outcome::Reply(
                rpc_error(
                    405,
                    None,
                    -32000,
                    "Method not allowed: protocol 2026-07-28 has no GET stream or session; POST each request",
                )
                .with_header("Allow", "POST"),
            );
        }
        let mut obj = match super::parse_post(req) {
            Ok(obj) => obj,
            Err(outcome) => return outcome,
        };
        let given_params = obj.remove("params");
        let id = obj.get("id");
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            return error_reply(
                None,
                (-32600, "Invalid Request: the body must be one JSON-RPC request or notification (protocol 2026-07-28 takes no responses)".to_string()).into(),
            );
        };
        let Some(id) = id else {
            // The core protocol defines no client notifications over HTTP: acknowledged, dropped.
            if header_version != MODERN_VERSION {
                return error_reply(None, unsupported(header_version));
            }
            return Outcome::Reply(Reply::accepted());
        };
        let params = match given_params {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(p @ Value::Object(_)) => p,
            Some(_) => {
                return error_reply(
                    Some(id),
                    (
                        -32602,
                        "Invalid params: \"params\" must be an object".to_string(),
                    )
                        .into(),
                )
            }
        };
        let envelope = match check_envelope(req, method, &params, header_version) {
            Ok(e) => e,
            Err(e) => return error_reply(Some(id), e),
        };
        let sse = req
            .header("accept")
            .is_some_and(|a| accepts(a, "text/event-stream"));
        let result = match method {
            "server/discover" => {
                log::info!(
                    "server/discover by client \"{}\" with protocol {MODERN_VERSION}",
                    super::client_name(params.pointer("/_meta/io.modelcontextprotocol~1clientInfo/name"))
                );
                Ok(discover_result())
            }
            "tools/list" => {
                if params.get("cursor").is_some_and(|c| !c.is_null()) {
                    Err((
                        -32602,
                        "Invalid params: unknown cursor (tools/list has a single page)".into(),
                    ))
                } else {
                    static LIST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                    let result = tools::list_result_json(&LIST, |v| {
                        cacheable(v, STATIC_TTL_MS, "public")
                    });
                    return Outcome::Reply(super::as_accepted(req, super::answer::raw_result(id, result)));
                }
            }
            "tools/call" => {
                match self.modern_run_tool(req, id, &params, &envelope, sse, catalog) {
                    Some(outcome) => return outcome,
                    None => match self.call_tool(&params, catalog) {
                        Ok(answer) => {
                            let reply = answer.encode(id, true, true);
                            return Outcome::Reply(super::as_accepted(req, reply));
                        }
                        Err(e) => Err(e),
                    },
                }
            }
            "resources/list" | "resources/read" | "resources/templates/list" => {
                self.resources(method, &params, catalog, -32602).map(|r| {
                    if method == "resources/templates/list" {
                        cacheable(r, STATIC_TTL_MS, "public")
                    } else {
                        cacheable(r, 0, "private")
                    }
                })
            }
            // The prompts capability is declared with an empty list (the caching scenario of
            // the conformance suite lists prompts of every server); there is nothing to get.
            "prompts/list" => Ok(cacheable(json!({"prompts": []}), STATIC_TTL_MS, "public")),
            "prompts/get" => Err((
                -32602,
                format!(
                    "Invalid params: unknown prompt {}; this server offers no prompts",
                    params.get("name").unwrap_or(&Value::Null)
                ),
            )),
                        "tasks/get" | "tasks/cancel" | "tasks/update" => {
                if !tasks_ext::declared(&envelope.capabilities) {
                    return error_reply(
                        Some(id),
                        RpcError {
                            code: -32021,
                            message: format!("Missing required client capability: {method} needs the {} extension in params._meta \"{META_CAPABILITIES}\".extensions", tasks_ext::EXTENSION),
                            data: Some(tasks_ext::required_capability()),
                        },
                    );
                }
                match catalog {
                    None => Err((-32603, self.no_catalog())),
                    Some(c) => match method {
                        "tasks/get" => tasks_ext::get(c, &params, run_summary()),
                        "tasks/cancel" => tasks_ext::cancel(c, &params),
                        _ => tasks_ext::update(c, &params),
                    },
                }
            }
            other => Err((
                -32601,
                format!(
                    "Method not found: {} (protocol {MODERN_VERSION}; initialize, ping and logging/setLevel belong to the 2025 era, sent without MCP-Protocol-Version {MODERN_VERSION})",
                    other.escape_debug()
                ),
            )),
        };
        match result {
            Ok(result) => Outcome::Reply(super::as_accepted(
                req,
                Reply::json(
                    200,
                    &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": result),
                ),
            )),
            Err(e) => error_reply(Some(id), e.into()),
        }
    }

    /// `run_task` / `cancel_run` on this path: a task for clients with the tasks extension
    /// (`run_task` unless `wait_seconds` is 0), else the 2025 behaviour (answer at once, or wait
    /// with progress on the request's own stream). None for every other tool.
    fn modern_run_tool(
        &self,
        req: &HttpRequest,
        id: &Value,
        params: &Value,
        envelope: &Envelope,
        sse: bool,
        catalog: Option<&Catalog>,
    ) -> Option<Outcome> {
        let tool = tools::find(params.get("name").and_then(Value::as_str)?)?;
        let answer = |result: Value| {
            Some(Outcome::Reply(super::as_accepted(
                req,
                Reply::json(
                    200,
                    &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": complete(result)),
                ),
            )))
        };
        let as_task = tool.name == "claudecron_run_task"
            && tasks_ext::declared(&envelope.capabilities)
            && params
                .pointer("/arguments/wait_seconds")
                .and_then(Value::as_i64)
                != Some(0);
        match self.start_run(tool, params, catalog)? {
            RunStart::Answer(result) => answer(result),
            RunStart::Started(call, catalog) => {
                if as_task
                    && !catalog
                        .run_status(call.run_id)
                        .is_some_and(|s| s.is_terminal())
                {
                    return match tasks_ext::created(catalog, call.run_id) {
                        Ok(task) => Some(Outcome::Reply(super::as_accepted(
                            req,
                            Reply::json(
                                200,
                                &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": task),
                            ),
                        ))),
                        Err(e) => answer(super::op_error(tool.name, &e)),
                    };
                }
                match self.run_wait(id, tool, params, call, catalog, sse) {
                    Ok(mut wait) => {
                        wait.modern = true;
                        wait.log_level = envelope.log_level;
                        Some(Outcome::WaitForRun(wait))
                    }
                    Err(result) => answer(result),
                }
            }
        }
    }
}

/// The summary line of a run view (the `get_run` tool's).
fn run_summary() -> fn(&Value) -> String {
    tools::find("claudecron_get_run")
        .map(|t| t.summary)
        .unwrap_or(|_| String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_sentinel_decodes() {
        assert_eq!(decode_header("plain").as_deref(), Some("plain"));
        assert_eq!(
            decode_header("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        assert_eq!(decode_header("=?base64?***?="), None);
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(status_for(-32020), 400);
        assert_eq!(status_for(-32021), 400);
        assert_eq!(status_for(-32022), 400);
        assert_eq!(status_for(-32601), 404);
        assert_eq!(status_for(-32603), 200);
    }
}
