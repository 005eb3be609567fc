//! The benchmark's load generator: MCP Streamable HTTP calls over kept-alive HTTP/1.1
//! connections, one connection and one MCP session per client thread. Standard library only;
//! scripts/bench.sh builds it with `rustc -O` into target/bench/loadgen.
//!
//!   loadgen --url http://127.0.0.1:PORT/mcp --token TOKEN --clients C --count N
//!           [--max-seconds S] [--warmup W] [--pid PID] [--clk-tck HZ] [--start K]
//!           --body JSON [--body JSON ...]
//!
//! Each client thread opens one connection, initializes a session (initialize with protocol
//! 2025-11-25, then notifications/initialized, Mcp-Session-Id from then on) and makes W warm-up
//! calls with the first body and i = 0 (so warm up only with read-only bodies). When every client
//! is ready, the timed part starts: the clients take call numbers i = K, K+1, ... from a shared
//! counter until N calls are taken or S seconds have passed (the series stops early and says how
//! many it did). Call i sends body number i modulo the number of bodies, with `{i}` replaced by i
//! and `{i%K}` by i mod K. After the timed part each client ends its session with DELETE.
//!
//! With --pid, the server process's CPU time (utime + stime from /proc/PID/stat) is read just
//! before and just after the timed part.
//!
//! Prints one JSON object: done, errors, first_error, wall_s, rps, p50_us, p90_us, p99_us,
//! max_us, mean_us, cpu_ms, cpu_us_per_call, reconnects, stopped_early. A call counts as an error
//! when the status is not 200, the body has no "result", or it has "isError":true.
//! Exit status 0 when it measured (even with errors), 2 on bad arguments.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const PROTOCOL: &str = "2025-11-25";
const IO_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    addr: String,
    path: String,
    token: String,
    clients: usize,
    count: usize,
    max_seconds: f64,
    warmup: usize,
    pid: Option<u32>,
    clk_tck: f64,
    start: usize,
    bodies: Vec<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    eprintln!(
        "usage: loadgen --url http://HOST:PORT/PATH --token T --clients C --count N [--max-seconds S] \
         [--warmup W] [--pid PID] [--clk-tck HZ] [--start K] --body JSON [--body JSON ...]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: String::new(),
        path: String::new(),
        token: String::new(),
        clients: 1,
        count: 100,
        max_seconds: 30.0,
        warmup: 0,
        pid: None,
        clk_tck: 100.0,
        start: 0,
        bodies: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let num = |v: String| -> f64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--url" => {
                let url = val();
                let rest = url
                    .strip_prefix("http://")
                    .unwrap_or_else(|| usage("--url must start with http://"));
                let (addr, path) = match rest.find('/') {
                    Some(p) => (&rest[..p], &rest[p..]),
                    None => (rest, "/"),
                };
                a.addr = addr.to_string();
                a.path = path.to_string();
            }
            "--token" => a.token = val(),
            "--clients" => a.clients = num(val()) as usize,
            "--count" => a.count = num(val()) as usize,
            "--max-seconds" => a.max_seconds = num(val()),
            "--warmup" => a.warmup = num(val()) as usize,
            "--pid" => a.pid = Some(num(val()) as u32),
            "--clk-tck" => a.clk_tck = num(val()),
            "--start" => a.start = num(val()) as usize,
            "--body" => a.bodies.push(val()),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    if a.addr.is_empty() || a.bodies.is_empty() || a.clients == 0 {
        usage("--url, --body and a positive --clients are required");
    }
    a
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Conn {
    addr: String,
    reader: Option<BufReader<TcpStream>>,
    reconnects: usize,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            reader: None,
            reconnects: 0,
        }
    }

    fn connect(&mut self) -> std::io::Result<()> {
        let stream = TcpStream::connect(&self.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        if self.reader.is_some() {
            self.reconnects += 1;
        }
        self.reader = Some(BufReader::with_capacity(64 * 1024, stream));
        Ok(())
    }

    fn post(&mut self, path: &str, headers: &str, body: &str) -> Result<Response, String> {
        self.send("POST", path, headers, body)
    }

    /// One request; it goes out in a single write. Reconnects once when a kept-alive
    /// connection turns out to be closed before any answer byte.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> Result<Response, String> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        for attempt in 0..2 {
            if self.reader.is_none() {
                self.connect()
                    .map_err(|e| format!("connect {}: {e}", self.addr))?;
            }
            let r = self.reader.as_mut().unwrap();
            let sent = r.get_mut().write_all(req.as_bytes());
            let res = sent
                .map_err(|e| (false, e.to_string()))
                .and_then(|_| read_response(r));
            match res {
                Ok(resp) => {
                    if resp.close {
                        self.reader = None;
                    }
                    return Ok(resp);
                }
                Err((nothing_read, e)) => {
                    self.reader = None;
                    if !(nothing_read && attempt == 0) {
                        return Err(e);
                    }
                }
            }
        }
        Err("connection closed twice".into())
    }
}

/// Err((true, _)) when the connection closed before any byte of an answer.
fn read_response(r: &mut BufReader<TcpStream>) -> Result<Response, (bool, String)> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => return Err((true, "connection closed".into())),
        Ok(_) => {}
        Err(e) => return Err((true, format!("read: {e}"))),
    }
    let err = |e: std::io::Error| (false, format!("read: {e}"));
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or((false, format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(err)? == 0 {
            return Err((false, "connection closed in the headers".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let close = get("connection").is_some_and(|v| v.contains("close"));
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| (false, format!("bad content-length {len}")))?;
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(err)?;
    } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(err)?;
            let size_str = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_str, 16)
                .map_err(|_| (false, format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // trailers, up to the empty line
                loop {
                    line.clear();
                    if r.read_line(&mut line).map_err(err)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..]).map_err(err)?;
            line.clear();
            r.read_line(&mut line).map_err(err)?; // CRLF after the chunk
        }
    } else if !(status == 202 || status == 204 || status == 304 || (100..200).contains(&status)) {
        r.read_to_end(&mut body).map_err(err)?;
        return Ok(Response {
            status,
            headers,
            body,
            close: true,
        });
    }
    Ok(Response {
        status,
        headers,
        body,
        close,
    })
}

fn call_ok(resp: &Response) -> Result<(), String> {
    let text = String::from_utf8_lossy(&resp.body);
    let squeezed: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(200_000)
        .collect();
    if resp.status != 200
        || !squeezed.contains("\"result\"")
        || squeezed.contains("\"isError\":true")
    {
        let mut t: String = text.chars().take(300).collect();
        t = t.replace('\n', " ");
        return Err(format!("HTTP {}: {t}", resp.status));
    }
    Ok(())
}

struct Session {
    conn: Conn,
    headers: String,
}

fn open_session(a: &Args) -> Result<Session, String> {
    let mut conn = Conn::new(&a.addr);
    let auth = format!("Authorization: Bearer {}\r\n", a.token);
    let init = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"{PROTOCOL}\",\
         \"capabilities\":{{}},\"clientInfo\":{{\"name\":\"claudecron-bench-loadgen\",\"version\":\"1\"}}}}}}"
    );
    let resp = conn.post(&a.path, &auth, &init)?;
    call_ok(&resp).map_err(|e| format!("initialize: {e}"))?;
    let sid = resp
        .header("mcp-session-id")
        .ok_or("initialize: no Mcp-Session-Id header")?
        .to_string();
    let headers = format!("{auth}Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: {PROTOCOL}\r\n");
    let resp = conn.post(
        &a.path,
        &headers,
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
    )?;
    if !(200..300).contains(&resp.status) {
        return Err(format!("notifications/initialized: HTTP {}", resp.status));
    }
    Ok(Session { conn, headers })
}

/// Body number i mod (number of bodies), with `{i}` replaced by i and `{i%K}` by i mod K.
fn body_for(a: &Args, i: usize) -> String {
    let template = &a.bodies[i % a.bodies.len()];
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template.as_str();
    while let Some(p) = rest.find("{i") {
        out.push_str(&rest[..p]);
        let tail = &rest[p + 2..];
        if let Some(after) = tail.strip_prefix('}') {
            out.push_str(&i.to_string());
            rest = after;
            continue;
        }
        if let Some(modulus) = tail.strip_prefix('%') {
            if let Some(end) = modulus.find('}') {
                if let Ok(k) = modulus[..end].parse::<usize>() {
                    if k > 0 {
                        out.push_str(&(i % k).to_string());
                        rest = &modulus[end + 1..];
                        continue;
                    }
                }
            }
        }
        out.push_str("{i");
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[derive(Default)]
struct Shared {
    latencies_us: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    reconnects: usize,
}

fn main() {
    let a = Arc::new(parse_args());
    let ready = Arc::new(Barrier::new(a.clients + 1));
    let go = Arc::new(Barrier::new(a.clients + 1));
    let finished = Arc::new(Barrier::new(a.clients + 1));
    let next = Arc::new(AtomicUsize::new(0));
    let stopped_early = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut threads = Vec::new();
    for _ in 0..a.clients {
        let (a, ready, go, finished, next, stopped_early, shared) = (
            a.clone(),
            ready.clone(),
            go.clone(),
            finished.clone(),
            next.clone(),
            stopped_early.clone(),
            shared.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut errors = 0usize;
            let mut first_error: Option<String> = None;
            let mut lat = Vec::with_capacity(a.count / a.clients + 1);
            let mut session = open_session(&a);
            if let Ok(s) = session.as_mut() {
                for _ in 0..a.warmup {
                    let body = body_for(&a, 0);
                    if let Err(e) = s
                        .conn
                        .post(&a.path, &s.headers, &body)
                        .and_then(|r| call_ok(&r))
                    {
                        first_error.get_or_insert(format!("warm-up: {e}"));
                        break;
                    }
                }
            }
            ready.wait();
            go.wait();
            let deadline = Instant::now() + Duration::from_secs_f64(a.max_seconds);
            let mut reconnects = 0;
            let mut open = None;
            match session {
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
                Ok(mut s) => {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= a.count {
                            break;
                        }
                        if Instant::now() >= deadline {
                            stopped_early.store(true, Ordering::Relaxed);
                            break;
                        }
                        let body = body_for(&a, a.start + n);
                        let t0 = Instant::now();
                        let res = s.conn.post(&a.path, &s.headers, &body);
                        let us = t0.elapsed().as_secs_f64() * 1e6;
                        match res.and_then(|r| call_ok(&r)) {
                            Ok(()) => lat.push(us),
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    reconnects = s.conn.reconnects;
                    open = Some(s);
                }
            }
            finished.wait();
            if let Some(mut s) = open {
                // end the session, as a client that is done should (after the timed part)
                let _ = s.conn.send("DELETE", &a.path, &s.headers, "");
            }
            let mut sh = shared.lock().unwrap();
            sh.latencies_us.extend(lat);
            sh.errors += errors;
            sh.reconnects += reconnects;
            if sh.first_error.is_none() {
                sh.first_error = first_error;
            }
        }));
    }
    ready.wait();
    let cpu0 = a.pid.and_then(cpu_ticks);
    let t0 = Instant::now();
    go.wait();
    finished.wait();
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = a.pid.and_then(cpu_ticks);
    for t in threads {
        let _ = t.join();
    }
    let sh = shared.lock().unwrap();
    let mut lat = sh.latencies_us.clone();
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let done = lat.len();
    let pct = |p: f64| -> String {
        if lat.is_empty() {
            "null".into()
        } else {
            let idx = ((p / 100.0 * (lat.len() - 1) as f64).round() as usize).min(lat.len() - 1);
            format!("{:.1}", lat[idx])
        }
    };
    let mean = if done > 0 {
        format!("{:.1}", lat.iter().sum::<f64>() / done as f64)
    } else {
        "null".into()
    };
    let (cpu_ms, cpu_per) = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) => {
            let ms = (c1 - c0) as f64 * 1000.0 / a.clk_tck;
            let per = if done > 0 {
                format!("{:.1}", ms * 1000.0 / done as f64)
            } else {
                "null".into()
            };
            (format!("{ms:.1}"), per)
        }
        _ => ("null".into(), "null".into()),
    };
    let first_error = match &sh.first_error {
        Some(e) => format!(
            "\"{}\"",
            e.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace(|c: char| c.is_control(), " ")
        ),
        None => "null".into(),
    };
    println!(
        "{{\"clients\":{},\"requested\":{},\"done\":{done},\"errors\":{},\"first_error\":{first_error},\
         \"wall_s\":{wall:.3},\"rps\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"mean_us\":{mean},\
         \"cpu_ms\":{cpu_ms},\"cpu_us_per_call\":{cpu_per},\"reconnects\":{},\"stopped_early\":{}}}",
        a.clients,
        a.count,
        sh.errors,
        done as f64 / wall.max(1e-9),
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        sh.reconnects,
        stopped_early.load(Ordering::Relaxed)
    );
}
