//! The `api` runner of subagent tasks: one call to the Anthropic Messages API (ureq, on its own
//! thread so a cancel or the timeout answers at once), retries of 429/529/5xx that honour
//! `retry-after` within the task's timeout, the answer read into an outcome, its cost from the
//! config's price table and the run's `max_budget_usd`. It never starts a process.

use super::{failed, SubagentJob, SubagentOutcome, SubagentSettings, DEFAULT_MAX_TOKENS};
use crate::config::ApiPrice;
use crate::exec::verdict::{self, excerpt};
use crate::tasks::runs::RunStatus;
use crossbeam_channel::{after, bounded, select};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A 429 asking to wait this long or longer (seconds) is a usage limit: the run is deferred.
const DEFER_AFTER_SECS: f64 = 5.0;

/// One Messages API response as an outcome (status 200 only).
pub fn read_api_response(body: &Value, model: &str) -> SubagentOutcome {
    let text: Vec<&str> = body
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let output = text.join("\n");
    let stop = body.get("stop_reason").and_then(Value::as_str);
    let error = verdict::judge_answer(&output).or_else(|| {
        (stop == Some("max_tokens")).then(|| {
            "the answer was cut off at the response token limit (stop_reason max_tokens); raise max_tokens".to_string()
        })
    });
    SubagentOutcome {
        status: if error.is_none() {
            RunStatus::Success
        } else {
            RunStatus::Failed
        },
        error,
        output,
        runner: "api",
        model: Some(
            body.get("model")
                .and_then(Value::as_str)
                .unwrap_or(model)
                .to_string(),
        ),
        input_tokens: body.pointer("/usage/input_tokens").and_then(Value::as_i64),
        output_tokens: body.pointer("/usage/output_tokens").and_then(Value::as_i64),
        num_turns: Some(1),
        session_id: body.get("id").and_then(Value::as_str).map(String::from),
        ..Default::default()
    }
}

/// The API's error message from an error body, else the body's start.
fn api_error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let kind = v
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string();
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(|m| format!("{kind}: {m}"))
        })
        .unwrap_or_else(|| excerpt(body, 300))
}

fn timed_out(model: &str) -> SubagentOutcome {
    SubagentOutcome {
        status: RunStatus::Timeout,
        error: Some("timed out waiting for the Messages API".into()),
        runner: "api",
        model: Some(model.into()),
        ..Default::default()
    }
}

/// POST the request, retrying 429, 529 and 5xx (honouring `retry-after`) until `deadline`.
fn call_api(url: &str, key: &str, body: &Value, model: &str, deadline: Instant) -> SubagentOutcome {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return timed_out(model);
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(remaining))
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .post(url)
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .send_json(body);
        let (status, retry_after, text) = match response {
            Ok(mut resp) => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok());
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(16 << 20)
                    .read_to_string()
                    .unwrap_or_default();
                (status, retry_after, text)
            }
            Err(ureq::Error::Timeout(_)) => return timed_out(model),
            Err(e) => {
                if attempt < 4 && Instant::now() + Duration::from_secs(1) < deadline {
                    log::warn!("Messages API unreachable ({e}); retrying");
                    std::thread::sleep(Duration::from_secs(attempt as u64));
                    continue;
                }
                return failed(
                    "api",
                    model,
                    format!("cannot reach the Messages API at {url}: {e}"),
                );
            }
        };
        match status {
            200 => {
                return match serde_json::from_str::<Value>(&text) {
                    Ok(v) => read_api_response(&v, model),
                    Err(_) => failed(
                        "api",
                        model,
                        format!(
                            "the Messages API answered 200 with something that is not JSON: {}",
                            excerpt(&text, 300)
                        ),
                    ),
                }
            }
            429 if attempt >= 4 || retry_after.is_some_and(|s| s >= DEFER_AFTER_SECS) => {
                let limit = verdict::UsageLimit {
                    resets_at: retry_after.and_then(|s| {
                        chrono::Duration::try_milliseconds((s.clamp(0.0, 1e7) * 1000.0) as i64)
                            .map(|d| chrono::Utc::now() + d)
                    }),
                    kind: "API 429".into(),
                };
                // A usage limit, not a blip: the run is deferred to the reset time (when known)
                // instead of waiting here or failing.
                return SubagentOutcome {
                    deferred_until: limit.resets_at,
                    ..failed(
                        "api",
                        model,
                        verdict::limit_reason(&limit, &api_error_message(&text)),
                    )
                };
            }
            429 | 500..=599 if attempt < 4 => {
                let wait = retry_after
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 600.0)))
                    .unwrap_or(Duration::from_secs(1 << (attempt - 1)));
                if Instant::now() + wait >= deadline {
                    return SubagentOutcome {
                        status: RunStatus::Timeout,
                        error: Some(format!(
                            "the Messages API answered {status} ({}) and asked to wait {} s, past the task's timeout",
                            api_error_message(&text),
                            wait.as_secs()
                        )),
                        runner: "api",
                        model: Some(model.into()),
                        ..Default::default()
                    };
                }
                log::warn!(
                    "Messages API answered {status}; retry {attempt} in {:.1} s",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
            }
            _ => {
                return failed(
                    "api",
                    model,
                    format!("Messages API error {status}: {}", api_error_message(&text)),
                )
            }
        }
    }
}

/// The api runner's cost from its tokens and the price of the model that answered; a run that
/// cost more than its `max_budget_usd` is failed with that reason.
fn priced(
    mut out: SubagentOutcome,
    settings: &SubagentSettings,
    budget: Option<f64>,
) -> SubagentOutcome {
    let model = out.model.clone().unwrap_or_default();
    if let (Some(p), Some(i), Some(o)) = (
        ApiPrice::find(&settings.prices, &model),
        out.input_tokens,
        out.output_tokens,
    ) {
        let cost = p.cost(i, o);
        out.cost_usd = Some(cost);
        if let Some(usd) = budget.filter(|usd| cost > *usd && out.status == RunStatus::Success) {
            out.status = RunStatus::Failed;
            out.error = Some(format!(
                "reached the run's spending cap (max_budget_usd): it cost ${cost:.4} of ${usd}"
            ));
        }
    }
    out
}

pub(super) fn run_api(
    job: &SubagentJob,
    settings: &SubagentSettings,
    model: &str,
) -> SubagentOutcome {
    let Some(key) = settings.api_key.clone() else {
        return failed(
            "api",
            model,
            "runner api: no API key is configured; set anthropic_api_key in the config or ANTHROPIC_API_KEY in the server's environment".into(),
        );
    };
    let price = ApiPrice::find(&settings.prices, model).cloned();
    let budget = job.spec.guards.max_budget_usd;
    let mut max_tokens = job.spec.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if let (Some(p), Some(usd)) = (&price, budget) {
        // The answer cannot cost more than the budget (the prompt's tokens are checked after).
        if p.output_per_mtok > 0.0 {
            max_tokens = max_tokens.min(((usd * 1e6 / p.output_per_mtok) as u32).max(1));
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": job.prompt}],
    });
    if let Some(system) = &job.spec.system {
        body["system"] = Value::String(system.clone());
    }
    let url = format!("{}/v1/messages", settings.base_url.trim_end_matches('/'));
    let deadline = Instant::now() + job.timeout;
    let (tx, rx) = bounded(1);
    let model_owned = model.to_string();
    // The HTTP call runs on its own thread so a cancel or the timeout answers at once; an
    // abandoned call ends by its own deadline.
    let spawned = std::thread::Builder::new()
        .name("api-call".into())
        .spawn(move || {
            let _ = tx.send(call_api(&url, &key, &body, &model_owned, deadline));
        });
    if spawned.is_err() {
        return failed(
            "api",
            model,
            "cannot start a thread for the API call".into(),
        );
    }
    select! {
        recv(rx) -> outcome => priced(outcome.unwrap_or_else(|_| failed("api", model, "the API call thread ended without a result".into())), settings, budget),
        recv(job.cancel) -> _ => SubagentOutcome {
            status: (job.cancelled_status)(),
            error: Some("cancelled during the Messages API request".into()),
            runner: "api",
            model: Some(model.into()),
            ..Default::default()
        },
        recv(after(job.timeout + Duration::from_millis(200))) -> _ => SubagentOutcome {
            status: RunStatus::Timeout,
            error: Some(format!("timed out after {} s waiting for the Messages API", job.timeout.as_secs())),
            runner: "api",
            model: Some(model.into()),
            ..Default::default()
        },
    }
}
