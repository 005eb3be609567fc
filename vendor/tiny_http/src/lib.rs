//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]

#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use zeroize::Zeroizing;

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use client::ClientConnection;
use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};
pub use test::TestRequest;

mod client;
mod common;
mod connection;
mod request;
mod response;
mod ssl;
mod test;
mod util;

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,

    // set when the accept thread ended without being asked to (a fatal accept error, a
    // panic): why, so that `recv` reports it every time instead of waiting for requests that
    // will never come
    listener_failure: Arc<Mutex<Option<(IoErrorKind, String)>>>,
}

/// Lives as long as the accept thread. However that thread ends other than by the `Server`
/// being dropped (a fatal accept error, a panic), the failure is recorded and a waiting
/// `recv` is woken with it. Upstream only reported an accept error; a panic there left `recv`
/// blocked forever, the server alive but deaf.
struct AcceptThreadEnd {
    messages: Arc<MessagesQueue<Message>>,
    close: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<(IoErrorKind, String)>>>,
    error: Option<IoError>,
}

impl Drop for AcceptThreadEnd {
    fn drop(&mut self) {
        if self.close.load(Relaxed) {
            return;
        }
        let error = self.error.take().unwrap_or_else(|| {
            let what = if thread::panicking() {
                "the accept thread panicked"
            } else {
                "the accept thread stopped"
            };
            IoError::new(IoErrorKind::Other, what)
        });
        log::error!("no more connections will be accepted: {}", error);
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        *failure = Some((error.kind(), error.to_string()));
        drop(failure);
        self.messages.push(error.into());
    }
}

/// What to do after a failed `accept`.
enum AcceptFailure {
    /// The connection went away before it was accepted, or a signal interrupted: go on.
    Retry,
    /// Out of file descriptors or memory: wait a little, then go on. (Upstream stopped accepting
    /// for good, so a burst of connections that ran the process out of descriptors made the
    /// server deaf until it was restarted.)
    Backoff,
    /// The listening socket itself is unusable.
    Fatal,
}

fn classify_accept_error(e: &IoError) -> AcceptFailure {
    match e.kind() {
        IoErrorKind::ConnectionAborted
        | IoErrorKind::ConnectionReset
        | IoErrorKind::Interrupted
        | IoErrorKind::WouldBlock => return AcceptFailure::Retry,
        IoErrorKind::OutOfMemory => return AcceptFailure::Backoff,
        _ => {}
    }
    // ENFILE, EMFILE (the same numbers on Linux, the BSDs and macOS), ENOBUFS
    match e.raw_os_error() {
        Some(23) | Some(24) => AcceptFailure::Backoff,
        #[cfg(target_os = "linux")]
        Some(105) => AcceptFailure::Backoff,
        _ => AcceptFailure::Fatal,
    }
}

/// A connection handed to the task pool. If it is dropped before a thread took it (no thread
/// could be started), the client is answered 503 instead of finding the connection closed.
struct PendingClient(Option<ClientConnection>);

impl Drop for PendingClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            client.refuse(
                503,
                "the server cannot start a thread for this connection; retry shortly",
            );
        }
    }
}

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// this trait is to make sure that Server implements Share and Send
#[doc(hidden)]
trait MustBeShareDummy: Sync + Send {}
#[doc(hidden)]
impl MustBeShareDummy for Server {}

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// If `Some`, then the server will use SSL to encode the communications.
    pub ssl: Option<SslConfig>,
}

/// Handles each request of a connection on that connection's own thread, one after the other
/// (see `Server::from_listener_with_handler`).
pub type RequestHandler = Arc<dyn Fn(Request) + Send + Sync + 'static>;

/// Limits on connections, checked when a connection is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLimits {
    /// Open connections one peer address may hold at once; another is answered 503 and closed
    /// at once (a flood from one address cannot take every thread).
    pub per_address: Option<usize>,
    /// Loopback peers (a reverse proxy in front) are not counted.
    pub exempt_loopback: bool,
}

/// Open connections per peer address.
struct AddressCounts {
    limits: ConnectionLimits,
    counts: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    ip: std::net::IpAddr,
}

impl AddressCounts {
    /// Count a new connection from `addr`: Err when its address is at the limit.
    fn enter(
        self: &Arc<Self>,
        addr: Option<std::net::SocketAddr>,
    ) -> Result<Option<AddressSlot>, usize> {
        let (Some(max), Some(addr)) = (self.limits.per_address, addr) else {
            return Ok(None);
        };
        let ip = addr.ip();
        if self.limits.exempt_loopback && ip.is_loopback() {
            return Ok(None);
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return Err(max);
        }
        *n += 1;
        Ok(Some(AddressSlot {
            counts: Arc::clone(self),
            ip,
        }))
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Configuration of the server for SSL.
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: None,
        })
    }

    /// Shortcut for an HTTPS server on a specific address.
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    #[inline]
    pub fn https<A>(
        addr: A,
        config: SslConfig,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: Some(config),
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_with_limits(listener, ssl_config, ConnectionLimits::default())
    }

    /// `from_listener` with limits on connections (see `ConnectionLimits`).
    pub fn from_listener_with_limits<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
        limits: ConnectionLimits,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::build(listener, ssl_config, limits, None)
    }

    /// `from_listener_with_limits` where each request is given to `handler` on the thread of its
    /// connection, in order, instead of being queued for `recv`: no hand-off between threads per
    /// request. The handler answers the request (or drops it: 500) before the connection's next
    /// request is read. `recv` and `incoming_requests` then only end: on `unblock`, or with the
    /// error once accepting has failed.
    pub fn from_listener_with_handler<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
        limits: ConnectionLimits,
        handler: RequestHandler,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::build(listener, ssl_config, limits, Some(handler))
    }

    fn build<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
        limits: ConnectionLimits,
        handler: Option<RequestHandler>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let addresses = Arc::new(AddressCounts {
            limits,
            counts: Mutex::new(std::collections::HashMap::new()),
        });
        let listener = listener.into();
        // building the "close" variable
        let close_trigger = Arc::new(AtomicBool::new(false));

        // building the TcpListener
        let (server, local_addr) = {
            let local_addr = listener.local_addr()?;
            log::debug!("Server listening on {}", local_addr);
            (listener, local_addr)
        };

        // building the SSL capabilities
        #[cfg(all(feature = "ssl-openssl", feature = "ssl-rustls"))]
        compile_error!(
            "Features 'ssl-openssl' and 'ssl-rustls' must not be enabled at the same time"
        );
        #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
        type SslContext = ();
        #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
        type SslContext = crate::ssl::SslContextImpl;
        let ssl: Option<SslContext> = {
            match ssl_config {
                #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                Some(config) => Some(SslContext::from_pem(
                    config.certificate,
                    Zeroizing::new(config.private_key),
                )?),
                #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                Some(_) => return Err(
                    "Building a server with SSL requires enabling the `ssl` feature in tiny-http"
                        .into(),
                ),
                None => None,
            }
        };

        // creating a task where server.accept() is continuously called
        // and ClientConnection objects are pushed in the messages queue
        let messages = MessagesQueue::with_capacity(8);

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        let listener_failure = Arc::new(Mutex::new(None));
        let inside_failure = listener_failure.clone();
        // `thread::spawn` would panic if the thread cannot be created
        thread::Builder::new().spawn(move || {
            let mut end = AcceptThreadEnd {
                messages: inside_messages.clone(),
                close: inside_close_trigger.clone(),
                failure: inside_failure,
                error: None,
            };

            // a tasks pool is used to dispatch the connections into threads
            let tasks_pool = util::TaskPool::new();
            // after running out of descriptors or memory: 5 ms, doubling up to 1 s
            let mut backoff = Duration::from_millis(0);

            log::debug!("Running accept thread");
            while !inside_close_trigger.load(Relaxed) {
                let mut peer = None;
                let new_client = match server.accept() {
                    Ok((sock, addr)) => {
                        peer = addr;
                        backoff = Duration::from_millis(0);
                        use util::RefinedTcpStream;
                        let (read_closable, write_closable) = match ssl {
                            None => match RefinedTcpStream::new(sock) {
                                Ok(pair) => pair,
                                // out of descriptors for the second handle: the connection is
                                // closed (dropped), the next one may fare better
                                Err(e) => {
                                    log::error!("Error setting up a new client: {}", e);
                                    continue;
                                }
                            },
                            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                            Some(ref ssl) => {
                                // trying to apply SSL over the connection
                                // if an error occurs, we just close the socket and resume listening
                                let sock = match ssl.accept(sock) {
                                    Ok(s) => s,
                                    Err(_) => continue,
                                };

                                match RefinedTcpStream::new(sock) {
                                    Ok(pair) => pair,
                                    Err(_) => continue,
                                }
                            }
                            #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                            Some(ref _ssl) => unreachable!(),
                        };

                        Ok(ClientConnection::new(write_closable, read_closable))
                    }
                    Err(e) => Err(e),
                };

                match new_client {
                    Ok(client) => {
                        let slot = match addresses.enter(peer) {
                            Ok(slot) => slot,
                            Err(max) => {
                                log::warn!(
                                    "{} already has {max} connections open; refusing another",
                                    peer.map(|p| p.ip().to_string()).unwrap_or_default()
                                );
                                client.refuse(
                                    503,
                                    "too many connections from your address; close some and retry",
                                );
                                continue;
                            }
                        };
                        let messages = inside_messages.clone();
                        let handler = handler.clone();
                        let mut client = PendingClient(Some(client));
                        let mut slot = Some(slot);
                        let spawned = tasks_pool.spawn(Box::new(move || {
                            let _slot = slot.take();
                            if let Some(client) = client.0.take() {
                                if let Some(handler) = handler.as_ref() {
                                    // Answered here, in order: the next request is read after.
                                    for rq in client {
                                        handler(rq);
                                    }
                                } else if client.secure() {
                                    // Synchronization is needed for HTTPS requests to avoid a deadlock
                                    let (sender, receiver) = mpsc::channel();
                                    for rq in client {
                                        messages.push(rq.with_notify_sender(sender.clone()).into());
                                        receiver.recv().unwrap();
                                    }
                                } else {
                                    for rq in client {
                                        messages.push(rq.into());
                                    }
                                }
                            }
                        }));
                        if let Err(e) = spawned {
                            // the connection was answered 503 and closed (`PendingClient`)
                            log::error!("Cannot start a thread for a new client: {}", e);
                        }
                    }

                    Err(e) => match classify_accept_error(&e) {
                        AcceptFailure::Retry => {}
                        AcceptFailure::Backoff => {
                            backoff = (backoff * 2)
                                .max(Duration::from_millis(5))
                                .min(Duration::from_secs(1));
                            log::error!(
                                "Error accepting new client: {}; retrying in {} ms",
                                e,
                                backoff.as_millis()
                            );
                            thread::sleep(backoff);
                        }
                        AcceptFailure::Fatal => {
                            log::error!("Error accepting new client: {}", e);
                            end.error = Some(e);
                            break;
                        }
                    },
                }
            }
            log::debug!("Terminating accept thread");
        })?;

        // result
        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
            listener_failure,
        })
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        unimplemented!()
        //self.requests_receiver.lock().len()
    }

    /// Why the accept thread stopped, if it did: no request will come any more beyond those
    /// already queued.
    fn listener_failure(&self) -> Option<IoError> {
        let failure = self.listener_failure.lock().unwrap_or_else(|e| e.into_inner());
        failure
            .as_ref()
            .map(|(kind, message)| IoError::new(*kind, message.clone()))
    }

    /// Once the accept thread has stopped: a request still queued, else its error.
    fn recv_after_listener_failure(&self, failure: IoError) -> IoResult<Request> {
        match self.messages.try_pop() {
            Some(Message::NewRequest(rq)) => Ok(rq),
            Some(Message::Error(err)) => Err(err),
            None => Err(failure),
        }
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    ///
    /// Once the accept thread has stopped (a fatal error on the listening socket, a panic), the
    /// requests still queued are returned and then an error, every time: no further request
    /// can come, and the caller should stop (e.g. exit non-zero to be restarted).
    pub fn recv(&self) -> IoResult<Request> {
        if let Some(failure) = self.listener_failure() {
            return self.recv_after_listener_failure(failure);
        }
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        if let Some(failure) = self.listener_failure() {
            return self.recv_after_listener_failure(failure).map(Some);
        }
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        if let Some(failure) = self.listener_failure() {
            return self.recv_after_listener_failure(failure).map(Some);
        }
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close.store(true, Relaxed);
        // Connect briefly to ourselves to unblock the accept thread
        let maybe_stream = match &self.listening_addr {
            ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
            #[cfg(unix)]
            ListenAddr::Unix(addr) => {
                // TODO: use connect_addr when its stabilized.
                let path = addr.as_pathname().unwrap();
                std::os::unix::net::UnixStream::connect(path).map(Connection::from)
            }
        };
        if let Ok(stream) = maybe_stream {
            let _ = stream.shutdown(Shutdown::Both);
        }

        #[cfg(unix)]
        if let ListenAddr::Unix(addr) = &self.listening_addr {
            if let Some(path) = addr.as_pathname() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
