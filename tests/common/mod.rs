//! Shared helpers for integration tests that drive the real `claudecron` binary over HTTP:
//! spawning `claudecron serve` on a free loopback port with its own temporary data directory
//! (killed and cleaned up on drop, stderr captured), and a small hand-written HTTP/1.1 client on
//! `std::net::TcpStream` (Content-Length, chunked and read-to-EOF bodies; SSE streams kept open).
//! On top of that: [`Mcp`], an initialized session with the tool calls the tests make; bounded
//! waits for a condition ([`wait_until`], [`poll`]); run and JSON helpers; and /proc helpers for
//! the process group of a run. A test file adds its own `impl Mcp` or `impl TempDir` blocks for
//! helpers only it needs.
//!
//! Each test binary includes this with `mod common;`; not every binary uses every helper.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single HTTP exchange may take before the test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh bearer token (hex, 48 chars) that no other test shares.
pub fn new_token() -> String {
    let mut s = String::new();
    for byte in unique().bytes().chain(b"claudecron-test".iter().copied()) {
        s.push_str(&format!("{byte:02x}"));
    }
    format!("tk{}", &s[s.len().saturating_sub(46)..])
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `PREFIX-PID-N` under the system temp dir, empty (a leftover of an earlier process with
    /// the same id is removed first). Only the process id and a counter: no long run of digits
    /// in paths that error messages quote (tests check that messages leave out certain numbers).
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// How the server authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `CLAUDECRON_AUTH_TOKENS` = these tokens, comma-separated.
    Tokens(Vec<String>),
    /// No token configured: the server creates `DATA/token`; tests read it back.
    TokenFile,
    /// `CLAUDECRON_AUTH=none`.
    None,
}

/// Options for [`Server::start`].
#[derive(Clone, Debug)]
pub struct Options {
    pub auth: Auth,
    /// Extra environment (`CLAUDECRON_<KEY>` settings and the like).
    pub env: Vec<(String, String)>,
    /// Run the server as this user and group id (the test must be root to use it).
    pub uid: Option<u32>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            auth: Auth::Tokens(vec![new_token()]),
            env: Vec::new(),
            uid: None,
        }
    }
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Options {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn auth(mut self, auth: Auth) -> Options {
        self.auth = auth;
        self
    }

    /// Run the server as `uid` (and gid `uid`): for permission tests when the tests run as root.
    pub fn uid(mut self, uid: u32) -> Options {
        self.uid = Some(uid);
        self
    }
}

/// A running `claudecron serve`, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// Accepted tokens (the first is what helpers send); empty with `auth = none`.
    pub tokens: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    pub dir: TempDir,
}

impl Server {
    /// A server with one fresh token and otherwise default settings except a high rate limit
    /// (tests send many requests; the rate-limit tests set their own).
    pub fn start_default() -> Server {
        Server::start(Options::default())
    }

    pub fn start(options: Options) -> Server {
        Server::start_in(options, TempDir::new("claudecron-it"))
    }

    /// Start on an existing data directory (its `tasks.db` and token file are reused): a
    /// restart after [`Server::terminate`] or [`Server::kill9`].
    pub fn start_in(options: Options, dir: TempDir) -> Server {
        let mut last_err = String::new();
        // A port picked by binding :0 can be taken by someone else before the server binds it;
        // then the server exits with "cannot listen" and we try another.
        for _ in 0..5 {
            match Server::try_start(&options, &dir) {
                Ok((child, port, stderr, reader)) => {
                    let tokens = match &options.auth {
                        Auth::Tokens(t) => t.clone(),
                        Auth::TokenFile => {
                            let text = std::fs::read_to_string(dir.path().join("token"))
                                .expect("the server created its token file");
                            vec![text.trim().to_string()]
                        }
                        Auth::None => Vec::new(),
                    };
                    return Server {
                        child,
                        port,
                        tokens,
                        stderr,
                        stderr_reader: Some(reader),
                        dir,
                    };
                }
                Err(e) => last_err = e,
            }
        }
        panic!("the server did not start: {last_err}");
    }

    #[allow(clippy::type_complexity)]
    fn try_start(
        options: &Options,
        dir: &TempDir,
    ) -> Result<(Child, u16, Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>), String> {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
        cmd.arg("serve")
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--db")
            .arg(dir.path().join("tasks.db"));
        // Only our settings: nothing from the developer's environment or config file.
        for (key, _) in std::env::vars() {
            if key.starts_with("CLAUDECRON_") || key == "ANTHROPIC_API_KEY" {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", dir.path())
            .env("CLAUDECRON_RATE_LIMIT_PER_MINUTE", "100000");
        match &options.auth {
            Auth::Tokens(t) => {
                cmd.env("CLAUDECRON_AUTH_TOKENS", t.join(","));
            }
            Auth::TokenFile => {}
            Auth::None => {
                cmd.env("CLAUDECRON_AUTH", "none");
            }
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        if let Some(uid) = options.uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        let started = Instant::now();
        let listening = format!("listening on http://127.0.0.1:{port}");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = reader.join();
                let log = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
                return Err(format!("server exited with {status}; stderr:\n{log}"));
            }
            // Ready when *our* process says it listens (not someone else on a reused port) and
            // /health answers.
            let announced = String::from_utf8_lossy(&stderr.lock().unwrap()).contains(&listening);
            if announced {
                if let Ok(resp) = Req::get("/health")
                    .timeout(Duration::from_secs(2))
                    .try_send(port)
                {
                    if resp.status == 200 {
                        return Ok((child, port, stderr, reader));
                    }
                }
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                let log = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
                panic!("server not ready within {START_TIMEOUT:?}; stderr:\n{log}");
            }
            // Poll interval while waiting for readiness (bounded by START_TIMEOUT above).
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn token(&self) -> &str {
        self.tokens.first().map(String::as_str).unwrap_or("")
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Stop the server and return its complete stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.stderr_reader.take() {
            let _ = r.join();
        }
        self.stderr()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) only sends a signal to our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.child.id());
    }

    /// Wait (bounded) for the server to exit; None if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            // Poll interval while awaiting the exit (bounded by `timeout`).
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Hand the data directory over (for a restart) without deleting it; the server must have
    /// exited already.
    fn take_dir(&mut self) -> TempDir {
        std::mem::replace(&mut self.dir, TempDir(PathBuf::new()))
    }

    /// SIGTERM, then wait (up to `timeout`) for the exit. Returns the exit status, the complete
    /// stderr and the data directory (kept, for [`Server::start_in`]). Panics if the server does
    /// not exit in time.
    pub fn terminate(mut self, timeout: Duration) -> (std::process::ExitStatus, String, TempDir) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "the server did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            )
        });
        let log = self.stderr();
        (status, log, self.take_dir())
    }

    /// SIGKILL (kill -9) the server, as a crash would. Returns its stderr and the data directory.
    pub fn kill9(mut self) -> (String, TempDir) {
        self.signal(libc::SIGKILL);
        let _ = self.wait_exit(Duration::from_secs(10));
        let log = self.stderr();
        (log, self.take_dir())
    }

    pub fn host_header(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A POST to /mcp with the usual client headers: bearer token (if any), JSON content type,
    /// `Accept: application/json, text/event-stream`, and with a session its id and
    /// `MCP-Protocol-Version: 2025-11-25`.
    pub fn mcp(&self, session: Option<&str>, body: &Value) -> Req {
        let mut req = Req::post("/mcp")
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .json(body);
        if !self.token().is_empty() {
            req = req.bearer(self.token());
        }
        if let Some(s) = session {
            req = req
                .header("MCP-Session-Id", s)
                .header("MCP-Protocol-Version", "2025-11-25");
        }
        req
    }

    /// `initialize` (protocol 2025-11-25): the whole HTTP response.
    pub fn initialize_response(&self, version: &str) -> Response {
        self.mcp(None, &initialize_body(version)).send(self.port)
    }

    /// A fresh, initialized session (`initialize` + `notifications/initialized`): its id.
    pub fn session(&self) -> String {
        let resp = self.initialize_response("2025-11-25");
        assert_eq!(resp.status, 200, "initialize: {}", resp.describe());
        let id = resp
            .header("mcp-session-id")
            .expect("initialize sets MCP-Session-Id")
            .to_string();
        let note = self
            .mcp(
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .send(self.port);
        assert_eq!(
            note.status,
            202,
            "notifications/initialized: {}",
            note.describe()
        );
        id
    }

    /// A JSON-RPC request on a session; returns the JSON-RPC response object (asserting HTTP 200).
    pub fn rpc(&self, session: &str, method: &str, params: Value) -> Value {
        let id = COUNTER.fetch_add(1, Ordering::SeqCst);
        let resp = self
            .mcp(
                Some(session),
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .send(self.port);
        assert_eq!(resp.status, 200, "{method}: {}", resp.describe());
        let msg = resp.json();
        assert_eq!(msg["id"], json!(id), "{method}: response id: {msg}");
        assert_eq!(msg["jsonrpc"], "2.0");
        msg
    }

    /// `tools/call`; returns the `result` (a CallToolResult), asserting there was no JSON-RPC
    /// error.
    pub fn call_tool(&self, session: &str, name: &str, arguments: Value) -> Value {
        let msg = self.rpc(
            session,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        );
        assert!(
            msg.get("error").is_none(),
            "tools/call {name} gave a JSON-RPC error: {msg}"
        );
        msg["result"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.stderr_reader.take() {
            let _ = r.join();
        }
        // SPEC §8, checked after every test: no token ever reaches the log.
        if !std::thread::panicking() {
            let log = self.stderr();
            for token in &self.tokens {
                assert!(
                    !log.contains(token.as_str()),
                    "a bearer token appears in the server log:\n{log}"
                );
            }
        }
    }
}

pub fn initialize_body(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "claudecron-tests", "version": "1"}
        }
    })
}

/// An HTTP request to send by hand.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Send the body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: IO_TIMEOUT,
            chunked: false,
        }
    }

    pub fn get(path: &str) -> Req {
        Req::new("GET", path)
    }

    pub fn post(path: &str) -> Req {
        Req::new("POST", path)
    }

    /// Add a header (sent in order; a `Host` given here replaces the default one).
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Drop every header of that name.
    pub fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    /// Replace (or add) a header.
    pub fn set(self, name: &str, value: &str) -> Req {
        self.without(name).header(name, value)
    }

    pub fn bearer(self, token: &str) -> Req {
        self.set("Authorization", &format!("Bearer {token}"))
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    pub fn json(self, value: &Value) -> Req {
        self.body(serde_json::to_vec(value).unwrap())
    }

    pub fn timeout(mut self, t: Duration) -> Req {
        self.timeout = t;
        self
    }

    pub fn chunked(mut self) -> Req {
        self.chunked = true;
        self
    }

    fn head_bytes(&self, port: u16) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if self.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    fn connect(&self, port: u16) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn write_to(&self, stream: &mut TcpStream, port: u16) -> std::io::Result<()> {
        let mut out = self.head_bytes(port);
        if self.chunked {
            for piece in self.body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        stream.write_all(&out)?;
        stream.flush()
    }

    /// Send on a fresh connection (`Connection: close`) and read the whole response.
    pub fn try_send(&self, port: u16) -> std::io::Result<Response> {
        let req = self.clone().set("Connection", "close");
        let mut stream = req.connect(port)?;
        req.write_to(&mut stream, port)?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader)?;
        let body = if self.method == "HEAD" || status == 204 || status == 304 {
            Vec::new()
        } else {
            read_body(&mut reader, &headers)?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Send and read the response; panics (with the request) on an I/O error or timeout.
    pub fn send(&self, port: u16) -> Response {
        self.try_send(port)
            .unwrap_or_else(|e| panic!("{} {} failed: {e}", self.method, self.path))
    }

    /// Send and read only the status line and headers, keeping the connection open (an event
    /// stream). The body is read from the returned stream.
    pub fn open(&self, port: u16) -> std::io::Result<OpenResponse> {
        let mut stream = self.connect(port)?;
        self.write_to(&mut stream, port)?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader)?;
        Ok(OpenResponse {
            status,
            headers,
            reader,
            pending: String::new(),
        })
    }
}

/// A complete HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The value of the first header called `name` (any case).
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; for an event stream, the data of its last event.
    pub fn json(&self) -> Value {
        let is_sse = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let text = if is_sse {
            self.text()
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .next_back()
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            self.text()
        };
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.describe()))
    }

    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 1500 {
            body.truncate(1500);
            body.push('…');
        }
        format!("HTTP {} {:?} body: {body}", self.status, self.headers)
    }
}

/// A response whose body is still on the connection (an event stream).
pub struct OpenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub reader: BufReader<TcpStream>,
    /// Event-stream text received but not yet returned by [`read_sse_event`].
    pub pending: String,
}

impl OpenResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// True when the server has ended the stream or closed the connection, judged without
    /// waiting: already-received bytes that are the terminating chunk, or EOF.
    pub fn ended_now(&self) -> bool {
        let buffered = self.reader.buffer().to_vec();
        if buffered.starts_with(b"0\r\n") {
            return true;
        }
        let stream = self.reader.get_ref();
        stream.set_nonblocking(true).expect("nonblocking");
        let mut peek = [0u8; 16];
        let ended = match stream.peek(&mut peek) {
            Ok(0) => true,
            Ok(n) => buffered.is_empty() && peek[..n].starts_with(b"0\r\n"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        stream.set_nonblocking(false).expect("blocking");
        ended
    }

    pub fn close(self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line: {status_line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let chunked = header_in(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(reader)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad chunk size line: {size_line:?}"),
                    )
                })?;
            if size == 0 {
                // Trailers, then the empty line.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            read_line(reader)?; // CRLF after the chunk
        }
    } else if let Some(len) = header_in(headers, "content-length") {
        let len: usize = len.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "bad Content-Length")
        })?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Read one SSE event (lines up to a blank line) from a chunked event stream, undoing the chunk
/// framing. Returns the event's lines (comments included).
pub fn read_sse_event(stream: &mut OpenResponse) -> std::io::Result<Vec<String>> {
    loop {
        if let Some(end) = stream.pending.find("\n\n") {
            let event: Vec<String> = stream.pending[..end].lines().map(str::to_string).collect();
            stream.pending.drain(..end + 2);
            return Ok(event);
        }
        let size_line = read_line(&mut stream.reader)?;
        let size = usize::from_str_radix(size_line.trim(), 16).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size line")
        })?;
        if size == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "stream ended",
            ));
        }
        let mut chunk = vec![0u8; size];
        stream.reader.read_exact(&mut chunk)?;
        read_line(&mut stream.reader)?;
        stream.pending.push_str(&String::from_utf8_lossy(&chunk));
    }
}

// ---------------------------------------------------------------------------------------------
// MCP tool calls
// ---------------------------------------------------------------------------------------------

/// An initialized MCP session on a server, with the tool calls the tests use.
pub struct Mcp<'a> {
    pub server: &'a Server,
    pub session: String,
}

impl<'a> Mcp<'a> {
    pub fn new(server: &'a Server) -> Mcp<'a> {
        Mcp {
            server,
            session: server.session(),
        }
    }

    /// `tools/call`: the CallToolResult.
    pub fn call(&self, name: &str, args: Value) -> Value {
        self.server.call_tool(&self.session, name, args)
    }

    /// A tool call that must succeed: its structuredContent.
    pub fn ok(&self, name: &str, args: Value) -> Value {
        let result = self.call(name, args.clone());
        assert_eq!(
            result["isError"],
            json!(false),
            "{name} {args} failed: {result}"
        );
        result["structuredContent"].clone()
    }

    /// Add a task; returns the task view `add_task` answers with.
    pub fn add_task(&self, args: Value) -> Value {
        self.ok("claudecron_add_task", args)["task"].clone()
    }

    /// Add a task; returns its id.
    pub fn add(&self, args: Value) -> String {
        let task = self.add_task(args);
        task["id"]
            .as_str()
            .unwrap_or_else(|| panic!("add_task returned no id: {task}"))
            .to_string()
    }

    pub fn task(&self, task: &str) -> Value {
        self.ok("claudecron_get_task", json!({"taskId": task}))["task"].clone()
    }

    /// Every run of a task, newest first.
    pub fn history(&self, task: &str) -> Vec<Value> {
        let out = self.ok(
            "claudecron_get_history",
            json!({"taskId": task, "limit": 1000}),
        );
        out["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Every run of a task, oldest first (by id).
    pub fn runs(&self, task: &str) -> Vec<Value> {
        let mut runs = self.history(task);
        runs.sort_by_key(|r| r["id"].as_i64());
        runs
    }

    /// Finished runs of a task, oldest first (by id).
    pub fn finished_runs(&self, task: &str) -> Vec<Value> {
        self.runs(task).into_iter().filter(is_terminal).collect()
    }

    /// One run with its whole output.
    pub fn run(&self, run_id: i64) -> Value {
        self.ok("claudecron_get_run", json!({"runId": run_id}))["run"].clone()
    }

    /// The whole output of a run.
    pub fn output(&self, run_id: i64) -> String {
        self.run(run_id)["output"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// `run_task`: the run as returned (plus the `note`, if any, under "note").
    pub fn run_task(&self, task: &str, wait_seconds: u64) -> Value {
        let out = self.ok(
            "claudecron_run_task",
            json!({"taskId": task, "wait_seconds": wait_seconds}),
        );
        let mut run = out["run"].clone();
        if let Some(note) = out.get("note") {
            run["note"] = note.clone();
        }
        run
    }

    /// Wait (bounded) for a run to reach a final status; returns it.
    pub fn wait_finished(&self, run_id: i64, timeout: Duration) -> Value {
        wait_until(&format!("run {run_id} to finish"), timeout, || {
            let run = self.run(run_id);
            is_terminal(&run).then_some(run)
        })
    }
}

/// A run that is over (neither queued nor running).
pub fn is_terminal(run: &Value) -> bool {
    !matches!(run["status"].as_str(), Some("queued") | Some("running"))
}

pub fn id_of(run: &Value) -> i64 {
    run["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("run without id: {run}"))
}

/// An RFC 3339 time in a JSON value.
pub fn ts(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"))
        .with_timezone(&Utc)
}

/// `base` (a JSON object) with `patch`'s keys laid over it; a null in `patch` removes the key.
pub fn over(base: Value, patch: Value) -> Value {
    let mut out = base.as_object().unwrap().clone();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Bounded waits
// ---------------------------------------------------------------------------------------------

/// How often a bounded wait checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Check `check` every 50 ms until it gives a value; None once `timeout` has passed without one.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Poll interval of a bounded wait for a condition.
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Like [`poll`], but a timeout fails the test, naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll(timeout, check).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

// ---------------------------------------------------------------------------------------------
// Process groups, from /proc
// ---------------------------------------------------------------------------------------------

/// Live (not zombie) processes whose process group is `pgid`, from /proc.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name (in parentheses): state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[0] != "X" && fields[2] == pgid.to_string()
        {
            members.push(pid);
        }
    }
    members
}

/// A SIGKILLed process takes a moment to be torn down: wait (bounded) for the group to empty.
/// On failure the test panics without signalling anything: by then the group id may name
/// another test's run, and a kill aimed at it would end a stranger.
pub fn assert_group_gone(pgid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_group_members(pgid);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what}: processes {left:?} of group {pgid} are still alive");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook receivers
// ---------------------------------------------------------------------------------------------

/// One request a test's webhook receiver read: the request line, the headers (names in lower
/// case) and the Content-Length body.
#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Read one HTTP/1.1 request from an accepted connection (10 s at most per read); the stream
/// is given back to answer on.
pub fn read_request(stream: std::net::TcpStream) -> (Received, std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let received = Received {
        request_line: request_line.trim().to_string(),
        headers,
        body,
    };
    (received, reader.into_inner())
}

/// One request a test's sink received: when, its path, headers (names in lower case), body.
#[derive(Debug, Clone)]
pub struct Sunk {
    pub at: DateTime<Utc>,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Sunk {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} sent no JSON ({e}): {:?}", self.path, self.body))
    }
}

/// A local HTTP sink (a notification receiver): records every request and answers 200. Each is
/// recorded before the answer, so once the server has its 200 the test sees the request.
pub fn sink() -> (u16, Arc<Mutex<Vec<Sunk>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (r, mut stream) = read_request(stream);
            let path = r.request_line.split_whitespace().nth(1).unwrap_or("");
            seen.lock().unwrap().push(Sunk {
                at: Utc::now(),
                path: path.to_string(),
                headers: r.headers,
                body: r.body,
            });
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, got)
}

/// A CLI run that must have exited 0 (`what` names it when it did not): its stdout.
pub fn succeeded(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A host command (`claudecron ARGS --db <the server's tasks.db>`) as the owner runs it on the
/// host: no CLAUDECRON_* settings of the test's environment, `stdin` written to it.
pub fn host_cli(server: &Server, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claudecron"));
    cmd.args(args)
        .arg("--db")
        .arg(server.dir.path().join("tasks.db"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CLAUDECRON_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .env("HOME", server.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run claudecron");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("claudecron ends")
}
