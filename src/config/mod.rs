//! Configuration (SPEC §6): one TOML file, overridden by `CLAUDECRON_<KEY>` environment variables,
//! overridden by command-line flags. Owns the key table, types, defaults and validation; it never
//! opens the database or the network, and never logs a secret.

mod approval;
mod file;
mod oauth;
mod values;
pub use approval::ApprovalKeyFiles;
use file::choose_file;
pub use oauth::OAuthConfig;
pub use values::MetricsAuth;
use values::*;
pub use values::{expand_tilde, is_loopback_host, ApiPrice, NotifyChannel};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub public_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub auth_tokens: Vec<String>,
    pub token_file: PathBuf,
    pub auth: AuthMode,
    pub trust_proxy: bool,
    pub rate_limit_per_minute: u32,
    pub session_timeout_secs: u64,
    pub max_sessions: usize,
    /// Sessions one bearer token may hold at once (so one token cannot fill `max_sessions`).
    pub max_sessions_per_token: usize,
    pub max_body_bytes: usize,
    pub db_path: PathBuf,
    pub log_level: String,
    pub log_path: Option<PathBuf>,
    pub max_concurrent_tasks: usize,
    pub task_timeout_secs: u64,
    pub output_max_bytes: usize,
    pub history_keep_per_task: usize,
    pub default_timezone: String,
    pub anthropic_api_key: Option<String>,
    pub anthropic_base_url: String,
    pub default_model: String,
    pub claude_path: String,
    /// Who may read `/metrics`.
    pub metrics_auth: MetricsAuth,
    /// The separate token for `/metrics` (with `metrics_auth = "metrics_token"`).
    pub metrics_token: Option<String>,
    /// The secret of the calendar feed `/calendar.ics?key=…` (no feed when unset).
    pub calendar_token: Option<String>,
    /// The most all subagent runs together may spend per UTC day (None: no cap).
    pub daily_budget_usd: Option<f64>,
    /// USD per million input/output tokens by model, for the api runner's cost.
    pub api_prices: Vec<ApiPrice>,
    /// Run worktrees (`worktree: true`) kept per task; older ones are removed.
    pub worktree_keep_per_task: usize,
    /// Failed runs in a row after which a task is disabled (its own field wins; 0: never).
    pub pause_after_failures: u32,
    /// Named notification targets (`[[notify_channels]]`) tasks refer to by `notify.channel`.
    pub notify_channels: Vec<NotifyChannel>,
    /// Tasks created or changed over MCP wait for `claudecron approve` on the host.
    pub require_approval: bool,
    /// The owner's approval key pair (`approval_key`, `approval_public_key`).
    pub approval_keys: ApprovalKeyFiles,
    /// The OAuth authorization server (`oauth_*` keys).
    pub oauth: OAuthConfig,
    /// Where the file layer came from, if any.
    pub source_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Token,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    OptStr,
    Path,
    OptPath,
    Bool,
    Int { min: u64, max: u64 },
    List,
    Usd,
    Channels,
}

/// Every key SPEC §6 knows, its type and its default (as the string a user would write).
const KEYS: &[(&str, Kind, Option<&str>)] = &[
    ("host", Kind::Str, Some("127.0.0.1")),
    ("port", Kind::Int { min: 0, max: 65535 }, Some("3010")),
    ("public_url", Kind::OptStr, None),
    ("allowed_origins", Kind::List, Some("")),
    ("allowed_hosts", Kind::List, Some("")),
    ("auth_tokens", Kind::List, Some("")),
    ("token_file", Kind::OptPath, None),
    ("auth", Kind::Str, Some("token")),
    ("trust_proxy", Kind::Bool, Some("false")),
    (
        "rate_limit_per_minute",
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        Some("100"),
    ),
    (
        "session_timeout_secs",
        Kind::Int {
            min: 1,
            max: 30 * 86_400,
        },
        Some("3600"),
    ),
    (
        "max_sessions",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        Some("1000"),
    ),
    (
        "max_sessions_per_token",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        Some("200"),
    ),
    (
        "max_body_bytes",
        Kind::Int {
            min: 1024,
            max: 64 << 20,
        },
        Some("1048576"),
    ),
    ("db_path", Kind::Path, Some("~/.claudecron/tasks.db")),
    ("log_level", Kind::Str, Some("info")),
    ("log_path", Kind::OptPath, None),
    (
        "max_concurrent_tasks",
        Kind::Int { min: 1, max: 1000 },
        Some("10"),
    ),
    (
        "task_timeout_secs",
        Kind::Int {
            min: 1,
            max: 7 * 86_400,
        },
        Some("300"),
    ),
    (
        "output_max_bytes",
        Kind::Int {
            min: 1024,
            max: 64 << 20,
        },
        Some("262144"),
    ),
    (
        "history_keep_per_task",
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        Some("200"),
    ),
    ("default_timezone", Kind::Str, Some("UTC")),
    ("anthropic_api_key", Kind::OptStr, None),
    ("anthropic_base_url", Kind::OptStr, None),
    ("default_model", Kind::Str, Some("claude-sonnet-4-20250514")),
    ("claude_path", Kind::Str, Some("claude")),
    ("metrics_auth", Kind::Str, Some("token")),
    ("metrics_token", Kind::OptStr, None),
    ("calendar_token", Kind::OptStr, None),
    ("daily_budget_usd", Kind::Usd, None),
    ("api_prices", Kind::List, Some("")),
    (
        "worktree_keep_per_task",
        Kind::Int { min: 1, max: 1000 },
        Some("10"),
    ),
    (
        "pause_after_failures",
        Kind::Int { min: 0, max: 1000 },
        Some("0"),
    ),
    ("notify_channels", Kind::Channels, None),
    ("require_approval", Kind::Bool, Some("false")),
];

/// Every key: the main table and the OAuth server's (`oauth::KEYS`).
fn all_keys() -> impl Iterator<Item = &'static (&'static str, Kind, Option<&'static str>)> {
    KEYS.iter().chain(oauth::KEYS).chain(approval::KEYS)
}

/// Keys whose values are secrets: masked by `check`, never logged.
pub const SECRET_KEYS: &[&str] = &[
    "auth_tokens",
    "anthropic_api_key",
    "metrics_token",
    "calendar_token",
    "notify_channels",
    "oauth_password_hash",
];

/// A raw value from one layer, before typing.
#[derive(Debug, Clone)]
enum Raw {
    Toml(toml::Value),
    Text(String),
}

/// Where the layers come from. `env` is the process environment in production; tests pass their own.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_file: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Flag overrides by key, e.g. `("port", "3011")`.
    pub flags: Vec<(String, String)>,
    pub home: Option<PathBuf>,
}

impl Sources {
    /// The real process environment, with no flags yet.
    pub fn from_process() -> Sources {
        Sources {
            config_file: None,
            env: std::env::vars().collect(),
            flags: Vec::new(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Load and validate the configuration from its three layers.
pub fn load(sources: &Sources) -> Result<Config, String> {
    let file = choose_file(sources)?;
    let mut layers: BTreeMap<String, (Raw, String)> = BTreeMap::new();

    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("config file {} is not valid TOML: {e}", path.display()))?;
        for (key, value) in table {
            if key_kind(&key).is_none() {
                return Err(format!(
                    "config file {}: unknown key \"{key}\"; accepted keys: {}",
                    path.display(),
                    accepted_keys()
                ));
            }
            layers.insert(key, (Raw::Toml(value), format!("{}", path.display())));
        }
    }
    for (key, _, _) in all_keys() {
        let var = format!("CLAUDECRON_{}", key.to_ascii_uppercase());
        if let Some(value) = sources.env.get(&var) {
            layers.insert(key.to_string(), (Raw::Text(value.clone()), var));
        }
    }
    for (key, value) in &sources.flags {
        if key_kind(key).is_none() {
            return Err(format!(
                "unknown setting \"{key}\"; accepted: {}",
                accepted_keys()
            ));
        }
        layers.insert(
            key.clone(),
            (Raw::Text(value.clone()), format!("flag --{key}")),
        );
    }

    let mut values: BTreeMap<&str, Typed> = BTreeMap::new();
    for (key, kind, default) in all_keys() {
        let typed = match layers.get(*key) {
            Some((raw, origin)) => typed_value(key, *kind, raw)
                .map_err(|msg| format!("{key} (from {origin}): {msg}"))?,
            None => match default {
                Some(text) => typed_value(key, *kind, &Raw::Text(text.to_string()))?,
                None => Typed::Absent,
            },
        };
        values.insert(key, typed);
    }
    build(values, sources, file)
}

fn build(
    mut v: BTreeMap<&str, Typed>,
    sources: &Sources,
    file: Option<PathBuf>,
) -> Result<Config, String> {
    let home = sources.home.as_deref();
    let mut take = |key: &str| v.remove(key).unwrap_or(Typed::Absent);
    let string = |t: Typed| match t {
        Typed::Str(s) => Some(s),
        _ => None,
    };
    let int = |t: Typed| match t {
        Typed::Int(n) => n,
        _ => 0,
    };
    let list = |t: Typed| match t {
        Typed::List(l) => l,
        _ => Vec::new(),
    };

    let host = string(take("host")).unwrap_or_default();
    if host.trim().is_empty() {
        return Err("host: must not be empty; e.g. 127.0.0.1".into());
    }
    let port = int(take("port")) as u16;
    let public_url = string(take("public_url")).map(|u| u.trim_end_matches('/').to_string());
    if let Some(url) = &public_url {
        if !is_http_url(url) {
            return Err(format!(
                "public_url: \"{url}\" is not accepted; expected an http(s) URL such as https://mcp.example.com/cron"
            ));
        }
    }
    let allowed_origins = list(take("allowed_origins"));
    for origin in &allowed_origins {
        if !is_http_url(origin) {
            return Err(format!(
                "allowed_origins: \"{origin}\" is not accepted; expected origins such as https://claude.ai"
            ));
        }
    }
    let allowed_hosts = list(take("allowed_hosts"));
    let auth_tokens = list(take("auth_tokens"));
    for token in &auth_tokens {
        if token.len() < 16 || token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(
                "auth_tokens: each token must be at least 16 visible ASCII characters (value not shown)"
                    .into(),
            );
        }
    }
    let db_path = expand_tilde(&string(take("db_path")).unwrap_or_default(), home);
    if db_path.as_os_str().is_empty() {
        return Err("db_path: must not be empty; e.g. ~/.claudecron/tasks.db".into());
    }
    let data_dir = db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let token_file = string(take("token_file"))
        .map(|p| expand_tilde(&p, home))
        .unwrap_or_else(|| data_dir.join("token"));
    let auth = match string(take("auth")).as_deref() {
        Some("token") => AuthMode::Token,
        Some("none") => AuthMode::None,
        other => {
            return Err(format!(
                "auth: \"{}\" is not accepted; accepted: token, none",
                other.unwrap_or("")
            ))
        }
    };
    if auth == AuthMode::None && !is_loopback_host(&host) {
        return Err(format!(
            "auth: \"none\" is refused because host \"{host}\" is not loopback; use auth = \"token\" or host = \"127.0.0.1\""
        ));
    }
    let trust_proxy = matches!(take("trust_proxy"), Typed::Bool(true));
    let log_level = string(take("log_level")).unwrap_or_default();
    if !["error", "warn", "info", "debug", "trace", "off"].contains(&log_level.as_str()) {
        return Err(format!(
            "log_level: \"{log_level}\" is not accepted; accepted: error, warn, info, debug, trace, off"
        ));
    }
    let default_timezone = string(take("default_timezone")).unwrap_or_default();
    crate::tasks::schedule::parse_timezone(&default_timezone)
        .map_err(|e| format!("default_timezone: {e}"))?;
    // Unset: ANTHROPIC_BASE_URL (which a claude-code child would inherit anyway), else the
    // public API.
    let anthropic_base_url = string(take("anthropic_base_url"))
        .or_else(|| {
            sources
                .env
                .get("ANTHROPIC_BASE_URL")
                .filter(|u| !u.is_empty())
                .cloned()
        })
        .unwrap_or_else(|| "https://api.anthropic.com".into())
        .trim_end_matches('/')
        .to_string();
    if !is_http_url(&anthropic_base_url) {
        return Err(format!(
            "anthropic_base_url: \"{anthropic_base_url}\" is not accepted; expected an http(s) URL such as https://api.anthropic.com"
        ));
    }
    let default_model = string(take("default_model")).unwrap_or_default();
    if default_model.trim().is_empty() {
        return Err("default_model: must not be empty; e.g. claude-sonnet-4-20250514".into());
    }
    let claude_path = string(take("claude_path")).unwrap_or_default();
    if claude_path.trim().is_empty() {
        return Err("claude_path: must not be empty; e.g. claude or /usr/local/bin/claude".into());
    }
    let claude_path = expand_tilde(&claude_path, home)
        .to_string_lossy()
        .into_owned();
    let anthropic_api_key = string(take("anthropic_api_key")).or_else(|| {
        sources
            .env
            .get("ANTHROPIC_API_KEY")
            .filter(|k| !k.is_empty())
            .cloned()
    });
    let metrics_token = secret_token(string(take("metrics_token")), "metrics_token")?;
    let calendar_token = secret_token(string(take("calendar_token")), "calendar_token")?;
    if calendar_token.as_deref().is_some_and(|t| {
        t.chars()
            .any(|c| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
    }) {
        return Err("calendar_token: only letters, digits, - and _ (it goes into a URL; value not shown); e.g. the output of `openssl rand -hex 24`".into());
    }
    let metrics_auth = match string(take("metrics_auth")).as_deref() {
        Some("token") => MetricsAuth::Token,
        Some("metrics_token") => MetricsAuth::MetricsToken,
        Some("loopback") => MetricsAuth::Loopback,
        other => {
            return Err(format!(
                "metrics_auth: \"{}\" is not accepted; accepted: token, metrics_token, loopback",
                other.unwrap_or("")
            ))
        }
    };
    if metrics_auth == MetricsAuth::MetricsToken && metrics_token.is_none() {
        return Err("metrics_auth: \"metrics_token\" needs metrics_token set (at least 16 characters; e.g. the output of `openssl rand -hex 32`)".into());
    }

    let daily_budget_usd = match take("daily_budget_usd") {
        Typed::Usd(x) => Some(x),
        _ => None,
    };
    let api_prices = list(take("api_prices"))
        .iter()
        .map(|e| parse_price(e))
        .collect::<Result<Vec<_>, _>>()?;
    let oauth = oauth::build(&mut take, public_url.as_deref())?;
    let approval_keys = approval::build(&mut take, file.as_deref(), &data_dir, home);

    Ok(Config {
        host,
        port,
        public_url,
        allowed_origins,
        allowed_hosts,
        auth_tokens,
        token_file,
        auth,
        trust_proxy,
        rate_limit_per_minute: int(take("rate_limit_per_minute")) as u32,
        session_timeout_secs: int(take("session_timeout_secs")),
        max_sessions: int(take("max_sessions")) as usize,
        max_sessions_per_token: int(take("max_sessions_per_token")) as usize,
        max_body_bytes: int(take("max_body_bytes")) as usize,
        db_path,
        log_level,
        log_path: string(take("log_path")).map(|p| expand_tilde(&p, home)),
        max_concurrent_tasks: int(take("max_concurrent_tasks")) as usize,
        task_timeout_secs: int(take("task_timeout_secs")),
        output_max_bytes: int(take("output_max_bytes")) as usize,
        history_keep_per_task: int(take("history_keep_per_task")) as usize,
        default_timezone,
        anthropic_api_key,
        anthropic_base_url,
        default_model,
        claude_path,
        metrics_auth,
        metrics_token,
        calendar_token,
        daily_budget_usd,
        api_prices,
        worktree_keep_per_task: int(take("worktree_keep_per_task")) as usize,
        pause_after_failures: int(take("pause_after_failures")) as u32,
        notify_channels: channels(take("notify_channels")),
        require_approval: matches!(take("require_approval"), Typed::Bool(true)),
        approval_keys,
        oauth,
        source_file: file,
    })
}

impl Config {
    /// Where run worktrees (`worktree: true`) are made: `<data dir>/worktrees`.
    pub fn worktree_root(&self) -> PathBuf {
        self.data_dir().join("worktrees")
    }

    /// The directory that holds the database, the token file and other state.
    pub fn data_dir(&self) -> PathBuf {
        self.db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The effective settings as `key = value` lines, secrets masked (for `claudecron check`).
    pub fn describe(&self) -> Vec<(String, String)> {
        let list = |l: &[String]| format!("[{}]", l.join(", "));
        let mask = |present: bool| {
            if present {
                "(set, hidden)".to_string()
            } else {
                "(none)".to_string()
            }
        };
        vec![
            ("host".into(), self.host.clone()),
            ("port".into(), self.port.to_string()),
            (
                "public_url".into(),
                self.public_url.clone().unwrap_or_else(|| "(none)".into()),
            ),
            ("allowed_origins".into(), list(&self.allowed_origins)),
            ("allowed_hosts".into(), list(&self.allowed_hosts)),
            (
                "auth_tokens".into(),
                if self.auth_tokens.is_empty() {
                    "(none; token_file is used)".into()
                } else {
                    format!("({} set, hidden)", self.auth_tokens.len())
                },
            ),
            ("token_file".into(), self.token_file.display().to_string()),
            (
                "auth".into(),
                match self.auth {
                    AuthMode::Token => "token".into(),
                    AuthMode::None => "none".into(),
                },
            ),
            ("trust_proxy".into(), self.trust_proxy.to_string()),
            (
                "rate_limit_per_minute".into(),
                self.rate_limit_per_minute.to_string(),
            ),
            (
                "session_timeout_secs".into(),
                self.session_timeout_secs.to_string(),
            ),
            ("max_sessions".into(), self.max_sessions.to_string()),
            (
                "max_sessions_per_token".into(),
                self.max_sessions_per_token.to_string(),
            ),
            ("max_body_bytes".into(), self.max_body_bytes.to_string()),
            ("db_path".into(), self.db_path.display().to_string()),
            ("log_level".into(), self.log_level.clone()),
            (
                "log_path".into(),
                self.log_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(stderr)".into()),
            ),
            (
                "max_concurrent_tasks".into(),
                self.max_concurrent_tasks.to_string(),
            ),
            (
                "task_timeout_secs".into(),
                self.task_timeout_secs.to_string(),
            ),
            ("output_max_bytes".into(), self.output_max_bytes.to_string()),
            (
                "history_keep_per_task".into(),
                self.history_keep_per_task.to_string(),
            ),
            ("default_timezone".into(), self.default_timezone.clone()),
            (
                "anthropic_api_key".into(),
                mask(self.anthropic_api_key.is_some()),
            ),
            ("anthropic_base_url".into(), self.anthropic_base_url.clone()),
            ("default_model".into(), self.default_model.clone()),
            ("claude_path".into(), self.claude_path.clone()),
            ("metrics_auth".into(), self.metrics_auth.as_str().into()),
            ("metrics_token".into(), mask(self.metrics_token.is_some())),
            ("calendar_token".into(), mask(self.calendar_token.is_some())),
            (
                "daily_budget_usd".into(),
                self.daily_budget_usd
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "(no cap)".into()),
            ),
            (
                "worktree_keep_per_task".into(),
                self.worktree_keep_per_task.to_string(),
            ),
            (
                "pause_after_failures".into(),
                self.pause_after_failures.to_string(),
            ),
            (
                "notify_channels".into(),
                channel_names(&self.notify_channels),
            ),
            ("require_approval".into(), self.require_approval.to_string()),
            (
                "api_prices".into(),
                format!(
                    "[{}]",
                    self.api_prices
                        .iter()
                        .map(|p| format!("{}={}/{}", p.model, p.input_per_mtok, p.output_per_mtok))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ]
        .into_iter()
        .chain(self.oauth.describe())
        .chain(self.approval_keys.describe())
        .collect()
    }
}

#[cfg(test)]
mod tests;
