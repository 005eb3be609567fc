//! MCP sessions: CSPRNG ids, the token that opened each one, log level, idle expiry, the
//! `max_sessions` cap (and a cap per token), and each session's standalone GET event stream with
//! its bounded replay buffer. A stream is written by its own writer thread from a bounded queue,
//! so no session lock is ever held across a socket write and a client that stops reading costs
//! only itself. It holds connection state only; it never touches tasks or SQL.

use crate::http::guard::TokenId;
use crate::http::sse::{QueueError, SseSender, SseStream};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many GET-stream events a session keeps for `Last-Event-ID` replay.
pub const REPLAY_EVENTS: usize = 256;
/// Events waiting for a slow GET-stream reader before the stream is dropped (the client can
/// reconnect with `Last-Event-ID` and get the replay).
pub const STREAM_QUEUE: usize = 64;
/// A keep-alive comment after this much silence on a GET stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// RFC 5424 levels as MCP names them, lowest first.
pub const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

pub fn level_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}

pub struct Session {
    pub id: String,
    pub token: TokenId,
    pub initialized: bool,
    /// Minimum level for `notifications/message`; None until the client sets one.
    pub log_level: Option<usize>,
    /// The protocol version `initialize` settled on.
    pub version: &'static str,
    pub last_seen: Instant,
    stream: Option<SseSender>,
    next_event: u64,
    replay: VecDeque<(u64, String)>,
}

impl Session {
    /// Queue a server-to-client message on the GET stream (kept for replay even when no stream
    /// is open); never blocks. Returns whether it was queued on an open stream. A stream whose
    /// reader has fallen `STREAM_QUEUE` events behind is dropped.
    pub fn push_event(&mut self, data: String) -> bool {
        self.next_event += 1;
        let seq = self.next_event;
        let queued = match self.stream.as_ref() {
            Some(stream) => match stream.send(Some(format!("g-{seq}")), data.clone()) {
                Ok(()) => true,
                Err(QueueError::Behind) => {
                    log::warn!(
                        "session {}: its event stream fell {STREAM_QUEUE} events behind; closed it (the client can reconnect with Last-Event-ID)",
                        short(&self.id)
                    );
                    false
                }
                Err(QueueError::Closed) => false,
            },
            None => false,
        };
        if !queued {
            self.stream = None;
        }
        self.replay.push_back((seq, data));
        while self.replay.len() > REPLAY_EVENTS {
            self.replay.pop_front();
        }
        queued
    }

    /// Attach a new GET stream (closing any older one) and replay what followed `last_event_id`;
    /// the stream gets its own writer thread.
    pub fn attach_stream(&mut self, stream: SseStream, last_event_id: Option<&str>) {
        if let Some(old) = self.stream.take() {
            old.close();
        }
        let backlog: Vec<(Option<String>, String)> = match last_event_id
            .and_then(|id| id.strip_prefix("g-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(after) => self
                .replay
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(seq, data)| (Some(format!("g-{seq}")), data.clone()))
                .collect(),
            None => Vec::new(),
        };
        match stream.spawn_writer(backlog, STREAM_QUEUE, KEEP_ALIVE) {
            Ok(sender) => self.stream = Some(sender),
            Err(e) => log::error!(
                "session {}: cannot start the event stream's writer thread: {e}",
                short(&self.id)
            ),
        }
    }

    pub fn has_stream(&self) -> bool {
        self.stream.as_ref().is_some_and(SseSender::is_open)
    }

    fn close_stream(&mut self) {
        if let Some(s) = self.stream.take() {
            s.close();
        }
    }
}

pub type SessionRef = Arc<Mutex<Session>>;

pub fn lock(session: &SessionRef) -> MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Sessions {
    map: Mutex<HashMap<String, SessionRef>>,
    idle_timeout: Duration,
    max: usize,
    max_per_token: usize,
}

impl Sessions {
    pub fn new(idle_timeout: Duration, max: usize, max_per_token: usize) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle_timeout,
            max,
            max_per_token,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, SessionRef>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a session, or Err when `max_sessions` are live (or `max_sessions_per_token` for
    /// this token) even after expiring idle ones.
    pub fn create(&self, token: TokenId) -> Result<String, String> {
        let id = crate::ids::session_id().map_err(|e| format!("cannot get random bytes: {e}"))?;
        let full = |map: &HashMap<String, SessionRef>| {
            let mine = map.values().filter(|s| lock(s).token == token).count();
            if map.len() >= self.max {
                Some(format!(
                    "too many open sessions ({}); close some (DELETE /mcp) or raise max_sessions",
                    self.max
                ))
            } else if mine >= self.max_per_token {
                Some(format!(
                    "too many open sessions for this token ({}); close some (DELETE /mcp) or raise max_sessions_per_token",
                    self.max_per_token
                ))
            } else {
                None
            }
        };
        if full(&self.map()).is_some() {
            self.expire_idle(Instant::now());
        }
        let mut map = self.map();
        if let Some(why) = full(&map) {
            return Err(why);
        }
        let session = Session {
            id: id.clone(),
            token,
            initialized: false,
            log_level: None,
            version: super::LATEST_VERSION,
            last_seen: Instant::now(),
            stream: None,
            next_event: 0,
            replay: VecDeque::new(),
        };
        map.insert(id.clone(), Arc::new(Mutex::new(session)));
        Ok(id)
    }

    /// A live session by id, marked as seen now. A session idle past the timeout (and without an
    /// open stream) is expired here, not only by the housekeeping sweep, so it answers 404 as
    /// soon as it is due.
    pub fn get(&self, id: &str) -> Option<SessionRef> {
        let session = self.map().get(id).cloned()?;
        let now = Instant::now();
        let expired = {
            let mut s = lock(&session);
            let expired = !s.has_stream() && now.duration_since(s.last_seen) > self.idle_timeout;
            if !expired {
                s.last_seen = now;
            }
            expired
        };
        if expired {
            log::info!(
                "session {} expired after {} s idle",
                short(id),
                self.idle_timeout.as_secs()
            );
            self.remove(id);
            return None;
        }
        Some(session)
    }

    /// End a session (closing its stream); false when it did not exist.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.map().remove(id);
        match removed {
            Some(s) => {
                lock(&s).close_stream();
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Every live session (for broadcasting notifications to each session's own stream).
    pub fn all(&self) -> Vec<SessionRef> {
        self.map().values().cloned().collect()
    }

    /// Drop sessions idle longer than the timeout that have no open stream. The map lock is not
    /// held while each session is looked at.
    pub fn expire_idle(&self, now: Instant) {
        let expired: Vec<String> = self
            .all()
            .iter()
            .filter_map(|s| {
                let s = lock(s);
                (!s.has_stream() && now.duration_since(s.last_seen) > self.idle_timeout)
                    .then(|| s.id.clone())
            })
            .collect();
        for id in expired {
            log::info!(
                "session {} expired after {} s idle",
                short(&id),
                self.idle_timeout.as_secs()
            );
            self.remove(&id);
        }
    }

    /// Close every stream (shutdown).
    pub fn close_all(&self) {
        for session in self.all() {
            lock(&session).close_stream();
        }
    }
}

/// The first 8 characters of a session id, for logs.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
