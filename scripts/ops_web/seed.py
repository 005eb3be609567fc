"""Seed a running claudecron for scripts/ops_web_test.sh over MCP (stdlib only):

    python3 scripts/ops_web/seed.py BASE_URL TOKEN

    python3 scripts/ops_web/seed.py BASE_URL TOKEN run TASK

Adds "tick" (bash, every 1 s), "fails" (manual, exit 3), "parked" (manual, disabled) and a task
named <script>alert(1)</script> whose output looks like HTML; runs "fails" and the <script> task
and waits for them. Prints the <script> task's run id on stdout. With `run TASK`: only runs that
task once and waits for it. Exits non-zero, saying why, when
any call fails.
"""

import json
import sys
import time
import urllib.request

BASE, TOKEN = sys.argv[1], sys.argv[2]
XSS = "<script>alert(1)</script>"
session = None
counter = 0


def post(body):
    global session
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    if session:
        headers["MCP-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-11-25"
    req = urllib.request.Request(f"{BASE}/mcp", data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        if resp.headers.get("MCP-Session-Id"):
            session = resp.headers["MCP-Session-Id"]
        text = resp.read().decode()
        return json.loads(text) if text else None


def call(name, args):
    global counter
    counter += 1
    msg = post({"jsonrpc": "2.0", "id": counter, "method": "tools/call",
                "params": {"name": name, "arguments": args}})
    result = msg.get("result") or {}
    if "error" in msg or result.get("isError"):
        sys.exit(f"{name} {json.dumps(args)} failed: {json.dumps(msg)}")
    return result["structuredContent"]


post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "ops-web-seed", "version": "1"}}})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})


def run_and_wait(task):
    run_id = call("claudecron_run_task", {"taskId": task, "wait_seconds": 60})["run"]["id"]
    deadline = time.time() + 60
    while call("claudecron_get_run", {"runId": run_id})["run"]["status"] in ("queued", "running"):
        if time.time() > deadline:
            sys.exit(f"run {run_id} of {task} did not finish within 60 s")
        time.sleep(0.2)
    return run_id


if sys.argv[3:4] == ["run"]:
    print(run_and_wait(sys.argv[4]))
    sys.exit(0)

call("claudecron_add_task", {"name": "tick", "type": "bash", "command": "echo tick",
                             "trigger": {"type": "interval", "every": "1s"}})
call("claudecron_add_task", {"name": "fails", "type": "bash", "command": "echo boom; exit 3",
                             "trigger": {"type": "manual"}})
call("claudecron_add_task", {"name": "parked", "type": "bash", "command": "true", "enabled": False,
                             "trigger": {"type": "manual"}})
call("claudecron_add_task", {"name": XSS, "type": "bash",
                             "command": "echo 'hello from the run'; echo '<img src=x onerror=alert(2)>'",
                             "trigger": {"type": "manual"}})
run_and_wait("fails")
print(run_and_wait(XSS))
