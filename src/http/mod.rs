//! HTTP plumbing over tiny_http: a request read into memory (`HttpRequest`), the answer
//! (`Reply`), JSON error bodies, and writing a reply back. It knows no MCP and no SQL; routing
//! lives in `server`, policy in `guard`, the protocol in `mcp`.

pub(crate) mod calendar;
pub(crate) mod guard;
pub(crate) mod lanes;
pub(crate) mod metrics;
pub(crate) mod oauth;
pub(crate) mod server;
pub(crate) mod sse;
pub(crate) mod status;

use serde_json::{json, Value};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// A request with its body read (bounded by `max_body_bytes`).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string (after `?`, without it; "" when there is none). Never logged.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The TCP peer.
    pub peer: IpAddr,
    /// True when the body was larger than allowed (the body is then empty).
    pub body_too_large: bool,
}

impl HttpRequest {
    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Method, path, headers and peer of a tiny_http request; the body is not read yet.
    pub fn head(request: &tiny_http::Request) -> HttpRequest {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let (path, query) = (path.to_string(), query.to_string());
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let peer = request
            .remote_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        HttpRequest {
            method: request.method().as_str().to_ascii_uppercase(),
            path,
            query,
            headers,
            body: Vec::new(),
            peer,
            body_too_large: false,
        }
    }

    /// Read up to `max_body` bytes of body, all of it before `deadline`. A body declared or
    /// found larger is not read further (`body_too_large`, the body abandoned: the connection
    /// closes after the answer). Err when the deadline passes or the read fails: the body is
    /// abandoned and the caller answers 408.
    pub fn read_body(
        &mut self,
        request: &mut tiny_http::Request,
        max_body: usize,
        deadline: Instant,
    ) -> Result<(), BodyError> {
        if request.body_length().is_some_and(|n| n > max_body) {
            self.body_too_large = true;
            refuse_body(request, max_body);
            return Ok(());
        }
        // Read straight into the body (sized from Content-Length when given): no scratch
        // buffer to zero and copy from on every request.
        self.body
            .reserve(request.body_length().unwrap_or(0).min(max_body));
        let limit = u64::try_from(max_body)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut reader = ByDeadline {
            inner: request.as_reader(),
            deadline,
        }
        .take(limit);
        if reader.read_to_end(&mut self.body).is_err() {
            self.body = Vec::new();
            request.abandon_body();
            return Err(BodyError::Stalled);
        }
        if self.body.len() > max_body {
            self.body = Vec::new();
            self.body_too_large = true;
            request.abandon_body();
        }
        Ok(())
    }
}

/// A body reader that fails once the body's deadline has passed (checked before each read; a
/// single read is bounded by the socket's own timeout).
struct ByDeadline<R> {
    inner: R,
    deadline: Instant,
}

impl<R: Read> Read for ByDeadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.inner.read(buf)
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// It did not arrive in time (or the connection failed while it was sent).
    Stalled,
}

/// An answer to send.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A body of an admitted request that is too large to read: one of modest size is read and
/// thrown away after the answer (4 KiB at a time; nothing is kept), so the connection ends
/// cleanly and a proxy that is still sending it gets the answer (413), not a reset; a larger
/// one, or one whose size is not declared, is not read at all and the connection is closed.
fn refuse_body(request: &mut tiny_http::Request, max_body: usize) {
    let drain_at_most = max_body.saturating_mul(4).max(DRAIN_SMALL_BODY);
    if request.body_length().is_none_or(|n| n > drain_at_most) {
        request.abandon_body();
    }
}

/// Bodies up to this size are always drained rather than cut off.
const DRAIN_SMALL_BODY: usize = 64 * 1024;

impl Reply {
    /// A JSON body.
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// 202 Accepted, no body.
    pub fn accepted() -> Reply {
        Reply {
            status: 202,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain (non-JSON-RPC) JSON error: `{"error": message, "status": code}`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, &json!({ "error": message, "status": status }))
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Send it on a tiny_http request.
    pub fn send(self, request: tiny_http::Request) {
        let mut response = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        for (name, value) in &self.headers {
            // A header with a control character (CR, LF: a header or body of someone's choosing
            // after it) is never written, whatever put it there.
            if name
                .bytes()
                .chain(value.bytes())
                .any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
            {
                log::error!("header {name:?} dropped: its value holds a control character");
                continue;
            }
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        if let Err(e) = request.respond(response) {
            log::debug!("client went away before the reply was sent: {e}");
        }
    }
}

/// Decode one `application/x-www-form-urlencoded` value.
pub fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A field of a form body or a query string.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| form_decode(k) == name)
        .map(|(_, v)| form_decode(v))
}

/// Whether a media type list (an Accept header) accepts `wanted` (e.g. "application/json").
pub fn accepts(accept: &str, wanted: &str) -> bool {
    let (wanted_type, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    accept.split(',').any(|item| {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let q_zero = item
            .split(';')
            .skip(1)
            .any(|p| p.trim().replace(' ', "") == "q=0");
        !q_zero && (media == wanted || media == "*/*" || media == format!("{wanted_type}/*"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_are_read_leniently() {
        assert!(accepts(
            "application/json, text/event-stream",
            "application/json"
        ));
        assert!(accepts("text/event-stream", "text/event-stream"));
        assert!(accepts("*/*", "application/json"));
        assert!(accepts("application/*;q=0.5", "application/json"));
        assert!(!accepts("text/html", "application/json"));
        assert!(!accepts("application/json;q=0", "application/json"));
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(form_decode("a+b%20c%3D%2"), "a b c=%2");
        assert_eq!(form_decode("%zz"), "%zz");
        assert_eq!(form_decode("%e2%82%ac"), "€");
        assert_eq!(
            form_field(b"x=1&token=ab%2Bc", "token").as_deref(),
            Some("ab+c")
        );
        assert_eq!(form_field(b"x=1", "token"), None);
    }
}
