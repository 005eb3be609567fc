#!/usr/bin/env python3
"""claudecron interop: the newest Claude Code CLI against the server through a logging proxy.

    CLAUDECRON_INTEROP_TOKEN=... python claude2026_check.py --claude BIN --url http://127.0.0.1:PORT/mcp \
        --mock-script scripts/interop/mock_anthropic.py --log-dir DIR

Starts (all on 127.0.0.1) a logging HTTP proxy in front of the server's /mcp (it records each
request's HTTP method, MCP-Protocol-Version, Mcp-Method, Mcp-Name, the body's method and whether
the body's clientCapabilities declare the tasks extension, and streams answers through, SSE
included) and the mock Messages API (mock_anthropic.py). Then, with a throwaway HOME:

1. `claude mcp add --transport http` + `claude mcp list`: the server is Connected, and the proxy
   saw `server/discover` at 2026-07-28 and no `initialize` (Claude Code stayed on the modern era);
2. `claude -p` with the mock asking for `mcp__srv__claudecron_list_tasks` (ENABLE_TOOL_SEARCH=false,
   so MCP tools are not deferred): the tool result reaches the model; the proxy saw the
   `tools/call` at 2026-07-28 with `Mcp-Name`;
3. `claude -p` with the mock asking for `ReadMcpResourceTool` on `claudecron://runs/{id}` of a run
   made beforehand: the run's log reaches the model (resources/read through Claude Code; the mock
   echoes the first 200 characters of a tool result, the run's header lines);
4. the interactive CLI under tmux (its own tmux server socket), which declares the tasks extension:
   the mock asks for `claudecron_run_task` on a 12 s task; Claude Code gets a task back, moves it
   to the background ("started server-side task"), polls `tasks/get` (Mcp-Name = the task id) and
   reports "MCP task N ... completed"; the run succeeded on the server. tmux is installed with
   apt-get when missing (the suite runs as root on Debian); without it the check fails loudly.

Prints `ok - claude2026 ...` / `not ok - ...` per check; exit 0 when all passed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from tap import Tap, free_port

TASKS_EXT = "io.modelcontextprotocol/tasks"
TAP = Tap("claude2026")
check = TAP.check


class Proxy:
    """A logging reverse proxy for one upstream origin."""

    def __init__(self, upstream: str, log_path: str) -> None:
        u = urlparse(upstream)
        self.host, self.port_up = u.hostname or "127.0.0.1", u.port or 80
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.log_path = log_path
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes: SSE streams through

            def log_message(self, *args: Any) -> None:
                pass

            def relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                entry: dict[str, Any] = {
                    "t": time.time(), "http": self.command, "path": self.path,
                    "version": self.headers.get("mcp-protocol-version"),
                    "mcp_method": self.headers.get("mcp-method"), "mcp_name": self.headers.get("mcp-name"),
                    "session": bool(self.headers.get("mcp-session-id")),
                }
                try:
                    msg = json.loads(body) if body else {}
                    entry["method"] = msg.get("method")
                    caps = ((msg.get("params") or {}).get("_meta") or {}).get(
                        "io.modelcontextprotocol/clientCapabilities")
                    entry["tasks_ext"] = isinstance(caps, dict) and TASKS_EXT in (caps.get("extensions") or {})
                    if msg.get("method") == "initialize":
                        entry["tasks_ext"] = "tasks" in ((msg.get("params") or {}).get("capabilities") or {})
                except (ValueError, AttributeError):
                    entry["method"] = "?"
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                conn = http.client.HTTPConnection(proxy.host, proxy.port_up, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    entry["status"] = resp.status
                    with proxy.lock:
                        proxy.log.append(entry)
                        with open(proxy.log_path, "a") as f:
                            f.write(json.dumps(entry) + "\n")
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    while True:
                        chunk = resp.read1(65536)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    conn.close()

            do_GET = do_POST = do_DELETE = relay  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def entries(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log)


def modern_call(url: str, token: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """One 2026-07-28 tools/call straight to the server (setup, not under test)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call", "Mcp-Name": tool})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
    if text.startswith("event:") or text.startswith("data:") or "\ndata:" in text:
        text = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")][-1]
    return json.loads(text)["result"]


def ensure_tmux() -> bool:
    if subprocess.run(["sh", "-c", "command -v tmux"], capture_output=True).returncode == 0:
        return True
    if os.geteuid() == 0:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "tmux"]):
            subprocess.run(cmd, capture_output=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return subprocess.run(["sh", "-c", "command -v tmux"], capture_output=True).returncode == 0


def background_task(args: argparse.Namespace, token: str, proxy: Proxy, home: str, cwd: str,
                    env: dict[str, str], mcp_config: str) -> None:
    """The interactive CLI turns a run_task into a background MCP task and polls it to the end."""
    if not check("tmux is available (installed with apt-get when missing)", ensure_tmux(), "no tmux and no apt-get"):
        return
    modern_call(args.url, token, "claudecron_delete_task", {"taskId": "claude2026-bg"})
    modern_call(args.url, token, "claudecron_add_task", {"name": "claude2026-bg", "type": "bash",
                                                         "trigger": {"type": "manual"},
                                                         "command": "echo bg-start; sleep 12; echo bg-finished"})
    with open(os.path.join(home, ".claude.json")) as f:
        state = json.load(f)
    state["customApiKeyResponses"] = {"approved": ["dummy"], "rejected": []}
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump(state, f)
    sock = f"claudecron-interop-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    shell_env = " ".join(f"{k}={json.dumps(v)}" for k, v in {**env, "TERM": "xterm-256color"}.items()
                         if k in ("HOME", "PATH", "TERM") or k.startswith(("ANTHROPIC_", "CLAUDE_", "ENABLE_", "DISABLE_")))
    cmd = (f"env -i {shell_env} {args.claude} --mcp-config {mcp_config} --strict-mcp-config "
           "--allowedTools mcp__srv__claudecron_run_task")

    def pane() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "cc"], capture_output=True, text=True).stdout

    before = len(proxy.entries())
    try:
        subprocess.run(tmux + ["new-session", "-d", "-s", "cc", "-x", "220", "-y", "50", "-c", cwd, cmd], check=True)
        deadline = time.monotonic() + 60
        while "\u276f" not in pane() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not check("the interactive CLI starts under tmux (prompt shown)", "\u276f" in pane(), pane()[-500:]):
            return
        time.sleep(2)
        subprocess.run(tmux + ["send-keys", "-t", "cc", '[[tool: mcp__srv__claudecron_run_task {"taskId":"claude2026-bg"}]]'])
        time.sleep(1)
        subprocess.run(tmux + ["send-keys", "-t", "cc", "Enter"])
        t0 = time.monotonic()
        text = ""
        while time.monotonic() < t0 + 90:
            text = pane()
            if "(srv/claudecron_run_task) completed" in text:
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        seen = proxy.entries()[before:]
        calls = [e for e in seen if e.get("method") == "tools/call"]
        gets = [e for e in seen if e.get("method") == "tasks/get"]
        check("the interactive CLI declares the tasks extension on tools/call",
              bool(calls) and all(c.get("tasks_ext") for c in calls), f"calls={calls}")
        check("Claude Code moved the run to the background as a server-side task",
              "started server-side task" in text and "background" in text, text[-800:])
        task_ids = {e.get("mcp_name") for e in gets}
        check(f"Claude Code polled tasks/get with Mcp-Name = the task id ({len(gets)} polls)",
              len(gets) >= 2 and len(task_ids) == 1 and all(e.get("status") == 200 for e in gets),
              f"tasks/get={gets[:3]}")
        check(f"Claude Code reported the MCP task completed ({took:.1f} s)",
              "(srv/claudecron_run_task) completed" in text, text[-800:])
        task_id = next(iter(task_ids), None)
        if task_id and task_id.isdigit():
            run = modern_call(args.url, token, "claudecron_get_run", {"runId": int(task_id)})
            r = (run.get("structuredContent") or {}).get("run") or {}
            check("the task's run succeeded on the server with its output",
                  r.get("status") == "success" and "bg-finished" in (r.get("output") or ""), json.dumps(r)[:300])
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        modern_call(args.url, token, "claudecron_delete_task", {"taskId": "claude2026-bg"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claude", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--mock-script", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--log-dir", required=True)
    args = ap.parse_args()
    token = os.environ["CLAUDECRON_INTEROP_TOKEN"]
    args.claude = os.path.abspath(args.claude)
    os.makedirs(args.log_dir, exist_ok=True)
    u = urlparse(args.url)
    proxy = Proxy(f"{u.scheme}://{u.netloc}", os.path.join(args.log_dir, "proxy.jsonl"))
    proxied = f"http://127.0.0.1:{proxy.port}{u.path}"
    mock_port = free_port()
    mock = subprocess.Popen([args.python, args.mock_script, "--port", str(mock_port),
                             "--log", os.path.join(args.log_dir, "mock.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = mock.stdout.readline() if mock.stdout else ""
        if not line.startswith("listening"):
            check("mock Messages API starts", False, line)
            return 1
        # Claude Code may still be writing its state there while it exits: cleanup errors are ignored.
        with tempfile.TemporaryDirectory(prefix="claude2026-", ignore_cleanup_errors=True) as home:
            return scenario(args, token, proxy, proxied, mock_port, home)
    finally:
        mock.terminate()
        mock.wait(timeout=10)
        proxy.server.shutdown()


def scenario(args: argparse.Namespace, token: str, proxy: Proxy, proxied: str, mock_port: int, home: str) -> int:
    cwd = os.path.join(home, "project")
    os.makedirs(cwd)
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True, "projects": {cwd: {"hasTrustDialogAccepted": True}}}, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDECRON_", "ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=home, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{mock_port}", ANTHROPIC_API_KEY="dummy",
               ENABLE_TOOL_SEARCH="false", DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               CLAUDE_CODE_MAX_RETRIES="0")

    def claude(*argv: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([args.claude, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    version = claude("--version").stdout.strip()
    print(f"# claude {version}", flush=True)
    add = claude("mcp", "add", "--transport", "http", "srv", proxied, "--header", f"Authorization: Bearer {token}")
    check("claude mcp add --transport http", add.returncode == 0, (add.stderr or add.stdout)[-300:])
    before = len(proxy.entries())
    t0 = time.monotonic()
    listed = claude("mcp", "list")
    out = listed.stdout + listed.stderr
    check(f"claude mcp list: srv Connected ({time.monotonic() - t0:.1f} s)",
          listed.returncode == 0 and "srv" in out and "Connected" in out, out[-400:])
    seen = proxy.entries()[before:]
    methods = [(e.get("method"), e.get("version")) for e in seen]
    print(f"# claude mcp list sent: {methods}", flush=True)
    check("Claude Code probed server/discover at 2026-07-28",
          ("server/discover", "2026-07-28") in methods, f"requests {methods}")
    check("Claude Code stayed on 2026-07-28 (no initialize, every request modern, no session)",
          bool(seen) and not any(m == "initialize" for m, _ in methods)
          and all(e.get("version") == "2026-07-28" and not e.get("session") for e in seen if e["http"] == "POST"),
          f"requests {methods}")

    mcp_config = os.path.join(home, "m.json")
    with open(mcp_config, "w") as f:
        json.dump({"mcpServers": {"srv": {"type": "http", "url": proxied,
                                          "headers": {"Authorization": f"Bearer {token}"}}}}, f)
    before = len(proxy.entries())
    t0 = time.monotonic()
    run = claude("-p", "[[tool: mcp__srv__claudecron_list_tasks {}]]", "--mcp-config", mcp_config,
                 "--strict-mcp-config", "--allowedTools", "mcp__srv__claudecron_list_tasks", timeout=180)
    seen = proxy.entries()[before:]
    calls = [e for e in seen if e.get("method") == "tools/call"]
    check(f"claude -p: the model's tools/call reached the server and its result the model ({time.monotonic() - t0:.1f} s)",
          run.returncode == 0 and "MOCK_DONE after tool:" in run.stdout and bool(calls),
          f"rc={run.returncode} stdout={run.stdout[-300:]!r} stderr={run.stderr[-300:]!r}")
    check("that tools/call was 2026-07-28 with Mcp-Method and Mcp-Name",
          bool(calls) and all(c.get("version") == "2026-07-28" and c.get("mcp_method") == "tools/call"
                              and c.get("mcp_name") == "claudecron_list_tasks" for c in calls), f"calls={calls}")
    check("claude -p does not declare the tasks extension (only the interactive CLI does)",
          bool(calls) and not any(c.get("tasks_ext") for c in calls), f"calls={calls}")

    # resources/read through Claude Code's ReadMcpResourceTool
    try:
        modern_call(args.url, token, "claudecron_delete_task", {"taskId": "claude2026-hello"})
        modern_call(args.url, token, "claudecron_add_task", {"name": "claude2026-hello", "type": "bash",
                                                             "trigger": {"type": "manual"},
                                                             "command": "echo output-for-claude-2026"})
        r = modern_call(args.url, token, "claudecron_run_task", {"taskId": "claude2026-hello", "wait_seconds": 30})
        run_id = r["structuredContent"]["run"]["id"]
    except (OSError, KeyError, ValueError) as e:
        check("set up a run to read", False, f"{type(e).__name__}: {e}")
        return 1
    uri = f"claudecron://runs/{run_id}"
    before = len(proxy.entries())
    run = claude("-p", f"[[tool: ReadMcpResourceTool {json.dumps({'server': 'srv', 'uri': uri})}]]",
                 "--mcp-config", mcp_config, "--strict-mcp-config", "--allowedTools", "ReadMcpResourceTool",
                 timeout=180)
    seen = proxy.entries()[before:]
    reads = [e for e in seen if e.get("method") == "resources/read"]
    lists = [e for e in seen if e.get("method") == "resources/list"]
    check("Claude Code lists resources at connect (resources/list)", bool(lists), f"methods={[e.get('method') for e in seen]}")
    check("ReadMcpResourceTool read the run's log through resources/read",
          # the mock echoes the first 200 characters of the tool result: the run's header lines
          bool(reads) and all(e.get("mcp_name") == uri for e in reads)
          and f'run {run_id} of task \\"claude2026-hello\\"' in run.stdout and "status: success" in run.stdout,
          f"reads={reads} stdout={run.stdout[-300:]!r} stderr={run.stderr[-200:]!r}")
    modern_call(args.url, token, "claudecron_delete_task", {"taskId": "claude2026-hello"})
    background_task(args, token, proxy, home, cwd, env, mcp_config)
    return TAP.totals()


if __name__ == "__main__":
    sys.exit(main())
