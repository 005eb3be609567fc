//! `claudecron_list_tasks` against the real binary: pages of `limit` rows in name order, the
//! total, an opaque `next_cursor` absent on the last page and stable while tasks are added, the
//! filters (status, type, trigger kind, name search), and refusals naming the field.

mod common;

use common::*;
use serde_json::{json, Value};

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn names(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

/// Every page of a listing: (the rows' names, the page) page by page.
fn walk(mcp: &Mcp, args: Value) -> Vec<(Vec<String>, Value)> {
    let mut args = args;
    let mut pages = Vec::new();
    loop {
        let page = mcp.ok("claudecron_list_tasks", args.clone());
        assert_eq!(
            page["count"].as_u64(),
            Some(page["tasks"].as_array().unwrap().len() as u64),
            "count is the rows on this page: {page}"
        );
        let next = page.get("next_cursor").cloned();
        pages.push((names(&page), page));
        match next {
            Some(cursor) => args["cursor"] = cursor,
            None => return pages,
        }
        assert!(pages.len() < 100, "the walk ends");
    }
}

/// 25 tasks: cron (every third, the rest split over manual, hook and interval), every fifth
/// disabled; names with mixed case.
fn add_tasks(mcp: &Mcp) {
    for i in 0..25 {
        let name = if i % 4 == 0 {
            format!("Nightly-{i:02}")
        } else {
            format!("job-{i:02}")
        };
        let mut args = json!({"name": name, "type": "bash", "command": "true",
                              "enabled": i % 5 != 0});
        match i % 3 {
            0 => args["schedule"] = json!(format!("{} 3 * * *", i)),
            1 => args["trigger"] = json!({"type": "manual"}),
            _ if i % 2 == 0 => {
                args["trigger"] = json!({"type": "hook", "event": "PostToolUse", "matcher": "Edit"})
            }
            _ => args["trigger"] = json!({"type": "interval", "every": "15m"}),
        }
        mcp.add(args);
    }
}

#[test]
fn pages_of_limit_rows_walk_every_task_once_in_name_order() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add_tasks(&mcp);

    let pages = walk(&mcp, json!({"limit": 10}));
    assert_eq!(pages.len(), 3, "25 tasks in pages of 10");
    let sizes: Vec<usize> = pages.iter().map(|(n, _)| n.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    for (_, page) in &pages {
        assert_eq!(page["total"], 25, "{page}");
    }
    assert!(
        pages[2].1.get("next_cursor").is_none(),
        "the last page has no cursor"
    );
    let all: Vec<String> = pages.into_iter().flat_map(|(n, _)| n).collect();
    let mut sorted = all.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(all, sorted, "name order, case-insensitive");
    sorted.dedup();
    assert_eq!(sorted.len(), 25, "every task once");

    // The default page holds 50 rows: all of them, and no cursor.
    let page = mcp.ok("claudecron_list_tasks", json!({}));
    assert_eq!(
        (page["count"].as_u64(), page["total"].as_u64()),
        (Some(25), Some(25))
    );
    assert!(page.get("next_cursor").is_none(), "{page}");
    // Rows keep their fields.
    let row = &page["tasks"][0];
    for field in [
        "id",
        "name",
        "type",
        "enabled",
        "trigger",
        "trigger_summary",
        "timezone",
    ] {
        assert!(row.get(field).is_some(), "{field} in {row}");
    }
    assert!(
        row.get("next_run").is_some() && row.get("last_run").is_some(),
        "{row}"
    );
}

#[test]
fn a_cursor_stays_valid_while_tasks_are_added_and_deleted() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add_tasks(&mcp);
    let first = mcp.ok("claudecron_list_tasks", json!({"limit": 10}));
    let cursor = first["next_cursor"].clone();
    assert!(cursor.is_string(), "{first}");
    let second = names(&mcp.ok(
        "claudecron_list_tasks",
        json!({"limit": 10, "cursor": cursor}),
    ));

    // Tasks added before the cursor, and the first page's tasks deleted: the next page is the
    // same rows.
    mcp.add(json!({"name": "aaa-new", "type": "bash", "command": "true", "trigger": {"type": "manual"}}));
    for name in names(&first) {
        mcp.ok("claudecron_delete_task", json!({"taskId": name}));
    }
    let again = mcp.ok(
        "claudecron_list_tasks",
        json!({"limit": 10, "cursor": cursor}),
    );
    assert_eq!(names(&again), second);
    assert_eq!(again["total"], 16);
}

#[test]
fn filters_by_status_type_trigger_and_name() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add_tasks(&mcp);
    let list = |args: Value| mcp.ok("claudecron_list_tasks", args);

    let disabled = list(json!({"status": "disabled"}));
    assert_eq!(disabled["total"], 5);
    assert!(disabled["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["enabled"] == false));
    let enabled = list(json!({"status": "enabled", "limit": 3}));
    assert_eq!(
        (enabled["total"].as_u64(), enabled["count"].as_u64()),
        (Some(20), Some(3))
    );

    let crons = list(json!({"trigger": "cron"}));
    assert_eq!(crons["total"], 9);
    assert!(crons["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["trigger"] == "cron"));
    let enabled_crons = walk(
        &mcp,
        json!({"trigger": "cron", "status": "enabled", "limit": 2}),
    );
    assert_eq!(enabled_crons.iter().map(|(n, _)| n.len()).sum::<usize>(), 7);
    let hooks = list(json!({"trigger": "hook"}));
    assert_eq!(hooks["total"], 4);

    let nightly = list(json!({"search": "NIGHT"}));
    assert_eq!(nightly["total"], 7, "case-insensitive substring: {nightly}");
    assert!(names(&nightly).iter().all(|n| n.starts_with("Nightly-")));
    let percent = list(json!({"search": "%"}));
    assert_eq!(percent["total"], 0, "% is a character, not a wildcard");

    let subagents = list(json!({"type": "subagent"}));
    assert_eq!(
        (subagents["total"].as_u64(), subagents["count"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(subagents.get("next_cursor").is_none());
}

#[test]
fn bad_paging_arguments_are_tool_errors_naming_the_field() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    for (args, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 501}), "limit"),
        (json!({"cursor": "not-a-cursor!"}), "cursor"),
        (json!({"cursor": 7}), "cursor"),
        (json!({"trigger": "sometimes"}), "trigger"),
        (json!({"page": 2}), "page"),
    ] {
        let result = mcp.call("claudecron_list_tasks", args.clone());
        assert_eq!(result["isError"], true, "{args}: {result}");
        assert!(
            text_of(&result).contains(field),
            "{args}: {}",
            text_of(&result)
        );
    }
}

#[test]
fn tools_list_describes_paging_and_the_total() {
    let server = Server::start_default();
    let sid = server.session();
    let tools = server.rpc(&sid, "tools/list", json!({}));
    let tool = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "claudecron_list_tasks")
        .cloned()
        .expect("claudecron_list_tasks");
    let props = &tool["inputSchema"]["properties"];
    for arg in ["status", "type", "trigger", "search", "limit", "cursor"] {
        assert!(props.get(arg).is_some(), "{arg}: {tool}");
    }
    assert_eq!(props["limit"]["maximum"], 500);
    assert_eq!(props["limit"]["default"], 50);
    let required = tool["outputSchema"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("total")), "{tool}");
    assert!(tool["description"]
        .as_str()
        .unwrap()
        .contains("next_cursor"));
}
