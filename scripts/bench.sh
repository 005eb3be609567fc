#!/usr/bin/env bash
# claudecron benchmarks (measurements, not tests; not part of scripts/test.sh):
#   1. idle RSS right after start and after the first requests;
#   2. server-side time of tools/list (from the server's own request log), p50/p99 of 200 calls;
#   3. fire lateness of an every-second cron task over BENCH_SECONDS (default 60): actual start
#      minus scheduled fire time, p50/p99/max, and whether any second was missed or doubled;
#   4. server CPU time over an idle BENCH_IDLE_SECONDS (default 60) with 1,000 daily tasks armed.
# Builds the release binary unless CLAUDECRON_BIN is set. Talks only to 127.0.0.1; stops itself.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_SECONDS=${BENCH_SECONDS:-60}
BENCH_IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}

if [[ -z "${CLAUDECRON_BIN:-}" ]]; then
  (cd "$REPO" && cargo build --release --quiet)
  CLAUDECRON_BIN=$REPO/target/release/claudecron
fi
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
env -u CLAUDECRON_CONFIG HOME="$TMP" CLAUDECRON_AUTH_TOKENS="$TOKEN" CLAUDECRON_RATE_LIMIT_PER_MINUTE=1000000 \
  CLAUDECRON_HISTORY_KEEP_PER_TASK=1000 "$CLAUDECRON_BIN" serve --host 127.0.0.1 --port "$PORT" --db "$TMP/tasks.db" \
  2>"$TMP/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT

python3 - "$PORT" "$TOKEN" "$PID" "$TMP/server.log" "$BENCH_SECONDS" "$BENCH_IDLE_SECONDS" <<'PY'
import json, os, re, statistics, sys, time, urllib.request

port, token, pid, log_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fire_secs, idle_secs = int(sys.argv[5]), int(sys.argv[6])
base = f"http://127.0.0.1:{port}"
clk = os.sysconf("SC_CLK_TCK")

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk  # utime + stime

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

deadline = time.time() + 20
while True:
    try:
        urllib.request.urlopen(base + "/health", timeout=1).read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not start")
        time.sleep(0.05)
time.sleep(1)
print(f"idle RSS after start: {rss_kib() / 1024:.1f} MiB")

session = None
def rpc(method, params=None, notify=False):
    global session
    body = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if not notify:
        body["id"] = 1
    req = urllib.request.Request(base + "/mcp", data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}", **({"MCP-Session-Id": session} if session else {})})
    with urllib.request.urlopen(req, timeout=30) as resp:
        session = session or resp.headers.get("MCP-Session-Id")
        data = resp.read()
        return json.loads(data) if data else None

def tool(name, args):
    result = rpc("tools/call", {"name": name, "arguments": args})["result"]
    if result.get("isError"):
        sys.exit(f"{name} failed: {result['content'][0]['text']}")
    return result["structuredContent"]

rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
rpc("notifications/initialized", notify=True)

# tools/list: the server logs each request's own handling time.
log_mark = os.path.getsize(log_path)
t0 = time.perf_counter()
for _ in range(200):
    rpc("tools/list")
client_ms = (time.perf_counter() - t0) / 200 * 1000
with open(log_path) as f:
    f.seek(log_mark)
    times = [float(m.group(1)) for m in re.finditer(r"POST /mcp -> 200 in ([0-9.]+) ms", f.read())]
print(f"tools/list server-side: p50 {pct(times, 50):.2f} ms, p99 {pct(times, 99):.2f} ms over {len(times)} calls "
      f"(client round trip {client_ms:.2f} ms)")
print(f"RSS after {len(times)} requests: {rss_kib() / 1024:.1f} MiB")

# Fire lateness of an every-second task.
tick = tool("claudecron_add_task", {"name": "bench-every-second", "type": "bash", "schedule": "* * * * * *",
                                     "command": "true"})["task"]
time.sleep(fire_secs + 1.5)
tool("claudecron_toggle_task", {"taskId": tick["id"], "enabled": False})
runs = tool("claudecron_get_history", {"taskId": tick["id"], "limit": 1000})["runs"]
def ts(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
fired = [r for r in runs if r["status"] != "skipped" and r["started_at"]]
late = [(ts(r["started_at"]) - ts(r["scheduled_for"])) * 1000 for r in fired]
slots = sorted(ts(r["scheduled_for"]) for r in runs if r["scheduled_for"])
gaps = [b - a for a, b in zip(slots, slots[1:])]
print(f"fire lateness over {len(fired)} fires in {fire_secs} s: p50 {pct(late, 50):.1f} ms, p99 {pct(late, 99):.1f} ms, "
      f"max {max(late):.1f} ms; missed seconds {sum(1 for g in gaps if g > 1.5)}, doubled {len(slots) - len(set(slots))}, "
      f"skipped {sum(1 for r in runs if r['status'] == 'skipped')}")

# Idle CPU with 1,000 daily tasks armed (at times twelve hours away, so none fires meanwhile).
hour = (time.gmtime().tm_hour + 12) % 24
for i in range(1000):
    tool("claudecron_add_task", {"name": f"bench-daily-{i}", "type": "bash",
                                  "schedule": f"{i % 60} {hour} * * *", "command": "true"})
time.sleep(2)
c0, w0 = cpu_seconds(), time.time()
time.sleep(idle_secs)
c1, w1 = cpu_seconds(), time.time()
print(f"idle CPU with 1000 daily tasks armed: {(c1 - c0) * 1000:.0f} ms over {w1 - w0:.0f} s; RSS {rss_kib() / 1024:.1f} MiB")
PY
