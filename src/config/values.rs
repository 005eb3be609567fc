//! One configuration value: the TOML, environment or flag text of a key read as its type
//! (string, number, boolean, list, path, URL, USD amount, api price, `metrics_auth`, a secret
//! token), with the error naming the key, the value (never a secret's), the layer it came from
//! and what is accepted.

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Typed {
    Absent,
    Str(String),
    Bool(bool),
    Int(u64),
    List(Vec<String>),
    Usd(f64),
    Channels(Vec<NotifyChannel>),
}

pub(super) fn key_kind(key: &str) -> Option<Kind> {
    all_keys()
        .find(|(k, _, _)| *k == key)
        .map(|(_, kind, _)| *kind)
}

pub(super) fn accepted_keys() -> String {
    all_keys()
        .map(|(k, _, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A named notification target from `[[notify_channels]]`: where and in which shape, and for
/// the generic preset an optional HMAC secret. Its URL and secret are never shown.
#[derive(Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyChannel {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub preset: crate::tasks::model::NotifyPreset,
    #[serde(default)]
    pub chat_id: Option<String>,
    /// Generic preset: `X-Claudecron-Signature: sha256=HEX` (HMAC-SHA256 of the body).
    #[serde(default)]
    pub secret: Option<String>,
}

/// Never the URL or the secret (either may carry a token).
impl std::fmt::Debug for NotifyChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotifyChannel({}, {})", self.name, self.preset.as_str())
    }
}

pub(super) fn channels(t: Typed) -> Vec<NotifyChannel> {
    match t {
        Typed::Channels(c) => c,
        _ => Vec::new(),
    }
}

/// `check`'s line: the names and presets only (URLs and secrets may carry tokens).
pub(super) fn channel_names(channels: &[NotifyChannel]) -> String {
    let names: Vec<String> = channels
        .iter()
        .map(|c| format!("{} ({})", c.name, c.preset.as_str()))
        .collect();
    format!("[{}]", names.join(", "))
}

/// `[[notify_channels]]` (TOML) or the same as a JSON array (environment): each checked, the
/// error naming the channel and field, never a URL or secret.
fn parse_channels(raw: &Raw) -> Result<Vec<NotifyChannel>, String> {
    let json = match raw {
        Raw::Toml(v) => serde_json::to_value(v).map_err(|e| e.to_string())?,
        Raw::Text(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Raw::Text(s) => {
            serde_json::from_str(s).map_err(|e| format!("is not a JSON array of channels ({e})"))?
        }
    };
    let channels: Vec<NotifyChannel> = serde_json::from_value(json).map_err(|e| {
        format!("{e}; each channel is {{name, url, preset (generic, slack, discord, telegram, ntfy), chat_id (telegram), secret (generic)}}")
    })?;
    let mut seen = std::collections::HashSet::new();
    for c in &channels {
        let at = format!("channel \"{}\"", c.name);
        if c.name.is_empty() || c.name.len() > 100 || !seen.insert(c.name.as_str()) {
            return Err(format!("{at}: a name is 1-100 characters and unique"));
        }
        let host = c.url.split("://").nth(1).unwrap_or("");
        if !(c.url.starts_with("http://") || c.url.starts_with("https://"))
            || host.is_empty()
            || host.starts_with('/')
            || c.url.contains(char::is_whitespace)
        {
            return Err(format!("{at}: url is not an http(s) URL"));
        }
        let telegram = c.preset == crate::tasks::model::NotifyPreset::Telegram;
        if telegram != c.chat_id.is_some() {
            return Err(format!(
                "{at}: chat_id is required with preset telegram, and only there"
            ));
        }
        if c.secret.is_some() && c.preset != crate::tasks::model::NotifyPreset::Generic {
            return Err(format!(
                "{at}: secret (the HMAC signature) is for preset generic only"
            ));
        }
    }
    Ok(channels)
}

pub(super) fn describe_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

pub(super) fn typed_value(key: &str, kind: Kind, raw: &Raw) -> Result<Typed, String> {
    // A secret's value never appears in an error message (they reach logs and terminals).
    let secret = SECRET_KEYS.contains(&key);
    let show_toml = |v: &toml::Value| {
        if secret {
            "the value (not shown)".to_string()
        } else {
            describe_toml(v)
        }
    };
    let show_text = |s: &str| {
        if secret {
            "the value (not shown)".to_string()
        } else {
            format!("\"{s}\"")
        }
    };
    match (kind, raw) {
        (Kind::Channels, raw) => parse_channels(raw).map(Typed::Channels),
        (
            Kind::Str | Kind::OptStr | Kind::Path | Kind::OptPath,
            Raw::Toml(toml::Value::String(s)),
        )
        | (Kind::Str | Kind::OptStr | Kind::Path | Kind::OptPath, Raw::Text(s)) => {
            if s.is_empty() && matches!(kind, Kind::OptStr | Kind::OptPath) {
                Ok(Typed::Absent)
            } else {
                Ok(Typed::Str(s.clone()))
            }
        }
        (Kind::Bool, Raw::Toml(toml::Value::Boolean(b))) => Ok(Typed::Bool(*b)),
        (Kind::Bool, Raw::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Typed::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Typed::Bool(false)),
            _ => Err(format!(
                "{} is not a boolean; accepted: true or false",
                show_text(s)
            )),
        },
        (Kind::Int { min, max }, raw) => {
            let parsed = match raw {
                Raw::Toml(toml::Value::Integer(i)) => u64::try_from(*i).ok(),
                Raw::Text(s) => s.trim().parse::<u64>().ok(),
                Raw::Toml(_) => None,
            };
            let shown = match raw {
                Raw::Toml(v) => show_toml(v),
                Raw::Text(s) => show_text(s),
            };
            match parsed {
                Some(n) if (min..=max).contains(&n) => Ok(Typed::Int(n)),
                _ => Err(format!(
                    "{shown} is not accepted; {key} is a whole number from {min} to {max}"
                )),
            }
        }
        (Kind::Usd, raw) => {
            let parsed = match raw {
                Raw::Toml(toml::Value::Float(f)) => Some(*f),
                Raw::Toml(toml::Value::Integer(i)) => Some(*i as f64),
                Raw::Text(s) if s.trim().is_empty() => return Ok(Typed::Absent),
                Raw::Text(s) => s.trim().parse::<f64>().ok(),
                Raw::Toml(_) => None,
            };
            match parsed {
                Some(x) if x > 0.0 && x <= 1_000_000.0 => Ok(Typed::Usd(x)),
                _ => Err(format!(
                    "{} is not accepted; {key} is an amount in USD above 0, e.g. 5.0",
                    match raw {
                        Raw::Toml(v) => show_toml(v),
                        Raw::Text(s) => show_text(s),
                    }
                )),
            }
        }
        (Kind::List, Raw::Toml(toml::Value::Array(items))) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) => out.push(s.clone()),
                    other => {
                        return Err(format!(
                            "list item {} is not a string; {key} is a list of strings",
                            show_toml(other)
                        ))
                    }
                }
            }
            Ok(Typed::List(out))
        }
        (Kind::List, Raw::Text(s)) => Ok(Typed::List(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )),
        (kind, Raw::Toml(other)) => {
            let wanted = match kind {
                Kind::Bool => "true or false",
                Kind::List => "a list of strings, e.g. [\"a\", \"b\"]",
                _ => "a string",
            };
            Err(format!(
                "{} is not accepted; expected {wanted}",
                show_toml(other)
            ))
        }
    }
}

/// Expand a leading `~` or `~/` to the home directory.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path, home) {
        ("~", Some(home)) => home.to_path_buf(),
        (p, Some(home)) if p.starts_with("~/") => home.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

pub(super) fn is_http_url(value: &str) -> bool {
    (value.starts_with("http://") || value.starts_with("https://"))
        && value.split("://").nth(1).is_some_and(|rest| {
            let host = rest.split('/').next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        })
}

/// True when `host` names the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The api runner's price of a model: USD per million tokens. `model` matches a model id that
/// is equal to it or starts with it followed by `-` (a dated id).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPrice {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl ApiPrice {
    /// The price that applies to `model`: the exact entry, else the longest prefix entry.
    pub fn find<'a>(prices: &'a [ApiPrice], model: &str) -> Option<&'a ApiPrice> {
        prices
            .iter()
            .filter(|p| {
                p.model == model
                    || model
                        .strip_prefix(p.model.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|p| p.model.len())
    }

    /// The cost of a call that used these tokens.
    pub fn cost(&self, input_tokens: i64, output_tokens: i64) -> f64 {
        (input_tokens.max(0) as f64 * self.input_per_mtok
            + output_tokens.max(0) as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// `model=INPUT/OUTPUT` (USD per million tokens) → a price.
pub(super) fn parse_price(entry: &str) -> Result<ApiPrice, String> {
    let bad = || {
        format!(
            "api_prices: \"{entry}\" is not accepted; expected model=INPUT/OUTPUT in USD per million tokens, e.g. claude-sonnet-4-5=3/15"
        )
    };
    let (model, rates) = entry.split_once('=').ok_or_else(bad)?;
    let (input, output) = rates.split_once('/').ok_or_else(bad)?;
    let rate = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| *x >= 0.0 && x.is_finite())
    };
    match (model.trim(), rate(input), rate(output)) {
        (m, Some(i), Some(o)) if !m.is_empty() => Ok(ApiPrice {
            model: m.to_string(),
            input_per_mtok: i,
            output_per_mtok: o,
        }),
        _ => Err(bad()),
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAuth {
    /// The bearer token (any accepted one), as `/mcp`; nothing when `auth = "none"`.
    Token,
    /// Only `metrics_token`, a separate secret for the scraper.
    MetricsToken,
    /// No token, but only clients on loopback (the real client behind a trusted proxy).
    Loopback,
}

impl MetricsAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsAuth::Token => "token",
            MetricsAuth::MetricsToken => "metrics_token",
            MetricsAuth::Loopback => "loopback",
        }
    }
}

/// A secret token setting: at least 16 visible ASCII characters; the error never shows it.
pub(super) fn secret_token(value: Option<String>, key: &str) -> Result<Option<String>, String> {
    match value {
        Some(t) if t.len() < 16 || t.chars().any(|c| !c.is_ascii_graphic()) => Err(format!(
            "{key}: must be at least 16 visible ASCII characters (value not shown)"
        )),
        other => Ok(other),
    }
}
