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
    /// A success whose JSON is already encoded (`get_task`); it links no run.
    Encoded { summary: String, json: Vec<u8> },
    /// A tool error result (`isError: true`), already a value.
    Refused(Value),
}

impl ToolAnswer {
    /// As a result value (for callers that post-process it).
    pub fn into_value(self) -> Value {
        match self {
            ToolAnswer::Done { summary, value } => super::tool_result(&summary, value),
            ToolAnswer::Encoded { summary, json } => {
                let value = serde_json::from_slice(&json).unwrap_or(Value::Null);
                super::tool_result(&summary, value)
            }
            ToolAnswer::Refused(v) => v,
        }
    }

    /// The whole JSON-RPC response. `links`: add the run's `resource_link` (2025-06-18 and
    /// later); `complete`: the 2026-07-28 path's `resultType`. The same JSON as
    /// [`super::tool_result`] builds, in one pass: the value is encoded once (not once for the
    /// text and again inside an envelope of values built around it).
    pub fn encode(self, id: &Value, links: bool, complete: bool) -> Reply {
        let (summary, json, link) = match self {
            ToolAnswer::Done { summary, value } => {
                let mut json = Vec::with_capacity(4096);
                write_json(&mut json, &value);
                let link = if links { run_link(&value) } else { None };
                (summary, json, link)
            }
            ToolAnswer::Encoded { summary, json } => (summary, json, None),
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
        let mut body = Vec::with_capacity(summary.len() + 2 * json.len() + json.len() / 4 + 256);
        body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        write_json(&mut body, id);
        // The text block: the summary line, then the same JSON.
        body.extend_from_slice(b",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"");
        escape_into(&mut body, summary.as_bytes());
        body.extend_from_slice(b"\\n");
        escape_into(&mut body, &json);
        body.extend_from_slice(b"\"}");
        if let Some(link) = link {
            body.push(b',');
            write_json(&mut body, &link);
        }
        body.extend_from_slice(b"],\"structuredContent\":");
        body.extend_from_slice(&json);
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

/// `text` as the contents of a JSON string (RFC 8259 §7): `"` and `\` escaped, control
/// characters as `\u00XX` (or their short forms), everything else as it is. One pass a byte at
/// a time into reserved room (serde_json writes around every escape separately, and a result's
/// JSON has two quotes per key: a copy call per quote cost more than the bytes between).
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    // Two passes: the escaped length first (a plain count), then each byte written into room
    // made for it — no growth check or copy call per byte or per escape.
    let extra: usize = text
        .iter()
        .map(|&b| usize::from(ESCAPE_EXTRA[usize::from(b)]))
        .sum();
    if extra == 0 {
        out.extend_from_slice(text);
        return;
    }
    let start = out.len();
    out.resize(start + text.len() + extra, 0);
    let dst = &mut out[start..];
    let mut j = 0;
    for &b in text {
        if ESCAPE_EXTRA[usize::from(b)] == 0 {
            dst[j] = b;
            j += 1;
            continue;
        }
        let pair = match b {
            b'"' => *b"\\\"",
            b'\\' => *b"\\\\",
            b'\n' => *b"\\n",
            b'\r' => *b"\\r",
            b'\t' => *b"\\t",
            0x08 => *b"\\b",
            0x0c => *b"\\f",
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                dst[j..j + 6].copy_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
                j += 6;
                continue;
            }
            _ => *b"\\u", // not reached: every other byte needs no escape
        };
        dst[j..j + 2].copy_from_slice(&pair);
        j += 2;
    }
}

/// How many bytes longer each byte gets when escaped in a JSON string.
const ESCAPE_EXTRA: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = 5; // \u00XX
        b += 1;
    }
    table[0x08] = 1;
    table[0x09] = 1;
    table[0x0a] = 1;
    table[0x0c] = 1;
    table[0x0d] = 1;
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    table
};

/// `value` as JSON at the end of `body`.
fn write_json<T: serde::Serialize + ?Sized>(body: &mut Vec<u8>, value: &T) {
    if crate::util::json_into(body, value).is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json_for_every_kind_of_character() {
        let samples = [
            "",
            "plain",
            "quote \" and backslash \\ and slash /",
            "line\nbreak\r\ttab \u{8}\u{c} \u{0} \u{1} \u{1f} \u{7f} é 日本 🦀",
            "{\"a\":\"b\\\"c\",\"d\":[1,2]}",
        ];
        for text in samples {
            let mut ours = vec![b'"'];
            escape_into(&mut ours, text.as_bytes());
            ours.push(b'"');
            let back: String = serde_json::from_slice(&ours).expect("valid JSON string");
            assert_eq!(back, text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn escaping_matches_serde_json_at_every_position_in_a_word() {
        // Each special byte at every offset of strings of 0..=20 bytes, between plain ASCII
        // and multi-byte characters, alone and in pairs: the word check must see each one.
        let specials = [
            '"', '\\', '\n', '\u{0}', '\u{1f}', '\u{8}', ' ', '!', '#', '[', ']', '\u{7f}', 'é',
        ];
        for len in 0..=20 {
            for pos in 0..len.max(1) {
                for &a in &specials {
                    for &b in &['x', '"', '\u{2}', '日'] {
                        let text: String = (0..len)
                            .map(|k| {
                                if k == pos {
                                    a
                                } else if k == len - 1 {
                                    b
                                } else {
                                    'a'
                                }
                            })
                            .collect();
                        let mut ours = vec![b'"'];
                        escape_into(&mut ours, text.as_bytes());
                        ours.push(b'"');
                        assert_eq!(
                            String::from_utf8(ours).unwrap(),
                            serde_json::to_string(&text).unwrap(),
                            "{text:?}"
                        );
                    }
                }
            }
        }
        // Every byte value below 0x80 on its own and inside a long plain run.
        for c in 0u8..0x80 {
            let text = format!("{}{}{}", "p".repeat(13), c as char, "q".repeat(9));
            let mut ours = Vec::new();
            escape_into(&mut ours, text.as_bytes());
            let want = serde_json::to_string(&text).unwrap();
            assert_eq!(ours, want.as_bytes()[1..want.len() - 1], "byte {c:#x}");
        }
    }

    #[test]
    fn an_encoded_tool_result_is_the_value_tool_result_builds() {
        let value = serde_json::json!({"run": {"id": 7, "task_name": "a\"b", "status": "success"}, "x": [1, "\n"]});
        for (links, complete) in [(true, false), (false, false), (true, true)] {
            let answer = ToolAnswer::Done {
                summary: "Done \"x\".".into(),
                value: value.clone(),
            };
            let reply = answer.encode(&serde_json::json!(3), links, complete);
            let got: Value = serde_json::from_slice(&reply.body).expect("valid JSON");
            let mut want = super::super::tool_result("Done \"x\".", value.clone());
            if !links {
                super::super::strip_links(&mut want);
            }
            if complete {
                want["resultType"] = "complete".into();
            }
            assert_eq!(
                got,
                serde_json::json!({"jsonrpc": "2.0", "id": 3, "result": want})
            );
        }
    }
}
