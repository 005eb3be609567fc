//! Claude Code hook triggers against the real binary: `POST /hooks` with the verbatim payload
//! shapes Claude Code sends (reference/claude-code.md §4), matching by event, matcher and file
//! pattern, the run's environment and stdin, debounce, `claudecron_trigger_hook`, and the
//! `claudecron hook` forwarder against a live server and against none.

mod common;

use common::{is_terminal, poll, Mcp, Req, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PRE_BASH: &str = r#"{"session_id":"8b23700e-6e43-4f75-a61b-2b0d3536f60b","transcript_path":"/home/dev/.claude/projects/-home-dev-proj/8b23700e.jsonl","cwd":"/home/dev/proj","prompt_id":"ddb7de1e-4e91-48e4-9453-62a654c0a1cf","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"echo hello-from-bash","description":"mock"},"tool_use_id":"toolu_mock0002"}"#;
const POST_BASH: &str = r#"{"session_id":"8b23700e-6e43-4f75-a61b-2b0d3536f60b","transcript_path":"/home/dev/.claude/projects/-home-dev-proj/8b23700e.jsonl","cwd":"/home/dev/proj","prompt_id":"ddb7de1e","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"echo hello-from-bash","description":"mock"},"tool_response":{"stdout":"hello-from-bash","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false},"tool_use_id":"toolu_mock0002","duration_ms":26}"#;
const POST_WRITE: &str = r#"{"session_id":"f57ad40a","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","prompt_id":"fcfedec5","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"PostToolUse","tool_name":"Write","tool_input":{"file_path":"/home/dev/proj/out.txt","content":"hello world"},"tool_response":{"type":"create","filePath":"/home/dev/proj/out.txt","content":"hello world","structuredPatch":[],"originalFile":null,"userModified":false},"tool_use_id":"toolu_mock0008","duration_ms":10}"#;
const POST_MCP: &str = r#"{"session_id":"fb59f615","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","prompt_id":"09168e71","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"PostToolUse","tool_name":"mcp__peer__echo","tool_input":{"text":"hey from mcp"},"tool_response":[{"type":"text","text":"hey from mcp"}],"tool_use_id":"toolu_mock0014","duration_ms":17}"#;
const POST_FAILURE: &str = r#"{"session_id":"a5491c04","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","prompt_id":"3744fe15","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_input":{"command":"echo to-stderr >&2; exit 3","description":"mock"},"tool_use_id":"toolu_mock0020","error":"Exit code 3\nto-stderr","is_interrupt":false,"duration_ms":42}"#;
const USER_PROMPT: &str = r#"{"session_id":"8b23700e","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","prompt_id":"ddb7de1e","permission_mode":"default","hook_event_name":"UserPromptSubmit","prompt":"please run [[bash: echo hello-from-bash]]"}"#;
const STOP: &str = r#"{"session_id":"8b23700e","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","prompt_id":"ddb7de1e","permission_mode":"default","effort":{"level":"high"},"hook_event_name":"Stop","stop_hook_active":false,"last_assistant_message":"MOCK_DONE after tool: hello-from-bash","background_tasks":[],"session_crons":[]}"#;
const SESSION_START: &str = r#"{"session_id":"8b23700e","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","hook_event_name":"SessionStart","source":"startup"}"#;
const SESSION_RESUME: &str = r#"{"session_id":"69f7eb06","transcript_path":"/x.jsonl","cwd":"/home/dev/proj","hook_event_name":"SessionStart","source":"resume"}"#;

/// A command that shows the hook variables and then the payload from stdin.
const SHOW: &str = "echo \"event=$CLAUDECRON_HOOK_EVENT tool=$CLAUDECRON_TOOL_NAME session=$CLAUDECRON_SESSION_ID file=$CLAUDECRON_FILE_PATH trigger=$CLAUDECRON_TRIGGER\"; cat";

/// Add a bash task with this trigger that runs SHOW; returns its id.
fn add(mcp: &Mcp, name: &str, trigger: Value) -> String {
    mcp.add(json!({"name": name, "type": "bash", "trigger": trigger, "command": SHOW}))
}

fn post_hook(server: &Server, body: &str) -> common::Response {
    Req::post("/hooks")
        .bearer(server.token())
        .header("Content-Type", "application/json")
        .body(body.as_bytes().to_vec())
        .send(server.port)
}

/// Wait (up to 10 s) until `task` has `count` finished runs; returns its runs, newest first
/// (what there is by then, if the count was not reached).
fn wait_runs(mcp: &Mcp, task: &str, count: usize) -> Vec<Value> {
    poll(Duration::from_secs(10), || {
        let r = mcp.history(task);
        (r.iter().filter(|x| is_terminal(x)).count() >= count).then_some(r)
    })
    .unwrap_or_else(|| mcp.history(task))
}

/// The whole output of the run with this id.
fn full_output(mcp: &Mcp, run_id: &Value) -> String {
    mcp.output(run_id.as_i64().expect("a run id"))
}

#[test]
fn hooks_endpoint_answers_json_and_refuses_bad_requests() {
    let server = Server::start_default();
    let ok = post_hook(&server, STOP);
    assert_eq!(ok.status, 200, "{}", ok.describe());
    assert_eq!(
        ok.json(),
        json!({}),
        "Claude Code needs a JSON object, never text"
    );

    let no_token = Req::post("/hooks")
        .header("Content-Type", "application/json")
        .body(STOP.as_bytes().to_vec())
        .send(server.port);
    assert_eq!(no_token.status, 401);
    assert!(no_token.header("www-authenticate").is_some());

    let bad = post_hook(&server, "{not json");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap_or("").contains("JSON"));

    let no_event = post_hook(&server, r#"{"session_id":"x"}"#);
    assert_eq!(no_event.status, 400);
    assert!(no_event.json()["error"]
        .as_str()
        .unwrap_or("")
        .contains("hook_event_name"));

    let big = "x".repeat(1_100_000);
    let too_large = post_hook(
        &server,
        &format!(r#"{{"hook_event_name":"Stop","pad":"{big}"}}"#),
    );
    assert_eq!(too_large.status, 413);

    let get = Req::get("/hooks").bearer(server.token()).send(server.port);
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
}

#[test]
fn tool_events_match_by_matcher_and_file_pattern_with_env_and_stdin() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add(
        &mcp,
        "bash-post",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Bash"}),
    );
    add(
        &mcp,
        "writes-txt",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Write|Edit", "file_pattern": "*.txt"}),
    );
    add(
        &mcp,
        "writes-rs",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Write", "file_pattern": "*.rs"}),
    );
    add(
        &mcp,
        "mcp-tools",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "mcp__peer__.*"}),
    );
    add(
        &mcp,
        "pre-bash",
        json!({"type": "hook", "event": "PreToolUse", "matcher": "Bash"}),
    );
    add(
        &mcp,
        "failures",
        json!({"type": "hook", "event": "PostToolUseFailure"}),
    );

    for payload in [PRE_BASH, POST_BASH, POST_WRITE, POST_MCP, POST_FAILURE] {
        assert_eq!(post_hook(&server, payload).status, 200);
    }

    let bash = wait_runs(&mcp, "bash-post", 1);
    assert_eq!(bash.len(), 1, "only the PostToolUse Bash payload: {bash:?}");
    let out = full_output(&mcp, &bash[0]["id"]);
    assert!(
        out.starts_with("event=PostToolUse tool=Bash session=8b23700e-6e43-4f75-a61b-2b0d3536f60b file= trigger=hook\n"),
        "{out}"
    );
    assert!(
        out.ends_with(POST_BASH),
        "the payload arrives on stdin byte for byte: {out}"
    );

    let txt = wait_runs(&mcp, "writes-txt", 1);
    assert_eq!(txt.len(), 1);
    let out = full_output(&mcp, &txt[0]["id"]);
    assert!(
        out.contains("tool=Write") && out.contains("file=/home/dev/proj/out.txt"),
        "{out}"
    );

    let mcp_tools = wait_runs(&mcp, "mcp-tools", 1);
    assert_eq!(mcp_tools.len(), 1, "the MCP tool matched the regex matcher");
    assert_eq!(wait_runs(&mcp, "pre-bash", 1).len(), 1);
    let fail = wait_runs(&mcp, "failures", 1);
    assert_eq!(fail.len(), 1);
    assert!(full_output(&mcp, &fail[0]["id"]).contains("event=PostToolUseFailure tool=Bash"));

    // Matching happens before /hooks answers, so a task that did not match has no run now.
    assert!(
        mcp.history("writes-rs").is_empty(),
        "*.rs must not match out.txt"
    );
}

#[test]
fn payload_values_with_nul_bytes_or_huge_sizes_still_run_with_capped_env_and_whole_stdin() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let dir = common::TempDir::new("claudecron-hook-env");
    // Each variable's length and its last 20 bytes; the payload from stdin into a file.
    mcp.add(json!({
        "name": "odd-payloads", "type": "bash",
        "trigger": {"type": "hook", "event": "PostToolUse"},
        "cwd": dir.path().to_string_lossy(),
        "command": "for v in \"$CLAUDECRON_TOOL_NAME\" \"$CLAUDECRON_SESSION_ID\" \"$CLAUDECRON_FILE_PATH\"; do \
                    printf '%s|' \"$(printf '%s' \"$v\" | wc -c)\" \"$(printf '%s' \"$v\" | tail -c 20)\"; echo; done; \
                    cat > stdin.bin"
    }));
    let huge = "é".repeat(100 * 1024); // 200 KiB: over the kernel's 128 KiB per string
    let payload = json!({
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash\u{0}x",
        "session_id": huge,
        "tool_input": {"file_path": format!("/p/{}", "d/".repeat(60_000))},
    })
    .to_string();
    assert!(payload.contains("\\u0000"), "the NUL travels JSON-escaped");
    assert_eq!(post_hook(&server, &payload).status, 200);
    let runs = wait_runs(&mcp, "odd-payloads", 1);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "success", "{}", runs[0]);
    let out = full_output(&mcp, &runs[0]["id"]);
    let lines: Vec<&str> = out.lines().collect();
    // The NUL became U+FFFD (3 bytes): "Bash" + 3 + "x".
    assert_eq!(lines[0], "8|Bash\u{FFFD}x|", "{out}");
    // Cut to 16 KiB at a character boundary, ending with the marker.
    let (len, end) = lines[1].split_once('|').unwrap();
    let len: usize = len.trim().parse().unwrap();
    assert!((16 * 1024 - 3..=16 * 1024).contains(&len), "{out}");
    assert!(end.ends_with("…[truncated]|"), "{out}");
    assert!(
        end.trim_end_matches("…[truncated]|")
            .chars()
            .all(|c| c == 'é'),
        "{out}"
    );
    let (len, end) = lines[2].split_once('|').unwrap();
    assert!(len.trim().parse::<usize>().unwrap() <= 16 * 1024, "{out}");
    assert!(end.ends_with("…[truncated]|"), "{out}");
    let stdin = std::fs::read(dir.path().join("stdin.bin")).unwrap();
    assert!(
        stdin == payload.as_bytes(),
        "stdin is the payload byte for byte ({} of {} bytes)",
        stdin.len(),
        payload.len()
    );
}

#[test]
fn non_tool_events_use_their_own_matcher_field() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add(
        &mcp,
        "on-startup",
        json!({"type": "hook", "event": "SessionStart", "matcher": "startup"}),
    );
    add(
        &mcp,
        "on-prompt",
        json!({"type": "hook", "event": "UserPromptSubmit"}),
    );
    add(&mcp, "on-stop", json!({"type": "hook", "event": "Stop"}));
    for payload in [SESSION_START, SESSION_RESUME, USER_PROMPT, STOP] {
        assert_eq!(post_hook(&server, payload).status, 200);
    }
    let startup = wait_runs(&mcp, "on-startup", 1);
    assert_eq!(
        startup.len(),
        1,
        "resume does not match the startup matcher"
    );
    assert!(full_output(&mcp, &startup[0]["id"]).contains("\"source\":\"startup\""));
    let prompt = wait_runs(&mcp, "on-prompt", 1);
    assert!(full_output(&mcp, &prompt[0]["id"]).contains("please run"));
    assert_eq!(wait_runs(&mcp, "on-stop", 1).len(), 1);
}

#[test]
fn debounce_coalesces_a_burst_into_one_run_with_the_last_payload() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add(
        &mcp,
        "debounced",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Bash", "debounce_ms": 300}),
    );
    for i in 0..5 {
        let payload = POST_BASH.replace("toolu_mock0002", &format!("toolu_burst{i}"));
        assert_eq!(post_hook(&server, &payload).status, 200);
    }
    let r = wait_runs(&mcp, "debounced", 1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(full_output(&mcp, &r[0]["id"]).contains("toolu_burst4"));
    // A second quiet period later, nothing else arrives.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(mcp.history("debounced").len(), 1);
}

#[test]
fn disabled_tasks_do_not_fire() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add(&mcp, "off", json!({"type": "hook", "event": "Stop"}));
    add(&mcp, "on", json!({"type": "hook", "event": "Stop"}));
    mcp.call(
        "claudecron_toggle_task",
        json!({"taskId": "off", "enabled": false}),
    );
    assert_eq!(post_hook(&server, STOP).status, 200);
    assert_eq!(wait_runs(&mcp, "on", 1).len(), 1);
    assert!(mcp.history("off").is_empty());
}

#[test]
fn trigger_hook_tool_reports_matched_tasks_and_runs() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let id = add(
        &mcp,
        "edits",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Edit", "file_pattern": "**/src/*.py", "debounce_ms": 5000}),
    );
    let result = mcp.call(
        "claudecron_trigger_hook",
        json!({"event": "PostToolUse", "tool_name": "Edit", "file_path": "/srv/app/src/main.py", "session_id": "s-1"}),
    );
    assert_eq!(result["isError"], false, "{result}");
    let matched = &result["structuredContent"]["matched"];
    assert_eq!(matched.as_array().map(Vec::len), Some(1), "{result}");
    assert_eq!(matched[0]["task_id"], json!(id));
    let run_id = matched[0]["run_id"].clone();
    assert!(
        run_id.is_i64(),
        "debounce is skipped for trigger_hook: {result}"
    );
    wait_runs(&mcp, "edits", 1);
    let out = full_output(&mcp, &run_id);
    assert!(
        out.contains("tool=Edit session=s-1 file=/srv/app/src/main.py"),
        "{out}"
    );

    let none = mcp.call(
        "claudecron_trigger_hook",
        json!({"event": "PostToolUse", "tool_name": "Edit", "file_path": "/srv/app/README.md"}),
    );
    assert_eq!(none["structuredContent"]["count"], 0);
    let bad = mcp.call("claudecron_trigger_hook", json!({"event": "PostToolUze"}));
    assert_eq!(bad["isError"], true);
    assert!(bad["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("event"));
}

fn run_hook_cli(url: &str, token: &str, payload: &str) -> (std::process::Output, Duration) {
    let home = common::TempDir::new("claudecron-hook-cli");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["hook", "--url", url])
        .env_clear()
        .env("HOME", home.path())
        .env("CLAUDECRON_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn claudecron hook");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(payload.as_bytes())
        .expect("write payload");
    let out = child.wait_with_output().expect("wait");
    (out, started.elapsed())
}

#[test]
fn hook_cli_forwards_to_a_live_server_and_prints_nothing() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    add(
        &mcp,
        "via-cli",
        json!({"type": "hook", "event": "PostToolUse", "matcher": "Write"}),
    );
    let url = format!("http://127.0.0.1:{}/hooks", server.port);
    let (out, took) = run_hook_cli(&url, server.token(), POST_WRITE);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let r = wait_runs(&mcp, "via-cli", 1);
    assert_eq!(r.len(), 1);
    assert!(full_output(&mcp, &r[0]["id"]).ends_with(POST_WRITE));
}

#[test]
fn hook_cli_exits_zero_quickly_when_no_server_listens() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let (out, took) = run_hook_cli(&url, "whatever-token-123456", STOP);
    assert_eq!(out.status.code(), Some(0), "never fails Claude Code");
    assert!(out.stdout.is_empty());
    assert!(took < Duration::from_secs(2), "bounded wait: {took:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not reach"));
}

#[test]
fn hook_cli_gives_up_on_a_server_that_never_answers_within_two_seconds() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (out, took) = run_hook_cli(&url, "whatever-token-123456", STOP);
    drop(listener);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(took < Duration::from_millis(2600), "{took:?}");
}
