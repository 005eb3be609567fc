//! The HTTP server, the MCP Streamable HTTP transport and the security guard, tested against the
//! real `claudecron serve` binary over real TCP (SPEC §2–4 and §8; reference/mcp-2025-11-25.md
//! §1–3, §6 and its decisions). Every test starts its own server with its own data directory.

mod common;

use common::{
    initialize_body, read_sse_event, wait_until, Auth, OpenResponse, Options, Req, Response, Server,
};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An error status with a JSON body (SPEC §2: every error body is JSON).
fn assert_json_error(resp: &Response, status: u16) -> Value {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error body must be JSON: {}",
        resp.describe()
    );
    resp.json()
}

/// A JSON-RPC error body with this code; returns the body.
fn assert_rpc_error(resp: &Response, status: u16, code: i64) -> Value {
    let body = assert_json_error(resp, status);
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], json!(code), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

fn ping_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})
}

fn tool_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Open the session's GET event stream.
fn open_stream(server: &Server, session: &str) -> OpenResponse {
    let resp = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "text/event-stream")
        .header("MCP-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .open(server.port)
        .expect("GET /mcp");
    assert_eq!(resp.status, 200, "GET /mcp: {:?}", resp.headers);
    resp
}

/// Read an event stream until the server ends it (terminating chunk or EOF). Keep-alive
/// comments are skipped. False when it is still open after the read timeout.
fn stream_ends(stream: &mut OpenResponse) -> bool {
    loop {
        match read_sse_event(stream) {
            Ok(_) => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints: /, /health, 404, 405

#[test]
fn root_is_json_without_secrets() {
    // No token configured: the server creates its token file; the token must not leak.
    let server = Server::start(Options::default().auth(Auth::TokenFile));
    let token = server.token().to_string();
    assert!(token.len() >= 32, "token file token: {token:?}");
    let resp = Req::get("/").send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(resp
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let body = resp.json();
    assert_eq!(body["name"], "claudecron");
    assert!(body["version"].as_str().is_some_and(|v| !v.is_empty()));
    let versions: Vec<&str> = body["protocolVersions"]
        .as_array()
        .expect("protocolVersions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(versions.contains(&"2025-11-25"), "{body}");
    assert_eq!(body["endpoints"]["mcp"], "/mcp", "{body}");
    assert_eq!(body["authRequired"], true, "{body}");
    assert!(!resp.text().contains(&token), "/ leaks the token");
}

#[test]
fn health_is_ok() {
    let server = Server::start_default();
    let resp = Req::get("/health").send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    let body = resp.json();
    assert_eq!(body["status"], "ok", "{body}");
    assert!(body["version"].is_string(), "{body}");
    assert!(body["uptime_seconds"].is_u64(), "{body}");
    // No token needed for /health.
    assert!(!resp.text().contains(server.token()));
}

#[test]
fn unknown_path_is_404_json() {
    let server = Server::start_default();
    for req in [
        Req::get("/nope"),
        Req::post("/mcp/extra").bearer(server.token()),
        Req::get("/hooks/x"),
    ] {
        let resp = req.send(server.port);
        assert_json_error(&resp, 404);
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = Server::start_default();
    for (method, path) in [
        ("POST", "/"),
        ("DELETE", "/"),
        ("POST", "/health"),
        ("PUT", "/health"),
        ("PUT", "/mcp"),
        ("PATCH", "/mcp"),
    ] {
        let resp = Req::new(method, path)
            .bearer(server.token())
            .header("Content-Type", "application/json")
            .body("{}")
            .send(server.port);
        assert_json_error(&resp, 405);
        let allow = resp
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
        assert!(allow.contains("GET"), "{method} {path}: Allow {allow}");
        assert!(
            !allow.contains(method),
            "{method} {path}: Allow lists the refused method: {allow}"
        );
        if path == "/mcp" {
            for m in ["GET", "POST", "DELETE"] {
                assert!(allow.contains(m), "Allow for /mcp: {allow}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle: initialize, negotiation, notifications

#[test]
fn initialize_creates_a_session_and_negotiates_the_version() {
    let server = Server::start_default();
    let mut ids = Vec::new();
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let resp = server.initialize_response(asked);
        assert_eq!(resp.status, 200, "{}", resp.describe());
        assert!(resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        let id = resp
            .header("mcp-session-id")
            .expect("MCP-Session-Id header")
            .to_string();
        assert!(id.len() >= 32, "session id too short: {id:?}");
        assert!(
            id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "session id must be visible ASCII: {id:?}"
        );
        let body = resp.json();
        assert_eq!(body["id"], 1);
        assert_eq!(body["result"]["protocolVersion"], answered, "asked {asked}");
        assert_eq!(body["result"]["serverInfo"]["name"], "claudecron");
        assert!(body["result"]["serverInfo"]["version"].is_string());
        assert!(
            body["result"]["capabilities"]["tools"].is_object(),
            "{body}"
        );
        assert!(
            body["result"]["capabilities"]["logging"].is_object(),
            "{body}"
        );
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "session ids must differ");
}

#[test]
fn initialized_notification_is_202_with_empty_body() {
    let server = Server::start_default();
    let resp = server.initialize_response("2025-11-25");
    let sid = resp.header("mcp-session-id").unwrap().to_string();
    for note in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}),
    ] {
        let resp = server.mcp(Some(&sid), &note).send(server.port);
        assert_eq!(resp.status, 202, "{note}: {}", resp.describe());
        assert!(
            resp.body.is_empty(),
            "202 must have no body: {}",
            resp.describe()
        );
    }
    // A JSON-RPC response from the client is also accepted with 202.
    let resp = server
        .mcp(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": "s1", "result": {}}),
        )
        .send(server.port);
    assert_eq!(resp.status, 202, "{}", resp.describe());
    assert!(resp.body.is_empty());
}

#[test]
fn second_initialize_on_a_session_is_refused() {
    let server = Server::start_default();
    let sid = server.session();
    let resp = server
        .mcp(Some(&sid), &initialize_body("2025-11-25"))
        .send(server.port);
    assert_rpc_error(&resp, 400, -32600);
}

// ---------------------------------------------------------------------------------------------
// Tools

const TOOLS: &[&str] = &[
    "claudecron_add_task",
    "claudecron_list_tasks",
    "claudecron_get_task",
    "claudecron_update_task",
    "claudecron_delete_task",
    "claudecron_toggle_task",
    "claudecron_get_history",
    "claudecron_get_run",
    "claudecron_preview_schedule",
    "claudecron_run_task",
    "claudecron_cancel_run",
    "claudecron_trigger_hook",
    "claudecron_pause_all",
    "claudecron_resume_all",
];

#[test]
fn tools_list_has_every_complete_tool() {
    let server = Server::start_default();
    let sid = server.session();
    let msg = server.rpc(&sid, "tools/list", json!({}));
    let tools = msg["result"]["tools"].as_array().expect("tools array");
    let mut names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort();
    let mut want = TOOLS.to_vec();
    want.sort();
    assert_eq!(names, want, "exactly the working tools are listed");
    for tool in tools {
        let name = tool["name"].as_str().unwrap();
        assert!(
            name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{name}"
        );
        assert!(
            tool["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let description = tool["description"].as_str().unwrap_or("");
        assert!(
            description.len() >= 40,
            "{name}: description {description:?}"
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}: inputSchema");
        assert_eq!(
            tool["outputSchema"]["type"], "object",
            "{name}: outputSchema"
        );
        let ann = &tool["annotations"];
        assert!(ann.is_object(), "{name}: annotations");
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(ann[hint].is_boolean(), "{name}: annotations.{hint}");
        }
    }
    let add = tools
        .iter()
        .find(|t| t["name"] == "claudecron_add_task")
        .unwrap();
    let required: Vec<&str> = add["inputSchema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(required.contains(&"name") && required.contains(&"type"));
    assert_eq!(
        add["inputSchema"]["properties"]["type"]["enum"],
        json!(["bash", "subagent"])
    );
    // Paging: a bogus cursor is an invalid-params error.
    let msg = server.rpc(&sid, "tools/list", json!({"cursor": "nope"}));
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
}

#[test]
fn add_task_accepts_the_seed_examples_exactly() {
    let server = Server::start_default();
    let sid = server.session();
    let examples = [
        r#"{"name":"daily-backup","type":"bash","schedule":"0 2 * * *","command":"/opt/scripts/backup.sh","timezone":"Europe/Moscow"}"#,
        r#"{"name":"weekly-code-review","type":"subagent","schedule":"0 9 * * 1","prompt":"Review all commits from last week in /project, summarize changes and potential issues","timezone":"UTC"}"#,
        r#"{"name":"config-watcher","type":"bash","trigger":{"type":"file-watch","path":"/etc/nginx/nginx.conf"},"command":"nginx -t && systemctl reload nginx"}"#,
    ];
    let mut ids = Vec::new();
    for example in examples {
        let args: Value = serde_json::from_str(example).unwrap();
        let result = server.call_tool(&sid, "claudecron_add_task", args.clone());
        assert_eq!(
            result["isError"],
            false,
            "{example} was refused: {}",
            tool_text(&result)
        );
        let task = &result["structuredContent"]["task"];
        let id = task["id"].as_str().unwrap_or("");
        assert!(!id.is_empty(), "structuredContent.task.id: {result}");
        assert_eq!(task["name"], args["name"]);
        assert!(!tool_text(&result).is_empty(), "a readable text block");
        ids.push(id.to_string());
    }
    let result = server.call_tool(&sid, "claudecron_list_tasks", json!({}));
    assert_eq!(result["isError"], false, "{}", tool_text(&result));
    assert_eq!(result["structuredContent"]["count"], 3, "{result}");
    // taskId takes the id or the exact name.
    let by_name = server.call_tool(
        &sid,
        "claudecron_get_task",
        json!({"taskId": "daily-backup"}),
    );
    assert_eq!(by_name["structuredContent"]["task"]["id"], json!(ids[0]));
}

#[test]
fn bad_arguments_are_tool_errors_naming_the_field() {
    let server = Server::start_default();
    let sid = server.session();
    let result = server.call_tool(
        &sid,
        "claudecron_add_task",
        json!({"name": "t1", "type": "bash", "schedule": "0 2 * * *", "command": "true", "timezone": "Europe/Moskow"}),
    );
    assert_eq!(result["isError"], true, "{result}");
    let text = tool_text(&result);
    assert!(text.contains("timezone"), "names the field: {text}");
    assert!(text.contains("Europe/Moscow"), "suggests the zone: {text}");

    let result = server.call_tool(
        &sid,
        "claudecron_add_task",
        json!({"name": "t2", "type": "python", "schedule": "0 2 * * *", "command": "true"}),
    );
    assert_eq!(result["isError"], true, "{result}");
    let text = tool_text(&result);
    assert!(text.contains("type"), "{text}");
    assert!(text.contains("bash") && text.contains("subagent"), "{text}");

    let result = server.call_tool(
        &sid,
        "claudecron_preview_schedule",
        json!({"schedule": "61 * * * *"}),
    );
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        tool_text(&result).contains("schedule"),
        "{}",
        tool_text(&result)
    );

    let result = server.call_tool(&sid, "claudecron_toggle_task", json!({"taskId": "x"}));
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        tool_text(&result).contains("enabled"),
        "{}",
        tool_text(&result)
    );

    // Nothing was created by the refused calls.
    let result = server.call_tool(&sid, "claudecron_list_tasks", json!({}));
    assert_eq!(result["structuredContent"]["count"], 0, "{result}");
}

#[test]
fn unknown_tool_is_invalid_params() {
    let server = Server::start_default();
    let sid = server.session();
    let msg = server.rpc(
        &sid,
        "tools/call",
        json!({"name": "claudecron_no_such_tool", "arguments": {}}),
    );
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
    assert!(msg.get("result").is_none());
    let msg = server.rpc(&sid, "tools/call", json!({"arguments": {}}));
    assert_eq!(msg["error"]["code"], -32602, "missing name: {msg}");
}

#[test]
fn ping_logging_and_unknown_methods() {
    let server = Server::start_default();
    let sid = server.session();
    let msg = server.rpc(&sid, "ping", json!({}));
    assert_eq!(msg["result"], json!({}), "{msg}");
    let msg = server.rpc(&sid, "prompts/list", json!({}));
    assert_eq!(msg["error"]["code"], -32601, "{msg}");
    let msg = server.rpc(&sid, "no/such/method", json!({}));
    assert_eq!(msg["error"]["code"], -32601, "{msg}");
    for level in ["debug", "info", "warning", "emergency"] {
        let msg = server.rpc(&sid, "logging/setLevel", json!({"level": level}));
        assert_eq!(msg["result"], json!({}), "{level}: {msg}");
    }
    let msg = server.rpc(&sid, "logging/setLevel", json!({"level": "loud"}));
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
    let msg = server.rpc(&sid, "logging/setLevel", json!({}));
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn session_id_is_required_and_must_be_known() {
    let server = Server::start_default();
    let resp = server.mcp(None, &ping_body()).send(server.port);
    assert_json_error(&resp, 400);
    let resp = server
        .mcp(Some("0123456789abcdef0123456789abcdef"), &ping_body())
        .send(server.port);
    assert_json_error(&resp, 404);
}

#[test]
fn a_session_answers_only_to_the_token_that_opened_it() {
    let (a, b) = (common::new_token(), common::new_token());
    let server = Server::start(Options::default().auth(Auth::Tokens(vec![a.clone(), b.clone()])));
    let sid = server.session(); // opened with token a
    let resp = server.mcp(Some(&sid), &ping_body()).send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    // Token b is valid...
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .bearer(&b)
        .send(server.port);
    assert_eq!(
        resp.status,
        200,
        "the second token is accepted: {}",
        resp.describe()
    );
    // ...but not for a's session.
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .bearer(&b)
        .send(server.port);
    assert_json_error(&resp, 404);
    let resp = Req::new("DELETE", "/mcp")
        .bearer(&b)
        .header("MCP-Session-Id", &sid)
        .send(server.port);
    assert_json_error(&resp, 404);
    // The session still works for a.
    let resp = server.mcp(Some(&sid), &ping_body()).send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
}

#[test]
fn delete_ends_the_session() {
    let server = Server::start_default();
    let sid = server.session();
    let mut stream = open_stream(&server, &sid);
    let resp = Req::new("DELETE", "/mcp")
        .bearer(server.token())
        .header("MCP-Session-Id", &sid)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send(server.port);
    assert!(
        (200..300).contains(&resp.status),
        "DELETE: {}",
        resp.describe()
    );
    assert!(stream_ends(&mut stream), "DELETE ends the session's stream");
    let resp = server.mcp(Some(&sid), &ping_body()).send(server.port);
    assert_json_error(&resp, 404);
    let resp = Req::new("DELETE", "/mcp")
        .bearer(server.token())
        .header("MCP-Session-Id", &sid)
        .send(server.port);
    assert_json_error(&resp, 404);
    let resp = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "text/event-stream")
        .header("MCP-Session-Id", &sid)
        .send(server.port);
    assert_json_error(&resp, 404);
}

#[test]
fn max_sessions_gives_a_clear_503() {
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_SESSIONS", "2"));
    let first = server.session();
    let _second = server.session();
    let resp = server.initialize_response("2025-11-25");
    let body = assert_json_error(&resp, 503);
    assert!(resp.header("mcp-session-id").is_none());
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("max_sessions"), "{body}");
    // Ending one makes room.
    let resp = Req::new("DELETE", "/mcp")
        .bearer(server.token())
        .header("MCP-Session-Id", &first)
        .send(server.port);
    assert!((200..300).contains(&resp.status), "{}", resp.describe());
    let resp = server.initialize_response("2025-11-25");
    assert_eq!(resp.status, 200, "{}", resp.describe());
}

// ---------------------------------------------------------------------------------------------
// Guard: auth, Origin, Host, rate limit

#[test]
fn bearer_token_is_required() {
    let server = Server::start_default();
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .without("Authorization")
        .send(server.port);
    assert_json_error(&resp, 401);
    let www = resp.header("www-authenticate").expect("WWW-Authenticate");
    assert!(www.starts_with("Bearer"), "{www}");
    assert!(!www.contains("resource_metadata"), "{www}");

    for bad in [
        "Bearer wrong-token-0000000000000000".to_string(),
        format!("Basic {}", server.token()),
        format!("Bearer {}x", server.token()),
        "Bearer".to_string(),
    ] {
        let resp = server
            .mcp(None, &initialize_body("2025-11-25"))
            .set("Authorization", &bad)
            .send(server.port);
        assert_json_error(&resp, 401);
        assert!(resp.header("www-authenticate").is_some());
    }
    // The token is checked on every request, not only on initialize.
    let sid = server.session();
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .without("Authorization")
        .send(server.port);
    assert_json_error(&resp, 401);
    // Case-insensitive scheme.
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("Authorization", &format!("bearer {}", server.token()))
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
}

#[test]
fn foreign_origin_and_host_are_403() {
    let server = Server::start_default();
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .header("Origin", "http://evil.example.com")
        .send(server.port);
    assert_json_error(&resp, 403);
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .set("Host", "evil.example.com")
        .send(server.port);
    assert_json_error(&resp, 403);
    // What conformance `dns-rebinding-protection` sends.
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .set("Host", "evil.example.com")
        .header("Origin", "http://evil.example.com")
        .send(server.port);
    assert_json_error(&resp, 403);
    let resp = Req::get("/")
        .set("Host", "evil.example.com")
        .send(server.port);
    assert_json_error(&resp, 403);
    // Loopback names are always allowed.
    for (host, origin) in [
        (
            server.host_header(),
            format!("http://{}", server.host_header()),
        ),
        (
            format!("localhost:{}", server.port),
            format!("http://localhost:{}", server.port),
        ),
    ] {
        let resp = server
            .mcp(None, &initialize_body("2025-11-25"))
            .set("Host", &host)
            .header("Origin", &origin)
            .send(server.port);
        assert_eq!(resp.status, 200, "{host} {origin}: {}", resp.describe());
    }
}

#[test]
fn allowed_origins_and_public_url_are_accepted() {
    let server = Server::start(
        Options::default()
            .env(
                "CLAUDECRON_ALLOWED_ORIGINS",
                "https://app.example.com,https://other.example.org",
            )
            .env("CLAUDECRON_PUBLIC_URL", "https://cron.example.net/cron"),
    );
    for origin in ["https://app.example.com", "https://other.example.org"] {
        let resp = server
            .mcp(None, &initialize_body("2025-11-25"))
            .header("Origin", origin)
            .send(server.port);
        assert_eq!(resp.status, 200, "{origin}: {}", resp.describe());
    }
    // Behind the proxy named by public_url: its Host and Origin.
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .set("Host", "cron.example.net")
        .header("Origin", "https://cron.example.net")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    // Same host, other scheme: not the allowed origin.
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .header("Origin", "http://app.example.com")
        .send(server.port);
    assert_json_error(&resp, 403);
}

#[test]
fn rate_limit_gives_429_with_retry_after() {
    let server = Server::start(Options::default().env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "5"));
    let sid = server.session(); // 2 requests
    for n in 3..=5 {
        let resp = server.mcp(Some(&sid), &ping_body()).send(server.port);
        assert_eq!(resp.status, 200, "request {n}: {}", resp.describe());
    }
    let resp = server.mcp(Some(&sid), &ping_body()).send(server.port);
    assert_json_error(&resp, 429);
    let retry: u64 = resp
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

#[test]
fn trust_proxy_gives_each_forwarded_client_its_own_bucket() {
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "2")
            .env("CLAUDECRON_TRUST_PROXY", "true"),
    );
    let ping_from = |ip: &str, header: &str| {
        server
            .mcp(None, &ping_body())
            .header(header, ip)
            .send(server.port)
            .status
    };
    // Without a session the answer is 400; what matters is 400 versus 429.
    assert_eq!(ping_from("203.0.113.1", "X-Real-IP"), 400);
    assert_eq!(ping_from("203.0.113.1", "X-Real-IP"), 400);
    assert_eq!(ping_from("203.0.113.1", "X-Real-IP"), 429);
    assert_eq!(
        ping_from("203.0.113.2", "X-Real-IP"),
        400,
        "separate bucket"
    );
    assert_eq!(
        ping_from("10.0.0.1, 203.0.113.3", "X-Forwarded-For"),
        400,
        "the proxy-appended X-Forwarded-For hop is the client"
    );
}

#[test]
fn without_trust_proxy_forwarding_headers_are_ignored() {
    let server = Server::start(Options::default().env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "2"));
    let ping_from = |ip: &str| {
        server
            .mcp(None, &ping_body())
            .header("X-Real-IP", ip)
            .header("X-Forwarded-For", ip)
            .send(server.port)
            .status
    };
    assert_eq!(ping_from("203.0.113.1"), 400);
    assert_eq!(ping_from("203.0.113.2"), 400);
    assert_eq!(
        ping_from("203.0.113.3"),
        429,
        "one bucket: the peer address"
    );
}

// ---------------------------------------------------------------------------------------------
// Transport rules: versions, framing, media types, sizes

#[test]
fn protocol_version_header_is_checked() {
    let server = Server::start_default();
    let sid = server.session();
    for version in ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        let resp = server
            .mcp(Some(&sid), &ping_body())
            .set("MCP-Protocol-Version", version)
            .send(server.port);
        assert_eq!(resp.status, 200, "{version}: {}", resp.describe());
    }
    // No header: allowed (the session's version is assumed).
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .without("MCP-Protocol-Version")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    // A version we do not speak: 400 -32022 naming the supported ones (2026-07-28 rules).
    for version in ["1999-01-01", "latest"] {
        let resp = server
            .mcp(Some(&sid), &ping_body())
            .set("MCP-Protocol-Version", version)
            .send(server.port);
        let body = assert_json_error(&resp, 400);
        assert_eq!(body["error"]["code"], -32022, "{body}");
        assert_eq!(body["error"]["data"]["requested"], version, "{body}");
        let supported = body["error"]["data"]["supported"].to_string();
        assert!(
            supported.contains("2026-07-28") && supported.contains("2025-11-25"),
            "lists supported: {body}"
        );
    }
    // 2026-07-28 has no ping: a legacy ping sent with that header lacks the envelope.
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("MCP-Protocol-Version", "2026-07-28")
        .send(server.port);
    let body = assert_json_error(&resp, 400);
    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[test]
fn batches_and_malformed_messages_are_refused() {
    let server = Server::start_default();
    let sid = server.session();
    let resp = server
        .mcp(Some(&sid), &json!([ping_body(), ping_body()]))
        .send(server.port);
    assert_rpc_error(&resp, 400, -32600);
    let resp = server
        .mcp(Some(&sid), &json!(null))
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")
        .send(server.port);
    let body = assert_rpc_error(&resp, 400, -32700);
    assert!(body["id"].is_null() && body.get("id").is_some(), "{body}");
    let resp = server
        .mcp(Some(&sid), &json!(null))
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send(server.port);
    assert_rpc_error(&resp, 400, -32700);
    for bad in [
        json!({"id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1}),
        json!("ping"),
    ] {
        let resp = server.mcp(Some(&sid), &bad).send(server.port);
        assert_rpc_error(&resp, 400, -32600);
    }
}

#[test]
fn content_type_and_accept_rules() {
    let server = Server::start_default();
    let sid = server.session();
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("Content-Type", "text/plain")
        .send(server.port);
    assert_json_error(&resp, 415);
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .without("Content-Type")
        .send(server.port);
    assert_json_error(&resp, 415);
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("Content-Type", "application/json; charset=utf-8")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());

    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("Accept", "text/html")
        .send(server.port);
    assert_json_error(&resp, 406);
    for accept in [
        Some("application/json"),
        Some("*/*"),
        Some("application/*"),
        None,
    ] {
        let mut req = server.mcp(Some(&sid), &ping_body()).without("Accept");
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let resp = req.send(server.port);
        assert_eq!(resp.status, 200, "Accept {accept:?}: {}", resp.describe());
        assert!(
            resp.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "Accept {accept:?}: {}",
            resp.describe()
        );
        assert_eq!(resp.json()["result"], json!({}));
    }
    // A client that takes only an event stream gets the answer as one SSE event, not JSON it
    // said it cannot read.
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .set("Accept", "text/event-stream")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        resp.describe()
    );
    assert!(
        resp.text().contains("event: message\n"),
        "{}",
        resp.describe()
    );
    assert_eq!(resp.json()["result"], json!({}));
    assert_eq!(resp.json()["id"], 7);
    let resp = server
        .mcp(None, &initialize_body("2025-11-25"))
        .set("Accept", "text/event-stream")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(resp.header("mcp-session-id").is_some());
    assert_eq!(resp.json()["result"]["protocolVersion"], "2025-11-25");
}

#[test]
fn bodies_over_max_body_bytes_are_413() {
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_BODY_BYTES", "2048"));
    let sid = server.session();
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4000)}});
    let resp = server.mcp(Some(&sid), &big).send(server.port);
    assert_json_error(&resp, 413);
    // Without Content-Length (chunked), the limit still holds.
    let resp = server.mcp(Some(&sid), &big).chunked().send(server.port);
    assert_json_error(&resp, 413);
    // Under the limit, chunked is fine.
    let resp = server
        .mcp(Some(&sid), &ping_body())
        .chunked()
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
}

// ---------------------------------------------------------------------------------------------
// Robustness: panic isolation

#[test]
fn a_panic_is_answered_500_and_the_server_keeps_serving() {
    let server = Server::start_default();
    let sid = server.session();
    // More panics than lanes: none of them may take a lane (or its catalog) down.
    for _ in 0..12 {
        let resp = server
            .mcp(Some(&sid), &ping_body())
            .header("X-Claudecron-Test-Panic", "1")
            .send(server.port);
        assert_rpc_error(&resp, 500, -32603);
    }
    let msg = server.rpc(&sid, "ping", json!({}));
    assert_eq!(msg["result"], json!({}));
    let result = server.call_tool(&sid, "claudecron_list_tasks", json!({}));
    assert_eq!(result["isError"], false);
    let resp = Req::get("/health").send(server.port);
    assert_eq!(resp.status, 200);
    let log = server.stop();
    assert!(log.contains("panic"), "the panic is logged: {log}");
}

// ---------------------------------------------------------------------------------------------
// The GET event stream

#[test]
fn get_opens_an_event_stream() {
    let server = Server::start_default();
    let sid = server.session();
    let stream = open_stream(&server, &sid);
    let ct = stream.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    // The session keeps working while its stream is open.
    let msg = server.rpc(&sid, "ping", json!({}));
    assert_eq!(msg["result"], json!({}));

    // One standalone stream per session: a second GET replaces the first, which is ended.
    let mut first = stream;
    let second = open_stream(&server, &sid);
    assert!(stream_ends(&mut first), "the older stream is ended");
    second.close();
}

#[test]
fn get_needs_a_session_and_an_acceptable_type() {
    let server = Server::start_default();
    let sid = server.session();
    let resp = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "text/event-stream")
        .send(server.port);
    assert_json_error(&resp, 400);
    let resp = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "application/json")
        .header("MCP-Session-Id", &sid)
        .send(server.port);
    assert_json_error(&resp, 406);
    let resp = Req::get("/mcp")
        .header("Accept", "text/event-stream")
        .header("MCP-Session-Id", &sid)
        .send(server.port);
    assert_json_error(&resp, 401);
}

#[test]
fn a_hundred_open_streams_do_not_starve_tools_call() {
    let server = Server::start_default();
    let sid = server.session();
    let call = || {
        let started = Instant::now();
        let result = server.call_tool(&sid, "claudecron_list_tasks", json!({}));
        assert_eq!(result["isError"], false);
        started.elapsed()
    };
    let baseline = call();
    // One stream per session (a session holds one standalone stream).
    let mut streams = Vec::new();
    for _ in 0..100 {
        let s = server.session();
        streams.push(open_stream(&server, &s));
    }
    let started = Instant::now();
    let handle = {
        let port = server.port;
        let req = server.mcp(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call",
                     "params": {"name": "claudecron_list_tasks", "arguments": {}}}),
        );
        std::thread::spawn(move || req.timeout(Duration::from_secs(5)).try_send(port))
    };
    let resp = handle
        .join()
        .unwrap()
        .expect("tools/call answered within 5 s with 100 streams open");
    let with_streams = started.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert_eq!(resp.json()["result"]["isError"], false);
    println!(
        "tools/call latency: {:.2} ms with no streams, {:.2} ms with 100 GET streams open",
        baseline.as_secs_f64() * 1000.0,
        with_streams.as_secs_f64() * 1000.0
    );
    assert!(with_streams < Duration::from_secs(5));
    // More requests than workers, all answered while the streams stay open.
    for _ in 0..20 {
        assert!(call() < Duration::from_secs(5));
    }
    let open = streams.iter().filter(|s| !s.ended_now()).count();
    assert_eq!(open, 100, "every stream is still open");
    let health = Req::get("/health").send(server.port).json();
    assert!(health["sessions"].as_u64().unwrap_or(0) >= 101, "{health}");
    for s in streams {
        s.close();
    }
}

// ---------------------------------------------------------------------------------------------
// auth = none, secrets in logs

#[test]
fn auth_none_is_accepted_on_loopback() {
    let server = Server::start(Options::default().auth(Auth::None));
    let root = Req::get("/").send(server.port).json();
    assert_eq!(root["authRequired"], false, "{root}");
    let sid = server.session(); // no Authorization header at all
    let msg = server.rpc(&sid, "tools/list", json!({}));
    assert_eq!(
        msg["result"]["tools"].as_array().map(Vec::len),
        Some(TOOLS.len())
    );
    let stream = open_stream(&server, &sid);
    stream.close();
}

#[test]
fn tokens_never_appear_in_the_log() {
    let token_file_server = Server::start(
        Options::default()
            .auth(Auth::TokenFile)
            .env("CLAUDECRON_LOG_LEVEL", "debug"),
    );
    let (a, b) = (common::new_token(), common::new_token());
    let env_server = Server::start(
        Options::default()
            .auth(Auth::Tokens(vec![a, b]))
            .env("CLAUDECRON_LOG_LEVEL", "debug"),
    );
    for server in [&token_file_server, &env_server] {
        let sid = server.session();
        server.rpc(&sid, "tools/list", json!({}));
        server.call_tool(
            &sid,
            "claudecron_add_task",
            json!({"name": "n", "type": "bash", "schedule": "@daily", "command": "true"}),
        );
        for token in &server.tokens {
            // Every token in a failing position too: another session, a bad header.
            server
                .mcp(Some(&sid), &ping_body())
                .bearer(token)
                .header("X-Claudecron-Test-Panic", "1")
                .send(server.port);
            Req::get("/mcp")
                .set("Authorization", &format!("Basic {token}"))
                .send(server.port);
        }
        server
            .mcp(None, &ping_body())
            .bearer("not-the-token-but-secret-looking-0001")
            .send(server.port);
    }
    for server in [token_file_server, env_server] {
        let tokens = server.tokens.clone();
        let log = server.stop();
        assert!(log.contains("listening on"), "{log}");
        assert!(log.contains("/mcp"), "requests are logged at debug: {log}");
        for token in tokens {
            assert!(!log.contains(&token), "a token appears in the log:\n{log}");
        }
        assert!(!log.contains("not-the-token-but-secret-looking-0001"));
    }
}

#[test]
fn idle_sessions_expire() {
    let server = Server::start(Options::default().env("CLAUDECRON_SESSION_TIMEOUT_SECS", "1"));
    let idle = server.session();
    let busy = server.session();
    // Expiry is about time passing: there is no event to wait for but the clock. `busy` is used
    // every 400 ms, so it never sits idle for the whole second.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        let resp = server.mcp(Some(&busy), &ping_body()).send(server.port);
        assert_eq!(
            resp.status,
            200,
            "a session in use stays: {}",
            resp.describe()
        );
    }
    let resp = server.mcp(Some(&idle), &ping_body()).send(server.port);
    assert_json_error(&resp, 404);
}

// ---------------------------------------------------------------------------------------------
// Misbehaving connections

/// A raw connection with the test's read timeout.
fn raw_connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
    s
}

/// Read one response head from a raw connection: the status code.
fn raw_status(s: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "no response head ({other:?}); got {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {text:?}"))
}

#[test]
fn stalled_uploads_do_not_hold_the_lanes() {
    let server = Server::start_default();
    let sid = server.session();
    // Twice as many clients as lanes start a body and stop sending (with a token: a
    // request without one is refused before its body is read, see below).
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut s = raw_connect(&server);
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nMCP-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
            server.host_header(),
            server.token()
        )
        .unwrap();
        // The server starts reading the body when it asks for it.
        assert_eq!(raw_status(&mut s), 100, "100 Continue");
        s.write_all(b"{\"jsonrpc\":").unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    let resp = server
        .mcp(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                     "params": {"name": "claudecron_list_tasks", "arguments": {}}}),
        )
        .timeout(Duration::from_secs(5))
        .try_send(server.port)
        .expect("tools/call answered while 16 uploads stall");
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(started.elapsed() < Duration::from_secs(5));
    let resp = Req::get("/health")
        .timeout(Duration::from_secs(5))
        .try_send(server.port)
        .expect("/health answered while 16 uploads stall");
    assert_eq!(resp.status, 200);
    // A stalled client that finally sends the rest is still answered.
    let mut last = stalled.pop().unwrap();
    let rest = format!("{:<4989}", "\"2.0\",\"id\":1,\"method\":\"ping\"}");
    last.write_all(rest.as_bytes()).unwrap();
    assert_eq!(
        raw_status(&mut last),
        200,
        "the ping is answered once its body is in"
    );
}

#[test]
fn a_huge_declared_content_length_is_refused_and_the_server_survives() {
    let server = Server::start_default();
    for length in ["100000000000000", "18446744073709551615"] {
        for _ in 0..10 {
            let mut s = raw_connect(&server);
            write!(
                s,
                "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"jsonrpc\"",
                server.host_header(),
                server.token()
            )
            .unwrap();
            let status = raw_status(&mut s);
            assert!(
                status == 413 || status == 400,
                "Content-Length {length}: {status}"
            );
        }
    }
    let resp = Req::get("/health")
        .timeout(Duration::from_secs(5))
        .try_send(server.port)
        .expect("the server is still up");
    assert_eq!(resp.status, 200);
}

#[test]
fn a_burst_of_keep_alive_connections_is_served() {
    let server = Server::start_default();
    let mut conns: Vec<TcpStream> = (0..50).map(|_| raw_connect(&server)).collect();
    for s in &mut conns {
        write!(
            s,
            "GET /health HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.host_header()
        )
        .unwrap();
    }
    // Every connection stays open (keep-alive) while the others wait for their answer.
    for s in &mut conns {
        assert_eq!(raw_status(s), 200);
    }
}

#[test]
fn idle_event_streams_get_keep_alive_comments() {
    let server = Server::start_default();
    let sid = server.session();
    let mut stream = open_stream(&server, &sid);
    // The server writes a comment on idle streams every 15 s; wait for it (bounded).
    stream
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let event = read_sse_event(&mut stream).expect("a keep-alive within 40 s");
    assert!(
        !event.is_empty() && event.iter().all(|l| l.starts_with(':')),
        "only comment lines: {event:?}"
    );
    // The stream is still usable afterwards and the session still answers.
    assert!(!stream.ended_now());
    let msg = server.rpc(&sid, "ping", json!({}));
    assert_eq!(msg["result"], json!({}));
}

// ---------------------------------------------------------------------------------------------
// The HTTP layer itself (vendored tiny_http): answers it gives on its own, connection reuse,
// threads and descriptors, memory

/// How long an answer tiny_http gives by itself may take: far more than it needs, far less than
/// a hang.
const PROMPT: Duration = Duration::from_secs(5);

/// One CRLF-terminated line of a raw response, without the CRLF.
fn raw_line(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "connection ended inside a line: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Read one whole response (Content-Length or chunked body) from a raw connection, leaving the
/// connection positioned at the next one.
fn raw_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let status_line = raw_line(r)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let line = raw_line(r)?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size = usize::from_str_radix(raw_line(r)?.trim(), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                raw_line(r)?;
                break;
            }
            let start = resp.body.len();
            resp.body.resize(start + size, 0);
            r.read_exact(&mut resp.body[start..])?;
            raw_line(r)?;
        }
    } else {
        let len: usize = resp
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body)?;
    }
    Ok(resp)
}

/// A raw connection with a buffered reader, answers expected within `PROMPT`.
fn raw_session(server: &Server) -> BufReader<TcpStream> {
    let s = raw_connect(server);
    s.set_read_timeout(Some(PROMPT)).unwrap();
    s.set_nodelay(true).unwrap();
    BufReader::new(s)
}

/// The server closed the connection: EOF (or a reset) with nothing more sent.
fn assert_closed(r: &mut BufReader<TcpStream>, what: &str) {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "{what}: more after the answer: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: the connection stayed open ({e})"),
    }
}

/// An error tiny_http answered by itself: this status, a JSON body in the shape of the server's
/// own errors, `Connection: close`.
fn assert_closing_json_error(resp: &Response, status: u16, what: &str) -> Value {
    let body = assert_json_error(resp, status);
    assert_eq!(body["status"], json!(status), "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(
        resp.header("connection").map(str::to_ascii_lowercase),
        Some("close".to_string()),
        "{what}: {}",
        resp.describe()
    );
    body
}

/// The server's thread and open-descriptor counts, from /proc.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .map(|d| d.count())
            .unwrap_or_else(|e| panic!("/proc/{pid}/{dir}: {e}"))
    };
    (count("task"), count("fd"))
}

/// The counts once they have held still for half a second (short-lived request threads gone).
fn settled_threads_and_fds(pid: u32) -> (usize, usize) {
    let mut last = threads_and_fds(pid);
    let mut same = 0;
    common::wait_until(
        "steady thread and descriptor counts",
        Duration::from_secs(20),
        || {
            let now = threads_and_fds(pid);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            (same >= 10).then_some(now)
        },
    )
}

#[test]
fn http2_and_http3_request_lines_get_505_and_leave_nothing_behind() {
    let server = Server::start_default();
    let pid = server.pid();
    let host = server.host_header();
    let baseline = settled_threads_and_fds(pid);
    for i in 0..50 {
        let version = if i % 2 == 0 { "HTTP/2.0" } else { "HTTP/3.0" };
        let mut r = raw_session(&server);
        write!(r.get_mut(), "GET /health {version}\r\nHost: {host}\r\n\r\n").unwrap();
        let resp = raw_response(&mut r).unwrap_or_else(|e| {
            panic!("request {i} ({version}): no answer within {PROMPT:?}: {e}")
        });
        let body = assert_closing_json_error(&resp, 505, version);
        assert!(body["error"].as_str().unwrap().contains(version), "{body}");
        assert_closed(&mut r, version);
    }
    // Every connection's thread and descriptors are released: the counts come back down (an
    // idle connection thread beyond the pool's four ends after 5 s).
    common::wait_until(
        &format!("threads and descriptors back to {baseline:?}"),
        Duration::from_secs(30),
        || {
            let now = threads_and_fds(pid);
            (now.0 <= baseline.0 && now.1 <= baseline.1).then_some(())
        },
    );
    // After an answered request on a kept-alive connection, too. (Not counted above: a request
    // that reaches a worker may have it open its database connection.)
    let mut r = raw_session(&server);
    write!(
        r.get_mut(),
        "GET /health HTTP/1.1\r\nHost: {host}\r\n\r\nGET /health HTTP/2.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    assert_eq!(raw_response(&mut r).expect("first answer").status, 200);
    let resp = raw_response(&mut r).expect("505 after a kept-alive request");
    assert_closing_json_error(&resp, 505, "pipelined HTTP/2.0");
    assert_closed(&mut r, "pipelined HTTP/2.0");
    let resp = Req::get("/health").timeout(PROMPT).send(server.port);
    assert_eq!(resp.status, 200);
}

#[test]
fn malformed_requests_get_json_errors_and_the_connection_is_closed() {
    let server = Server::start_default();
    let host = server.host_header();
    let h = format!("Host: {host}\r\n");
    let long = "a".repeat(9000);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("no HTTP version", format!("GET /\r\n{h}\r\n").into_bytes(), 400),
        ("unknown HTTP version", format!("GET / HTTP/1.7\r\n{h}\r\n").into_bytes(), 400),
        ("HTTP/0.9", format!("GET / HTTP/0.9\r\n{h}\r\n").into_bytes(), 505),
        (
            "non-ASCII request line",
            [&b"GET /caf\xc3\xa9 HTTP/1.1\r\n"[..], h.as_bytes(), b"\r\n"].concat(),
            400,
        ),
        (
            "non-UTF-8 header value",
            [&b"GET / HTTP/1.1\r\n"[..], h.as_bytes(), b"X-Name: \xff\xfe\r\n\r\n"].concat(),
            400,
        ),
        ("header without colon", format!("GET / HTTP/1.1\r\n{h}NoColonHere\r\n\r\n").into_bytes(), 400),
        ("space in header name", format!("GET / HTTP/1.1\r\n{h}Bad Name: x\r\n\r\n").into_bytes(), 400),
        (
            "Content-Length not a number (the body is a request)",
            format!("POST /mcp HTTP/1.1\r\n{h}Content-Length: abc\r\n\r\nGET /health HTTP/1.1\r\n{h}\r\n")
                .into_bytes(),
            400,
        ),
        (
            "two different Content-Lengths",
            format!("POST /mcp HTTP/1.1\r\n{h}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}").into_bytes(),
            400,
        ),
        (
            "Transfer-Encoding and Content-Length",
            format!("POST /mcp HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")
                .into_bytes(),
            400,
        ),
        (
            "a transfer coding other than chunked",
            format!("POST /mcp HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n").into_bytes(),
            501,
        ),
        (
            "chunked not last",
            format!("POST /mcp HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n").into_bytes(),
            400,
        ),
        ("unknown Expect", format!("GET / HTTP/1.1\r\n{h}Expect: telepathy\r\n\r\n").into_bytes(), 417),
        ("request line too long", format!("GET /{long} HTTP/1.1\r\n{h}\r\n").into_bytes(), 414),
        ("header line too long", format!("GET / HTTP/1.1\r\n{h}X-Long: {long}\r\n\r\n").into_bytes(), 431),
        ("too many headers", format!("GET / HTTP/1.1\r\n{h}{many}\r\n").into_bytes(), 431),
    ];
    for (what, bytes, status) in cases {
        let mut r = raw_session(&server);
        r.get_mut().write_all(&bytes).unwrap();
        let resp = raw_response(&mut r).unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        assert_closing_json_error(&resp, status, what);
        assert_closed(&mut r, what);
    }
    let resp = Req::get("/health").timeout(PROMPT).send(server.port);
    assert_eq!(resp.status, 200);
}

#[test]
fn head_lines_are_read_the_same_however_the_bytes_arrive() {
    let server = Server::start_default();
    let host = server.host_header();
    // A header line of exactly 8192 bytes is taken; one byte more is 431.
    for (extra, status) in [(0, 200), (1, 431)] {
        let line = format!("X-Long: {}", "a".repeat(8192 - "X-Long: ".len() + extra));
        let mut r = raw_session(&server);
        write!(
            r.get_mut(),
            "GET /health HTTP/1.1\r\nHost: {host}\r\n{line}\r\n\r\n"
        )
        .unwrap();
        let resp = raw_response(&mut r).expect("an answer");
        assert_eq!(resp.status, status, "a {}-byte header line", line.len());
    }
    // Two kept-alive requests written in pieces: a CR and its LF in separate writes, a line
    // across writes, a bare LF inside a header value (not a line end: the line is malformed).
    let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nX-A: 1\r\n\r\n");
    let bytes = format!("{head}{head}").into_bytes();
    let mut r = raw_session(&server);
    let mut cuts: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\r')
        .map(|(i, _)| i + 1)
        .collect();
    cuts.extend([3, 7, 20]);
    cuts.sort_unstable();
    cuts.dedup();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        r.get_mut().write_all(&bytes[from..cut]).unwrap();
        r.get_mut().flush().unwrap();
        from = cut;
    }
    for n in 1..=2 {
        let resp = raw_response(&mut r).unwrap_or_else(|e| panic!("answer {n}: {e}"));
        assert_eq!(resp.status, 200, "answer {n}");
    }
    let mut r = raw_session(&server);
    write!(
        r.get_mut(),
        "GET /health HTTP/1.1\r\nHost: {host}\r\nX-A: 1\nX-B: 2\r\n\r\n"
    )
    .unwrap();
    let resp = raw_response(&mut r).expect("an answer");
    assert_eq!(
        resp.status, 200,
        "a bare LF inside a header value stays in the value"
    );
}

/// A `/proc/PID/status` value in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// The head of a chunked POST /mcp on a session.
fn chunked_mcp_head(server: &Server, sid: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.host_header(),
        server.token()
    )
}

#[test]
fn an_unread_chunked_body_is_skipped_never_read_as_a_request() {
    let server = Server::start(Options::default().env("CLAUDECRON_MAX_BODY_BYTES", "2048"));
    let sid = server.session();
    let host = server.host_header();
    // The server reads one byte more than max_body_bytes, answers 413 and leaves the rest of the
    // body unread. That rest holds a complete request: it must never be taken for one. The
    // refused body is abandoned, so the connection is closed after the answer: neither
    // /smuggled nor the request after it is answered on this connection.
    let mut data = vec![b'x'; 2049];
    data.extend_from_slice(format!("GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    data.extend_from_slice(&[b'y'; 500]);
    let mut request = chunked_mcp_head(&server, &sid).into_bytes();
    request.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    request.extend_from_slice(&data);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    request.extend_from_slice(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    let mut r = raw_session(&server);
    r.get_mut().write_all(&request).unwrap();
    let resp = raw_response(&mut r).expect("the too-large body is answered");
    assert_json_error(&resp, 413);
    assert_closed(&mut r, "after a refused chunked body");
    let resp = Req::get("/health").timeout(PROMPT).send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());

    // Broken chunk framing: where the body ends is unknown, so nothing after it is taken for a
    // request; the connection is closed after the answer.
    let mut request = chunked_mcp_head(&server, &sid).into_bytes();
    request.extend_from_slice(
        format!("zz\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    let mut r = raw_session(&server);
    r.get_mut().write_all(&request).unwrap();
    let resp = raw_response(&mut r).expect("the broken body is answered");
    assert_ne!(resp.status, 404, "{}", resp.describe());
    assert_closed(&mut r, "after a broken chunked body");
}

#[test]
fn refused_ten_megabyte_bodies_are_never_buffered() {
    let server = Server::start_default();
    let sid = server.session();
    let host = server.host_header();
    let piece = vec![b'x'; 64 * 1024];
    let pieces = 160; // 10 MiB
                      // Three with Content-Length, one chunked, each on its own connection: a refused body is
                      // abandoned and its connection closed, so the client's writes may fail part-way.
    for chunked in [false, false, false, true] {
        let mut r = raw_session(&server);
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", piece.len() * pieces)
        };
        write!(
            r.get_mut(),
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n{framing}\r\n\r\n",
            server.token()
        )
        .unwrap();
        if !chunked {
            // Too large by its declared length: answered before any of it is sent.
            let resp = raw_response(&mut r).expect("the 10 MiB body is answered at once");
            assert_json_error(&resp, 413);
        }
        let mut sent = 0;
        for _ in 0..pieces {
            let mut write = || -> std::io::Result<()> {
                if chunked {
                    write!(r.get_mut(), "{:x}\r\n", piece.len())?;
                }
                r.get_mut().write_all(&piece)?;
                if chunked {
                    r.get_mut().write_all(b"\r\n")?;
                }
                Ok(())
            };
            if write().is_err() {
                break; // the server closed the connection
            }
            sent += 1;
        }
        if chunked {
            assert!(
                sent < pieces,
                "the server stopped taking the chunked body part-way"
            );
        }
    }
    let resp = Req::get("/health").timeout(PROMPT).send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    // Peak resident memory (not just the current one): 40 MiB of bodies came, none was held.
    let peak = status_kib(server.pid(), "VmHWM");
    assert!(peak < 40 * 1024, "peak RSS {peak} KiB");
    assert!(status_kib(server.pid(), "VmRSS") < 40 * 1024);
}

#[test]
fn a_refused_body_the_client_holds_back_is_never_waited_for() {
    // `Expect: 100-continue`: the client sends the body only once told to. A body refused
    // before that (413) is not read at all: no waiting for 10 MiB that may never come, and the
    // connection is closed after the answer (the body may still be on its way).
    let server = Server::start_default();
    let sid = server.session();
    let mut r = raw_session(&server);
    write!(
        r.get_mut(),
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        server.host_header(),
        server.token(),
        10 * 1024 * 1024
    )
    .unwrap();
    let resp = raw_response(&mut r).expect("413 without asking for the body");
    assert_json_error(&resp, 413);
    assert_closed(&mut r, "after refusing a held-back body");
    let resp = Req::get("/health").timeout(PROMPT).send(server.port);
    assert_eq!(resp.status, 200);
}

/// The soft `RLIMIT_NPROC` of process `pid`, which runs as user and group `owner`: set to `soft`
/// when given; returns the old value.
///
/// prlimit(2) on another process needs the caller's real ids to be the target's (or
/// CAP_SYS_RESOURCE, which a container's root may lack), so a short-lived thread takes the
/// owner's real ids first, with raw syscalls that change that thread only (glibc's wrappers
/// would change every thread of the test process). Its effective ids stay as they are.
fn nproc_limit(pid: u32, owner: u32, soft: Option<libc::rlim_t>) -> libc::rlim_t {
    std::thread::spawn(move || {
        // SAFETY: getuid(2) has no preconditions.
        if unsafe { libc::getuid() } != owner {
            let keep = libc::c_long::from(-1i32);
            // SAFETY: setresgid/setresuid on the calling thread only, real ids only.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_setresgid, libc::c_long::from(owner), keep, keep),
                    0
                );
                assert_eq!(
                    libc::syscall(libc::SYS_setresuid, libc::c_long::from(owner), keep, keep),
                    0
                );
            }
        }
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit(2) with no new limit and a valid out-pointer.
        let rc = unsafe {
            libc::prlimit(
                pid as libc::pid_t,
                libc::RLIMIT_NPROC,
                std::ptr::null(),
                &mut old,
            )
        };
        assert_eq!(rc, 0, "prlimit read: {}", std::io::Error::last_os_error());
        if let Some(soft) = soft {
            let new = libc::rlimit {
                rlim_cur: soft,
                rlim_max: old.rlim_max,
            };
            // SAFETY: prlimit(2) with a valid new limit.
            let rc = unsafe {
                libc::prlimit(
                    pid as libc::pid_t,
                    libc::RLIMIT_NPROC,
                    &new,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(rc, 0, "prlimit set: {}", std::io::Error::last_os_error());
        }
        old.rlim_cur
    })
    .join()
    .expect("the prlimit thread")
}

#[test]
fn a_thread_that_cannot_start_is_answered_and_accepting_goes_on() {
    // RLIMIT_NPROC = 1 makes every new thread of the server fail to start. Root is exempt from
    // that limit, so when the tests run as root the server runs as nobody.
    let data = common::TempDir::new("cc-http-nproc");
    let mut options = Options::default();
    // SAFETY: getuid(2) has no preconditions.
    let mut owner = unsafe { libc::getuid() };
    if owner == 0 {
        const NOBODY: u32 = 65534;
        let path = std::ffi::CString::new(data.path().to_str().unwrap()).unwrap();
        // SAFETY: chown(2) on a NUL-terminated path we created.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), NOBODY, NOBODY) }, 0);
        options = options.uid(NOBODY);
        owner = NOBODY;
    }
    let server = Server::start_in(options, data);
    let host = server.host_header();
    let old = nproc_limit(server.pid(), owner, Some(1));
    // Each connection stays open (keep-alive) and so keeps its connection thread: the first go
    // to tiny_http's idle threads and are served by a request thread that already exists (200)
    // or answered 503 when none is free and none can start; the rest need a new connection
    // thread, which cannot start (503 from tiny_http).
    let mut conns = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..12 {
        let mut r = raw_session(&server);
        // A connection no thread can serve is answered (503) and closed at once, perhaps before
        // the request is sent: the write may fail, the answer is there to read.
        let _ = write!(r.get_mut(), "GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let resp = raw_response(&mut r)
            .unwrap_or_else(|e| panic!("connection {i} got no answer within {PROMPT:?}: {e}"));
        assert!(
            resp.status == 200 || resp.status == 503,
            "connection {i}: {}",
            resp.describe()
        );
        if resp.status == 503 {
            let body = assert_json_error(&resp, resp.status);
            assert_eq!(body["status"], json!(resp.status), "{body}");
        }
        statuses.push(resp.status);
        conns.push(r);
    }
    assert!(
        statuses.contains(&503),
        "connections beyond the idle threads are answered 503: {statuses:?}"
    );
    // Threads can start again: the server still accepts and answers.
    nproc_limit(server.pid(), owner, Some(old));
    let resp = Req::get("/health")
        .timeout(PROMPT)
        .try_send(server.port)
        .expect("the server accepts again once threads can start");
    assert_eq!(resp.status, 200, "{}", resp.describe());
    drop(conns);
    let log = server.stop();
    assert!(
        log.contains("Cannot start a thread for a new client"),
        "the failure is logged: {log}"
    );
}

#[test]
fn large_answers_on_a_kept_alive_connection_are_not_delayed() {
    // An answer written in two parts (head, then body) waited for the client's delayed ACK
    // (Nagle's algorithm): ~40 ms on every round trip, without fail. A debug build answers
    // tools/list in a few ms even on a busy host, so the median of 20 round trips under 20 ms
    // tells the two apart without depending on fine timing.
    let server = Server::start_default();
    let sid = server.session();
    let mut r = raw_session(&server);
    let mut times = Vec::new();
    for id in 1..=20 {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string();
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n\r\n{body}",
            server.host_header(),
            server.token(),
            body.len()
        );
        let started = Instant::now();
        r.get_mut().write_all(request.as_bytes()).unwrap();
        let resp = raw_response(&mut r).expect("tools/list answered on the kept-alive connection");
        times.push(started.elapsed());
        assert_eq!(resp.status, 200, "{}", resp.describe());
        assert!(
            resp.body.len() > 2048,
            "a large answer: {} bytes",
            resp.body.len()
        );
        assert_eq!(resp.json()["id"], json!(id));
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median round trip {median:?} (sorted: {times:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// Slow and greedy clients: the head decides before the body is read; deadlines; per-address cap

#[test]
fn a_request_without_a_valid_token_is_refused_before_its_body_arrives() {
    let server = Server::start_default();
    let host = server.host_header();
    for (what, auth) in [
        ("no token", String::new()),
        (
            "wrong token",
            "Authorization: Bearer not-the-token-0123456789\r\n".to_string(),
        ),
    ] {
        let mut r = raw_session(&server);
        // Announce a body and never send it, as a trickling attacker would.
        write!(
            r.get_mut(),
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
        )
        .unwrap();
        let started = Instant::now();
        let resp = raw_response(&mut r)
            .unwrap_or_else(|e| panic!("{what}: no answer before the body came: {e}"));
        assert_eq!(resp.status, 401, "{what}: {}", resp.describe());
        assert!(started.elapsed() < PROMPT, "{what}: answered at once");
        assert_closed(&mut r, what);
    }
    // The same for /hooks, and for a Host that is not allowed.
    let mut r = raw_session(&server);
    write!(
        r.get_mut(),
        "POST /hooks HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5000\r\n\r\n"
    )
    .unwrap();
    assert_eq!(raw_response(&mut r).expect("hooks answer").status, 401);
    assert_closed(&mut r, "/hooks without a token");
    let mut r = raw_session(&server);
    write!(
        r.get_mut(),
        "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {}\r\nContent-Length: 5000\r\n\r\n",
        server.token()
    )
    .unwrap();
    assert_eq!(raw_response(&mut r).expect("host answer").status, 403);
    assert_closed(&mut r, "a foreign Host");
}

#[test]
fn a_trickled_head_or_body_gets_408_within_its_deadline() {
    let server = Server::start_default();
    let host = server.host_header();
    // The head: one byte every 2 s (each read well inside the socket timeout) — the whole head
    // must still arrive within 10 s.
    let mut head = raw_session(&server);
    let trickle = std::thread::spawn(move || {
        let started = Instant::now();
        for b in format!("GET /health HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").bytes() {
            if head.get_mut().write_all(&[b]).is_err()
                || started.elapsed() > Duration::from_secs(40)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        let resp = raw_response(&mut head);
        (resp, started.elapsed())
    });
    // The body: the head (with a valid token) at once, then the body one byte per second.
    let mut body = raw_session(&server);
    let host = server.host_header();
    write!(
        body.get_mut(),
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 1000\r\n\r\n",
        server.token()
    )
    .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(40) && sent < 1000 {
        if body.get_mut().write_all(b" ").is_err() {
            break;
        }
        sent += 1;
        // Stop trickling once an answer is waiting.
        body.get_ref().set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let answered = matches!(body.get_ref().peek(&mut peek), Ok(n) if n > 0);
        body.get_ref().set_nonblocking(false).unwrap();
        if answered {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    let resp = raw_response(&mut body).expect("an answer to the trickled body");
    assert_eq!(resp.status, 408, "{}", resp.describe());
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "the body deadline (20 s) held: {:?}",
        started.elapsed()
    );
    let (resp, took) = trickle.join().unwrap();
    let resp = resp.expect("an answer to the trickled head");
    assert_eq!(resp.status, 408, "{}", resp.describe());
    assert!(
        took < Duration::from_secs(25),
        "the head deadline (10 s) held: {took:?}"
    );
    // Meanwhile and after, everyone else is served.
    assert_eq!(
        Req::get("/health").timeout(PROMPT).send(server.port).status,
        200
    );
}

#[test]
fn one_address_cannot_take_every_connection() {
    let server = Server::start_default();
    // 256 idle connections from one address are allowed (tiny_http holds a thread for each)…
    let mut held = Vec::new();
    for _ in 0..256 {
        held.push(raw_connect(&server));
    }
    // …the next is answered 503 (JSON) and closed at once.
    let mut r = raw_session(&server);
    let resp = raw_response(&mut r).expect("an answer to the 257th connection");
    let body = assert_closing_json_error(&resp, 503, "the 257th connection");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("too many connections"),
        "{body}"
    );
    drop(held);
    // Once they are closed the address is served again.
    common::wait_until(
        "a new connection is served",
        Duration::from_secs(30),
        || {
            let resp = Req::get("/health")
                .timeout(PROMPT)
                .try_send(server.port)
                .ok()?;
            (resp.status == 200).then_some(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// What a client without a token can make the server do (security review, 2026-11-28)

/// A path that takes no body is answered at once, its body never read: no client can make the
/// server hold a body (up to max_body_bytes each) for a path that takes none.
#[test]
fn a_body_sent_to_a_path_that_takes_none_is_never_read() {
    let server = Server::start_default();
    for (request_line, status) in [
        ("POST /no-such-path HTTP/1.1", 404),
        ("POST /health HTTP/1.1", 405),
        ("POST /status/login HTTP/1.1", 403),
    ] {
        let mut s = raw_connect(&server);
        write!(
            s,
            "{request_line}\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n",
            server.host_header()
        )
        .unwrap();
        // Not one byte of the declared megabyte is sent: the answer must not wait for it.
        let started = Instant::now();
        let got = raw_status(&mut s);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{request_line}: answered only after {:?}",
            started.elapsed()
        );
        // /status/login takes a small form; a megabyte is refused (413) or, without an
        // Origin, the form is refused first (403). Either way the body is not waited for.
        if request_line.contains("login") {
            assert!(got == 403 || got == 413, "{request_line}: {got}");
        } else {
            assert_eq!(got, status, "{request_line}");
        }
    }
}

/// Every bearer token presented to the status page counts against the client's rate, as on
/// `/mcp`: the page cannot be used to try tokens without limit.
#[test]
fn bearer_guesses_on_the_status_page_are_rate_limited() {
    let server = Server::start(Options::default().env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "5"));
    let statuses: Vec<u16> = (0..12)
        .map(|_| {
            Req::get("/status")
                .bearer("not-the-token-not-the-token-000")
                .send(server.port)
                .status
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// A control character in a request line cannot forge or hide a line of the server's log.
#[test]
fn control_characters_in_a_request_line_are_escaped_in_the_log() {
    let server = Server::start_default();
    let mut s = raw_connect(&server);
    write!(
        s,
        "GET /z\r10.9.9.9\tPOST\t/mcp HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.host_header()
    )
    .unwrap();
    let _ = raw_status(&mut s);
    let log = wait_until("the request logged", Duration::from_secs(10), || {
        let text = server.stderr();
        text.contains("10.9.9.9").then_some(text)
    });
    assert!(!log.contains("/z\r10.9.9.9"), "a raw CR in the log");
    assert!(log.contains("/z\\r10.9.9.9\\tPOST"), "{log}");
}
