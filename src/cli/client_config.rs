//! `claudecron client-config`: ready-to-paste client setup for this server — the `claude mcp
//! add` command, Claude Desktop's mcp-remote entry, and Claude Code hook blocks (http, command
//! and mcp_tool), the claude.ai custom connector URL. Text only; it reads the config and the
//! token, changes nothing.

use serde_json::json;

/// The setup text for a server reachable at `base` (no trailing slash) with `token`.
pub fn render(base: &str, token: &str) -> String {
    let base = base.trim_end_matches('/');
    let mcp = format!("{base}/mcp");
    let hooks = format!("{base}/hooks");
    let desktop = json!({
        "mcpServers": {
            "claudecron": {
                "command": "npx",
                "args": ["-y", "mcp-remote", mcp, "--header", "Authorization:${CLAUDECRON_AUTH}"],
                "env": {"CLAUDECRON_AUTH": format!("Bearer {token}")}
            }
        }
    });
    let http_hooks = json!({
        "hooks": {
            "PostToolUse": [{"matcher": "*", "hooks": [{
                "type": "http",
                "url": hooks,
                "headers": {"Authorization": "Bearer $CLAUDECRON_TOKEN"},
                "allowedEnvVars": ["CLAUDECRON_TOKEN"],
                "timeout": 5
            }]}],
            "Stop": [{"hooks": [{
                "type": "http",
                "url": hooks,
                "headers": {"Authorization": "Bearer $CLAUDECRON_TOKEN"},
                "allowedEnvVars": ["CLAUDECRON_TOKEN"],
                "timeout": 5
            }]}]
        }
    });
    let command_hooks = json!({
        "hooks": {
            "SessionStart": [{"hooks": [{
                "type": "command",
                "command": format!("claudecron hook --url {hooks}"),
                "timeout": 5
            }]}]
        }
    });
    let mcp_tool_hooks = json!({
        "hooks": {
            "PostToolUse": [{"matcher": "Write|Edit", "hooks": [{
                "type": "mcp_tool",
                "server": "claudecron",
                "tool": "claudecron_trigger_hook",
                "input": {
                    "event": "PostToolUse",
                    "tool_name": "${tool_name}",
                    "file_path": "${tool_input.file_path}",
                    "session_id": "${session_id}",
                    "cwd": "${cwd}"
                }
            }]}]
        }
    });
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let allow_http = if mcp.starts_with("http://") && !is_loopback_url(&mcp) {
        "\n(The URL is plain http and not loopback: add \"--allow-http\" to the args, or better, use https.)"
    } else {
        ""
    };
    format!(
        "# Claude Code: add the MCP server\n\
         claude mcp add --transport http claudecron {mcp} --header \"Authorization: Bearer {token}\"\n\n\
         # Claude Desktop (claude_desktop_config.json), through mcp-remote\n{desktop}{allow_http}\n\n\
         # Claude Code hooks (settings.json). Give Claude Code the token first:\n\
         #   export CLAUDECRON_TOKEN={token}\n\
         # a) http hooks: not for SessionStart (Claude Code skips http hooks there), and the URL must be\n\
         #    loopback or public (Claude Code refuses private-network addresses for http hooks).\n{http}\n\n\
         # b) command hooks: for SessionStart and for servers on private addresses. `claudecron hook`\n\
         #    forwards the payload (token from CLAUDECRON_TOKEN or this host's config), waits at most 2 s,\n\
         #    prints nothing and always exits 0.\n{command}\n\n\
         # c) mcp_tool hooks: over the MCP session Claude Code already has open with claudecron.\n{tool}\n",
        desktop = pretty(&desktop),
        http = pretty(&http_hooks),
        command = pretty(&command_hooks),
        tool = pretty(&mcp_tool_hooks),
    )
}

/// The claude.ai / Claude Desktop custom connector block: the URL to paste, and whether the
/// OAuth sign-in it needs is on.
pub fn connector(base: &str, oauth_enabled: bool) -> String {
    let mcp = format!("{}/mcp", base.trim_end_matches('/'));
    let state = if oauth_enabled {
        "oauth_enabled = true: sign in with the owner password (claudecron oauth set-password) or a\n\
         #   one-time code (claudecron oauth approve) when the connector opens the sign-in page."
    } else {
        "OAuth is off: set oauth_enabled = true and public_url first (see README, \"Connect claude.ai\")."
    };
    format!(
        "\n# claude.ai / Claude Desktop custom connector (Settings > Connectors > Add custom connector).\n\
         # Remote MCP server URL to paste (leave the OAuth client ID and secret empty):\n\
         #   {mcp}\n\
         # {state}\n"
    )
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or("");
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    crate::config::is_loopback_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_block_with_the_url_and_token() {
        let text = render("https://mcp.example.com/cron/", "tok-abc-123");
        assert!(text.contains("claude mcp add --transport http claudecron https://mcp.example.com/cron/mcp --header \"Authorization: Bearer tok-abc-123\""));
        assert!(text.contains("\"url\": \"https://mcp.example.com/cron/hooks\""));
        assert!(text.contains("\"allowedEnvVars\""));
        assert!(text.contains("claudecron hook --url https://mcp.example.com/cron/hooks"));
        assert!(text.contains("claudecron_trigger_hook"));
        assert!(!text.contains("--allow-http"));
        assert!(render("http://10.0.0.5:3010", "t").contains("--allow-http"));
        assert!(!render("http://127.0.0.1:3010", "t").contains("--allow-http"));
        assert!(connector("https://h/cron/", true).contains("#   https://h/cron/mcp\n"));
        assert!(connector("https://h/cron", false).contains("oauth_enabled = true"));
    }
}
