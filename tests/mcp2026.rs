//! MCP 2026-07-28 against the real binary: dual-era routing, `server/discover`, the per-request
//! envelope and header checks with their exact error codes and statuses, the tasks extension
//! (`run_task` as a task backed by the run: working → completed, `tasks/cancel` ends the process
//! group, a restart keeps the task answerable), run logs as resources, progress and log
//! messages on the request's own stream, and the 2025 path beside it.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const V: &str = "2026-07-28";
const TASKS: &str = "io.modelcontextprotocol/tasks";

fn meta(tasks: bool) -> Value {
    let caps = if tasks {
        json!({"extensions": {TASKS: {}}})
    } else {
        json!({})
    };
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "mcp2026-test", "version": "1"},
    })
}

/// A 2026-07-28 POST with the headers a conforming client sends (`Mcp-Name` from `name`).
fn modern_req(server: &Server, method: &str, mut params: Value, name: Option<&str>) -> Req {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(true);
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = server
        .mcp(None, &body)
        .header("MCP-Protocol-Version", V)
        .header("Mcp-Method", method);
    if let Some(n) = name {
        req = req.header("Mcp-Name", n);
    }
    req
}

/// Send and return (status, JSON body).
fn send(server: &Server, req: Req) -> (u16, Value) {
    let resp = req.send(server.port);
    (resp.status, resp.json())
}

fn ok_result(server: &Server, method: &str, params: Value, name: Option<&str>) -> Value {
    let (status, body) = send(server, modern_req(server, method, params, name));
    assert_eq!(status, 200, "{method}: {body}");
    assert!(body.get("error").is_none(), "{method}: {body}");
    body["result"].clone()
}

fn error_of(server: &Server, req: Req, status: u16, code: i64) -> Value {
    let (got, body) = send(server, req);
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

fn call(server: &Server, tool: &str, args: Value, tasks: bool) -> Value {
    ok_result(
        server,
        "tools/call",
        json!({"name": tool, "arguments": args, "_meta": meta(tasks)}),
        Some(tool),
    )
}

fn add_manual(server: &Server, name: &str, command: &str) {
    let r = call(
        server,
        "claudecron_add_task",
        json!({"name": name, "type": "bash", "trigger": {"type": "manual"}, "command": command}),
        false,
    );
    assert_eq!(r["isError"], false, "{r}");
}

fn task_get(server: &Server, task_id: &str) -> Value {
    ok_result(
        server,
        "tasks/get",
        json!({"taskId": task_id}),
        Some(task_id),
    )
}

/// The JSON of an SSE event's `data:` lines (Null for a comment-only event).
fn event_data(event: &[String]) -> Value {
    let data: Vec<&str> = event
        .iter()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null)
}

#[test]
fn discover_answers_natively_and_both_eras_serve_side_by_side() {
    let server = Server::start_default();
    let d = ok_result(&server, "server/discover", json!({}), None);
    assert_eq!(d["resultType"], "complete", "{d}");
    assert_eq!(d["supportedVersions"][0], V, "{d}");
    assert!(d["supportedVersions"].to_string().contains("2025-11-25"));
    assert!(d["ttlMs"].is_u64() && d["cacheScope"] == "public", "{d}");
    assert!(d["capabilities"]["tools"].is_object(), "{d}");
    assert!(d["capabilities"]["extensions"][TASKS].is_object(), "{d}");
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "claudecron"
    );
    let list = ok_result(&server, "tools/list", json!({}), None);
    assert_eq!(list["resultType"], "complete");
    assert!(list["ttlMs"].is_u64() && list["cacheScope"].is_string());
    assert_eq!(list["tools"].as_array().map(Vec::len), Some(14), "{list}");
    // No session is made or echoed; a stray Mcp-Session-Id is ignored.
    let resp = modern_req(&server, "tools/list", json!({}), None)
        .header("MCP-Session-Id", "not-a-session")
        .send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(resp.header("mcp-session-id").is_none());
    // The 2025 path still works on the same server.
    let sid = server.session();
    let tools = server.rpc(&sid, "tools/list", json!({}));
    assert!(tools["result"].get("resultType").is_none(), "{tools}");
    assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(14));
}

#[test]
fn the_envelope_and_headers_are_checked_with_the_spec_codes() {
    let server = Server::start_default();
    // No _meta: -32602 / 400.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let bare = server
        .mcp(None, &body)
        .header("MCP-Protocol-Version", V)
        .header("Mcp-Method", "tools/list");
    error_of(&server, bare, 400, -32602);
    // Missing or wrong Mcp-Method: -32020 / 400.
    error_of(
        &server,
        modern_req(&server, "tools/list", json!({}), None).without("Mcp-Method"),
        400,
        -32020,
    );
    error_of(
        &server,
        modern_req(&server, "tools/list", json!({}), None).set("Mcp-Method", "tools/call"),
        400,
        -32020,
    );
    // Header version differs from _meta: -32020.
    let mut p = json!({"_meta": meta(false)});
    p["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    error_of(
        &server,
        modern_req(&server, "tools/list", p, None),
        400,
        -32020,
    );
    // Unknown version in both: -32022 with supported/requested.
    let mut p = json!({"_meta": meta(false)});
    p["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    let e = error_of(
        &server,
        modern_req(&server, "tools/list", p, None).set("MCP-Protocol-Version", "2099-01-01"),
        400,
        -32022,
    );
    assert_eq!(e["error"]["data"]["requested"], "2099-01-01", "{e}");
    assert_eq!(e["error"]["data"]["supported"][0], V, "{e}");
    // Mcp-Name: required for tools/call, must match, base64 sentinel decoded.
    let args = json!({"name": "claudecron_list_tasks", "arguments": {}});
    error_of(
        &server,
        modern_req(&server, "tools/call", args.clone(), None),
        400,
        -32020,
    );
    error_of(
        &server,
        modern_req(
            &server,
            "tools/call",
            args.clone(),
            Some("claudecron_get_task"),
        ),
        400,
        -32020,
    );
    let (status, body) = send(
        &server,
        modern_req(
            &server,
            "tools/call",
            args,
            // base64("claudecron_list_tasks")
            Some("=?base64?Y2xhdWRlY3Jvbl9saXN0X3Rhc2tz?="),
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    // Removed and unknown methods: 404 -32601.
    for method in ["initialize", "ping", "logging/setLevel", "no/such"] {
        error_of(
            &server,
            modern_req(&server, method, json!({}), None),
            404,
            -32601,
        );
    }
    // An unknown tool: -32602.
    error_of(
        &server,
        modern_req(
            &server,
            "tools/call",
            json!({"name": "nope", "arguments": {}}),
            Some("nope"),
        ),
        400,
        -32602,
    );
    // GET and DELETE belong to 2025 sessions.
    let get = Req::get("/mcp")
        .bearer(server.token())
        .header("Accept", "text/event-stream")
        .header("MCP-Protocol-Version", V)
        .send(server.port);
    assert_eq!(get.status, 405, "{}", get.describe());
    assert_eq!(get.header("allow"), Some("POST"));
    // A notification: 202.
    let note = server
        .mcp(
            None,
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}),
        )
        .header("MCP-Protocol-Version", V)
        .send(server.port);
    assert_eq!(note.status, 202, "{}", note.describe());
}

#[test]
fn run_task_becomes_a_task_backed_by_the_run() {
    let server = Server::start_default();
    add_manual(&server, "slowish", "echo start; sleep 3; echo done");
    let created = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "slowish"}),
        true,
    );
    assert_eq!(created["resultType"], "task", "{created}");
    assert_eq!(created["status"], "working", "{created}");
    assert!(created["pollIntervalMs"].is_u64() && created["createdAt"].is_string());
    let task_id = created["taskId"].as_str().expect("taskId").to_string();
    let first = task_get(&server, &task_id);
    assert_eq!(first["resultType"], "complete", "{first}");
    assert!(first["status"] == "working" || first["status"] == "completed");
    let done = wait_until("the task completes", Duration::from_secs(60), || {
        let t = task_get(&server, &task_id);
        (t["status"] == "completed").then_some(t)
    });
    let result = &done["result"];
    assert_eq!(result["isError"], false, "{done}");
    assert_eq!(result["structuredContent"]["run"]["status"], "success");
    assert!(result["structuredContent"]["run"]["output"]
        .as_str()
        .is_some_and(|o| o.contains("start") && o.contains("done")));
    let link = &result["content"][1];
    assert_eq!(link["type"], "resource_link", "{result}");
    assert_eq!(link["uri"], format!("claudecron://runs/{task_id}"));
    // Without the extension: today's inline answer (the run id at once).
    let inline = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "slowish"}),
        false,
    );
    assert_eq!(inline["resultType"], "complete", "{inline}");
    assert!(
        inline["structuredContent"]["run"]["id"].is_i64(),
        "{inline}"
    );
    // wait_seconds 0 opts out of a task.
    let now = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "slowish", "wait_seconds": 0}),
        true,
    );
    assert_eq!(now["resultType"], "complete", "{now}");
    // tasks/* without the extension: -32021 naming it; unknown ids: -32602; Mcp-Name mismatch.
    let e = error_of(
        &server,
        modern_req(
            &server,
            "tasks/get",
            json!({"taskId": task_id, "_meta": meta(false)}),
            Some(&task_id),
        ),
        400,
        -32021,
    );
    assert!(e["error"]["data"]["requiredCapabilities"]["extensions"][TASKS].is_object());
    for bad in ["999999", "abc", "-1"] {
        error_of(
            &server,
            modern_req(&server, "tasks/get", json!({"taskId": bad}), None),
            400,
            -32602,
        );
    }
    error_of(
        &server,
        modern_req(
            &server,
            "tasks/get",
            json!({"taskId": task_id}),
            Some("7777"),
        ),
        400,
        -32020,
    );
}

#[test]
fn tasks_cancel_ends_the_process_group() {
    let server = Server::start_default();
    add_manual(&server, "long", "echo pid=$$; sleep 300 & wait");
    let created = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "long"}),
        true,
    );
    let task_id = created["taskId"].as_str().expect("taskId").to_string();
    let run_id: i64 = task_id.parse().expect("numeric task id");
    let mcp = Mcp::new(&server);
    let pgid = wait_until("the run prints its pid", Duration::from_secs(30), || {
        mcp.output(run_id)
            .lines()
            .find_map(|l| l.strip_prefix("pid="))
            .and_then(|p| p.trim().parse::<i32>().ok())
    });
    assert!(live_group_members(pgid).len() >= 2, "shell and sleep alive");
    let ack = ok_result(
        &server,
        "tasks/cancel",
        json!({"taskId": task_id}),
        Some(&task_id),
    );
    assert_eq!(ack, json!({"resultType": "complete"}));
    let t = wait_until("the task is cancelled", Duration::from_secs(30), || {
        let t = task_get(&server, &task_id);
        (t["status"] == "cancelled").then_some(t)
    });
    assert!(t.get("result").is_none(), "{t}");
    assert_group_gone(pgid, "after tasks/cancel");
    // Cancelling again is still acknowledged (cooperative); an unknown id is not.
    ok_result(
        &server,
        "tasks/cancel",
        json!({"taskId": task_id}),
        Some(&task_id),
    );
    error_of(
        &server,
        modern_req(&server, "tasks/cancel", json!({"taskId": "424242"}), None),
        400,
        -32602,
    );
}

#[test]
fn a_task_stays_answerable_across_a_restart() {
    let server = Server::start_default();
    add_manual(&server, "across", "sleep 120");
    let created = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "across"}),
        true,
    );
    let task_id = created["taskId"].as_str().expect("taskId").to_string();
    let options = Options::default().auth(Auth::Tokens(server.tokens.clone()));
    let (_status, _log, dir) = server.terminate(Duration::from_secs(30));
    let server = Server::start_in(options, dir);
    let t = task_get(&server, &task_id);
    assert_eq!(t["taskId"], task_id.as_str(), "{t}");
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(
        t["result"]["structuredContent"]["run"]["status"], "interrupted",
        "{t}"
    );
}

#[test]
fn run_logs_are_resources_in_both_eras() {
    let server = Server::start_default();
    add_manual(&server, "hello", "echo hello-from-run");
    let r = call(
        &server,
        "claudecron_run_task",
        json!({"taskId": "hello", "wait_seconds": 30}),
        false,
    );
    let run_id = r["structuredContent"]["run"]["id"]
        .as_i64()
        .expect("run id");
    assert_eq!(r["content"][1]["type"], "resource_link", "{r}");
    let uri = format!("claudecron://runs/{run_id}");
    let read = ok_result(&server, "resources/read", json!({"uri": uri}), Some(&uri));
    assert_eq!(read["resultType"], "complete");
    let text = read["contents"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("hello-from-run") && text.contains("status: success"),
        "{read}"
    );
    let list = ok_result(&server, "resources/list", json!({}), None);
    let latest = list["resources"][0]["uri"]
        .as_str()
        .expect("a resource")
        .to_string();
    assert!(latest.ends_with("/latest-run"), "{list}");
    let read = ok_result(
        &server,
        "resources/read",
        json!({"uri": latest}),
        Some(&latest),
    );
    assert!(read["contents"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("hello-from-run")));
    let templates = ok_result(&server, "resources/templates/list", json!({}), None);
    assert_eq!(
        templates["resourceTemplates"].as_array().map(Vec::len),
        Some(2)
    );
    // Unknown resource: -32602 on this era, -32002 on 2025-11-25.
    let missing = "claudecron://runs/999999";
    error_of(
        &server,
        modern_req(
            &server,
            "resources/read",
            json!({"uri": missing}),
            Some(missing),
        ),
        400,
        -32602,
    );
    let sid = server.session();
    let old = server.rpc(&sid, "resources/read", json!({"uri": uri}));
    assert!(old["result"]["contents"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("hello-from-run")));
    let old = server.rpc(&sid, "resources/read", json!({"uri": missing}));
    assert_eq!(old["error"]["code"], -32002, "{old}");
    // A 2025-11-25 session gets the link; a 2025-03-26 one (before resource_link) does not.
    let got = server.call_tool(&sid, "claudecron_get_run", json!({"runId": run_id}));
    assert_eq!(got["content"][1]["type"], "resource_link", "{got}");
    let resp = server.initialize_response("2025-03-26");
    let sid_old = resp.header("mcp-session-id").expect("session").to_string();
    let got = server.call_tool(&sid_old, "claudecron_get_run", json!({"runId": run_id}));
    assert_eq!(got["content"].as_array().map(Vec::len), Some(1), "{got}");
    assert_eq!(got["isError"], false, "{got}");
}

#[test]
fn progress_and_opted_in_logs_travel_on_the_request_stream() {
    let server = Server::start_default();
    add_manual(&server, "ticking", "sleep 3; echo ticked");
    let mut m = meta(false);
    m["progressToken"] = "tok-1".into();
    m["io.modelcontextprotocol/logLevel"] = "info".into();
    let req = modern_req(
        &server,
        "tools/call",
        json!({"name": "claudecron_run_task", "arguments": {"taskId": "ticking", "wait_seconds": 60}, "_meta": m}),
        Some("claudecron_run_task"),
    );
    let mut stream = req.open(server.port).expect("open");
    assert_eq!(stream.status, 200);
    assert!(stream
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    let mut progress = 0;
    let mut logs = 0;
    let result = loop {
        let event = read_sse_event(&mut stream).expect("an event before the response");
        let data = event_data(&event);
        match data["method"].as_str() {
            Some("notifications/progress") => {
                assert_eq!(data["params"]["progressToken"], "tok-1");
                progress += 1;
            }
            Some("notifications/message") => logs += 1,
            _ => break data,
        }
    };
    assert!(progress >= 1, "progress before the answer");
    assert_eq!(logs, 1, "one run-finished log line (logLevel info)");
    assert_eq!(result["result"]["resultType"], "complete", "{result}");
    assert_eq!(
        result["result"]["structuredContent"]["run"]["status"],
        "success"
    );
}

#[test]
fn a_disconnect_cancels_the_request_never_the_run() {
    let server = Server::start_default();
    add_manual(&server, "durable", "sleep 4; echo survived");
    let mut m = meta(false);
    m["progressToken"] = 7.into();
    let req = modern_req(
        &server,
        "tools/call",
        json!({"name": "claudecron_run_task", "arguments": {"taskId": "durable", "wait_seconds": 60}, "_meta": m}),
        Some("claudecron_run_task"),
    );
    let mut stream = req.open(server.port).expect("open");
    let first = read_sse_event(&mut stream).expect("first progress");
    assert!(first.join("").contains("notifications/progress"));
    stream.close();
    let mcp = Mcp::new(&server);
    let runs = mcp.history("durable");
    let run_id = id_of(&runs[0]);
    let run = mcp.wait_finished(run_id, Duration::from_secs(60));
    assert_eq!(run["status"], "success", "{run}");
    assert!(mcp.output(run_id).contains("survived"));
}
