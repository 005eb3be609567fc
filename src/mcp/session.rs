//! MCP sessions: CSPRNG ids, the token that opened each one, negotiated version, log level,
//! idle expiry, the `max_sessions` cap, and each session's standalone GET event stream with its
//! bounded replay buffer. It holds connection state only; it never touches tasks or SQL.

use crate::http::guard::TokenId;
use crate::http::sse::SseStream;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many GET-stream events a session keeps for `Last-Event-ID` replay.
pub const REPLAY_EVENTS: usize = 256;

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
    pub last_seen: Instant,
    stream: Option<SseStream>,
    next_event: u64,
    replay: VecDeque<(u64, String)>,
}

impl Session {
    /// Queue a server-to-client message on the GET stream (kept for replay even when no stream
    /// is open). Returns whether it was written to an open stream.
    pub fn push_event(&mut self, data: String) -> bool {
        self.next_event += 1;
        let seq = self.next_event;
        let id = format!("g-{seq}");
        let written = match self.stream.as_mut() {
            Some(stream) => stream.send(Some(&id), &data).is_ok(),
            None => false,
        };
        if !written {
            self.stream = None;
        }
        self.replay.push_back((seq, data));
        while self.replay.len() > REPLAY_EVENTS {
            self.replay.pop_front();
        }
        written
    }

    /// Attach a new GET stream (closing any older one) and replay what followed `last_event_id`.
    pub fn attach_stream(&mut self, mut stream: SseStream, last_event_id: Option<&str>) {
        if let Some(mut old) = self.stream.take() {
            old.close();
        }
        if let Some(after) = last_event_id
            .and_then(|id| id.strip_prefix("g-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            for (seq, data) in self.replay.iter().filter(|(seq, _)| *seq > after) {
                if stream.send(Some(&format!("g-{seq}")), data).is_err() {
                    return;
                }
            }
        }
        self.stream = Some(stream);
    }

    pub fn has_stream(&self) -> bool {
        self.stream.as_ref().is_some_and(SseStream::is_open)
    }

    fn keep_alive(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            if stream.keep_alive().is_err() {
                self.stream = None;
            }
        }
    }

    fn close_stream(&mut self) {
        if let Some(mut s) = self.stream.take() {
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
}

impl Sessions {
    pub fn new(idle_timeout: Duration, max: usize) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle_timeout,
            max,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, SessionRef>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a session, or Err when `max_sessions` are live even after expiring idle ones.
    pub fn create(&self, token: TokenId) -> Result<String, String> {
        self.expire_idle(Instant::now());
        let id = crate::ids::session_id().map_err(|e| format!("cannot get random bytes: {e}"))?;
        let mut map = self.map();
        if map.len() >= self.max {
            return Err(format!(
                "too many open sessions ({}); close some (DELETE /mcp) or raise max_sessions",
                self.max
            ));
        }
        let session = Session {
            id: id.clone(),
            token,
            initialized: false,
            log_level: None,
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

    /// Drop sessions idle longer than the timeout that have no open stream.
    pub fn expire_idle(&self, now: Instant) {
        let expired: Vec<String> = self
            .map()
            .iter()
            .filter(|(_, s)| {
                let s = lock(s);
                !s.has_stream() && now.duration_since(s.last_seen) > self.idle_timeout
            })
            .map(|(id, _)| id.clone())
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

    /// Write a keep-alive comment on every open stream; a stream that fails is dropped and its
    /// session's idle clock starts.
    pub fn keep_alive_all(&self) {
        for session in self.all() {
            let mut s = lock(&session);
            let had = s.has_stream();
            s.keep_alive();
            if had && !s.has_stream() {
                s.last_seen = Instant::now();
            }
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
