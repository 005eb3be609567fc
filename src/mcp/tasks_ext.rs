//! The MCP tasks extension `io.modelcontextprotocol/tasks` (ext-tasks `specification/draft/tasks.md`)
//! on the 2026-07-28 path: a `run_task` call becomes a task whose id is the run's id (the run row
//! is in SQLite before the reply, so the task survives a restart); `tasks/get` maps the run to a
//! task, `tasks/cancel` cancels the run. Reads and acts through `catalog` only; keeps no state.

use super::wait::OUTPUT_TAIL;
use crate::tasks::catalog::{Catalog, OpError};
use crate::tasks::runs::RunStatus;
use serde_json::{json, Value};

/// The extension's identifier, in client capabilities and our discover capabilities.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// How often clients should poll `tasks/get`.
pub const POLL_INTERVAL_MS: u64 = 2000;

/// The request's client capabilities declare the extension.
pub fn declared(client_capabilities: &Value) -> bool {
    client_capabilities
        .get("extensions")
        .and_then(Value::as_object)
        .is_some_and(|e| e.contains_key(EXTENSION))
}

/// The -32021 error data for a client that did not declare the extension.
pub fn required_capability() -> Value {
    json!({"requiredCapabilities": {"extensions": {EXTENSION: {}}}})
}

/// A task's status for a run's.
fn status_of(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued | RunStatus::Running => "working",
        RunStatus::Cancelled => "cancelled",
        // A run that ended (well or not) is a tool call that completed: its result says how.
        _ => "completed",
    }
}

/// The task fields of a run (`Task` of the extension), from `catalog.run`'s view.
fn task_fields(run: &Value) -> Value {
    let status = run["status"].as_str().and_then(RunStatus::parse);
    let created = run["queued_at"].clone();
    let updated = [&run["finished_at"], &run["started_at"], &run["queued_at"]]
        .into_iter()
        .find(|v| v.is_string())
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "taskId": run["id"].as_i64().map(|n| n.to_string()).unwrap_or_default(),
        "status": status.map(status_of).unwrap_or("working"),
        "statusMessage": format!(
            "run {} of task \"{}\": {}",
            run["id"],
            run["task_name"].as_str().unwrap_or("?"),
            run["status"].as_str().unwrap_or("unknown")
        ),
        "createdAt": created,
        "lastUpdatedAt": updated,
        // Runs are kept until history_keep_per_task prunes them: no fixed lifetime.
        "ttlMs": Value::Null,
        "pollIntervalMs": POLL_INTERVAL_MS,
    })
}

/// The `CreateTaskResult` for a run just started (its row is already stored).
pub fn created(catalog: &Catalog, run_id: i64) -> Result<Value, OpError> {
    let view = catalog.run(run_id, Some(0))?;
    let mut task = task_fields(&view["run"]);
    task["resultType"] = "task".into();
    Ok(task)
}

/// The run id a task id names: -32602 for anything else.
fn run_id(params: &Value) -> Result<(i64, &str), (i64, String)> {
    let Some(task_id) = params.get("taskId").and_then(Value::as_str) else {
        return Err((
            -32602,
            "Invalid params: \"taskId\" (a string, from the tools/call that created the task) is required".into(),
        ));
    };
    match task_id.parse::<i64>() {
        Ok(n) if n > 0 => Ok((n, task_id)),
        _ => Err((
            -32602,
            format!(
                "Invalid params: unknown taskId \"{}\"",
                task_id.escape_debug()
            ),
        )),
    }
}

fn unknown(task_id: &str) -> (i64, String) {
    (
        -32602,
        format!(
            "Invalid params: unknown taskId \"{}\"",
            task_id.escape_debug()
        ),
    )
}

fn internal(e: OpError) -> (i64, String) {
    match e {
        OpError::Internal(m) => {
            log::error!("tasks extension: {m}");
            (
                -32603,
                "Internal error: the database failed; see the server log".into(),
            )
        }
        other => (-32603, format!("Internal error: {other}")),
    }
}

/// `tasks/get`: the task with its result once the run ended.
pub fn get(
    catalog: &Catalog,
    params: &Value,
    summary: fn(&Value) -> String,
) -> Result<Value, (i64, String)> {
    let (id, task_id) = run_id(params)?;
    let view = match catalog.run(id, Some(OUTPUT_TAIL)) {
        Ok(v) => v,
        Err(OpError::NotFound(_)) => return Err(unknown(task_id)),
        Err(e) => return Err(internal(e)),
    };
    let mut task = task_fields(&view["run"]);
    if task["status"] == "completed" {
        let mut result = super::tool_result(&summary(&view), view);
        result["resultType"] = "complete".into();
        task["result"] = result;
    }
    task["resultType"] = "complete".into();
    Ok(task)
}

/// `tasks/cancel`: ask the engine to end the run (its process group); an acknowledgement, also
/// for a run that already ended (cancellation is cooperative).
pub fn cancel(catalog: &Catalog, params: &Value) -> Result<Value, (i64, String)> {
    let (id, task_id) = run_id(params)?;
    match catalog.cancel_run(id) {
        Ok(()) | Err(OpError::Conflict(_)) => Ok(json!({"resultType": "complete"})),
        Err(OpError::NotFound(_)) => Err(unknown(task_id)),
        Err(e) => Err(internal(e)),
    }
}

/// `tasks/update`: we never ask for input, so there is nothing outstanding to answer; the
/// responses are ignored as the extension says, for a known task.
pub fn update(catalog: &Catalog, params: &Value) -> Result<Value, (i64, String)> {
    let (id, task_id) = run_id(params)?;
    match catalog.run_status(id) {
        Some(_) => Ok(json!({"resultType": "complete"})),
        None => Err(unknown(task_id)),
    }
}
