//! docs/API.md, generated from the server's own tool definitions (`mcp::tools::definitions`):
//! every tool with its title, hints, description, arguments and result fields. `claudecron
//! api-docs` prints it; a test fails when the committed file drifts. Text only.

use serde_json::Value;

fn type_of(schema: &Value) -> String {
    let base = match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "array of {}",
            schema
                .get("items")
                .map(type_of)
                .unwrap_or_else(|| "any".into())
        ),
        Some(t) => t.to_string(),
        None => "any".into(),
    };
    match schema.get("enum").and_then(Value::as_array) {
        Some(values) => {
            let list: Vec<String> = values
                .iter()
                .map(|v| {
                    format!(
                        "`{}`",
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect();
            format!("{base}: {}", list.join(", "))
        }
        None => base,
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The whole document.
pub fn render() -> String {
    let mut out = String::from(
        "# claudecron MCP tools\n\n\
         Generated from the server's own tool definitions by `claudecron api-docs > docs/API.md`;\n\
         `cargo test` fails when this file drifts from them. Every tool returns `structuredContent`\n\
         (fields below) plus a text block with a readable line and the same JSON. Bad arguments\n\
         come back as a result with `isError: true` naming the field and what is accepted; an\n\
         unknown tool is a JSON-RPC error -32602. `taskId` accepts a task's id or its exact name.\n",
    );
    out.push_str(&format!(
        "\n## Protocol\n\n\
         `/mcp` speaks MCP {} (Streamable HTTP). A request whose `MCP-Protocol-Version` is\n\
         `{}` is served statelessly: per-request `_meta`, `Mcp-Method`/`Mcp-Name` headers checked\n\
         against the body, `server/discover`, `resultType` on every result; `initialize` selects the\n\
         2025 era with sessions and a GET stream. Both eras list and read run logs as resources\n\
         (templates `claudecron://runs/{{runId}}` and `claudecron://tasks/{{taskId}}/latest-run`, text);\n\
         a result about a run carries a `resource_link` to it. On {} the tasks extension `{}` is\n\
         offered: a client that declares it gets `claudecron_run_task` as a task (its id is the run\n\
         id, durable across restarts) to poll with `tasks/get` and end with `tasks/cancel`. The\n\
         2025-11-25 tasks utility is not offered.\n",
        crate::mcp::SUPPORTED_VERSIONS.join(", "),
        crate::mcp::modern::MODERN_VERSION,
        crate::mcp::modern::MODERN_VERSION,
        crate::mcp::tasks_ext_id(),
    ));
    for tool in crate::mcp::tools::definitions() {
        let name = tool["name"].as_str().unwrap_or("");
        out.push_str(&format!(
            "\n## `{name}` — {}\n\n",
            tool["title"].as_str().unwrap_or("")
        ));
        let a = &tool["annotations"];
        let hint = |k: &str| a[k].as_bool().unwrap_or(false);
        let mut hints = Vec::new();
        if hint("readOnlyHint") {
            hints.push("read-only");
        } else {
            hints.push(if hint("destructiveHint") {
                "destructive"
            } else {
                "changes state"
            });
        }
        if hint("idempotentHint") {
            hints.push("idempotent");
        }
        out.push_str(&format!("*{}*\n\n", hints.join(", ")));
        out.push_str(tool["description"].as_str().unwrap_or(""));
        out.push_str("\n\n");
        let schema = &tool["inputSchema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match schema["properties"].as_object() {
            Some(props) if !props.is_empty() => {
                out.push_str("| argument | type | required | default | description |\n|---|---|---|---|---|\n");
                let mut names: Vec<&String> = props.keys().collect();
                names.sort_by_key(|n| {
                    (
                        !required.contains(&n.as_str()),
                        n.as_str() != "taskId",
                        n.to_string(),
                    )
                });
                for arg in names {
                    let p = &props[arg];
                    out.push_str(&format!(
                        "| `{arg}` | {} | {} | {} | {} |\n",
                        cell(&type_of(p)),
                        if required.contains(&arg.as_str()) {
                            "yes"
                        } else {
                            ""
                        },
                        p.get("default")
                            .map(|d| format!("`{d}`"))
                            .unwrap_or_default(),
                        cell(p.get("description").and_then(Value::as_str).unwrap_or(""))
                    ));
                }
            }
            _ => out.push_str("No arguments.\n"),
        }
        let fields: Vec<String> = tool["outputSchema"]["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(|f| format!("`{f}`"))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!("\nResult: {}.\n", fields.join(", ")));
    }
    out
}
