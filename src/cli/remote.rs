//! The operator commands' client of the running server: a small blocking MCP client over ureq
//! (initialize → notifications/initialized → tools/call with the session id; JSON or SSE
//! answers). URL and token come from the flags, `$CLAUDECRON_TOKEN`, the config and the token
//! file, as for `claudecron hook`. It never prints the token, never creates a token file, and
//! never touches the database: everything goes through the server's tools.

use super::flags::split_flag;
use super::CliError;
use crate::config::{self, Sources};
use serde_json::{json, Value};
use std::time::Duration;

/// The protocol version the client asks for (the server's latest).
const VERSION: &str = crate::mcp::LATEST_VERSION;
/// How long one exchange may take, beyond any `wait_seconds` the call itself asks for.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Flags every remote command accepts: `--url`, `--token`, `--json`; what is left over.
pub struct Common {
    pub url: Option<String>,
    pub token: Option<String>,
    pub json: bool,
    pub rest: Vec<String>,
}

/// Split off the common flags, leaving the command's own arguments in order.
pub fn common(args: &[String]) -> Result<Common, CliError> {
    let mut out = Common {
        url: None,
        token: None,
        json: false,
        rest: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = split_flag(arg);
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value, e.g. {flag} {what}")))
        };
        match flag {
            "--url" => out.url = Some(value("http://127.0.0.1:3010")?),
            "--token" => out.token = Some(value("TOKEN")?),
            "--json" => out.json = true,
            _ => out.rest.push(arg.clone()),
        }
    }
    Ok(out)
}

/// An initialized MCP session with the running server.
pub struct Remote {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
    session: Option<String>,
    next_id: u64,
}

impl Remote {
    /// Connect and initialize. The URL is `--url` (a base such as `http://host:3010` or the
    /// full `…/mcp`), else the config's host and port.
    pub fn connect(common: &Common, sources: &Sources) -> Result<Remote, CliError> {
        let config = config::load(sources);
        let url = match (&common.url, &config) {
            (Some(u), _) => u.clone(),
            (None, Ok(c)) => super::forward::default_url(c),
            (None, Err(e)) => return Err(CliError::Config(e.clone())),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--url \"{url}\" is not an http(s) URL; e.g. http://127.0.0.1:3010"
            )));
        }
        let base = url.trim_end_matches('/');
        let base = base
            .strip_suffix("/hooks")
            .or_else(|| base.strip_suffix("/mcp"))
            .unwrap_or(base);
        let token = super::forward::token(common.token.clone(), sources, config.as_ref().ok());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut remote = Remote {
            agent,
            url: format!("{base}/mcp"),
            token,
            session: None,
            next_id: 1,
        };
        let init = remote.request(
            "initialize",
            json!({
                "protocolVersion": VERSION,
                "capabilities": {},
                "clientInfo": {"name": "claudecron-cli", "version": env!("CARGO_PKG_VERSION")},
            }),
            TIMEOUT,
        )?;
        if init.get("protocolVersion").is_none() {
            return Err(CliError::Unreachable(format!(
                "{} did not answer initialize as an MCP server",
                remote.url
            )));
        }
        remote.post(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            TIMEOUT,
        )?;
        Ok(remote)
    }

    /// Call a tool; its `structuredContent`. A tool's refusal (`isError`) is `Failed` with the
    /// server's message (which names the field and what is accepted).
    pub fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, CliError> {
        let wait = arguments["wait_seconds"].as_u64().unwrap_or(0);
        let result = self.request(
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
            TIMEOUT + Duration::from_secs(wait),
        )?;
        if result["isError"].as_bool() == Some(true) {
            let text = result["content"][0]["text"]
                .as_str()
                .unwrap_or("(no message)");
            return Err(CliError::Failed(text.to_string()));
        }
        Ok(result
            .get("structuredContent")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Every page of `list_tasks`, in name order.
    pub fn all_tasks(&mut self) -> Result<Vec<Value>, CliError> {
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut args = json!({"limit": 500});
            if let Some(c) = &cursor {
                args["cursor"] = json!(c);
            }
            let page = self.call("claudecron_list_tasks", args)?;
            tasks.extend(page["tasks"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(tasks),
            }
        }
    }

    fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self
            .post(&body, timeout)?
            .ok_or_else(|| self.not_mcp(&format!("an empty answer to {method}")))?;
        if let Some(error) = answer.get("error") {
            return Err(CliError::Failed(format!(
                "the server refused {method}: {}",
                error["message"].as_str().unwrap_or("(no message)")
            )));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| self.not_mcp(&format!("no result for {method}")))
    }

    fn not_mcp(&self, what: &str) -> CliError {
        CliError::Unreachable(format!(
            "{} gave {what}; is it a claudecron server?",
            self.url
        ))
    }

    /// POST one message; the JSON-RPC answer (from a JSON body or the SSE stream), or None for
    /// 202 Accepted.
    fn post(&mut self, body: &Value, timeout: Duration) -> Result<Option<Value>, CliError> {
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", VERSION);
        if let Some(t) = &self.token {
            request = request.header("Authorization", &format!("Bearer {t}"));
        }
        if let Some(s) = &self.session {
            request = request.header("Mcp-Session-Id", s);
        }
        let mut response = request.send(body.to_string()).map_err(|e| {
            CliError::Unreachable(format!(
                "cannot reach the claudecron server at {}: {e}; is it running (systemctl status claudecron)? Pass --url or set host/port in the config",
                self.url
            ))
        })?;
        let status = response.status().as_u16();
        if let Some(s) = response.headers().get("mcp-session-id") {
            if let Ok(s) = s.to_str() {
                self.session = Some(s.to_string());
            }
        }
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| {
                CliError::Unreachable(format!("reading the answer from {}: {e}", self.url))
            })?;
        match status {
            202 => return Ok(None),
            401 | 403 => {
                return Err(CliError::Denied(format!(
                    "the server at {} refused the token (HTTP {status}); pass --token, set $CLAUDECRON_TOKEN, or run this where the config's token file is readable (claudecron token)",
                    self.url
                )))
            }
            429 | 503 => {
                let after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("a few")
                    .to_string();
                return Err(CliError::Failed(format!(
                    "the server at {} is busy or rate-limiting this client (HTTP {status}); try again in {after} s",
                    self.url
                )));
            }
            200 => {}
            _ => {
                let detail: String = text.chars().take(300).collect();
                return Err(CliError::Unreachable(format!(
                    "the server at {} answered HTTP {status}: {detail}",
                    self.url
                )));
            }
        }
        let json_text = if sse {
            // The answer is the last `data:` event that carries our id (progress comes before).
            text.split("\n\n")
                .filter_map(|event| {
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(|l| l.strip_prefix(' ').unwrap_or(l))
                        .collect();
                    (!data.is_empty()).then(|| data.join("\n"))
                })
                .filter(|d| serde_json::from_str::<Value>(d).is_ok_and(|v| v["id"] == body["id"]))
                .last()
                .unwrap_or_default()
        } else {
            text
        };
        serde_json::from_str(&json_text)
            .map(Some)
            .map_err(|_| self.not_mcp("an answer that is not JSON-RPC"))
    }
}

impl Drop for Remote {
    /// End the session (best effort, short): the server would expire it anyway.
    fn drop(&mut self) {
        if let Some(s) = &self.session {
            let mut request = self
                .agent
                .delete(&self.url)
                .config()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .header("Mcp-Session-Id", s)
                .header("MCP-Protocol-Version", VERSION);
            if let Some(t) = &self.token {
                request = request.header("Authorization", &format!("Bearer {t}"));
            }
            let _ = request.call();
        }
    }
}
