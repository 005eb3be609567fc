//! The benchmark's request floor: the least a server can do per call on this machine. A bare
//! HTTP/1.1 responder over kept-alive loopback TCP (a thread per connection, `TCP_NODELAY`, the
//! head and the body read, the answer in one write) that answers every POST with the same small
//! JSON-RPC result and an `Mcp-Session-Id` header: no MCP, no JSON parse, no auth, no log, no
//! database. What it costs per call (kernel TCP work, waking a thread) every server pays before
//! it does anything. Standard library only; scripts/bench.sh builds it with `rustc -O` into
//! target/bench/floor.
//!
//!   floor PORT        listen on 127.0.0.1:PORT until killed
//!
//! Exit status 2 on bad arguments or when the port cannot be bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

const BODY: &[u8] = br#"{"jsonrpc":"2.0","id":7,"result":{}}"#;
const MAX_HEAD: usize = 64 * 1024;

fn main() {
    let port: u16 = match std::env::args().nth(1).and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: floor PORT");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(2);
        }
    };
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}

/// Answers the connection's requests until it closes or sends something this cannot frame.
fn serve(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let answer = {
        let mut a = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: floor\r\n\
             Content-Length: {}\r\n\r\n",
            BODY.len()
        )
        .into_bytes();
        a.extend_from_slice(BODY);
        a
    };
    let mut buf = vec![0u8; MAX_HEAD];
    let mut have = 0;
    loop {
        let head_end = loop {
            if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if have == buf.len() {
                return;
            }
            match stream.read(&mut buf[have..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        };
        let Some(length) = content_length(&buf[..head_end]) else {
            return;
        };
        let end = head_end + length;
        if end > buf.len() {
            return;
        }
        while have < end {
            match stream.read(&mut buf[have..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        if stream.write_all(&answer).is_err() {
            return;
        }
        buf.copy_within(end..have, 0);
        have -= end;
    }
}

/// The head's Content-Length (0 when there is none); None when it is not a number.
fn content_length(head: &[u8]) -> Option<usize> {
    for line in head.split(|&b| b == b'\n') {
        let line = std::str::from_utf8(line).ok()?.trim();
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                return value.trim().parse().ok();
            }
        }
    }
    Some(0)
}
