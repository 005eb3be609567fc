//! Honest outcomes of subagent runs: reading what Claude Code printed (`--output-format
//! stream-json --verbose` lines: the final `result` object, `rate_limit_event`s) and judging an
//! answer (empty, `CLAUDECRON_FAILED: reason`, refused tool calls, usage limits). Pure: it never
//! starts a process, calls an API or touches the store; a run is `success` only when every
//! check passed.

use crate::tasks::runs::RunStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The first line an answer starts with to declare the run failed (`CLAUDECRON_FAILED: reason`).
pub const FAILED_MARKER: &str = "CLAUDECRON_FAILED";

/// A usage or rate limit the run hit: when it resets, if the CLI or API said so.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageLimit {
    pub resets_at: Option<DateTime<Utc>>,
    /// Its kind in the CLI's words (`five_hour`, `seven_day`, …) or the API's error type.
    pub kind: String,
}

/// What Claude Code printed, read from its stream-json lines.
#[derive(Debug, Clone, Default)]
pub struct ClaudeStream {
    /// The last `{"type":"result",…}` object.
    pub result: Option<Value>,
    /// A `rate_limit_event` whose status is `rejected` (the last one).
    pub limit: Option<UsageLimit>,
}

/// Read stream-json (or plain json) output: the result object and any rejected rate limit.
pub fn read_stream(output: &str) -> ClaudeStream {
    let mut stream = ClaudeStream::default();
    for line in output.lines() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("result") => stream.result = Some(v),
            Some("rate_limit_event") => {
                let info = v.get("rate_limit_info").cloned().unwrap_or(Value::Null);
                if info.get("status").and_then(Value::as_str) == Some("rejected") {
                    stream.limit = Some(UsageLimit {
                        resets_at: info
                            .get("resetsAt")
                            .and_then(Value::as_i64)
                            .and_then(|s| DateTime::from_timestamp(s, 0)),
                        kind: info
                            .get("rateLimitType")
                            .and_then(Value::as_str)
                            .unwrap_or("usage limit")
                            .to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    stream
}

/// `text` cut to about `n` bytes (at a character boundary), trimmed, with `…` when cut.
pub fn excerpt(text: &str, n: usize) -> String {
    let t = text.trim();
    if t.len() <= n {
        return t.to_string();
    }
    let mut end = n;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &t[..end])
}

/// Claude Code refuses `bypassPermissions` as root, with a plain-text line on stderr (no JSON):
/// say what to do about it.
pub fn root_refusal(output: &str) -> Option<String> {
    output.contains("cannot be used with root").then(|| format!(
        "{}; Claude Code refuses permission_mode bypassPermissions as root: run the server as a normal user, use another permission_mode with allowed_tools, or set IS_SANDBOX=1 in the task's env if the host is a sandbox",
        excerpt(output, 300)
    ))
}

/// The reason an answer declares the run failed or says nothing: an empty answer, or a first
/// line `CLAUDECRON_FAILED: reason`. None for an answer that stands.
pub fn judge_answer(answer: &str) -> Option<String> {
    let first = answer.trim_start().lines().next().unwrap_or("").trim();
    if let Some(rest) = first.strip_prefix(FAILED_MARKER) {
        let reason = rest.trim_start_matches(':').trim();
        return Some(format!(
            "the run declared failure: {}",
            if reason.is_empty() {
                "(no reason given)"
            } else {
                reason
            }
        ));
    }
    answer
        .trim()
        .is_empty()
        .then(|| "the run ended with an empty answer".to_string())
}

/// Tools the run wanted and was refused, as `Tool (input excerpt)`.
fn denials(result: &Value) -> Vec<String> {
    result
        .get("permission_denials")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| {
                    let tool = d.get("tool_name").and_then(Value::as_str).unwrap_or("?");
                    let input = d.get("tool_input").cloned().unwrap_or(Value::Null);
                    let what = ["command", "file_path", "path", "url", "pattern"]
                        .iter()
                        .find_map(|k| input.get(*k).and_then(Value::as_str))
                        .map(|s| format!(" ({})", excerpt(s, 80)))
                        .unwrap_or_default();
                    format!("{tool}{what}")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A usage-limit failure reason (what hit, and when it resets).
pub fn limit_reason(limit: &UsageLimit, detail: &str) -> String {
    format!(
        "usage limit reached ({}){}{}",
        limit.kind,
        limit
            .resets_at
            .map(|t| format!("; it resets at {}", crate::util::rfc3339(t)))
            .unwrap_or_default(),
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {}", excerpt(detail, 300))
        }
    )
}

/// Claude Code's account of how a run ended, kept on the run: `subtype`, `is_error`,
/// `terminal_reason`, `permission_denials` (tool and input), `errors`, `api_error_status`, and
/// the rejected `rate_limit` (kind, reset time).
pub fn claude_details(result: &Value, limit: Option<&UsageLimit>) -> Value {
    let mut out = serde_json::Map::new();
    for key in [
        "subtype",
        "is_error",
        "terminal_reason",
        "permission_denials",
        "errors",
        "api_error_status",
    ] {
        if let Some(v) = result.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(l) = limit {
        out.insert(
            "rate_limit".into(),
            serde_json::json!({"kind": l.kind, "resets_at": l.resets_at.map(crate::util::rfc3339)}),
        );
    }
    Value::Object(out)
}

/// How Claude Code's run ended: the status, the reason when it is not success, and the
/// answer (`result`, or the `errors` when there is none).
pub fn judge_claude(
    result: &Value,
    limit: Option<&UsageLimit>,
    exit_code: Option<i32>,
) -> (RunStatus, Option<String>, String) {
    let text = |k: &str| result.get(k).and_then(Value::as_str).map(String::from);
    let errors: Vec<String> = result
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let is_error = result
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let subtype = text("subtype").unwrap_or_default();
    let answer = text("result").unwrap_or_else(|| errors.join("\n"));
    let errors_or = |fallback: &str| {
        if errors.is_empty() {
            fallback.to_string()
        } else {
            errors.join("; ")
        }
    };
    let api_status = result.get("api_error_status").and_then(Value::as_i64);
    let error = if let Some(limit) = limit.filter(|_| is_error || exit_code != Some(0)) {
        Some(limit_reason(limit, &answer))
    } else if subtype == "error_max_turns" {
        Some(format!(
            "reached the turn limit (max_turns): {}",
            errors_or("error_max_turns")
        ))
    } else if subtype == "error_max_budget_usd" {
        Some(format!(
            "reached the run's spending cap (max_budget_usd): {}",
            errors_or("error_max_budget_usd")
        ))
    } else if subtype == "error_during_execution" {
        Some(format!(
            "Claude Code failed during execution: {}",
            errors_or("error_during_execution")
        ))
    } else if api_status == Some(429) {
        Some(limit_reason(
            &UsageLimit {
                resets_at: None,
                kind: "API 429".into(),
            },
            &answer,
        ))
    } else if let Some(status) = api_status {
        Some(format!("API error {status}: {}", excerpt(&answer, 500)))
    } else if is_error || exit_code != Some(0) || (!subtype.is_empty() && subtype != "success") {
        root_refusal(&answer).or_else(|| {
            let why = if answer.is_empty() {
                subtype.clone()
            } else {
                excerpt(&answer, 500)
            };
            Some(format!(
                "Claude Code reported an error{}{}: {why}",
                if subtype.is_empty() || subtype == "success" {
                    String::new()
                } else {
                    format!(" ({subtype})")
                },
                match exit_code {
                    Some(0) | None => String::new(),
                    Some(c) => format!(", exit code {c}"),
                }
            ))
        })
    } else if let Some(why) = judge_answer(&answer) {
        Some(why)
    } else {
        let refused = denials(result);
        (!refused.is_empty()).then(|| format!(
            "Claude Code was refused {} tool call(s) it wanted: {}; allow them with allowed_tools (or permission_mode acceptEdits/bypassPermissions) or tell the prompt not to need them",
            refused.len(),
            refused.join(", ")
        ))
    };
    let status = if error.is_none() {
        RunStatus::Success
    } else {
        RunStatus::Failed
    };
    (status, error, answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(extra: Value) -> Value {
        let mut v = json!({"type":"result","subtype":"success","is_error":false,"result":"Done.","permission_denials":[]});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }

    fn judged(result: Value, rc: i32) -> (RunStatus, String) {
        let (s, e, _) = judge_claude(&result, None, Some(rc));
        (s, e.unwrap_or_default())
    }

    #[test]
    fn endings_map_to_statuses_and_reasons() {
        assert_eq!(
            judged(ok(json!({})), 0),
            (RunStatus::Success, String::new())
        );
        let table: &[(Value, i32, &str)] = &[
            (
                json!({"subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (1)"]}),
                1,
                "turn limit (max_turns): Reached maximum number of turns (1)",
            ),
            (
                json!({"subtype":"error_max_budget_usd","is_error":true,"errors":[]}),
                1,
                "spending cap (max_budget_usd)",
            ),
            (
                json!({"subtype":"error_during_execution","is_error":true,"errors":["boom"]}),
                1,
                "failed during execution: boom",
            ),
            (
                json!({"is_error":true,"api_error_status":429,"result":"API Error: 429 rate_limit_error"}),
                1,
                "usage limit reached (API 429)",
            ),
            (
                json!({"is_error":true,"api_error_status":401,"result":"Failed to authenticate"}),
                1,
                "API error 401",
            ),
            (json!({"result":""}), 0, "empty answer"),
            (json!({"result":"  \n"}), 0, "empty answer"),
            (
                json!({"result":"CLAUDECRON_FAILED: the deploy key is missing\nmore"}),
                0,
                "declared failure: the deploy key is missing",
            ),
            (
                json!({"permission_denials":[{"tool_name":"Bash","tool_input":{"command":"touch /x"}}]}),
                0,
                "refused 1 tool call(s) it wanted: Bash (touch /x)",
            ),
            (json!({}), 1, "exit code 1"),
            (json!({"subtype":"weird"}), 0, "(weird)"),
        ];
        for (extra, rc, want) in table {
            let (status, why) = judged(ok(extra.clone()), *rc);
            assert_eq!(status, RunStatus::Failed, "{extra}");
            assert!(why.contains(want), "{extra}: {why}");
        }
    }

    #[test]
    fn a_rejected_rate_limit_event_is_read_with_its_reset_time() {
        let out = "{\"type\":\"system\",\"subtype\":\"init\"}\n{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed\",\"resetsAt\":1}}\n{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\",\"resetsAt\":1900000000,\"rateLimitType\":\"five_hour\"}}\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Claude AI usage limit reached\"}\n";
        let s = read_stream(out);
        let limit = s.limit.clone().expect("rejected event");
        assert_eq!(limit.kind, "five_hour");
        assert_eq!(limit.resets_at.map(|t| t.timestamp()), Some(1_900_000_000));
        let (status, why, _) = judge_claude(&s.result.unwrap(), s.limit.as_ref(), Some(1));
        assert_eq!(status, RunStatus::Failed);
        assert!(why.unwrap().contains("resets at 2030-03-17"));
        let allowed = read_stream(
            "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed_warning\"}}",
        );
        assert!(allowed.limit.is_none() && allowed.result.is_none());
    }

    #[test]
    fn the_failed_marker_only_counts_on_the_first_line() {
        assert!(judge_answer("All good.\nCLAUDECRON_FAILED: no").is_none());
        assert_eq!(
            judge_answer("CLAUDECRON_FAILED").as_deref(),
            Some("the run declared failure: (no reason given)")
        );
    }
}
