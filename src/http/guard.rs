//! The security guard (SPEC §8): Host and Origin checks (DNS rebinding), bearer-token
//! authentication in constant time, the per-client token-bucket rate limit, and who the client
//! is behind a trusted proxy. It decides allow/deny only; it never logs a token or a header value.

use crate::config::{is_loopback_host, AuthMode, Config, MetricsAuth};
use crate::http::{HttpRequest, Reply};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Which accepted token a request presented (its index), or none when auth is off. An OAuth
/// access token is named by its grant: `OAUTH_GRANT_BASE + grant id`, so a session opened with
/// it answers only to that grant's tokens (rotation keeps the grant).
pub type TokenId = Option<usize>;

/// Where OAuth grants start among `TokenId`s (far above any count of configured tokens).
pub const OAUTH_GRANT_BASE: usize = 1 << 40;

pub struct Guard {
    auth: AuthMode,
    tokens: Vec<String>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    trust_proxy: bool,
    limiter: RateLimiter,
    metrics_auth: MetricsAuth,
    metrics_token: Option<String>,
}

/// Split `host[:port]` (or `[v6]:port`) into the lower-case host part.
fn host_part(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return format!("[{}]", rest.split(']').next().unwrap_or(""));
    }
    match a.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => a,
    }
}

/// `scheme://authority` of a URL, lower-cased, without a trailing path.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    // Browsers leave the default port out of Origin: compare without it.
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(stripped) = default_port.and_then(|p| authority.strip_suffix(p)) {
        authority = stripped.to_string();
    }
    Some(format!("{scheme}://{authority}"))
}

/// The token of an `Authorization: Bearer` header, or "".
pub(crate) fn bearer(req: &HttpRequest) -> &str {
    req.header("authorization")
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("")
}

/// Constant-time equality of two byte strings (length is not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    pub fn new(config: &Config, tokens: Vec<String>) -> Guard {
        let mut allowed_hosts: Vec<String> =
            config.allowed_hosts.iter().map(|h| host_part(h)).collect();
        let mut allowed_origins: Vec<String> = config
            .allowed_origins
            .iter()
            .filter_map(|o| origin_of(o))
            .collect();
        if let Some(public) = &config.public_url {
            if let Some(origin) = origin_of(public) {
                if let Some((_, authority)) = origin.split_once("://") {
                    allowed_hosts.push(host_part(authority));
                }
                allowed_origins.push(origin);
            }
        }
        // The configured listen host is how direct clients name us.
        if !config.host.is_empty() && config.host != "0.0.0.0" && config.host != "::" {
            allowed_hosts.push(host_part(&config.host));
        }
        Guard {
            auth: config.auth,
            tokens,
            allowed_hosts,
            allowed_origins,
            trust_proxy: config.trust_proxy,
            limiter: RateLimiter::new(config.rate_limit_per_minute),
            metrics_auth: config.metrics_auth,
            metrics_token: config.metrics_token.clone(),
        }
    }

    /// Host and Origin checks: `Err(403 reply)` when either names a site we do not serve.
    pub fn check_host_and_origin(&self, req: &HttpRequest) -> Result<(), Reply> {
        match req.header("host") {
            None => return Err(Reply::error(400, "the Host header is required")),
            Some(host) => {
                let h = host_part(host);
                if !is_loopback_host(&h) && !self.allowed_hosts.contains(&h) {
                    return Err(Reply::error(
                        403,
                        "Host not allowed; add it to allowed_hosts or set public_url",
                    ));
                }
            }
        }
        if let Some(origin) = req.header("origin") {
            let allowed = match origin_of(origin) {
                Some(o) => {
                    let host = o
                        .split_once("://")
                        .map(|(_, a)| host_part(a))
                        .unwrap_or_default();
                    is_loopback_host(&host) || self.allowed_origins.contains(&o)
                }
                None => false,
            };
            if !allowed {
                return Err(Reply::error(
                    403,
                    "Origin not allowed; add it to allowed_origins or set public_url",
                ));
            }
        }
        Ok(())
    }

    /// Bearer-token check: the index of the matching token, or a 401 reply.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<TokenId, Reply> {
        if self.auth == AuthMode::None {
            return Ok(None);
        }
        let presented = bearer(req);
        match self.token_index(presented) {
            Some(i) => Ok(Some(i)),
            None => Err(Reply::error(
                401,
                if presented.is_empty() {
                    "authentication required: send Authorization: Bearer <token> (see `claudecron token`)"
                } else {
                    "the bearer token is not valid"
                },
            )
            .with_header("WWW-Authenticate", "Bearer realm=\"claudecron\"")),
        }
    }

    /// Whether auth is on (`auth = "token"`).
    pub fn auth_required(&self) -> bool {
        self.auth == AuthMode::Token
    }

    /// The index of the accepted token equal to `presented` (every token compared in constant
    /// time), or None.
    pub fn token_index(&self, presented: &str) -> Option<usize> {
        let mut found = None;
        for (i, token) in self.tokens.iter().enumerate() {
            if constant_time_eq(presented.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// May this request read `/metrics`? As `metrics_auth` says: the bearer token, only
    /// `metrics_token`, or a loopback client without a token.
    pub fn metrics_access(&self, req: &HttpRequest, client: IpAddr) -> Result<(), Reply> {
        match self.metrics_auth {
            MetricsAuth::Token => self.authenticate(req).map(|_| ()),
            // A request a proxy forwarded (it says so in its headers) comes from the proxy's
            // client, wherever the proxy runs: never loopback, even without `trust_proxy`.
            MetricsAuth::Loopback
                if client.is_loopback() && req.peer.is_loopback() && !forwarded(req) =>
            {
                Ok(())
            }
            MetricsAuth::Loopback => Err(Reply::error(
                403,
                "metrics_auth = \"loopback\": /metrics answers only clients on this host",
            )),
            MetricsAuth::MetricsToken => {
                let presented = bearer(req);
                let expected = self.metrics_token.as_deref().unwrap_or("");
                if !expected.is_empty()
                    && constant_time_eq(presented.as_bytes(), expected.as_bytes())
                {
                    Ok(())
                } else {
                    Err(Reply::error(
                        401,
                        "metrics_auth = \"metrics_token\": send Authorization: Bearer <metrics_token>",
                    )
                    .with_header("WWW-Authenticate", "Bearer realm=\"claudecron-metrics\""))
                }
            }
        }
    }

    /// The client's address: the peer, or with `trust_proxy` and a loopback peer, `X-Real-IP` or
    /// the last `X-Forwarded-For` hop (the one the proxy itself appended).
    pub fn client_addr(&self, req: &HttpRequest) -> IpAddr {
        if self.trust_proxy && req.peer.is_loopback() {
            let real = req.header("x-real-ip").and_then(|v| v.trim().parse().ok());
            let forwarded = req
                .header("x-forwarded-for")
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
            if let Some(ip) = real.or(forwarded) {
                return ip;
            }
        }
        req.peer
    }

    /// Take one token from the client's bucket, or a 429 reply with `Retry-After`.
    pub fn rate_limit(&self, client: IpAddr) -> Result<(), Reply> {
        self.limiter
            .take(client, Instant::now())
            .map_err(|wait_secs| {
                Reply::error(
                    429,
                    "rate limit exceeded; retry after the number of seconds in Retry-After",
                )
                .with_header("Retry-After", &wait_secs.to_string())
            })
    }
}

/// Whether a proxy forwarded the request (any of the headers proxies add for their client).
fn forwarded(req: &HttpRequest) -> bool {
    ["x-forwarded-for", "x-real-ip", "forwarded"]
        .iter()
        .any(|h| req.header(h).is_some())
}

/// Per-client token buckets: `per_minute` capacity, refilled continuously.
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A bucket's tokens now: what it held at `at`, plus the refill since, at most full.
    fn refilled(&self, tokens: f64, at: Instant, now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute)
    }

    /// Whole seconds until a bucket holding `tokens` has one.
    fn wait_secs(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / (self.per_minute / 60.0)).ceil().max(1.0) as u64
    }

    /// Return a token taken by `take` (the attempt it paid for turned out not to count).
    pub fn give_back(&self, client: IpAddr) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = buckets.get_mut(&client) {
            *tokens = (*tokens + 1.0).min(self.per_minute);
        }
    }

    /// Ok, or Err(seconds until a token is available).
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            // Forget full buckets so the map cannot grow without bound.
            let cap = self.per_minute;
            let rate = cap / 60.0;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let full = self.per_minute;
        let (tokens, at) = buckets.entry(client).or_insert((full, now));
        let refilled = self.refilled(*tokens, *at, now);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(self.wait_secs(refilled))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_empty_then_refill_per_client() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..60 {
            assert!(limiter.take(a, t0).is_ok());
        }
        assert_eq!(limiter.take(a, t0), Err(1));
        // A token given back can be taken again at once.
        limiter.give_back(a);
        assert!(limiter.take(a, t0).is_ok());
        assert_eq!(limiter.take(a, t0), Err(1));
        assert!(limiter.take(b, t0).is_ok());
        assert!(limiter.take(a, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn host_and_origin_parts() {
        assert_eq!(host_part("127.0.0.1:3010"), "127.0.0.1");
        assert_eq!(host_part("[::1]:80"), "[::1]");
        assert_eq!(host_part("Example.COM"), "example.com");
        assert_eq!(
            origin_of("https://mcp.example.com/cron").as_deref(),
            Some("https://mcp.example.com")
        );
        assert_eq!(
            origin_of("https://mcp.example.com:443/cron").as_deref(),
            Some("https://mcp.example.com")
        );
        assert_eq!(origin_of("http://h:8080").as_deref(), Some("http://h:8080"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
