//! Subagent tasks against the real binary, both runners:
//!
//! - `api`: the server POSTs to a loopback mock of the Anthropic Messages API written here on
//!   `std::net::TcpListener` (one thread, a scripted reply per request, every request recorded):
//!   200 with text blocks and usage, a 400 error body, 429 with `retry-after` then 200, 529, a
//!   hang past the task's timeout, a cancel mid-request, and no key configured.
//! - `claude-code`: a small fake `claude` (a shell script set through `CLAUDECRON_CLAUDE_PATH`)
//!   that records its argv, environment and cwd and prints a result object in the exact shapes
//!   Claude Code 2.1.197 prints (reference/claude-code.md §3.3): success, `error_max_turns`, an
//!   API error (`is_error` with `api_error_status` 401), malformed output, a hang past the
//!   timeout, and the hook event appended to the prompt. The real CLI against a mock API is run
//!   by scripts/interop.sh.
//!
//! Every wait is for a condition with a deadline.

mod common;

use common::{
    assert_group_gone, header_in, is_terminal, live_group_members, over, wait_until, Mcp, Options,
    Server, TempDir,
};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-ant-test-0123456789abcdef";
const NO_CLAUDE: &str = "/nonexistent/claudecron-tests/claude";

// ---------------------------------------------------------------------------------------------
// MCP helpers
// ---------------------------------------------------------------------------------------------

/// What only the subagent tests ask of a session.
impl Mcp<'_> {
    /// `run_task` with `wait_seconds`: the finished run, and how long the call took.
    fn run_wait(&self, task: &str, wait_seconds: u64) -> (Value, Duration) {
        let started = Instant::now();
        let run = self.run_task(task, wait_seconds);
        assert!(
            is_terminal(&run),
            "run_task waited {wait_seconds} s and the run is still {}: {run}",
            run["status"]
        );
        (run, started.elapsed())
    }

    /// `run_task` without waiting: the run id.
    fn start(&self, task: &str) -> i64 {
        let out = self.ok("claudecron_run_task", json!({"taskId": task}));
        out["run"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("run_task returned no run id: {out}"))
    }

    /// The `get_history` row of a run.
    fn history_row(&self, task: &str, run_id: i64) -> Value {
        let runs = self.history(task);
        runs.iter()
            .find(|r| r["id"] == json!(run_id))
            .cloned()
            .unwrap_or_else(|| panic!("run {run_id} not in the history of {task}: {runs:?}"))
    }
}

/// Add `task` on `server` and run it once with `Mcp::run_wait`: the finished run and how long
/// the call took.
fn add_and_run(server: &Server, task: Value, wait_seconds: u64) -> (Value, Duration) {
    let mcp = Mcp::new(server);
    let name = task["name"]
        .as_str()
        .expect("the task has a name")
        .to_string();
    mcp.add_task(task);
    mcp.run_wait(&name, wait_seconds)
}

fn error_of(run: &Value) -> String {
    run["error"].as_str().unwrap_or("").to_string()
}

/// Usage fields that `get_run` and `get_history` must both show for a subagent run.
const USAGE_FIELDS: [&str; 7] = [
    "runner",
    "model",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "num_turns",
    "session_id",
];

fn assert_history_matches_run(mcp: &Mcp, task: &str, run: &Value) {
    let row = mcp.history_row(task, run["id"].as_i64().unwrap());
    for field in USAGE_FIELDS {
        assert!(
            row.get(field).is_some(),
            "get_history rows must show {field}: {row}"
        );
        assert_eq!(
            row[field], run[field],
            "get_history {field} vs get_run: {row}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A loopback mock of the Messages API
// ---------------------------------------------------------------------------------------------

/// What the mock does with the next request.
enum Reply {
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Read the request, then never answer (until the mock is dropped).
    Hang,
    /// Wait, then give the reply.
    Slow(Duration, Box<Reply>),
}

fn respond(status: u16, body: Value) -> Reply {
    Reply::Respond {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

fn respond_with(status: u16, headers: &[(&'static str, &str)], body: Value) -> Reply {
    Reply::Respond {
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_string(),
    }
}

/// A 200 Messages API response: the given content blocks and usage.
fn message(id: &str, model: &str, content: Value, input: i64, output: i64) -> Reply {
    respond(
        200,
        json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": output}
        }),
    )
}

fn api_error(kind: &str, msg: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": msg}})
}

#[derive(Clone, Debug)]
struct Recorded {
    at: Instant,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

struct MockApi {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockApi {
    /// Serve `script` one reply per request, in order; after the script, 500s.
    fn start(script: Vec<Reply>) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock API");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, halt) = (Arc::clone(&requests), Arc::clone(&stop));
        let mut script: VecDeque<Reply> = script.into();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                rec.lock().unwrap().push(request);
                let mut next = script.pop_front();
                if let Some(Reply::Slow(wait, reply)) = next {
                    std::thread::sleep(wait);
                    next = Some(*reply);
                }
                match next {
                    Some(Reply::Slow(..)) => {}
                    Some(Reply::Respond {
                        status,
                        headers,
                        body,
                    }) => write_response(stream, status, &headers, &body),
                    Some(Reply::Hang) => {
                        // Hold the connection open without answering until the test ends.
                        let deadline = Instant::now() + Duration::from_secs(120);
                        while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        drop(stream);
                    }
                    None => write_response(
                        stream,
                        500,
                        &[],
                        &api_error("api_error", "mock: script exhausted").to_string(),
                    ),
                }
            }
        });
        MockApi {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn wait_requests(&self, n: usize, within: Duration) -> Vec<Recorded> {
        wait_until(&format!("{n} requests at the mock API"), within, || {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Recorded {
        at: Instant::now(),
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn write_response(mut stream: TcpStream, status: u16, headers: &[(&str, String)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nrequest-id: req_mock\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// A server whose `api` runner talks to `mock` with `KEY`; no `claude` executable.
fn api_server(mock: &MockApi) -> Server {
    Server::start(
        Options::default()
            .env("CLAUDECRON_ANTHROPIC_BASE_URL", &mock.url())
            .env("CLAUDECRON_ANTHROPIC_API_KEY", KEY)
            .env("CLAUDECRON_DEFAULT_MODEL", "claude-test-default")
            .env("CLAUDECRON_CLAUDE_PATH", NO_CLAUDE),
    )
}

fn api_task(name: &str, extra: Value) -> Value {
    over(
        json!({
            "name": name, "type": "subagent", "trigger": {"type": "manual"},
            "runner": "api", "prompt": "Say hello to the tests."
        }),
        extra,
    )
}

fn assert_key_not_logged(server: &Server) {
    assert!(
        !server.stderr().contains(KEY),
        "the API key appears in the server log"
    );
}

// ---------------------------------------------------------------------------------------------
// api runner
// ---------------------------------------------------------------------------------------------

#[test]
fn api_runner_success_records_text_tokens_and_sends_the_messages_api_request() {
    let mock = MockApi::start(vec![
        message(
            "msg_01",
            "claude-test-1",
            json!([
                {"type": "text", "text": "Hello from the API."},
                {"type": "tool_use", "id": "toolu_1", "name": "x", "input": {}},
                {"type": "text", "text": "Second block."}
            ]),
            12,
            34,
        ),
        message(
            "msg_02",
            "claude-test-default",
            json!([{"type": "text", "text": "ok"}]),
            5,
            6,
        ),
    ]);
    let server = api_server(&mock);
    let mcp = Mcp::new(&server);

    let task = mcp.add_task(api_task(
        "api-ok",
        json!({"model": "claude-test-1", "system": "Be brief."}),
    ));
    assert_eq!(task["effective_runner"], "api", "{task}");
    assert!(task.get("warning").is_none(), "{task}");

    let (run, _) = mcp.run_wait("api-ok", 20);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "Hello from the API.\nSecond block.");
    assert_eq!(run["runner"], "api");
    assert_eq!(run["model"], "claude-test-1");
    assert_eq!(run["input_tokens"], 12);
    assert_eq!(run["output_tokens"], 34);
    assert_eq!(run["num_turns"], 1);
    assert_eq!(run["session_id"], "msg_01");
    assert!(
        run["cost_usd"].is_null(),
        "the api runner does not price tokens: {run}"
    );
    assert_history_matches_run(&mcp, "api-ok", &run);

    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "one request, no retry");
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body["model"], "claude-test-1");
    assert_eq!(r.body["max_tokens"], 4096, "default max_tokens");
    assert_eq!(r.body["system"], "Be brief.");
    assert_eq!(
        r.body["messages"],
        json!([{"role": "user", "content": "Say hello to the tests."}])
    );

    // No model, no system, a max_tokens of its own.
    mcp.add_task(api_task("api-defaults", json!({"max_tokens": 100})));
    let (run, _) = mcp.run_wait("api-defaults", 20);
    assert_eq!(run["status"], "success", "{run}");
    let r = &mock.requests()[1];
    assert_eq!(r.body["model"], "claude-test-default", "default_model");
    assert_eq!(r.body["max_tokens"], 100);
    assert!(r.body.get("system").is_none(), "{}", r.body);
    assert_key_not_logged(&server);
}

#[test]
fn api_runner_4xx_fails_with_the_apis_message_and_no_retry() {
    let msg = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens";
    let mock = MockApi::start(vec![respond(400, api_error("invalid_request_error", msg))]);
    let server = api_server(&mock);
    let (run, _) = add_and_run(&server, api_task("api-400", json!({})), 20);
    assert_eq!(run["status"], "failed", "{run}");
    let error = error_of(&run);
    assert!(error.contains("400"), "{error}");
    assert!(error.contains("invalid_request_error"), "{error}");
    assert!(error.contains(msg), "the API's own message: {error}");
    assert_eq!(run["runner"], "api");
    // Give a wrong retry a moment to show up.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mock.requests().len(), 1, "a 400 is not retried");
}

#[test]
fn api_runner_429_waits_for_retry_after_then_succeeds() {
    let mock = MockApi::start(vec![
        respond_with(
            429,
            &[("retry-after", "1")],
            api_error(
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            ),
        ),
        message(
            "msg_after_429",
            "claude-test-default",
            json!([{"type": "text", "text": "made it"}]),
            1,
            2,
        ),
    ]);
    let server = api_server(&mock);
    let (run, _) = add_and_run(&server, api_task("api-429", json!({})), 30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "made it");
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(1000),
        "the retry came {gap:?} after the 429 (retry-after: 1)"
    );
    assert!(gap < Duration::from_secs(5), "retry took {gap:?}");
    assert_eq!(requests[1].body, requests[0].body, "the same request again");
}

#[test]
fn api_runner_529_is_retried_then_succeeds_or_fails_when_it_persists() {
    let overloaded = || {
        respond_with(
            529,
            &[("retry-after", "0")],
            api_error("overloaded_error", "Overloaded"),
        )
    };
    let mut script = vec![
        overloaded(),
        message(
            "msg_after_529",
            "claude-test-default",
            json!([{"type": "text", "text": "recovered"}]),
            1,
            1,
        ),
    ];
    // Then a run that sees only 529s.
    script.extend((0..10).map(|_| overloaded()));
    let mock = MockApi::start(script);
    let server = api_server(&mock);
    let mcp = Mcp::new(&server);
    mcp.add_task(api_task("api-529", json!({})));

    let (run, _) = mcp.run_wait("api-529", 30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "recovered");
    assert_eq!(mock.requests().len(), 2);

    let (run, took) = mcp.run_wait("api-529", 30);
    assert_eq!(run["status"], "failed", "{run}");
    let error = error_of(&run);
    assert!(
        error.contains("529") && error.contains("Overloaded"),
        "{error}"
    );
    let attempts = mock.requests().len() - 2;
    assert!(
        (2..=6).contains(&attempts),
        "a persistent 529 is retried a few times, then given up: {attempts} attempts"
    );
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
}

#[test]
fn api_runner_hang_past_the_timeout_is_a_prompt_timeout() {
    let mock = MockApi::start(vec![Reply::Hang]);
    let server = api_server(&mock);
    let (run, took) = add_and_run(
        &server,
        api_task("api-hang", json!({"timeout_seconds": 2})),
        30,
    );
    assert_eq!(run["status"], "timeout", "{run}");
    assert!(error_of(&run).contains("timed out"), "{run}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "a 2 s timeout ended the run after {took:?}"
    );
    assert_eq!(run["runner"], "api");
}

#[test]
fn api_runner_cancel_mid_request_is_prompt() {
    let mock = MockApi::start(vec![Reply::Hang]);
    let server = api_server(&mock);
    let mcp = Mcp::new(&server);
    mcp.add_task(api_task("api-cancel", json!({"timeout_seconds": 120})));
    let run_id = mcp.start("api-cancel");
    mock.wait_requests(1, Duration::from_secs(10));
    assert_eq!(mcp.run(run_id)["status"], "running");
    let started = Instant::now();
    let out = mcp.ok("claudecron_cancel_run", json!({"runId": run_id}));
    let took = started.elapsed();
    assert_eq!(out["run"]["status"], "cancelled", "{out}");
    assert!(
        took < Duration::from_secs(3),
        "cancel took {took:?} with the request in flight"
    );
    let run = mcp.run(run_id);
    assert_eq!(run["status"], "cancelled");
    assert!(error_of(&run).contains("cancel"), "{run}");
}

#[test]
fn no_key_and_no_claude_are_reported_at_add_time_and_fail_runs_naming_the_setting() {
    let mock = MockApi::start(vec![]);
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_ANTHROPIC_BASE_URL", &mock.url())
            .env("CLAUDECRON_CLAUDE_PATH", NO_CLAUDE),
    );
    let mcp = Mcp::new(&server);

    // No runner given and no claude executable: the api runner is chosen; it has no key.
    let result = mcp.call(
        "claudecron_add_task",
        json!({"name": "no-key", "type": "subagent", "trigger": {"type": "manual"}, "prompt": "hi"}),
    );
    assert_eq!(
        result["isError"], false,
        "creating it still works: {result}"
    );
    let task = &result["structuredContent"]["task"];
    assert_eq!(task["effective_runner"], "api", "{task}");
    let warning = task["warning"].as_str().unwrap_or("");
    assert!(warning.contains("anthropic_api_key"), "{task}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("anthropic_api_key"),
        "the text answer says so too: {result}"
    );
    let (run, _) = mcp.run_wait("no-key", 20);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(error_of(&run).contains("anthropic_api_key"), "{run}");
    assert!(error_of(&run).contains("ANTHROPIC_API_KEY"), "{run}");
    assert_eq!(run["runner"], "api");
    assert!(mock.requests().is_empty(), "nothing was sent without a key");

    // runner claude-code with no executable: said at add time, and the run fails naming it.
    let task = mcp.add_task(
        json!({"name": "no-claude", "type": "subagent", "trigger": {"type": "manual"}, "prompt": "hi", "runner": "claude-code"}),
    );
    assert_eq!(task["effective_runner"], "claude-code");
    assert!(
        task["warning"]
            .as_str()
            .unwrap_or("")
            .contains("claude_path"),
        "{task}"
    );
    let (run, _) = mcp.run_wait("no-claude", 20);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(error_of(&run).contains("claude_path"), "{run}");
    assert_eq!(run["runner"], "claude-code");
}

// ---------------------------------------------------------------------------------------------
// claude-code runner with a fake `claude`
// ---------------------------------------------------------------------------------------------

/// A fake `claude` in its own temp dir: records argv (NUL-separated), env, cwd and pid, then
/// runs `body` (shell).
struct FakeClaude {
    dir: TempDir,
}

impl FakeClaude {
    fn new(body: &str) -> FakeClaude {
        let dir = TempDir::new("claudecron-fake-claude");
        let d = dir.path().display();
        let script = format!(
            "#!/bin/sh\nd='{d}'\necho $$ > \"$d/pid.tmp\" && mv \"$d/pid.tmp\" \"$d/pid\"\nprintf '%s\\0' \"$@\" > \"$d/argv\"\nenv > \"$d/env\"\npwd > \"$d/cwd\"\ncat > \"$d/stdin\"\n{body}\n"
        );
        let path = dir.path().join("claude");
        std::fs::write(&path, script).expect("write the fake claude");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeClaude { dir }
    }

    /// A fake that prints `result` (one JSON line) and exits with `rc`.
    fn printing(result: &Value, rc: i32) -> FakeClaude {
        FakeClaude::new(&format!("cat <<'EOF'\n{result}\nEOF\nexit {rc}"))
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("claude")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn argv(&self) -> Vec<String> {
        self.read("argv")
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// Wait (bounded) for the fake to start: its pid, which leads the run's process group.
    fn wait_pid(&self) -> i32 {
        wait_until("the fake claude to start", Duration::from_secs(10), || {
            self.read("pid").trim().parse().ok()
        })
    }

    /// The value of `name` in the fake's environment (None when unset).
    fn env(&self, name: &str) -> Option<String> {
        self.read("env")
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(String::from))
    }
}

fn claude_server(fake: &FakeClaude, extra: &[(&str, &str)]) -> Server {
    let mut options = Options::default()
        .env("CLAUDECRON_CLAUDE_PATH", &fake.path().to_string_lossy())
        .env("CLAUDECRON_DEFAULT_MODEL", "claude-test-default");
    for (k, v) in extra {
        options = options.env(k, v);
    }
    Server::start(options)
}

fn claude_task(name: &str, extra: Value) -> Value {
    over(
        json!({
            "name": name, "type": "subagent", "trigger": {"type": "manual"},
            "prompt": "Review the last commits."
        }),
        extra,
    )
}

/// Claude Code 2.1.197's success object (reference/claude-code.md §3.3).
fn success_result() -> Value {
    json!({"type":"result","subtype":"success","is_error":false,"api_error_status":null,"duration_ms":130,"duration_api_ms":16,
        "ttft_ms":126,"ttft_stream_ms":125,"time_to_request_ms":117,"num_turns":3,"result":"Two commits; no issues found.",
        "stop_reason":"end_turn","session_id":"8da0f730-a1b7-4ac9-bca3-0779b7becc3a","total_cost_usd":0.01234,
        "usage":{"input_tokens":1500,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":250,
            "server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard",
            "cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard"},
        "modelUsage":{"claude-sonnet-4-5":{"inputTokens":1500,"outputTokens":250,"cacheReadInputTokens":0,"cacheCreationInputTokens":0,
            "webSearchRequests":0,"costUSD":0.01234,"contextWindow":200000,"maxOutputTokens":64000}},
        "permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","uuid":"6cb29a9e-0000"})
}

#[test]
fn claude_code_success_records_cost_tokens_turns_session_with_the_right_argv_and_env() {
    let fake = FakeClaude::new(&format!(
        "echo 'a warning line before the result' >&2\ncat <<'EOF'\n{}\nEOF\nexit 0",
        success_result()
    ));
    let workdir = TempDir::new("claudecron-cc-cwd");
    let server = claude_server(
        &fake,
        &[
            ("CLAUDECRON_ANTHROPIC_API_KEY", KEY),
            ("CLAUDECRON_ANTHROPIC_BASE_URL", "http://127.0.0.1:9/base"),
            // The server runs inside a Claude Code session: the child must not think it is nested.
            ("CLAUDECODE", "1"),
            ("CLAUDE_CODE_ENTRYPOINT", "cli"),
            // Inherited by runs (the interop suite relies on it).
            ("CLAUDE_CODE_MAX_RETRIES", "0"),
        ],
    );
    let mcp = Mcp::new(&server);
    let task = mcp.add_task(claude_task(
        "cc-ok",
        json!({
            "model": "claude-sonnet-4-5", "max_turns": 3, "allowed_tools": ["Read", "Bash(git *)"],
            "permission_mode": "acceptEdits", "system": "Be brief.",
            "cwd": workdir.path().to_string_lossy(), "env": {"TASK_VAR": "from-task"}
        }),
    ));
    assert_eq!(task["effective_runner"], "claude-code", "{task}");
    assert!(task.get("warning").is_none(), "{task}");

    let (run, took) = mcp.run_wait("cc-ok", 20);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "Two commits; no issues found.");
    assert_eq!(run["runner"], "claude-code");
    assert_eq!(run["model"], "claude-sonnet-4-5");
    assert_eq!(run["cost_usd"], 0.01234);
    assert_eq!(run["input_tokens"], 1500);
    assert_eq!(run["output_tokens"], 250);
    assert_eq!(run["num_turns"], 3);
    assert_eq!(run["session_id"], "8da0f730-a1b7-4ac9-bca3-0779b7becc3a");
    assert_eq!(run["exit_code"], 0);
    assert!(run["error"].is_null(), "{run}");
    assert!(took < Duration::from_secs(10));
    assert_history_matches_run(&mcp, "cc-ok", &run);

    assert_eq!(
        fake.argv(),
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "claude-sonnet-4-5",
            "--max-turns",
            "3",
            "--allowedTools",
            "Read,Bash(git *)",
            "--permission-mode",
            "acceptEdits",
            "--append-system-prompt",
            "Be brief."
        ]
    );
    assert_eq!(fake.env("CLAUDECODE"), None, "CLAUDECODE is removed");
    assert_eq!(fake.env("CLAUDE_CODE_ENTRYPOINT"), None);
    assert_eq!(fake.env("ANTHROPIC_API_KEY").as_deref(), Some(KEY));
    assert_eq!(
        fake.env("ANTHROPIC_BASE_URL").as_deref(),
        Some("http://127.0.0.1:9/base")
    );
    assert_eq!(fake.env("CLAUDE_CODE_MAX_RETRIES").as_deref(), Some("0"));
    assert_eq!(fake.env("TASK_VAR").as_deref(), Some("from-task"));
    assert_eq!(fake.env("CLAUDECRON_TASK_NAME").as_deref(), Some("cc-ok"));
    assert_eq!(fake.env("CLAUDECRON_TRIGGER").as_deref(), Some("manual"));
    assert_eq!(
        fake.read("cwd").trim(),
        workdir.path().canonicalize().unwrap().to_string_lossy()
    );
    assert_eq!(
        fake.read("stdin"),
        "Review the last commits.",
        "the prompt is on stdin"
    );
    assert_key_not_logged(&server);
}

#[test]
fn claude_code_defaults_pass_only_the_model_and_no_key_when_none_is_configured() {
    let fake = FakeClaude::printing(&success_result(), 0);
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    // No runner given: claude_path resolves, so claude-code is chosen.
    let task = mcp.add_task(claude_task("cc-defaults", json!({})));
    assert_eq!(task["effective_runner"], "claude-code", "{task}");
    assert!(
        task.get("warning").is_none(),
        "claude may be logged in on its own: {task}"
    );
    let (run, _) = mcp.run_wait("cc-defaults", 20);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        fake.argv(),
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "claude-test-default"
        ]
    );
    assert_eq!(fake.env("ANTHROPIC_API_KEY"), None);
    assert_eq!(
        fake.env("ANTHROPIC_BASE_URL"),
        None,
        "the public API is Claude Code's own default"
    );
}

#[test]
fn claude_code_error_max_turns_fails_with_the_reason() {
    let result = json!({"type":"result","subtype":"error_max_turns","duration_ms":174,"duration_api_ms":55,"is_error":true,"num_turns":2,
        "stop_reason":"tool_use","session_id":"4f179d72-eab6-4604-8239-7d203e528c5c","total_cost_usd":0.00075,
        "usage":{"input_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10},
        "modelUsage":{"claude-opus-4-8[1m]":{"inputTokens":100,"outputTokens":10,"costUSD":0.00075}},
        "permission_denials":[],"terminal_reason":"max_turns","fast_mode_state":"off","uuid":"aa239de9",
        "errors":["Reached maximum number of turns (1)"]});
    let fake = FakeClaude::printing(&result, 1);
    let server = claude_server(&fake, &[]);
    let (run, _) = add_and_run(
        &server,
        claude_task("cc-max-turns", json!({"max_turns": 1})),
        20,
    );
    assert_eq!(run["status"], "failed", "{run}");
    let error = error_of(&run);
    assert!(
        error.contains("Reached maximum number of turns (1)"),
        "{error}"
    );
    assert!(error.contains("max_turns"), "{error}");
    assert_eq!(run["num_turns"], 2);
    assert_eq!(run["cost_usd"], 0.00075, "a failed run still cost money");
    assert_eq!(run["model"], "claude-opus-4-8");
    assert_eq!(run["exit_code"], 1);
    assert!(fake.argv().windows(2).any(|w| w == ["--max-turns", "1"]));
}

#[test]
fn claude_code_api_error_401_fails() {
    let result = json!({"type":"result","subtype":"success","is_error":true,"api_error_status":401,"duration_ms":71,"duration_api_ms":0,
        "num_turns":1,"result":"Failed to authenticate. API Error: 401 mock forced error","stop_reason":"stop_sequence",
        "session_id":"990b8324-35c0-436d-9bd3-652cdf9da7d5","total_cost_usd":0,
        "usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0},
        "modelUsage":{},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","uuid":"0fa765fe"});
    let fake = FakeClaude::printing(&result, 1);
    let server = claude_server(&fake, &[]);
    let (run, _) = add_and_run(&server, claude_task("cc-401", json!({})), 20);
    assert_eq!(run["status"], "failed", "{run}");
    let error = error_of(&run);
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("Failed to authenticate"), "{error}");
    assert_eq!(run["session_id"], "990b8324-35c0-436d-9bd3-652cdf9da7d5");
}

#[test]
fn claude_code_is_error_with_exit_zero_is_still_a_failure() {
    // "Not logged in" keeps subtype success but sets is_error (reference §3.1).
    let result = json!({"type":"result","subtype":"success","is_error":true,"num_turns":0,
        "result":"Not logged in · Please run /login","session_id":"s-1","total_cost_usd":0});
    let fake = FakeClaude::printing(&result, 0);
    let server = claude_server(&fake, &[]);
    let (run, _) = add_and_run(&server, claude_task("cc-login", json!({})), 20);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(error_of(&run).contains("Not logged in"), "{run}");
}

#[test]
fn claude_code_malformed_output_fails_with_an_excerpt() {
    for (name, rc) in [("cc-garbage-0", 0), ("cc-garbage-1", 1)] {
        let fake = FakeClaude::new(&format!(
            "echo 'Error: unexpected token in settings.json'\necho 'this is not the JSON result'\necho '{{\"type\":\"system\"}}'\nexit {rc}"
        ));
        let server = claude_server(&fake, &[]);
        let (run, _) = add_and_run(&server, claude_task(name, json!({})), 20);
        assert_eq!(run["status"], "failed", "exit {rc}: {run}");
        let error = error_of(&run);
        assert!(
            error.contains("unexpected token in settings.json"),
            "the error quotes what came back: {error}"
        );
        assert!(error.contains(&format!("exit code {rc}")), "{error}");
        assert!(
            run["output"]
                .as_str()
                .unwrap_or("")
                .contains("this is not the JSON result"),
            "the raw output is kept: {run}"
        );
    }
}

#[test]
fn claude_code_root_refusal_of_bypass_permissions_says_what_to_do() {
    // What Claude Code 2.1.197 prints (stderr, no JSON, rc 1) when run as root with
    // --permission-mode bypassPermissions.
    let fake = FakeClaude::new(
        "printf '%s' '--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons' >&2\nexit 1",
    );
    let server = claude_server(&fake, &[]);
    let (run, _) = add_and_run(
        &server,
        claude_task("cc-root", json!({"permission_mode": "bypassPermissions"})),
        20,
    );
    assert_eq!(run["status"], "failed", "{run}");
    let error = error_of(&run);
    assert!(error.contains("cannot be used with root"), "{error}");
    assert!(error.contains("IS_SANDBOX=1"), "{error}");
    assert!(fake
        .argv()
        .windows(2)
        .any(|w| w == ["--permission-mode", "bypassPermissions"]));
}

#[test]
fn claude_code_hang_past_the_timeout_ends_the_process_group() {
    // The fake starts a grandchild and waits; both must be gone after the timeout.
    let fake = FakeClaude::new("sleep 300 &\necho $! > \"$d/child\"\nwait");
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    mcp.add_task(claude_task("cc-hang", json!({"timeout_seconds": 1})));
    let run_id = mcp.start("cc-hang");
    let pgid = fake.wait_pid();
    wait_until(
        "the fake's grandchild to start",
        Duration::from_secs(10),
        || (live_group_members(pgid).len() >= 2).then_some(()),
    );
    let run = mcp.wait_finished(run_id, Duration::from_secs(10));
    assert_eq!(run["status"], "timeout", "{run}");
    assert!(error_of(&run).contains("timed out after 1 s"), "{run}");
    assert_eq!(run["runner"], "claude-code");
    let duration = run["duration_ms"].as_i64().unwrap_or(i64::MAX);
    assert!(
        (900..5000).contains(&duration),
        "a 1 s timeout took {duration} ms"
    );
    assert_group_gone(pgid, "after the timeout");
}

#[test]
fn claude_code_cancel_ends_the_run() {
    let fake = FakeClaude::new("sleep 300 &\nwait");
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    mcp.add_task(claude_task("cc-cancel", json!({"timeout_seconds": 120})));
    let run_id = mcp.start("cc-cancel");
    let pgid = fake.wait_pid();
    let started = Instant::now();
    let out = mcp.ok("claudecron_cancel_run", json!({"runId": run_id}));
    assert_eq!(out["run"]["status"], "cancelled", "{out}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_group_gone(pgid, "after cancel_run");
}

#[test]
fn claude_code_prompt_that_looks_like_an_option_is_never_read_as_one() {
    // Like the real CLI: `--version` anywhere in argv prints the version instead of a result.
    let fake = FakeClaude::new(&format!(
        "for a in \"$@\"; do case $a in --version|-v|--help|-h) echo '2.1.197 (Claude Code)'; exit 0;; esac; done\ncat <<'EOF'\n{}\nEOF\nexit 0",
        success_result()
    ));
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    for (i, prompt) in ["--version", "-h\nthen the rest", "-- --help"]
        .iter()
        .enumerate()
    {
        let name = format!("cc-dash-{i}");
        mcp.add_task(claude_task(&name, json!({"prompt": prompt})));
        let (run, _) = mcp.run_wait(&name, 20);
        assert_eq!(run["status"], "success", "prompt {prompt:?}: {run}");
        assert_eq!(run["output"], "Two commits; no issues found.");
        assert_eq!(
            fake.read("stdin"),
            *prompt,
            "the prompt reaches claude whole, on stdin"
        );
        assert!(
            !fake.argv().iter().any(|a| a.contains(prompt)),
            "the prompt is not in argv: {:?}",
            fake.argv()
        );
    }
}

#[test]
fn claude_code_gets_a_prompt_too_long_for_one_argument() {
    // One argv string may be at most 128 KiB (E2BIG); prompts may be up to 256 KiB.
    let fake = FakeClaude::printing(&success_result(), 0);
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    let prompt = format!("{}end", "word ".repeat(40_000));
    mcp.add_task(claude_task("cc-long", json!({"prompt": prompt})));
    let (run, _) = mcp.run_wait("cc-long", 20);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(fake.read("stdin"), prompt);
}

#[test]
fn hook_triggered_subagent_gets_the_event_appended_to_its_prompt() {
    let fake = FakeClaude::printing(&success_result(), 0);
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    mcp.add_task(json!({
        "name": "cc-on-stop", "type": "subagent", "runner": "claude-code",
        "trigger": {"type": "hook", "event": "Stop"},
        "prompt": "Summarize what the session did."
    }));
    let payload = json!({"session_id": "8b23700e-hook", "transcript_path": "/x.jsonl", "cwd": "/home/dev/proj",
        "hook_event_name": "Stop", "stop_hook_active": false,
        "last_assistant_message": "MOCK_DONE after tool: hello-from-bash"});
    let out = mcp.ok(
        "claudecron_trigger_hook",
        json!({"event": "Stop", "payload": payload}),
    );
    assert_eq!(out["count"], 1, "{out}");
    let run_id = out["matched"][0]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run id: {out}"));
    let run = mcp.wait_finished(run_id, Duration::from_secs(10));
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["trigger"], "hook");

    assert_eq!(fake.argv()[0], "-p");
    let prompt = fake.read("stdin");
    assert!(
        prompt.starts_with("Summarize what the session did.\n"),
        "{prompt}"
    );
    for needle in [
        "\"hook_event_name\": \"Stop\"",
        "8b23700e-hook",
        "MOCK_DONE after tool: hello-from-bash",
    ] {
        assert!(prompt.contains(needle), "{needle} missing from: {prompt}");
    }
    assert_eq!(fake.env("CLAUDECRON_HOOK_EVENT").as_deref(), Some("Stop"));
}

/// One stream-json ending per task (the fake prints the task's `FAKE_OUT` and exits with
/// `FAKE_RC`): the status and reason each produces. Shapes from reference/claude-code.md §3.3–3.4.
#[test]
fn claude_code_endings_table_each_ending_gets_an_honest_status_and_reason() {
    let fake = FakeClaude::new("printf '%s\\n' \"$FAKE_OUT\"\nexit ${FAKE_RC:-0}");
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    let init = r#"{"type":"system","subtype":"init","session_id":"s","model":"claude-opus-4-8[1m]","permissionMode":"dontAsk"}"#;
    let result = |extra: Value| {
        let mut v = json!({"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"Two commits; no issues found.",
            "session_id":"s","total_cost_usd":0.002,"usage":{"input_tokens":100,"output_tokens":10},"permission_denials":[]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        format!("{init}\n{v}")
    };
    let limited = format!(
        "{init}\n{}\n{}",
        json!({"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1_900_000_000,"rateLimitType":"five_hour"}}),
        json!({"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"Claude AI usage limit reached|1900000000","session_id":"s","total_cost_usd":0})
    );
    let table: Vec<(&str, String, i32, &str, &str)> = vec![
        ("success", result(json!({})), 0, "success", ""),
        (
            "max turns",
            result(
                json!({"subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (1)"],"result":null}),
            ),
            1,
            "failed",
            "turn limit (max_turns)",
        ),
        (
            "budget exceeded",
            result(
                json!({"subtype":"error_max_budget_usd","is_error":true,"errors":["Reached maximum budget ($0.01)"],"result":null}),
            ),
            1,
            "failed",
            "spending cap (max_budget_usd): Reached maximum budget ($0.01)",
        ),
        (
            "error during execution",
            result(
                json!({"subtype":"error_during_execution","is_error":true,"errors":["tool crashed"],"result":null}),
            ),
            1,
            "failed",
            "failed during execution: tool crashed",
        ),
        (
            "permission denial",
            result(
                json!({"permission_denials":[{"tool_name":"Bash","tool_use_id":"toolu_1","tool_input":{"command":"touch /srv/x","description":"mock"}}]}),
            ),
            0,
            "failed",
            "refused 1 tool call(s) it wanted: Bash (touch /srv/x)",
        ),
        (
            "empty result",
            result(json!({"result":""})),
            0,
            "failed",
            "empty answer",
        ),
        (
            "CLAUDECRON_FAILED answer",
            result(
                json!({"result":"CLAUDECRON_FAILED: the backup disk is not mounted\nDetails follow."}),
            ),
            0,
            "failed",
            "the run declared failure: the backup disk is not mounted",
        ),
        (
            "rate_limit_event rejected (reset years ahead)",
            limited,
            1,
            "skipped",
            "skipped: usage limit until 2030-03-17T17:46:40Z, more than 168 h ahead",
        ),
        (
            "API 429",
            result(
                json!({"is_error":true,"api_error_status":429,"result":"API Error: 429 rate_limit_error"}),
            ),
            1,
            "failed",
            "usage limit reached (API 429)",
        ),
        (
            "is_error with exit 0",
            result(json!({"is_error":true,"result":"Not logged in · Please run /login"})),
            0,
            "failed",
            "Not logged in",
        ),
        (
            "no result line",
            init.to_string(),
            0,
            "failed",
            "did not print its JSON result",
        ),
    ];
    let mut report = String::from("| ending | status | reason |\n|---|---|---|\n");
    for (i, (ending, out, rc, status, reason)) in table.iter().enumerate() {
        let name = format!("cc-ending-{i}");
        mcp.add_task(claude_task(
            &name,
            json!({"env": {"FAKE_OUT": out, "FAKE_RC": rc.to_string()}}),
        ));
        let (run, _) = mcp.run_wait(&name, 30);
        let why = error_of(&run);
        report.push_str(&format!("| {ending} | {} | {why} |\n", run["status"]));
        assert_eq!(run["status"], *status, "{ending}: {run}");
        assert!(why.contains(reason), "{ending}: {why:?} lacks {reason:?}");
        if *ending != "no result line" {
            // Claude Code's own account is kept on the run.
            let details = &run["claude_code"];
            assert!(details["subtype"].is_string(), "{ending}: {run}");
            if *ending == "permission denial" {
                assert_eq!(
                    details["permission_denials"][0]["tool_name"], "Bash",
                    "{run}"
                );
            }
            if ending.starts_with("rate_limit_event") {
                assert_eq!(details["rate_limit"]["kind"], "five_hour", "{run}");
            }
        }
    }
    eprintln!("{report}");
}

// ---------------------------------------------------------------------------------------------
// Unattended runs: precheck, guard fields
// ---------------------------------------------------------------------------------------------

#[test]
fn precheck_nonzero_skips_without_an_api_request_and_zero_gives_its_output_as_context() {
    let mock = MockApi::start(vec![message(
        "msg_pc",
        "claude-test-default",
        json!([{"type": "text", "text": "Reviewed."}]),
        10,
        5,
    )]);
    let server = api_server(&mock);
    let mcp = Mcp::new(&server);
    let flag = TempDir::new("claudecron-precheck");
    let flag_file = flag.path().join("flag");
    mcp.add_task(api_task(
        "pc-gate",
        json!({"overlap": "queue", "precheck": format!("cat '{}' 2>/dev/null || {{ echo 'nothing new'; exit 3; }}", flag_file.display())}),
    ));
    let (run, _) = mcp.run_wait("pc-gate", 30);
    assert_eq!(run["status"], "skipped", "{run}");
    let why = error_of(&run);
    assert!(
        why.contains("precheck") && why.contains("exited with code 3"),
        "{why}"
    );
    assert!(mcp
        .output(run["id"].as_i64().unwrap())
        .contains("nothing new"));
    assert!(
        mock.requests().is_empty(),
        "a skipped run made no API call: {:?}",
        mock.requests().len()
    );

    std::fs::write(&flag_file, "3 new commits: a1b2c3 fix parser\n").unwrap();
    let (run, _) = mcp.run_wait("pc-gate", 30);
    assert_eq!(run["status"], "success", "{run}");
    let requests = mock.wait_requests(1, Duration::from_secs(10));
    assert_eq!(requests.len(), 1);
    let prompt = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(prompt.starts_with("Say hello to the tests."), "{prompt}");
    assert!(
        prompt.contains("3 new commits: a1b2c3 fix parser"),
        "the precheck output reaches the prompt: {prompt}"
    );
}

#[test]
fn precheck_on_a_bash_task_sets_its_output_in_the_environment_and_times_out_as_a_failure() {
    let server = Server::start(Options::default());
    let mcp = Mcp::new(&server);
    mcp.add_task(
        json!({"name": "pc-bash", "type": "bash", "trigger": {"type": "manual"},
        "precheck": "echo ready-42", "command": "echo \"got:$CLAUDECRON_PRECHECK_OUTPUT\""}),
    );
    let run = mcp.run_task("pc-bash", 30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        mcp.output(run["id"].as_i64().unwrap()).trim(),
        "got:ready-42"
    );

    let marker = TempDir::new("claudecron-precheck-bash");
    let ran = marker.path().join("ran");
    mcp.add_task(
        json!({"name": "pc-slow", "type": "bash", "trigger": {"type": "manual"},
        "timeout_seconds": 1, "precheck": "sleep 30",
        "command": format!("touch '{}'", ran.display())}),
    );
    let run = mcp.run_task("pc-slow", 30);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        error_of(&run).contains("precheck timed out after 1 s"),
        "{run}"
    );
    assert!(!ran.exists(), "the command never ran");
}

#[test]
fn guard_fields_reach_claude_as_flags_and_the_mcp_config_as_a_private_file_removed_after() {
    let fake = FakeClaude::new(&format!(
        "prev=''\nfor a in \"$@\"; do if [ \"$prev\" = --mcp-config ]; then cp \"$a\" \"$d/mcp.json\"; stat -c %a \"$a\" > \"$d/mcp.mode\"; echo \"$a\" > \"$d/mcp.path\"; fi; prev=$a; done\ncat <<'EOF'\n{}\nEOF\nexit 0",
        success_result()
    ));
    let server = claude_server(&fake, &[]);
    let mcp_config = json!({"mcpServers": {"docs": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer s3cret"}}}});
    let (run, _) = add_and_run(
        &server,
        claude_task(
            "cc-guards",
            json!({"permission_mode": "dontAsk", "allowed_tools": ["mcp__docs__search"],
                "disallowed_tools": ["Bash(rm *)", "WebFetch"], "add_dirs": ["/srv/a", "/srv/b"],
                "mcp_config": mcp_config, "max_budget_usd": 0.25}),
        ),
        20,
    );
    assert_eq!(run["status"], "success", "{run}");
    let argv = fake.argv();
    let has = |pair: [&str; 2]| argv.windows(2).any(|w| w == pair);
    assert!(
        has(["--disallowedTools", "Bash(rm *),WebFetch"]),
        "{argv:?}"
    );
    assert!(
        has(["--add-dir", "/srv/a"]) && has(["--add-dir", "/srv/b"]),
        "{argv:?}"
    );
    assert!(has(["--max-budget-usd", "0.25"]), "{argv:?}");
    assert!(has(["--permission-mode", "dontAsk"]), "{argv:?}");
    let at = argv
        .iter()
        .position(|a| a == "--mcp-config")
        .expect("--mcp-config");
    assert_eq!(argv[at + 2], "--strict-mcp-config", "{argv:?}");
    let written: Value =
        serde_json::from_str(&fake.read("mcp.json")).expect("the mcp file is JSON");
    assert_eq!(written, mcp_config);
    assert_eq!(fake.read("mcp.mode").trim(), "600");
    assert!(
        !std::path::Path::new(fake.read("mcp.path").trim()).exists(),
        "the mcp_config file is removed after the run"
    );
    assert!(
        !argv.iter().any(|a| a.contains("s3cret")),
        "no secret in argv"
    );
    let mcp = Mcp::new(&server);
    let task = mcp.task("cc-guards");
    assert_eq!(
        task["mcp_config"]["mcpServers"]["docs"]["headers"]["Authorization"], "(set, hidden)",
        "{task}"
    );
    assert!(
        !task.to_string().contains("s3cret"),
        "get_task never returns the header"
    );
}

#[test]
fn unattended_fields_are_validated_with_reasons() {
    let fake = FakeClaude::printing(&success_result(), 0);
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"permission_mode": "default"}),
            "permission_mode",
            "nobody to answer; accepted: dontAsk, acceptEdits, plan, bypassPermissions",
        ),
        (
            json!({"permission_mode": "yolo"}),
            "permission_mode",
            "accepted: dontAsk",
        ),
        (
            json!({"mcp_config": {"servers": {}}}),
            "mcp_config",
            "mcpServers",
        ),
        (
            json!({"mcp_config": {"mcpServers": {"x": {"type": "http"}}}}),
            "mcp_config.mcpServers.x",
            "is not a server",
        ),
        (
            json!({"mcp_config": "file.json"}),
            "mcp_config",
            "is not an object",
        ),
        (
            json!({"add_dirs": ["rel/dir"]}),
            "add_dirs[0]",
            "absolute directory",
        ),
        (
            json!({"disallowed_tools": "Bash"}),
            "disallowed_tools",
            "list of tool names",
        ),
        (json!({"max_budget_usd": 0}), "max_budget_usd", "above 0"),
        (
            json!({"daily_budget_usd": -1}),
            "daily_budget_usd",
            "above 0",
        ),
        (json!({"precheck": "  "}), "precheck", "must not be empty"),
    ];
    for (i, (extra, field, want)) in cases.iter().enumerate() {
        let result = mcp.call(
            "claudecron_add_task",
            claude_task(&format!("bad-{i}"), extra.clone()),
        );
        assert_eq!(result["isError"], true, "{extra}: {result}");
        let text = result.to_string();
        assert!(
            text.contains(field) && text.contains(want),
            "{extra}: {text}"
        );
    }
    for field in [
        "disallowed_tools",
        "mcp_config",
        "add_dirs",
        "max_budget_usd",
        "daily_budget_usd",
    ] {
        let value = match field {
            "mcp_config" => json!({"mcpServers": {}}),
            "max_budget_usd" | "daily_budget_usd" => json!(1),
            _ => json!(["/x"]),
        };
        let mut task = json!({"name": format!("bash-{field}"), "type": "bash", "command": "true", "trigger": {"type": "manual"}});
        task[field] = value;
        let result = mcp.call("claudecron_add_task", task);
        assert_eq!(result["isError"], true, "{field} on bash: {result}");
        assert!(
            result.to_string().contains("only for subagent tasks"),
            "{result}"
        );
    }
    let task = mcp.add_task(json!({"name": "bash-pc", "type": "bash", "command": "true",
        "trigger": {"type": "manual"}, "precheck": "test -e /"}));
    assert_eq!(task["precheck"], "test -e /", "{task}");
}

// ---------------------------------------------------------------------------------------------
// Spend caps
// ---------------------------------------------------------------------------------------------

fn priced_reply(id: &str) -> Reply {
    // 10 input + 5 output tokens at 1000/2000 USD per million: $0.02 a run.
    message(
        id,
        "claude-test-default",
        json!([{"type": "text", "text": "Done."}]),
        10,
        5,
    )
}

/// A server whose `api` runner talks to `mock`, with `api_prices` and more settings.
fn priced_server(mock: &MockApi, model: &str, prices: &str, extra: &[(&str, &str)]) -> Server {
    let mut options = Options::default()
        .env("CLAUDECRON_ANTHROPIC_BASE_URL", &mock.url())
        .env("CLAUDECRON_ANTHROPIC_API_KEY", KEY)
        .env("CLAUDECRON_DEFAULT_MODEL", model)
        .env("CLAUDECRON_CLAUDE_PATH", NO_CLAUDE)
        .env("CLAUDECRON_API_PRICES", prices);
    for (k, v) in extra {
        options = options.env(k, v);
    }
    Server::start(options)
}

#[test]
fn daily_budget_five_fires_two_runs_three_budget_skips_and_exactly_two_api_requests() {
    let mock = MockApi::start((0..5).map(|i| priced_reply(&format!("msg_b{i}"))).collect());
    let server = priced_server(
        &mock,
        "claude-test-default-20260101",
        "claude-test=1/1, claude-test-default=1000/2000",
        &[],
    );
    let mcp = Mcp::new(&server);
    // queue: a run_task right after the last one ended waits for the engine to see it end
    // (with skip it could be recorded "still active" instead of meeting the cap).
    mcp.add_task(api_task(
        "capped",
        json!({"daily_budget_usd": 0.035, "overlap": "queue"}),
    ));
    let statuses: Vec<(String, String, Value)> = (0..5)
        .map(|_| {
            let (run, _) = mcp.run_wait("capped", 30);
            (
                run["status"].as_str().unwrap_or("").to_string(),
                error_of(&run),
                run["cost_usd"].clone(),
            )
        })
        .collect();
    let count = |s: &str| statuses.iter().filter(|(st, _, _)| st == s).count();
    assert_eq!((count("success"), count("skipped")), (2, 3), "{statuses:?}");
    for (status, why, cost) in &statuses {
        if status == "success" {
            assert!((cost.as_f64().unwrap_or(0.0) - 0.02).abs() < 1e-9, "{cost}");
        } else {
            assert!(
                why.starts_with("skipped: budget: this task's runs cost $0.0400 today"),
                "{why}"
            );
        }
    }
    assert_eq!(mock.requests().len(), 2, "exactly two API requests");
    let task = mcp.task("capped");
    assert!(
        (task["spend"]["today_usd"].as_f64().unwrap_or(0.0) - 0.04).abs() < 1e-9,
        "{}",
        task["spend"]
    );
    assert!((task["spend"]["month_usd"].as_f64().unwrap_or(0.0) - 0.04).abs() < 1e-9);
    assert_eq!(task["spend"]["daily_budget_usd"], 0.035);
}

#[test]
fn the_global_daily_budget_caps_all_tasks_and_max_budget_usd_caps_the_answers_tokens() {
    let mock = MockApi::start((0..3).map(|i| priced_reply(&format!("msg_g{i}"))).collect());
    let server = priced_server(
        &mock,
        "claude-test-default",
        "claude-test-default=1000/2000",
        &[("CLAUDECRON_DAILY_BUDGET_USD", "0.02")],
    );
    let mcp = Mcp::new(&server);
    // $0.01 of output at $2000 per million tokens: at most 5 tokens.
    mcp.add_task(api_task("g1", json!({"max_budget_usd": 0.01})));
    mcp.add_task(api_task("g2", json!({})));
    let (run, _) = mcp.run_wait("g1", 30);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        error_of(&run).contains("spending cap (max_budget_usd): it cost $0.0200 of $0.01"),
        "{run}"
    );
    let requests = mock.wait_requests(1, Duration::from_secs(10));
    assert_eq!(requests[0].body["max_tokens"], 5, "{}", requests[0].body);
    let (run, _) = mcp.run_wait("g2", 30);
    assert_eq!(run["status"], "skipped", "{run}");
    assert!(
        error_of(&run).contains("the server's daily_budget_usd is $0.02"),
        "{run}"
    );
    assert_eq!(mock.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Usage limits defer
// ---------------------------------------------------------------------------------------------

/// Wait (bounded) until run `run_id` is queued again by a usage limit: the row.
fn wait_deferred(mcp: &Mcp, run_id: i64) -> Value {
    wait_until("the run to be deferred", Duration::from_secs(30), || {
        let run = mcp.run(run_id);
        (run["status"] == "queued" && error_of(&run).starts_with("deferred: ")).then_some(run)
    })
}

#[test]
fn api_429_with_a_long_retry_after_defers_the_run_then_it_succeeds_with_no_extra_request() {
    let mock = MockApi::start(vec![
        respond_with(
            429,
            &[("retry-after", "5")],
            api_error("rate_limit_error", "mock: usage limit"),
        ),
        priced_reply("msg_after_limit"),
    ]);
    let server = api_server(&mock);
    let mcp = Mcp::new(&server);
    mcp.add_task(api_task("limited", json!({})));
    let run_id = mcp.start("limited");
    let deferred = wait_deferred(&mcp, run_id);
    let why = error_of(&deferred);
    assert!(
        why.contains("usage limit reached (API 429)") && why.contains("rate_limit_error"),
        "{why}"
    );
    assert_eq!(mock.requests().len(), 1, "no retry while deferred");
    let run = mcp.wait_finished(run_id, Duration::from_secs(60));
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["output"], "Done.");
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "exactly one request at the reset");
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(4500),
        "the retry came {gap:?} after the 429 (retry-after: 5)"
    );
    let history = mcp.history("limited");
    assert_eq!(
        history.len(),
        1,
        "one run, deferred and then run: {history:?}"
    );
}

#[test]
fn claude_code_rejected_rate_limit_event_defers_to_resets_at_then_succeeds() {
    // First call: a rejected rate_limit_event resetting in 3 s and an is_error result; then
    // Claude Code's success object.
    let limited = r#"if [ ! -e "$d/limited" ]; then touch "$d/limited"; r=$(( $(date +%s) + 3 ))
printf '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":%s,"rateLimitType":"five_hour"}}\n' "$r"
echo '{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached"}'
exit 1; fi"#;
    let fake = FakeClaude::new(&format!(
        "{limited}\ncat <<'EOF'\n{}\nEOF\nexit 0",
        success_result()
    ));
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    mcp.add_task(claude_task("cc-limited", json!({})));
    let started = Instant::now();
    let run_id = mcp.start("cc-limited");
    let deferred = wait_deferred(&mcp, run_id);
    assert!(
        error_of(&deferred).contains("usage limit reached (five_hour)"),
        "{deferred}"
    );
    let run = mcp.wait_finished(run_id, Duration::from_secs(60));
    assert_eq!(run["status"], "success", "{run}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited for the reset"
    );
}

#[test]
fn a_deferred_run_stays_queued_across_a_restart() {
    let mock = MockApi::start(vec![respond_with(
        429,
        &[("retry-after", "3600")],
        api_error("rate_limit_error", "mock: usage limit"),
    )]);
    let options = || {
        Options::default()
            .env("CLAUDECRON_ANTHROPIC_BASE_URL", &mock.url())
            .env("CLAUDECRON_ANTHROPIC_API_KEY", KEY)
            .env("CLAUDECRON_CLAUDE_PATH", NO_CLAUDE)
    };
    let server = Server::start(options());
    let run_id = {
        let mcp = Mcp::new(&server);
        mcp.add_task(api_task("limited-restart", json!({})));
        let run_id = mcp.start("limited-restart");
        wait_deferred(&mcp, run_id);
        run_id
    };
    let (_, _, dir) = server.terminate(Duration::from_secs(30));
    let server = Server::start_in(options(), dir);
    let mcp = Mcp::new(&server);
    let run = mcp.run(run_id);
    assert_eq!(
        run["status"], "queued",
        "still deferred after a restart: {run}"
    );
    assert!(error_of(&run).starts_with("deferred: "), "{run}");
    let out = mcp.ok("claudecron_cancel_run", json!({"runId": run_id}));
    assert_eq!(out["run"]["status"], "cancelled", "{out}");
    assert_eq!(mock.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Worktree isolation
// ---------------------------------------------------------------------------------------------

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("git is needed for the worktree tests (apt-get install git): {e}")
        });
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository in `dir` on branch main with `files` committed.
fn git_repo(dir: &std::path::Path, files: &[(&str, &str)]) {
    git(dir, &["init", "-q", "-b", "main"]);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir, &["add", "."]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
}

/// Every file under `dir` (but .git) with its bytes, sorted.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_worktree_run_edits_its_own_worktree_and_leaves_the_checkout_byte_identical() {
    let repo = TempDir::new("claudecron-wt-repo");
    let r = repo.path();
    git_repo(r, &[("src/lib.txt", "original\n"), ("README", "readme\n")]);
    let head = git(r, &["rev-parse", "HEAD"]);
    let before = snapshot(r);
    // The fake agent edits a file and adds one where it runs (the task's cwd is src/).
    let fake = FakeClaude::new(&format!(
        "echo edited > lib.txt\necho new > added.txt\necho \"$CLAUDECRON_WORKTREE\" > \"$d/worktree\"\ncat <<'EOF'\n{}\nEOF\nexit 0",
        success_result()
    ));
    let server = claude_server(&fake, &[]);
    let mcp = Mcp::new(&server);
    let src = r.join("src").to_string_lossy().into_owned();
    mcp.add_task(claude_task("wt", json!({"worktree": true, "cwd": src})));
    let (run, _) = mcp.run_wait("wt", 30);
    assert_eq!(run["status"], "success", "{run}");
    let path = PathBuf::from(
        run["worktree"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no worktree on the run: {run}")),
    );
    let branch = run["worktree"]["branch"].as_str().unwrap().to_string();
    assert_eq!(branch, format!("claudecron/run-{}", run["id"]));
    assert_eq!(fake.read("cwd").trim(), path.join("src").to_string_lossy());
    assert_eq!(fake.read("worktree").trim(), path.to_string_lossy());
    assert_eq!(
        std::fs::read_to_string(path.join("src/lib.txt")).unwrap(),
        "edited\n"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("src/added.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(snapshot(r), before, "the live checkout is byte-identical");
    assert_eq!(git(r, &["status", "--porcelain"]), "", "and clean");
    assert_eq!(git(r, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(r, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert!(git(r, &["worktree", "list"]).contains(&*path.to_string_lossy()));

    // Deleting the task removes its worktree and branch.
    let out = mcp.ok("claudecron_delete_task", json!({"taskId": "wt"}));
    assert_eq!(out["deleted"]["worktrees_removed"], 1, "{out}");
    assert!(!path.exists(), "the worktree directory is gone");
    assert!(!git(r, &["worktree", "list"]).contains(&*path.to_string_lossy()));
    assert_eq!(git(r, &["branch", "--list", &branch]), "");
    assert_eq!(snapshot(r), before);
}

#[test]
fn worktrees_beyond_the_retention_are_removed_and_a_non_repository_fails_the_run() {
    let repo = TempDir::new("claudecron-wt-keep");
    let r = repo.path();
    git_repo(r, &[("f", "x\n")]);
    let fake = FakeClaude::printing(&success_result(), 0);
    let server = claude_server(&fake, &[("CLAUDECRON_WORKTREE_KEEP_PER_TASK", "2")]);
    let mcp = Mcp::new(&server);
    mcp.add_task(claude_task(
        "wt-keep",
        // queue: a run_task right after the last one ended waits for the engine to see it end.
        json!({"worktree": true, "cwd": r.to_string_lossy(), "overlap": "queue"}),
    ));
    let paths: Vec<PathBuf> = (0..3)
        .map(|_| {
            let (run, _) = mcp.run_wait("wt-keep", 30);
            assert_eq!(run["status"], "success", "{run}");
            PathBuf::from(run["worktree"]["path"].as_str().unwrap())
        })
        .collect();
    assert!(!paths[0].exists(), "the oldest worktree was removed");
    assert!(paths[1].exists() && paths[2].exists());
    assert_eq!(
        git(r, &["branch", "--list", "claudecron/*"])
            .lines()
            .count(),
        2
    );

    let plain = TempDir::new("claudecron-wt-plain");
    mcp.add_task(claude_task(
        "wt-plain",
        json!({"worktree": true, "cwd": plain.path().to_string_lossy()}),
    ));
    let (run, _) = mcp.run_wait("wt-plain", 30);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(error_of(&run).contains("inside a git repository"), "{run}");
    let refused = mcp.call(
        "claudecron_add_task",
        claude_task("wt-nocwd", json!({"worktree": true})),
    );
    assert_eq!(refused["isError"], true);
    assert!(refused.to_string().contains("needs cwd"), "{refused}");
}

#[test]
fn queued_runs_meet_the_daily_cap_again_when_they_start() {
    // Run 1 takes a second at the API; runs 2 and 3 wait behind it (overlap = queue) and, when
    // they come to start, run 1's cost has reached the cap: skipped, no request.
    let mock = MockApi::start(vec![Reply::Slow(
        Duration::from_millis(1000),
        Box::new(priced_reply("msg_q1")),
    )]);
    let server = priced_server(
        &mock,
        "claude-test-default",
        "claude-test-default=1000/2000",
        &[],
    );
    let mcp = Mcp::new(&server);
    mcp.add_task(api_task(
        "capped-queue",
        json!({"daily_budget_usd": 0.01, "overlap": "queue"}),
    ));
    let ids: Vec<i64> = (0..3).map(|_| mcp.start("capped-queue")).collect();
    let runs: Vec<Value> = ids
        .iter()
        .map(|id| mcp.wait_finished(*id, Duration::from_secs(60)))
        .collect();
    assert_eq!(runs[0]["status"], "success", "{}", runs[0]);
    for run in &runs[1..] {
        assert_eq!(run["status"], "skipped", "{run}");
        assert!(error_of(run).starts_with("skipped: budget: "), "{run}");
    }
    assert_eq!(mock.requests().len(), 1, "one API request");
}
