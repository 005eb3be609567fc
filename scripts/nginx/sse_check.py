#!/usr/bin/env python3
"""Does a run's notifications/message reach a GET event stream at once (no proxy buffering)?

Run by scripts/nginx_test.sh (standard library only):

    CLAUDECRON_NGINX_TOKEN=... python3 sse_check.py --base https://127.0.0.1:PORT/cron --cafile cert.pem
    CLAUDECRON_NGINX_TOKEN=... python3 sse_check.py --base http://127.0.0.1:3010 --label direct

On one session: initialize, notifications/initialized, logging/setLevel info; open GET /mcp
(Accept: text/event-stream) on a second connection and read it on a thread, timestamping every
event as it arrives; add a manual bash task, claudecron_run_task with wait_seconds, delete it.
The run's notifications/message must arrive within --max-latency seconds of the run's end
(the run's finished_at, same host clock) and of run_task's answer. Prints the latency, one
`ok - sse[LABEL] ...` / `not ok - ...` line per check; exit 0 when all passed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from datetime import datetime
from typing import Any

PROTO = "2025-11-25"


class Checks:
    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, name: str, cond: bool, details: str = "") -> bool:
        if cond:
            self.passed += 1
            print(f"ok - sse[{self.label}] {name}", flush=True)
        else:
            self.failed += 1
            details = " ".join(str(details or "condition false").split())[:600]
            print(f"not ok - sse[{self.label}] {name}: {details}", flush=True)
        return cond


class Endpoint:
    def __init__(self, base: str, token: str, cafile: str | None, insecure: bool) -> None:
        u = urllib.parse.urlsplit(base.rstrip("/"))
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.https else 80)
        self.path = (u.path or "") + "/mcp"
        self.token = token
        self.ctx: ssl.SSLContext | None = None
        if self.https:
            self.ctx = ssl.create_default_context(cafile=cafile)
            if insecure:
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
        self.sid = ""

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}", "Accept": accept, "Content-Type": "application/json"}
        if self.sid:
            h["MCP-Session-Id"] = self.sid
            h["MCP-Protocol-Version"] = PROTO
        return h

    def post(self, conn: http.client.HTTPConnection, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        conn.request("POST", self.path, body=json.dumps(body), headers=self.headers())
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        data: Any = None
        text = raw.decode("utf-8", "replace")
        if hdrs.get("content-type", "").startswith("text/event-stream"):
            lines = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
            text = lines[-1] if lines else ""
        if text.strip():
            try:
                data = json.loads(text)
            except ValueError:
                data = text
        return resp.status, hdrs, data


def parse_time(s: str) -> float | None:
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="base URL: https://127.0.0.1:PORT/cron or http://127.0.0.1:3010")
    ap.add_argument("--cafile")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--label", default="proxy")
    ap.add_argument("--max-latency", type=float, default=2.0)
    ap.add_argument("--run-seconds", type=float, default=1.0, help="how long the task's command runs")
    args = ap.parse_args()
    ck = Checks(args.label)
    ep = Endpoint(args.base, os.environ.get("CLAUDECRON_NGINX_TOKEN", ""), args.cafile, args.insecure)

    conn = ep.connect(timeout=30)
    status, hdrs, data = ep.post(conn, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTO, "capabilities": {}, "clientInfo": {"name": "nginx-sse-check", "version": "1"}}})
    ep.sid = hdrs.get("mcp-session-id", "")
    if not ck.check("initialize -> 200 with MCP-Session-Id", status == 200 and bool(ep.sid), f"HTTP {status} {data}"):
        return 1
    status, _, data = ep.post(conn, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    ck.check("notifications/initialized -> 202", status == 202, f"HTTP {status} {data}")
    status, _, data = ep.post(conn, {"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "info"}})
    ck.check("logging/setLevel info -> 200", status == 200 and isinstance(data, dict) and "result" in data,
             f"HTTP {status} {data}")

    # The GET stream on its own connection, read on a thread.
    # A proxy that buffers the stream holds back even its headers: wait for them 5 s at most.
    stream_conn = ep.connect(timeout=5)
    stream_conn.request("GET", ep.path, headers=ep.headers(accept="text/event-stream"))
    try:
        stream = stream_conn.getresponse()
    except TimeoutError:
        ck.check("GET /mcp opens an event stream (200 text/event-stream)", False,
                 "no response headers within 5 s: the proxy buffers the event stream (proxy_buffering on?)")
        return 1
    if stream_conn.sock is not None:
        stream_conn.sock.settimeout(30)  # reading: keep-alive comments come every 15 s
    ctype = stream.getheader("Content-Type", "")
    opened = stream.status == 200 and ctype.startswith("text/event-stream")
    if not ck.check("GET /mcp opens an event stream (200 text/event-stream)", opened,
                    "" if opened else f"HTTP {stream.status} Content-Type {ctype!r} body {stream.read(300)!r}"):
        return 1
    events: list[tuple[float, float, Any]] = []  # (monotonic, wall, message)
    seen_bytes = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        buf = b""
        while not stop.is_set():
            try:
                chunk = stream.read1(65536)
            except (OSError, http.client.HTTPException, ValueError):
                return
            if not chunk:
                return
            seen_bytes.set()
            mono, wall = time.monotonic(), time.time()
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                for line in block.decode("utf-8", "replace").splitlines():
                    if line.startswith("data:"):
                        try:
                            events.append((mono, wall, json.loads(line[5:].strip())))
                        except ValueError:
                            pass

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    name = f"nginx-sse-{args.label}-{os.getpid()}"
    status, _, data = ep.post(conn, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "claudecron_add_task", "arguments": {
            "name": name, "type": "bash", "trigger": {"type": "manual"},
            "command": f"sleep {args.run_seconds}; echo {name}"}}})
    ck.check("claudecron_add_task", status == 200 and not (data or {}).get("result", {}).get("isError", True),
             f"HTTP {status} {data}")
    status, _, data = ep.post(conn, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "claudecron_run_task", "arguments": {"taskId": name, "wait_seconds": 20}}})
    t_answer = time.monotonic()
    run = ((data or {}).get("result") or {}).get("structuredContent", {}).get("run") or {}
    run_id = run.get("id")
    ck.check("claudecron_run_task wait_seconds=20 -> success", status == 200 and run.get("status") == "success",
             f"HTTP {status} run={run}")

    def ours() -> tuple[float, float, Any] | None:
        for ev in list(events):
            msg = ev[2]
            if isinstance(msg, dict) and msg.get("method") == "notifications/message":
                d = (msg.get("params") or {}).get("data") or {}
                if isinstance(d, dict) and d.get("run_id") == run_id:
                    return ev
        return None

    deadline = time.monotonic() + 5
    while ours() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    got = ours()
    finished = parse_time(run.get("finished_at") or "")
    if got is None:
        ck.check("notifications/message for the run arrives on the GET stream", False,
                 f"nothing for run {run_id} within 5 s of run_task's answer; events: {[e[2] for e in events][:5]}")
    else:
        after_end = (got[1] - finished) if finished is not None else float("nan")
        after_answer = got[0] - t_answer
        params = got[2].get("params") or {}
        print(f"# sse[{args.label}] notification latency: {after_end * 1000:.1f} ms after the run's finished_at,"
              f" {after_answer * 1000:+.1f} ms relative to run_task's answer", flush=True)
        ck.check(f"notifications/message (level {params.get('level')}, status {params.get('data', {}).get('status')})"
                 f" arrives {after_end:.3f} s after the run ended (limit {args.max_latency} s)",
                 finished is not None and after_end <= args.max_latency and abs(after_answer) <= args.max_latency
                 and params.get("level") == "info",
                 f"after finished_at {after_end:.3f} s, after the answer {after_answer:.3f} s, message {got[2]}")

    status, _, data = ep.post(conn, {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "claudecron_delete_task", "arguments": {"taskId": name}}})
    ck.check("claudecron_delete_task", status == 200 and not (data or {}).get("result", {}).get("isError", True),
             f"HTTP {status} {data}")
    stop.set()
    conn.request("DELETE", ep.path, headers=ep.headers())
    resp = conn.getresponse()
    resp.read()
    ck.check("DELETE /mcp ends the session", resp.status in (200, 204), f"HTTP {resp.status}")
    # The server closes the stream of an ended session; do not wait for the thread beyond that.
    th.join(timeout=2)
    stream_conn.close()
    conn.close()
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, http.client.HTTPException) as e:
        label = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--label=")), None)
        if label is None and "--label" in sys.argv[:-1]:
            label = sys.argv[sys.argv.index("--label") + 1]
        print(f"not ok - sse[{label or 'proxy'}] connection: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
