//! Server-sent event streams written straight to a connection taken from tiny_http: HTTP/1.1
//! chunked framing, `event: message`, one-line `data:`. A long-lived stream gets its own writer
//! thread fed by a bounded queue (`SseStream::spawn_writer`), so a client that stops reading
//! costs only itself: producers never block on its socket, and a stream that falls behind is
//! dropped. It knows nothing of sessions or JSON-RPC.

use crossbeam_channel::{bounded, RecvTimeoutError, Sender, TrySendError};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
        // One write per chunk (size line, text, CRLF): with TCP_NODELAY each write is a packet.
        let mut frame = format!("{:x}\r\n", text.len()).into_bytes();
        frame.reserve(text.len() + 2);
        frame.extend_from_slice(text.as_bytes());
        frame.extend_from_slice(b"\r\n");
        let result = self
            .writer
            .write_all(&frame)
            .and_then(|()| self.writer.flush());
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

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The client reads too slowly: the queue is full (the caller should drop the stream).
    Behind,
    /// The stream has ended (client gone or closed).
    Closed,
}

enum Outgoing {
    Event { id: Option<String>, data: String },
    Close,
}

/// The producer side of a stream with a writer thread: queueing never blocks.
pub struct SseSender {
    tx: Sender<Outgoing>,
    open: Arc<AtomicBool>,
}

impl SseSender {
    /// Queue one event.
    pub fn send(&self, id: Option<String>, data: String) -> Result<(), QueueError> {
        if !self.is_open() {
            return Err(QueueError::Closed);
        }
        match self.tx.try_send(Outgoing::Event { id, data }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(QueueError::Behind),
            Err(TrySendError::Disconnected(_)) => Err(QueueError::Closed),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// End the stream: the writer sends the last chunk after what is queued (or, when the
    /// queue is full, gives up at its next write) and exits.
    pub fn close(&self) {
        if self.tx.try_send(Outgoing::Close).is_err() {
            self.open.store(false, Ordering::Release);
        }
    }
}

impl Drop for SseSender {
    fn drop(&mut self) {
        self.close();
    }
}

impl SseStream {
    /// Hand the stream to its own writer thread: `backlog` goes out first, then whatever is
    /// queued on the returned sender (at most `capacity` waiting events); a keep-alive comment
    /// after every `keep_alive` of silence. The thread ends when the stream is closed, when the
    /// client stops accepting writes (the socket's write timeout bounds that), or when the sender
    /// is dropped.
    pub fn spawn_writer(
        mut self,
        backlog: Vec<(Option<String>, String)>,
        capacity: usize,
        keep_alive: Duration,
    ) -> io::Result<SseSender> {
        let (tx, rx) = bounded::<Outgoing>(capacity.max(1));
        let open = Arc::new(AtomicBool::new(true));
        let writer_open = Arc::clone(&open);
        std::thread::Builder::new()
            .name("sse-writer".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let ok = backlog
                    .iter()
                    .all(|(id, data)| self.send(id.as_deref(), data).is_ok());
                if ok {
                    loop {
                        let written = match rx.recv_timeout(keep_alive) {
                            Ok(Outgoing::Event { id, data }) => self.send(id.as_deref(), &data),
                            Ok(Outgoing::Close) | Err(RecvTimeoutError::Disconnected) => break,
                            Err(RecvTimeoutError::Timeout) => self.keep_alive(),
                        };
                        if written.is_err() {
                            break;
                        }
                    }
                }
                writer_open.store(false, Ordering::Release);
                self.close();
            })?;
        Ok(SseSender { tx, open })
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;
    use std::time::Instant;

    /// A client that never reads: every write blocks until the test lets go.
    struct Stuck(Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_that_stops_costs_only_its_own_stream() {
        let (release, stuck) = bounded::<()>(0);
        let stream = SseStream {
            writer: Box::new(Stuck(stuck)),
            open: true,
        };
        let sender = stream
            .spawn_writer(Vec::new(), 4, Duration::from_secs(60))
            .expect("writer thread");
        let started = Instant::now();
        let mut results = Vec::new();
        for n in 0..20 {
            results.push(sender.send(Some(format!("g-{n}")), "{}".into()));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "queueing never waits for the socket"
        );
        // One event is in the blocked write, four wait in the queue; the rest find it full.
        assert!(results[..4].iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results.last(), Some(&Err(QueueError::Behind)));
        // The write fails (as a socket write timeout would): the stream is closed for good.
        drop(release);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sender.is_open() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!sender.is_open());
        assert_eq!(
            sender.send(None, "{}".into()),
            Err(QueueError::Closed),
            "a closed stream takes nothing"
        );
    }
}
