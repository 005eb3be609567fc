#!/usr/bin/env python3
"""One MCP tool call over Streamable HTTP, for scripts/package_test.sh:

    mcp.py BASE_URL TOOL ARGS_JSON      (the bearer token in $CLAUDECRON_TOKEN)

Opens a session (initialize, notifications/initialized), calls TOOL with ARGS_JSON, prints the
result's structuredContent as one line of JSON and closes the session. Exit 0 on a result that
is not isError, 1 otherwise (the reason on stderr). Standard library only; 30 s per request."""

import json
import os
import sys
import urllib.error
import urllib.request

PROTO = "2025-11-25"


def post(url, token, body, session=None):
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": PROTO,
    }
    if session:
        headers["MCP-Session-Id"] = session
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read().decode()
        sid = resp.headers.get("MCP-Session-Id")
        if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            # The answer is the data line of the event that carries our request's id.
            for line in raw.splitlines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("id") == body.get("id"):
                        return msg, sid
            raise RuntimeError(f"no answer in the event stream: {raw[:300]}")
        return (json.loads(raw) if raw.strip() else None), sid


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: mcp.py BASE_URL TOOL ARGS_JSON (token in $CLAUDECRON_TOKEN)")
    base, tool, args = sys.argv[1].rstrip("/"), sys.argv[2], json.loads(sys.argv[3])
    token = os.environ.get("CLAUDECRON_TOKEN", "")
    url = base + "/mcp"
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTO,
            "capabilities": {},
            "clientInfo": {"name": "claudecron-package-test", "version": "1"},
        },
    }
    try:
        _, sid = post(url, token, init)
        post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}}
        msg, _ = post(url, token, call, sid)
        req = urllib.request.Request(
            url,
            method="DELETE",
            headers={"Authorization": f"Bearer {token}", "MCP-Session-Id": sid, "MCP-Protocol-Version": PROTO},
        )
        try:
            urllib.request.urlopen(req, timeout=30).close()
        except urllib.error.HTTPError:
            pass
    except (urllib.error.URLError, RuntimeError, ValueError, OSError) as e:
        sys.exit(f"mcp.py: {tool}: {e}")
    result = (msg or {}).get("result")
    if not result or result.get("isError"):
        sys.exit(f"mcp.py: {tool} failed: {json.dumps(msg)[:500]}")
    print(json.dumps(result.get("structuredContent", {})))


if __name__ == "__main__":
    main()
