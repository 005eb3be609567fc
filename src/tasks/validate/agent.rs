//! Validating the fields that make an unattended run safe and cheap: tool lists, the
//! `permission_mode` allow-list (no mode that would wait for a person), `precheck`,
//! `mcp_config`, `add_dirs`, spend caps. Every refusal names the field and what is accepted.
//! Pure: no clock, no store, no file system.

use super::*;
use crate::tasks::model::Guards;

/// Modes in which `claude -p` never waits for a person: `dontAsk` refuses every tool not in
/// `allowed_tools`, `acceptEdits` also allows file edits, `plan` only reads, `bypassPermissions`
/// allows everything.
pub const PERMISSION_MODES: &[&str] = &["dontAsk", "acceptEdits", "plan", "bypassPermissions"];

/// Fields only a subagent task takes.
pub const SUBAGENT_ONLY: &[&str] = &[
    "model",
    "runner",
    "allowed_tools",
    "disallowed_tools",
    "max_turns",
    "permission_mode",
    "max_tokens",
    "system",
    "mcp_config",
    "add_dirs",
    "max_budget_usd",
    "daily_budget_usd",
    "worktree",
];

const MCP_CONFIG_BYTES: usize = 64 * 1024;
const ADD_DIRS: usize = 20;

/// `permission_mode`: one of the modes that never prompt; `default` is refused with the reason.
pub(super) fn permission_mode(obj: &Map<String, Value>) -> Result<Option<String>, FieldError> {
    match obj.get("permission_mode") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(m)) if PERMISSION_MODES.contains(&m.as_str()) => Ok(Some(m.clone())),
        Some(Value::String(m)) if m == "default" => err(
            "permission_mode",
            format!(
                "\"default\" asks a person before each tool call not in allowed_tools, and a scheduled run has nobody to answer; accepted: {} (dontAsk: only allowed_tools, never asks; acceptEdits: also file edits; plan: read only; bypassPermissions: everything), or leave it out",
                PERMISSION_MODES.join(", ")
            ),
        ),
        Some(other) => err(
            "permission_mode",
            format!(
                "{} is not accepted; accepted: {} (modes that never wait for a person)",
                describe(other),
                PERMISSION_MODES.join(", ")
            ),
        ),
    }
}

/// A list of tool names such as `Read`, `Bash(git *)`, `mcp__srv__tool`.
pub(super) fn tool_list(obj: &Map<String, Value>, field: &str) -> Result<Vec<String>, FieldError> {
    let items = match obj.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return err(
                field,
                format!(
                    "{} is not a list of tool names such as [\"Read\", \"Grep\"]",
                    describe(other)
                ),
            )
        }
    };
    if items.len() > limits::ALLOWED_TOOLS {
        return err(
            field,
            format!(
                "has {} entries; the limit is {}",
                items.len(),
                limits::ALLOWED_TOOLS
            ),
        );
    }
    let mut tools = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{field}[{i}]");
        match item.as_str() {
            Some(s) if !s.trim().is_empty() => {
                check_len(s, &path, limits::TOOL_NAME)?;
                tools.push(s.to_string())
            }
            _ => {
                return err(
                    &path,
                    format!(
                        "{} is not a tool name such as Read, Bash(git *)",
                        describe(item)
                    ),
                )
            }
        }
    }
    Ok(tools)
}

/// A USD amount: more than 0, at most 10,000.
fn money(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x > 0.0 && x <= 10_000.0 => Ok(Some(x)),
            _ => err(
                field,
                format!(
                    "{} is not accepted; expected an amount in USD above 0 and at most 10000, e.g. 0.50",
                    describe(v)
                ),
            ),
        },
    }
}

fn add_dirs(obj: &Map<String, Value>) -> Result<Vec<String>, FieldError> {
    let items = match obj.get("add_dirs") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= ADD_DIRS => items,
        Some(other) => {
            return err(
                "add_dirs",
                format!(
                    "{} is not accepted; expected a list of at most {ADD_DIRS} absolute directories, e.g. [\"/srv/data\"]",
                    describe(other)
                ),
            )
        }
    };
    let mut dirs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("add_dirs[{i}]");
        match item.as_str() {
            Some(d) if d.starts_with('/') && !d.contains('\0') => {
                check_len(d, &path, limits::CWD)?;
                dirs.push(d.to_string());
            }
            _ => {
                return err(
                    &path,
                    format!(
                        "{} is not an absolute directory such as /srv/data",
                        describe(item)
                    ),
                )
            }
        }
    }
    Ok(dirs)
}

/// `{"mcpServers": {"name": {"type": "http", "url": …} | {"command": …, "args": […]}}}`, as in
/// Claude Code's `--mcp-config` file.
fn mcp_config(obj: &Map<String, Value>) -> Result<Option<Value>, FieldError> {
    let example = "e.g. {\"mcpServers\": {\"docs\": {\"type\": \"http\", \"url\": \"https://example.com/mcp\"}}}";
    let config = match obj.get("mcp_config") {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return err(
                "mcp_config",
                format!("{} is not an object; {example}", describe(other)),
            )
        }
    };
    if config.to_string().len() > MCP_CONFIG_BYTES {
        return err(
            "mcp_config",
            format!("is longer than {MCP_CONFIG_BYTES} bytes as JSON"),
        );
    }
    let Some(Value::Object(servers)) = config.get("mcpServers") else {
        return err(
            "mcp_config",
            format!("needs an object mcpServers of named servers; {example}"),
        );
    };
    if let Some(key) = config
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "mcpServers"))
    {
        return err(
            &format!("mcp_config.{key}"),
            "is not accepted; mcp_config holds only mcpServers",
        );
    }
    for (name, server) in servers {
        let path = format!("mcp_config.mcpServers.{name}");
        let kind = server.get("type").and_then(Value::as_str);
        let has = |k: &str| server.get(k).is_some_and(Value::is_string);
        let ok = server.is_object()
            && match kind {
                None | Some("stdio") => has("command") || (kind.is_none() && has("url")),
                Some("http") | Some("sse") => has("url"),
                Some(_) => false,
            };
        if !ok {
            return err(
                &path,
                format!(
                    "{} is not a server: give {{\"type\": \"http\" or \"sse\", \"url\": …}} or {{\"command\": …, \"args\": […]}}",
                    describe(server)
                ),
            );
        }
    }
    Ok(Some(config.clone()))
}

/// The guard fields of a task (which type may have which is checked with `SUBAGENT_ONLY`).
pub(super) fn guards(obj: &Map<String, Value>) -> Result<Guards, FieldError> {
    let worktree = bool_field(obj, "worktree", "worktree")?.unwrap_or(false);
    if worktree && obj.get("cwd").is_none_or(Value::is_null) {
        return err(
            "worktree",
            "needs cwd: the git repository (or a directory in it) whose HEAD each run's worktree starts from",
        );
    }
    Ok(Guards {
        worktree,
        precheck: non_blank(
            string_field(obj, "precheck", "precheck")?,
            "precheck",
            limits::COMMAND,
        )?,
        disallowed_tools: tool_list(obj, "disallowed_tools")?,
        mcp_config: mcp_config(obj)?,
        add_dirs: add_dirs(obj)?,
        max_budget_usd: money(obj, "max_budget_usd")?,
        daily_budget_usd: money(obj, "daily_budget_usd")?,
        pause_after_failures: int_field(
            obj,
            "pause_after_failures",
            "pause_after_failures",
            0,
            1000,
        )?
        .map(|n| n as u32),
    })
}
