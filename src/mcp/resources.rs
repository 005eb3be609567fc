//! Run logs as MCP resources (both eras): `resources/list` (each task's latest run, paged like
//! `list_tasks`), `resources/templates/list`, `resources/read` of `claudecron://runs/{runId}` and
//! `claudecron://tasks/{taskId}/latest-run` as text, and the `resource_link` a tool result that
//! refers to a run carries. Reads through `catalog` only; never subscribes, never writes.

use super::Mcp;
use crate::tasks::catalog::{Catalog, ListQuery, OpError, DEFAULT_PAGE};
use serde_json::{json, Value};

/// How much of a run's output a resource read returns (the end of it).
pub const READ_TAIL: usize = 64 * 1024;
const RUN_PREFIX: &str = "claudecron://runs/";
const TASK_PREFIX: &str = "claudecron://tasks/";
const LATEST_SUFFIX: &str = "/latest-run";

/// The resource URI of a run.
pub fn run_uri(run_id: i64) -> String {
    format!("{RUN_PREFIX}{run_id}")
}

/// A `resource_link` content block for a run.
pub fn run_link(run_id: i64, task_name: Option<&str>, status: Option<&str>) -> Value {
    let what = match task_name {
        Some(name) => format!("run {run_id} of task \"{name}\""),
        None => format!("run {run_id}"),
    };
    json!({
        "type": "resource_link",
        "uri": run_uri(run_id),
        "name": format!("run-{run_id}"),
        "title": what,
        "description": format!("{what}{}: status, times and output as text (resources/read)",
            status.map(|s| format!(", {s}")).unwrap_or_default()),
        "mimeType": "text/plain",
    })
}

/// The resource templates (`resources/templates/list`).
pub fn templates() -> Value {
    json!([
        {
            "uriTemplate": format!("{RUN_PREFIX}{{runId}}"),
            "name": "run",
            "title": "A claudecron run's log",
            "description": "One run (runId from claudecron_run_task or claudecron_get_history): status, exit code, times and the end of its output, as text.",
            "mimeType": "text/plain",
        },
        {
            "uriTemplate": format!("{TASK_PREFIX}{{taskId}}{LATEST_SUFFIX}"),
            "name": "latest-run",
            "title": "A claudecron task's latest run",
            "description": "The most recent run of a task (id or name): status, exit code, times and the end of its output, as text.",
            "mimeType": "text/plain",
        }
    ])
}

/// Why a `resources/*` request failed: the JSON-RPC code depends on the era (unknown resource:
/// -32002 up to 2025-11-25, -32602 from 2026-07-28), so the caller picks it.
pub enum ResourceError {
    /// Bad params (not a string URI, bad cursor).
    Invalid(String),
    /// No such resource.
    NotFound(String),
    /// The database failed.
    Internal(String),
}

impl From<OpError> for ResourceError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound(m) => ResourceError::NotFound(m),
            OpError::Internal(m) => {
                log::error!("resource read failed: {m}");
                ResourceError::Internal(
                    "internal error: the database failed; see the server log".into(),
                )
            }
            other => ResourceError::Invalid(other.to_string()),
        }
    }
}

impl Mcp {
    /// `resources/*` of both eras; `not_found` is the era's code for an unknown resource.
    pub(super) fn resources(
        &self,
        method: &str,
        params: &Value,
        catalog: Option<&Catalog>,
        not_found: i64,
    ) -> Result<Value, (i64, String)> {
        if method == "resources/templates/list" {
            return Ok(json!({"resourceTemplates": templates()}));
        }
        let Some(catalog) = catalog else {
            return Err((-32603, self.no_catalog()));
        };
        let result = if method == "resources/list" {
            list(catalog, params)
        } else {
            read(catalog, params)
        };
        result.map_err(|e| match e {
            ResourceError::Invalid(m) => (-32602, format!("Invalid params: {m}")),
            ResourceError::NotFound(m) => (not_found, m),
            ResourceError::Internal(m) => (-32603, m),
        })
    }
}

/// `resources/list`: the latest run of each task that has one, a page of tasks at a time.
pub fn list(catalog: &Catalog, params: &Value) -> Result<Value, ResourceError> {
    let cursor = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => return Err(ResourceError::Invalid("cursor must be a string".into())),
    };
    let page = catalog
        .list(
            &ListQuery {
                enabled: None,
                task_type: None,
                trigger: None,
                name_contains: None,
                limit: DEFAULT_PAGE,
                cursor,
            },
            chrono::Utc::now(),
        )
        .map_err(|e| match e {
            OpError::Invalid(f) => ResourceError::Invalid(format!("cursor: {}", f.message)),
            other => other.into(),
        })?;
    let mut resources = Vec::new();
    for task in page["tasks"].as_array().into_iter().flatten() {
        let Some(run_id) = task["last_run"]["id"].as_i64() else {
            continue;
        };
        let name = task["name"].as_str().unwrap_or("");
        resources.push(json!({
            "uri": format!("{TASK_PREFIX}{}{LATEST_SUFFIX}", task["id"].as_str().unwrap_or("")),
            "name": format!("{name}-latest-run"),
            "title": format!("Latest run of \"{name}\""),
            "description": format!("run {run_id}, {}", task["last_run"]["status"].as_str().unwrap_or("unknown")),
            "mimeType": "text/plain",
        }));
    }
    let mut result = json!({ "resources": resources });
    if let Some(next) = page.get("next_cursor") {
        result["nextCursor"] = next.clone();
    }
    Ok(result)
}

/// `resources/read` of a run or a task's latest run.
pub fn read(catalog: &Catalog, params: &Value) -> Result<Value, ResourceError> {
    let Some(uri) = params.get("uri").and_then(Value::as_str) else {
        return Err(ResourceError::Invalid(
            "resources/read needs \"uri\", e.g. claudecron://runs/42".into(),
        ));
    };
    let run_id = if let Some(id) = uri.strip_prefix(RUN_PREFIX) {
        id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ResourceError::NotFound(format!(
                "Resource not found: {uri} (run ids are positive integers)"
            ))
        })?
    } else if let Some(task) = uri
        .strip_prefix(TASK_PREFIX)
        .and_then(|rest| rest.strip_suffix(LATEST_SUFFIX))
        .filter(|t| !t.is_empty())
    {
        let runs = catalog.history(Some(task), None, 1).map_err(|e| match e {
            OpError::NotFound(m) => ResourceError::NotFound(format!("Resource not found: {m}")),
            other => other.into(),
        })?;
        runs["runs"][0]["id"].as_i64().ok_or_else(|| {
            ResourceError::NotFound(format!("Resource not found: task {task} has no runs yet"))
        })?
    } else {
        return Err(ResourceError::NotFound(format!(
            "Resource not found: {uri}; accepted: claudecron://runs/{{runId}}, claudecron://tasks/{{taskId}}/latest-run"
        )));
    };
    let view = catalog.run(run_id, Some(READ_TAIL)).map_err(|e| match e {
        OpError::NotFound(_) => {
            ResourceError::NotFound(format!("Resource not found: {uri} (no run {run_id})"))
        }
        other => other.into(),
    })?;
    Ok(json!({
        "contents": [{
            "uri": uri,
            "mimeType": "text/plain",
            "text": run_text(&view["run"]),
        }]
    }))
}

/// A run as readable text: one header line per fact, then its output.
fn run_text(run: &Value) -> String {
    let field = |k: &str| match &run[k] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let mut text = format!(
        "run {} of task \"{}\" ({})\nstatus: {}\n",
        run["id"],
        run["task_name"].as_str().unwrap_or("?"),
        run["task_id"].as_str().unwrap_or("?"),
        run["status"].as_str().unwrap_or("?"),
    );
    for (label, key) in [
        ("trigger", "trigger"),
        ("exit code", "exit_code"),
        ("signal", "signal"),
        ("error", "error"),
        ("queued at", "queued_at"),
        ("started at", "started_at"),
        ("finished at", "finished_at"),
        ("duration ms", "duration_ms"),
    ] {
        if let Some(v) = field(key) {
            text.push_str(&format!("{label}: {v}\n"));
        }
    }
    let output = run["output"].as_str().unwrap_or("");
    let cut = run["output_truncated"].as_bool().unwrap_or(false) || output.len() >= READ_TAIL;
    text.push_str(if cut {
        "--- output (the end of it) ---\n"
    } else {
        "--- output ---\n"
    });
    text.push_str(output);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_text_names_the_facts_and_keeps_the_output() {
        let run = json!({"id": 7, "task_name": "t", "task_id": "abc", "status": "success",
            "exit_code": 0, "error": null, "output": "hello\n", "output_truncated": false});
        let text = run_text(&run);
        assert!(text.starts_with("run 7 of task \"t\" (abc)\nstatus: success\n"));
        assert!(text.contains("exit code: 0\n"));
        assert!(!text.contains("error:"));
        assert!(text.ends_with("--- output ---\nhello\n"));
    }

    #[test]
    fn links_point_at_the_run_uri() {
        let link = run_link(42, Some("backup"), Some("running"));
        assert_eq!(link["type"], "resource_link");
        assert_eq!(link["uri"], "claudecron://runs/42");
    }
}
