use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};

use std::borrow::Cow;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Header, HeaderLineError, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// The longest request line accepted (method, target and version); longer is 414.
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// The whole head (request line and headers) must arrive within this, from its first byte.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// The longest header line accepted; longer is 431.
const MAX_HEADER_LINE: usize = 8 * 1024;
/// The most header bytes (and lines) one request may have; more is 431. Upstream had no limit:
/// a client sending one endless header line grew a buffer until memory ran out.
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: Option<SocketAddr>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // set by a request body whose end could not be found (see `request::new_request`): the
    // next request cannot be located, so none is read
    framing_lost: Arc<AtomicBool>,

    // bytes of the current request's head read so far (0: the connection is idle)
    head_bytes: usize,
    /// When the head of the request being read must be complete (set at its first byte): a
    /// client trickling a head byte by byte cannot hold the connection past it.
    head_deadline: Option<Instant>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    /// Answer with this status and a JSON error body, then close the connection (where the
    /// next request would start is unknown).
    Reject(u16, Cow<'static, str>),
    ReadIoError(IoError),
}

/// Why a line of the request head could not be read.
enum LineError {
    TooLong,
    Io(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        // None when the peer is already gone (upstream kept the error and panicked on it later)
        let remote_addr = read_socket.peer_addr().ok().flatten();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            framing_lost: Arc::new(AtomicBool::new(false)),
            head_bytes: 0,
            head_deadline: None,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Answer `status` with a JSON error body and `Connection: close`; the caller then closes the
    /// connection. The answer is written after those to earlier requests on this connection.
    fn reject(&mut self, status: u16, message: &str) {
        log::debug!("answering {} and closing: {}", status, message);
        let mut writer = self.sink.next().unwrap();
        let answer = crate::response::json_error_message(status, message);
        let _ = writer.write_all(&answer).and_then(|()| writer.flush());
    }

    /// Answer `status` (JSON error body) on a connection that will not be served (no thread
    /// could be started for it), and close it.
    pub(crate) fn refuse(mut self, status: u16, message: &str) {
        self.reject(status, message);
    }

    /// Reads the next line from self.next_header_source, without its `CRLF`, refusing lines
    /// longer than `limit`.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    fn read_next_line(&mut self, limit: usize) -> Result<Vec<u8>, LineError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let eof = || {
                LineError::Io(IoError::new(
                    ErrorKind::ConnectionAborted,
                    "Unexpected EOF",
                ))
            };
            let reader = self.next_header_source.turn().ok_or_else(eof)?;
            // The buffered bytes are scanned in place; the clock is read once per fill (each
            // fill that had to wait is one read from the socket), not once per byte.
            let available = match reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                return Err(eof());
            }
            let now = Instant::now();
            match self.head_deadline {
                None => self.head_deadline = Some(now + HEAD_DEADLINE),
                Some(deadline) if now > deadline => {
                    return Err(LineError::Io(IoError::new(
                        ErrorKind::TimedOut,
                        "the request head took too long",
                    )))
                }
                Some(_) => {}
            }

            // Whole pieces up to each '\n' are copied at once (a line ends at CRLF only; a bare
            // '\n' stays in the line). At most `limit + 2` bytes of a line are ever taken.
            let mut used = 0;
            let mut outcome = None;
            while used < available.len() {
                let rest = &available[used..];
                let (piece, found_lf) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                let room = limit + 2 - buf.len();
                if piece.len() >= room {
                    used += room;
                    outcome = Some(Err(LineError::TooLong));
                    break;
                }
                buf.extend_from_slice(piece);
                used += piece.len();
                if !found_lf {
                    prev_byte_was_cr = piece.last().map_or(prev_byte_was_cr, |&b| b == b'\r');
                    break;
                }
                used += 1; // the '\n'
                let ends_line = piece.last().map_or(prev_byte_was_cr, |&b| b == b'\r');
                if ends_line {
                    buf.pop(); // removing the '\r'
                    outcome = Some(Ok(()));
                    break;
                }
                buf.push(b'\n');
                prev_byte_was_cr = false;
                if buf.len() > limit + 1 {
                    outcome = Some(Err(LineError::TooLong));
                    break;
                }
            }
            reader.consume(used);
            self.head_bytes += used;
            match outcome {
                Some(Ok(())) => return Ok(buf),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        self.head_bytes = 0;
        self.head_deadline = None;
        // The connection's reader comes back once the previous request's body is done with;
        // only then is it known whether the next request can be found at all.
        self.next_header_source.wait_turn();
        if self.framing_lost.load(Ordering::Acquire) {
            return Err(ReadError::ReadIoError(IoError::new(
                ErrorKind::ConnectionAborted,
                "the end of the previous request's body is unknown",
            )));
        }
        let reject = |status: u16, message: &'static str| ReadError::Reject(status, message.into());

        // reading the request line
        let line = self.read_next_line(MAX_REQUEST_LINE).map_err(|e| match e {
            LineError::TooLong => reject(414, "the request line is longer than 8192 bytes"),
            LineError::Io(e) => ReadError::ReadIoError(e),
        })?;
        let line = AsciiString::from_ascii(line)
            .map_err(|_| reject(400, "the request line is not ASCII"))?;
        let (method, path, version) = parse_request_line(
            line.as_str().trim(), // TODO: remove this conversion
        )?;

        // getting all headers; after a malformed line the rest of the head is still read (so
        // the connection is closed with nothing unread), and the first fault is answered
        let mut headers = Vec::new();
        let mut fault = None;
        let mut head_size = 0;
        loop {
            let line = self.read_next_line(MAX_HEADER_LINE).map_err(|e| match e {
                LineError::TooLong => reject(431, "a header line is longer than 8192 bytes"),
                LineError::Io(e) => ReadError::ReadIoError(e),
            })?;
            if line.is_empty() {
                break;
            }
            head_size += line.len() + 2;
            if head_size > MAX_HEADER_BYTES || headers.len() >= MAX_HEADERS {
                return Err(reject(
                    431,
                    "the request headers are too large (at most 100 lines and 64 KiB)",
                ));
            }
            if fault.is_some() {
                continue;
            }
            match Header::from_line(line) {
                Ok(h) => headers.push(h),
                Err(HeaderLineError::NotAscii) => {
                    fault = Some(reject(400, "a header line is not ASCII"))
                }
                Err(HeaderLineError::Malformed) => {
                    fault = Some(reject(
                        400,
                        "malformed header line (expected `Name: value`)",
                    ))
                }
            }
        }
        if let Some(fault) = fault {
            return Err(fault);
        }

        // Upstream answered 505 here with the writer still held by the request it had just
        // built, so the answer waited for itself: no answer, a thread and the connection held
        // forever. Checked before anything is built for the request.
        if version < (1, 0) || version > (1, 1) {
            return Err(ReadError::Reject(
                505,
                format!(
                    "HTTP/{}.{} is not supported; this server speaks HTTP/1.1 and HTTP/1.0",
                    version.0, version.1
                )
                .into(),
            ));
        }

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version,
            headers,
            self.remote_addr,
            data_source,
            writer,
            Arc::clone(&self.framing_lost),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => reject(
                    417,
                    "the Expect header is not supported (only `Expect: 100-continue` is)",
                ),
                request::RequestCreationError::Invalid(status, message) => {
                    reject(status, message)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        // Every error answer has a JSON body (upstream: empty bodies, and a silent close for
        // non-ASCII bytes); after one the connection is closed, since where the next request
        // would start is unknown.
        let rq = match self.read() {
            Err(ReadError::Reject(status, message)) => {
                self.reject(status, &message);
                return None;
            }

            Err(ReadError::ReadIoError(ref err))
                if matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
            {
                // A request begun and not finished in time gets 408; an idle kept-alive
                // connection is just closed (a 408 there could be taken as the answer to a
                // request the client is sending at that moment).
                if self.head_bytes > 0 {
                    self.reject(408, "the request was not received in time");
                }
                return None; // closing the connection
            }

            Err(ReadError::ReadIoError(_)) => return None,

            Ok(rq) => rq,
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => {
            return Err(ReadError::Reject(
                400,
                "malformed request line (expected `METHOD /target HTTP/1.1`)".into(),
            ))
        }
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::Reject(
            400,
            "malformed request line (expected `METHOD /target HTTP/1.1`)".into(),
        ))
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
