//! Encoding answers: a successful tool result written straight into the response body (the
//! result's JSON encoded once, used both as the text block and as `structuredContent`), and
//! results that are already encoded (`tools/list`). It builds bytes only; what a result says
//! is decided by the callers, and it never touches a session or the catalog.

use super::resources;
use crate::http::Reply;
use serde_json::Value;

/// A `tools/call` outcome before encoding.
pub(crate) enum ToolAnswer {
    /// A success: its readable line and its JSON.
    Done { summary: String, value: Value },
    /// A tool error result (`isError: true`), already a value.
    Refused(Value),
}

impl ToolAnswer {
    /// As a result value (for callers that post-process it).
    pub fn into_value(self) -> Value {
        match self {
            ToolAnswer::Done { summary, value } => super::tool_result(&summary, value),
            ToolAnswer::Refused(v) => v,
        }
    }

    /// The whole JSON-RPC response. `links`: add the run's `resource_link` (2025-06-18 and
    /// later); `complete`: the 2026-07-28 path's `resultType`. The same JSON as
    /// [`super::tool_result`] builds, in one pass: the value is encoded once (not once for the
    /// text and again inside an envelope of values built around it).
    pub fn encode(self, id: &Value, links: bool, complete: bool) -> Reply {
        let (summary, value) = match self {
            ToolAnswer::Done { summary, value } => (summary, value),
            ToolAnswer::Refused(mut v) => {
                if complete {
                    v["resultType"] = "complete".into();
                }
                return Reply::json(
                    200,
                    &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": v),
                );
            }
        };
        let json = serde_json::to_string(&value).unwrap_or_else(|_| "null".into());
        let mut text = String::with_capacity(summary.len() + 1 + json.len());
        text.push_str(&summary);
        text.push('\n');
        text.push_str(&json);
        let link = if links { run_link(&value) } else { None };
        let mut body = Vec::with_capacity(text.len() + text.len() / 4 + json.len() + 256);
        body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        write_json(&mut body, id);
        body.extend_from_slice(b",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
        write_json(&mut body, &text);
        body.push(b'}');
        if let Some(link) = link {
            body.push(b',');
            write_json(&mut body, &link);
        }
        body.extend_from_slice(b"],\"structuredContent\":");
        body.extend_from_slice(json.as_bytes());
        body.extend_from_slice(b",\"isError\":false");
        if complete {
            body.extend_from_slice(b",\"resultType\":\"complete\"");
        }
        body.extend_from_slice(b"}}");
        json_reply(body)
    }
}

/// The `resource_link` to the log of the run a result is about (`structuredContent.run`).
pub(crate) fn run_link(value: &Value) -> Option<Value> {
    let run_id = value.pointer("/run/id").and_then(Value::as_i64)?;
    Some(resources::run_link(
        run_id,
        value.pointer("/run/task_name").and_then(Value::as_str),
        value.pointer("/run/status").and_then(Value::as_str),
    ))
}

/// A JSON-RPC success whose result is already encoded JSON (`tools/list`).
pub(crate) fn raw_result(id: &Value, result: &str) -> Reply {
    let mut body = Vec::with_capacity(result.len() + 64);
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    write_json(&mut body, id);
    body.extend_from_slice(b",\"result\":");
    body.extend_from_slice(result.as_bytes());
    body.push(b'}');
    json_reply(body)
}

fn write_json<T: serde::Serialize + ?Sized>(body: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *body, value).is_err() {
        body.extend_from_slice(b"null"); // unreachable for values and strings
    }
}

fn json_reply(body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    }
}
