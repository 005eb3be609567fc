#!/usr/bin/env python3
"""Drive a stdio MCP peer (here: `mcp-remote` in proxy mode) with newline-delimited JSON-RPC.

    python stdio_check.py --label mcp-remote -- CMD [ARGS...]

Sends initialize, waits for its reply, sends notifications/initialized and tools/list, then a
tools/call of claudecron_preview_schedule, closes stdin and waits for the process to end.
Every wait is bounded. Prints `ok - LABEL ...` / `not ok - LABEL ...: details` lines and exits
0 when all checks passed, 1 otherwise. The child's stderr goes to --stderr-file.
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
import time
from typing import Any

EXPECTED_PROTOCOL = "2025-11-25"
EXPECTED_TOOL = "claudecron_add_task"
CALL = {"name": "claudecron_preview_schedule",
        "arguments": {"schedule": "0 9 * * 1-5", "timezone": "Europe/Moscow", "count": 3}}
REPLY_TIMEOUT_S = 20.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="stdio")
    ap.add_argument("--stderr-file", default="/dev/null")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    passed = failed = 0

    def ok(name: str) -> None:
        nonlocal passed
        passed += 1
        print(f"ok - {a.label} {name}", flush=True)

    def bad(name: str, details: str) -> None:
        nonlocal failed
        failed += 1
        details = " ".join(details.split())
        print(f"not ok - {a.label} {name}: {details[:600]}", flush=True)

    with open(a.stderr_file, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def send(msg: dict[str, Any]) -> bool:
        try:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(msg) + "\n").encode())
            proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError) as e:
            bad(f"send {msg.get('method')}", f"{type(e).__name__}: {e}")
            return False

    def reply(msg_id: int) -> dict[str, Any] | None:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                raw = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if raw is None:
                return None
            text = raw.decode(errors="replace").strip()
            if not text:
                continue
            seen.append(text[:200])
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("id") == msg_id and ("result" in msg or "error" in msg):
                return msg
        return None

    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": EXPECTED_PROTOCOL, "capabilities": {},
                           "clientInfo": {"name": "claudecron-interop", "version": "0"}}}
        if send(init):
            r = reply(1)
            if r is None:
                bad("initialize", f"no reply (the proxy exited, or {REPLY_TIMEOUT_S:.0f} s passed); stdout: {seen[-3:]}")
            elif "error" in r:
                bad("initialize", f"error {r['error']}")
            else:
                pv = r["result"].get("protocolVersion")
                if pv == EXPECTED_PROTOCOL:
                    ok(f"initialize (protocolVersion {pv})")
                else:
                    bad("initialize", f"protocolVersion {pv!r}")
                send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                if send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}):
                    r = reply(2)
                    names = [t.get("name") for t in (r or {}).get("result", {}).get("tools", [])]
                    if r is None:
                        bad("tools/list", f"no reply (the proxy exited, or {REPLY_TIMEOUT_S:.0f} s passed)")
                    elif EXPECTED_TOOL in names:
                        ok(f"tools/list contains {EXPECTED_TOOL} ({len(names)} tools)")
                    else:
                        bad("tools/list", f"{EXPECTED_TOOL} missing; reply: {json.dumps(r)[:300]}")
                if send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": CALL}):
                    r = reply(3)
                    res = (r or {}).get("result") or {}
                    if r is None:
                        bad("tools/call", f"no reply (the proxy exited, or {REPLY_TIMEOUT_S:.0f} s passed)")
                    elif "error" in r or res.get("isError") or not isinstance(res.get("structuredContent"), dict):
                        bad(f"tools/call {CALL['name']}", json.dumps(r)[:300])
                    else:
                        ok(f"tools/call {CALL['name']} returns structuredContent")
    finally:
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if failed and a.stderr_file != "/dev/null":
        try:
            with open(a.stderr_file, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-25:]
            print(f"# {a.label} stderr (last lines):", flush=True)
            for line in tail:
                print(f"#   {line}", flush=True)
        except OSError:
            pass
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
