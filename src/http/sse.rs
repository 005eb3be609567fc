//! Server-sent event streams written straight to a connection taken from tiny_http, so an open
//! stream holds no worker thread: events are written by whoever produces them, keep-alives by the
//! housekeeping thread. HTTP/1.1 chunked framing, `event: message`, one-line `data:`. It knows
//! nothing of sessions or JSON-RPC.

use std::io::{self, Write};

pub struct SseStream {
    writer: Box<dyn Write + Send>,
    open: bool,
}

/// Format one SSE event (`id` optional) carrying a single-line JSON payload.
pub fn format_event(id: Option<&str>, data: &str) -> String {
    let mut out = String::from("event: message\n");
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    // JSON from serde_json has no raw newlines; guard anyway so the framing cannot break.
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

impl SseStream {
    /// Take over a connection: write the status line and headers of a 200 event stream.
    pub fn open(
        request: tiny_http::Request,
        extra_headers: &[(String, String)],
    ) -> io::Result<SseStream> {
        let mut writer = request.into_writer();
        let mut head = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
        );
        for (name, value) in extra_headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.flush()?;
        Ok(SseStream { writer, open: true })
    }

    fn chunk(&mut self, text: &str) -> io::Result<()> {
        if !self.open {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"));
        }
        let result = (|| {
            write!(self.writer, "{:x}\r\n", text.len())?;
            self.writer.write_all(text.as_bytes())?;
            self.writer.write_all(b"\r\n")?;
            self.writer.flush()
        })();
        if result.is_err() {
            self.open = false;
        }
        result
    }

    /// Send one event.
    pub fn send(&mut self, id: Option<&str>, data: &str) -> io::Result<()> {
        self.chunk(&format_event(id, data))
    }

    /// A comment line that keeps proxies from closing an idle stream.
    pub fn keep_alive(&mut self) -> io::Result<()> {
        self.chunk(": ping\n\n")
    }

    /// End the stream cleanly (last chunk).
    pub fn close(&mut self) {
        if self.open {
            let _ = self.writer.write_all(b"0\r\n\r\n");
            let _ = self.writer.flush();
            self.open = false;
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        self.close();
    }
}
