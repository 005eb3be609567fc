"""The measurements behind scripts/bench.sh: claudecron against a peer (the official TypeScript MCP
SDK server with one `echo` tool), one table, one JSON file. Run by scripts/bench.sh, which builds
the load generator and the binary and installs the peer; see that script for the environment.

Everything talks to 127.0.0.1 only, every wait and every series is bounded in time, and every
process started here is stopped on the way out. Exit status: 0 when it measured (whatever the
numbers and goals), 1 when claudecron could not be measured, 3 when the peer could not be installed
or started (claudecron is still measured and the table printed first).
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

PROTOCOL = "2025-11-25"
MIB = 1024.0


class Fatal(Exception):
    pass


def env_num(name, default, cast=float):
    v = os.environ.get(name, "")
    return cast(v) if v.strip() else default


# ----------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------
ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--loadgen", required=True)
ap.add_argument("--floor", default="", help="the bare HTTP responder (scripts/bench/floor.rs); empty: not measured")
ap.add_argument("--tmp", required=True)
ap.add_argument("--json-out", required=True)
ap.add_argument("--node", default="")
ap.add_argument("--peer-script", default="")
ap.add_argument("--peer-modules", default="")
ap.add_argument("--peer-desc", default="")
ap.add_argument("--peer-skip", default="", help="why the peer is not measured (empty: measure it)")
ap.add_argument("--peer-skip-fatal", action="store_true", help="a skipped peer is a failure (exit 3)")
ap.add_argument("--git", default="")
opts = ap.parse_args()

FIRE_SECONDS = env_num("BENCH_SECONDS", 60, int)
IDLE_SECONDS = env_num("BENCH_IDLE_SECONDS", 60, int)
SHORT = bool(int(os.environ.get("BENCH_SHORT") or (1 if FIRE_SECONDS < 10 else 0)))
CALLS = env_num("BENCH_CALLS", 200 if SHORT else 2000, int)  # per small-call series
SERIES_S = env_num("BENCH_SERIES_SECONDS", 3 if SHORT else 30)  # cap of one series
FILL_S = env_num("BENCH_FILL_SECONDS", 20 if SHORT else 150)  # cap of filling up to BIG tasks
BIG = env_num("BENCH_TASKS", 1000 if SHORT else 10000, int)
MIXED = env_num("BENCH_MIXED_CALLS", 1000 if SHORT else 10000, int)
LIST_CALLS = env_num("BENCH_LIST_CALLS", 20 if SHORT else 200, int)
TICK_TASKS = env_num("BENCH_FIRE_TASKS", 100, int)
STARTS = max(1, env_num("BENCH_STARTS", 3, int))  # starts per start-up time (the median is shown)
MAX_CONCURRENT = env_num("BENCH_MAX_CONCURRENT", 2 * TICK_TASKS + 28, int)
SETTLE_S = 1.0 if SHORT else 2.0
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
PIN = NCPU >= 2 and os.environ.get("BENCH_PIN", "1") != "0"
TASKSET = shutil.which("taskset") if PIN else None
TMP = opts.tmp
TOKEN = os.urandom(24).hex()
OURS_LOG = os.path.join(TMP, "server.log")
PEER_LOG = os.path.join(TMP, "peer.log")

STARTED = []  # subprocess.Popen objects to stop on the way out


def log(msg):
    print(f"# {msg}", flush=True)


if PIN:
    os.sched_setaffinity(0, {1})  # this script and the load generator on CPU 1, servers on CPU 0


def pinned(cmd, cpu):
    """cmd run on CPU `cpu` (taskset when it is there, else the same syscall in the child)."""
    if not PIN:
        return cmd, None
    if TASKSET:
        return [TASKSET, "-c", str(cpu)] + cmd, None
    return cmd, (lambda: os.sched_setaffinity(0, {cpu}))


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ----------------------------------------------------------------------------------------------
# /proc
# ----------------------------------------------------------------------------------------------
def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / MIB
    except OSError:
        return None


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ----------------------------------------------------------------------------------------------
# a small MCP client (few calls: setup, history); the series go through the load generator
# ----------------------------------------------------------------------------------------------
class Mcp:
    def __init__(self, port, timeout=60):
        self.port, self.timeout, self.session, self.conn = port, timeout, None, None

    def _post(self, body):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "Authorization": f"Bearer {TOKEN}"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = PROTOCOL
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", "/mcp", body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        self.session = self.session or resp.getheader("Mcp-Session-Id")
        if resp.status >= 300:
            raise Fatal(f"{body.get('method')}: HTTP {resp.status}: {raw[:300]!r}")
        if not raw:
            return None
        text = raw.decode()
        if resp.getheader("Content-Type", "").startswith("text/event-stream"):
            text = [ln[5:] for ln in text.splitlines() if ln.startswith("data:")][-1]
        return json.loads(text)

    def initialize(self):
        r = self._post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "claudecron-bench", "version": "1"}}})
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def call(self, name, args):
        r = self._post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": args}})
        if "error" in r:
            raise Fatal(f"{name}: {r['error']}")
        result = r["result"]
        if result.get("isError"):
            raise Fatal(f"{name} failed: {result['content'][0]['text']}")
        return result.get("structuredContent")

    def close(self):
        if self.conn:
            self.conn.close()


def probe_initialize(port, proc, limit_s=30.0):
    """Seconds from now until an initialize on a fresh connection answers 200 with a result."""
    t0 = time.perf_counter()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "claudecron-bench", "version": "1"}}})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {TOKEN}"}
    last = "no answer"
    while time.perf_counter() - t0 < limit_s:
        if proc.poll() is not None:
            raise Fatal(f"exited with status {proc.returncode} before answering initialize")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("POST", "/mcp", body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status == 200 and b'"result"' in raw:
                return time.perf_counter() - t0
            last = f"HTTP {resp.status}: {raw[:200]!r}"
        except OSError as e:
            last = str(e)
        finally:
            conn.close()
        time.sleep(0.002)
    raise Fatal(f"no successful initialize within {limit_s:.0f} s (last: {last})")


# ----------------------------------------------------------------------------------------------
# servers
# ----------------------------------------------------------------------------------------------
class Server:
    def __init__(self, name, cmd, env, log_path, port):
        self.name, self.cmd, self.env, self.log_path, self.port = name, cmd, env, log_path, port
        self.proc = None

    def start(self):
        """Start it; returns the start-up time (s) to the first successful initialize."""
        cmd, preexec = pinned(self.cmd, 0)
        logf = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec, cwd=TMP)
        STARTED.append(self.proc)
        logf.close()
        try:
            probe_initialize(self.port, self.proc)
        except Fatal as e:
            raise Fatal(f"{self.name} did not start: {e}; log: {self.log_tail()}")
        return time.perf_counter() - t0

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, n=15):
        return tail(self.log_path, n)

    def stop(self):
        stop_proc(self.proc)


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-n:])
    except OSError:
        return "(no log)"


def stop_proc(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def ours_server(port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDECRON_")}
    env.update({
        "HOME": os.path.join(TMP, "home"),
        "CLAUDECRON_AUTH_TOKENS": TOKEN,
        "CLAUDECRON_RATE_LIMIT_PER_MINUTE": "1000000",
        "CLAUDECRON_HISTORY_KEEP_PER_TASK": "1000",
        "CLAUDECRON_MAX_CONCURRENT_TASKS": str(MAX_CONCURRENT),
        "CLAUDECRON_MAX_SESSIONS": "100000",
    })
    os.makedirs(env["HOME"], exist_ok=True)
    cmd = [opts.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--db", os.path.join(TMP, "tasks.db")]
    return Server("claudecron", cmd, env, OURS_LOG, port)


def peer_server(port):
    env = dict(os.environ, PEER_PORT=str(port), PEER_TOKEN=TOKEN, PEER_NODE_MODULES=opts.peer_modules,
               HOME=os.path.join(TMP, "home"))
    env.pop("NODE_OPTIONS", None)
    return Server("peer", [opts.node, opts.peer_script], env, PEER_LOG, port)


# ----------------------------------------------------------------------------------------------
# the load generator
# ----------------------------------------------------------------------------------------------
TOTAL_CALLS = {"ours": 0, "peer": 0, "floor": 0}


def tool_body(name, args):
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}})


def rpc_body(method, params=None):
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}})


def series(who, server, bodies, clients=1, count=None, max_s=None, warmup=0, start=0, label=""):
    count = CALLS if count is None else count
    max_s = SERIES_S if max_s is None else max_s
    cmd = [opts.loadgen, "--url", f"http://127.0.0.1:{server.port}/mcp", "--token", TOKEN,
           "--clients", str(clients), "--count", str(count), "--max-seconds", str(max_s),
           "--warmup", str(warmup), "--start", str(start), "--pid", str(server.pid), "--clk-tck", str(CLK)]
    for b in bodies if isinstance(bodies, list) else [bodies]:
        cmd += ["--body", b]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_s + 180)
    except subprocess.TimeoutExpired:
        raise Fatal(f"load generator hung on {label}")
    if out.returncode != 0 or not out.stdout.strip():
        raise Fatal(f"load generator failed on {label}: {out.stderr.strip()[-500:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["label"] = label
    TOTAL_CALLS[who] += r["done"] + r["errors"] + warmup * clients
    if r["errors"]:
        WARNINGS.append(f"{who} {label}: {r['errors']} of {r['done'] + r['errors']} calls failed "
                        f"(first: {r['first_error']})")
    note = f" STOPPED after {SERIES_S if max_s is None else max_s:g} s" if r["stopped_early"] else ""
    err = f", {r['errors']} errors (first: {r['first_error']})" if r["errors"] else ""
    if not r["errors"] and r["first_error"]:
        err = f" ({r['first_error']})"
    fmt = lambda v: "-" if v is None else f"{v / 1000:.2f}"
    cpu = "-" if r["cpu_us_per_call"] is None else f"{r['cpu_us_per_call']:.0f}"
    log(f"{who} {label}: {r['done']}/{count} calls, {clients} client(s), {r['rps']:.0f}/s, "
        f"p50 {fmt(r['p50_us'])} ms, p99 {fmt(r['p99_us'])} ms, server CPU {cpu} us/call{note}{err}")
    return r


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
ROWS = []  # dicts: key, label, unit, ours, peer, goal (text), met (True/False/None), note
RAW = {"ours": {}, "peer": {}, "floor": {}}
PROBLEMS = []  # measurements of ours that failed outright
WARNINGS = []  # calls that failed along the way (the numbers are still there)


def row(key, label, ours=None, peer=None, goal=None, check=None, note=""):
    met = None
    if check is not None and ours is not None:
        met = bool(check(ours))
    ROWS.append({"key": key, "label": label, "ours": ours, "peer": peer, "goal": goal, "met": met, "note": note})


def series_rows(key, label, r, peer_r=None, cpu_goal=False, p99_goal=False):
    """Rows for one series: server CPU per call, p50, p99, req/s."""
    p = peer_r or {}
    ms = lambda v: None if v is None else v / 1000.0
    if r is not None and r["done"] == 0:
        PROBLEMS.append(f"{label}: no call succeeded ({r['first_error']})")
    r = r or {}
    if "cpu_us_per_call" in r or "cpu_us_per_call" in p:
        row(f"{key}.cpu_us", f"{label}: server CPU/call (µs)", r.get("cpu_us_per_call"), p.get("cpu_us_per_call"),
            "≤ 50" if cpu_goal else None, (lambda v: v <= 50) if cpu_goal else None)
    row(f"{key}.p50_ms", f"{label}: p50 (ms)", ms(r.get("p50_us")), ms(p.get("p50_us")))
    row(f"{key}.p99_ms", f"{label}: p99 (ms)", ms(r.get("p99_us")), ms(p.get("p99_us")),
        "≤ 2" if p99_goal else None, (lambda v: v <= 2) if p99_goal else None)
    row(f"{key}.rps", f"{label}: req/s", r.get("rps"), p.get("rps"),
        note=("stopped at the time cap: %d of %d calls" % (r["done"], r["requested"])) if r.get("stopped_early") else "")


def fmt_num(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def print_table():
    for r in ROWS:
        o, p = r["ours"], r["peer"]
        r["ratio"] = (o / p) if (isinstance(o, (int, float)) and isinstance(p, (int, float)) and p) else None
    w = max(len(r["label"]) for r in ROWS)
    head = f"{'metric':<{w}}  {'ours':>10}  {'peer':>10}  {'ours/peer':>9}  {'goal':>8}  met"
    print()
    print("claudecron vs peer (official TypeScript MCP SDK server, Streamable HTTP, stateful); the peer's numbers")
    print("on the get_task / preview_schedule / list_tasks rows are its echo tool's; ratio = ours/peer")
    print(head)
    print("-" * len(head) + "----")
    for r in ROWS:
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        line = (f"{r['label']:<{w}}  {fmt_num(r['ours']):>10}  {fmt_num(r['peer']) if r['peer'] is not None else '':>10}  "
                f"{ratio:>9}  {r['goal'] or '':>8}  {met}")
        if r["note"]:
            line += f"  ({r['note']})"
        print(line.rstrip())
    goals = [r for r in ROWS if r["met"] is not None]
    print(f"goals met: {sum(1 for r in goals if r['met'])} of {len(goals)}"
          + (" (short mode: the goals are stated for the full run)" if SHORT else ""))


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def measure_floor():
    """The request floor: `ping` against the bare responder at 1 and 8 clients (its server CPU per
    call is what any server on this machine pays before doing anything)."""
    if not opts.floor:
        return
    F = RAW["floor"] = {}
    port = free_port()
    srv = Server("floor", [opts.floor, str(port)], dict(os.environ), os.path.join(TMP, "floor.log"), port)
    srv.start()
    warm = max(50, CALLS // 10)
    for c in (1, 8):
        F[f"ping_c{c}"] = series("floor", srv, rpc_body("ping"), clients=c, warmup=warm // c, label="ping (floor)")
    srv.stop()


def measure_peer():
    """The peer's numbers, or None when it is skipped. Leaves it running (idle) for the idle window."""
    srv = peer_server(free_port())
    P = RAW["peer"]
    P["startup_runs_ms"] = restarts(srv, first=srv.start() * 1000)
    time.sleep(1)
    P["rss_start_mib"] = rss_mib(srv.pid)
    echo = tool_body("echo", {"text": "hello"})
    warm = max(50, CALLS // 10)
    P["tools_list"] = series("peer", srv, rpc_body("tools/list"), count=max(50, CALLS // 10), warmup=20,
                             label="tools/list")
    for c in (1, 8):
        P[f"echo_c{c}"] = series("peer", srv, echo, clients=c, warmup=warm // c, label="echo")
    P["rss_after_mib"] = rss_mib(srv.pid)
    P["calls"] = TOTAL_CALLS["peer"]
    return srv


def fire_lateness(srv, mcp):
    """100 every-second tasks over FIRE_SECONDS; the command appends `date +%s.%N` to a file per task."""
    fires = os.path.join(TMP, "fires")
    os.makedirs(fires, exist_ok=True)
    body = tool_body("claudecron_add_task", {"name": "bench-tick-{i}", "type": "bash", "schedule": "* * * * * *",
                                             "command": f"date +%s.%N >> {fires}/{{i}}"})
    r = series("ours", srv, body, clients=8, count=TICK_TASKS, max_s=60, label=f"add {TICK_TASKS} every-second tasks")
    t_armed = time.time()
    n_tasks = r["done"]
    if n_tasks == 0:
        PROBLEMS.append(f"fire lateness: no every-second task could be added ({r['first_error']})")
        return None
    armed = list(range(TICK_TASKS))
    if r["errors"] or r["stopped_early"]:  # which of them exist
        names = {t["name"] for t in mcp.call("claudecron_list_tasks", {"limit": 500})["tasks"]}
        armed = [i for i in armed if f"bench-tick-{i}" in names]
    w0 = math.ceil(t_armed) + 1  # the first whole second every task is surely armed for
    w1 = w0 + FIRE_SECONDS
    log(f"fire lateness: {len(armed)} every-second tasks, window of {FIRE_SECONDS} s")
    time.sleep(max(0.0, w1 + 1.5 - time.time()))
    # server-recorded lateness (started_at - scheduled_for), from each task's history
    def hist(i):
        m = Mcp(srv.port)
        try:
            m.initialize()
            return m.call("claudecron_get_history", {"taskId": f"bench-tick-{i}", "limit": 1000})["runs"]
        except (Fatal, OSError, ValueError) as e:
            return e
        finally:
            m.close()

    def ts(s):
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    server_late, skipped, hist_err = [], 0, None
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for runs in ex.map(hist, armed):
            if isinstance(runs, Exception):
                hist_err = hist_err or str(runs)
                continue
            for run in runs:
                if not run.get("scheduled_for") or not (w0 <= ts(run["scheduled_for"]) < w1):
                    continue
                if run["status"] == "skipped":
                    skipped += 1
                elif run.get("started_at"):
                    server_late.append((ts(run["started_at"]) - ts(run["scheduled_for"])) * 1000)
    dele = tool_body("claudecron_delete_task", {"taskId": "bench-tick-{i}"})
    r = series("ours", srv, dele, clients=8, count=TICK_TASKS, max_s=60, label="delete the every-second tasks")
    if r["errors"] or r["stopped_early"]:
        delete_leftover_ticks(mcp)
    late, missed, doubled = stamps_lateness(fires, armed, w0, w1)
    res = {"tasks": len(armed), "seconds": FIRE_SECONDS, "expected": len(armed) * FIRE_SECONDS, "fires": len(late),
           "p50_ms": pct(late, 50), "p99_ms": pct(late, 99), "max_ms": max(late) if late else None,
           "missed": missed, "doubled": doubled,
           "server_p50_ms": pct(server_late, 50), "server_p99_ms": pct(server_late, 99),
           "server_max_ms": max(server_late) if server_late else None, "skipped": skipped,
           "history_error": hist_err}
    log(f"fire lateness: {len(late)} of {res['expected']} fires seen, missed {missed}, doubled {doubled}, "
        f"skipped {skipped}" + (f"; history: {hist_err}" if hist_err else ""))
    res["floor"] = spawn_floor(len(armed))
    return res


def stamps_lateness(folder, names, w0, w1):
    """Command-observed lateness (ms; the fractional part of each `date +%s.%N` appended to
    folder/NAME) in the seconds [w0, w1), and the seconds missed and doubled."""
    late, missed, doubled = [], 0, 0
    for i in names:
        counts = {}
        try:
            with open(os.path.join(folder, str(i))) as f:
                stamps = [float(x) for x in f.read().split()]
        except (OSError, ValueError):
            stamps = []
        for t in stamps:
            sec = int(t)
            if w0 <= sec < w1:
                counts[sec] = counts.get(sec, 0) + 1
                late.append((t - sec) * 1000)
        missed += sum(1 for s in range(w0, w1) if counts.get(s, 0) == 0)
        doubled += sum(c - 1 for c in counts.values() if c > 1)
    return late, missed, doubled


def spawn_floor(n):
    """The same n commands started at each whole second by a bare spawner (scripts/bench/spawn_floor.py)
    on the servers' CPU: the lateness no scheduler can beat on this machine."""
    secs = max(2, min(FIRE_SECONDS, 20))
    out = os.path.join(TMP, "floor")
    cmd, pre = pinned([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawn_floor.py"),
                       str(n), str(secs), out], 0)
    try:
        r = json.loads(subprocess.run(cmd, preexec_fn=pre, capture_output=True, text=True, timeout=secs + 120,
                                      check=True).stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as e:
        WARNINGS.append(f"spawn floor not measured: {e}")
        return None
    w0 = r["first_second"]
    late, missed, _ = stamps_lateness(out, range(n), w0, w0 + secs)
    log(f"spawn floor: {len(late)} of {n * secs} commands, p50 {fmt_num(pct(late, 50))} ms, "
        f"p99 {fmt_num(pct(late, 99))} ms")
    return {"seconds": secs, "p50_ms": pct(late, 50), "p99_ms": pct(late, 99),
            "max_ms": max(late) if late else None, "missed": missed}


def delete_leftover_ticks(mcp):
    """Delete the every-second tasks still there one at a time, a few rounds apart, so that none keeps
    firing into the later measurements (claudecron can answer "database is locked" meanwhile)."""
    last, deleted = None, 0
    for round_ in range(11):
        try:
            left = [t["name"] for t in mcp.call("claudecron_list_tasks", {"limit": 500})["tasks"]
                    if t["name"].startswith("bench-tick-")]
        except (Fatal, OSError) as e:
            last, left = e, None
        if left == []:
            break
        if round_ == 10:
            WARNINGS.append(f"{len(left) if left else 'some'} every-second tasks could not be deleted ({last}); "
                            "they fired on through the rest of the run")
            break
        for name in left or []:
            try:
                mcp.call("claudecron_delete_task", {"taskId": name})
                deleted += 1
            except (Fatal, OSError) as e:
                last = e
        time.sleep(0.5)
    log(f"deleted {deleted} leftover every-second tasks one at a time")


def restarts(srv, first=None):
    """Start-up times (ms) of STARTS starts on the same db; `first`: the time of a start just made."""
    times = [] if first is None else [first]
    while len(times) < STARTS:
        srv.stop()
        times.append(srv.start() * 1000)
    return times


def add_tasks(srv, start, count, clients, max_s, hour, label):
    body = tool_body("claudecron_add_task", {"name": "bench-bulk-{i}", "type": "bash",
                                             "schedule": f"{{i%60}} {hour} * * *", "command": "true"})
    return series("ours", srv, body, clients=clients, count=count, max_s=max_s, start=start, label=label)


def measure_ours(peer):
    O = RAW["ours"]
    srv = ours_server(free_port())
    O["startup_empty_runs_ms"] = restarts(srv, first=srv.start() * 1000)
    time.sleep(1)
    O["rss_start_mib"] = rss_mib(srv.pid)
    mcp = Mcp(srv.port)
    mcp.initialize()

    # tools/list: client-observed, and the server's own handling time from its request log
    mark = os.path.getsize(srv.log_path)
    O["tools_list"] = series("ours", srv, rpc_body("tools/list"), count=max(50, CALLS // 10), warmup=20,
                             label="tools/list")
    with open(srv.log_path, errors="replace") as f:
        f.seek(mark)
        times = [float(m.group(1)) for m in re.finditer(r"POST /mcp -> 200 in ([0-9.]+) ms", f.read())]
    times = times[1 + 20:]  # the series' own initialize and warm-up calls
    O["tools_list_server_p50_ms"], O["tools_list_server_p99_ms"] = pct(times, 50), pct(times, 99)

    # ten tasks, daily at a time twelve hours away (none fires during the run)
    hour = (time.gmtime().tm_hour + 12) % 24
    ids = [mcp.call("claudecron_add_task", {"name": f"bench-small-{i}", "type": "bash",
                                            "schedule": f"{i} {hour} * * *", "command": "true"})["task"]["id"]
           for i in range(10)]
    small = {
        "get_task": tool_body("claudecron_get_task", {"taskId": ids[3]}),
        "preview_schedule": tool_body("claudecron_preview_schedule",
                                      {"schedule": "0 9 * * 1-5", "timezone": "Europe/Moscow", "count": 3}),
        "list_tasks_10": tool_body("claudecron_list_tasks", {}),
    }
    warm = max(20, CALLS // 20)
    for c in (1, 8):
        O[f"ping_c{c}"] = series("ours", srv, rpc_body("ping"), clients=c, warmup=max(50, CALLS // 10) // c,
                                 label="ping")
    for name, body in small.items():
        for c in (1, 8):
            O[f"{name}_c{c}"] = series("ours", srv, body, clients=c, warmup=warm // c,
                                       label=name.replace("_10", " (10 tasks)"))
    O["rss_after_small_mib"] = rss_mib(srv.pid)
    O["calls_small"] = TOTAL_CALLS["ours"]

    O["fire"] = fire_lateness(srv, mcp)

    # up to 1,000 tasks: add_task/s on one client, the rest with 8
    n_now = 10
    first = min(1000, BIG) - n_now
    r1 = add_tasks(srv, 0, first, 1, SERIES_S, hour, "add_task")
    O["add_task_c1"] = r1
    start = r1["done"] + r1["errors"] + 1
    if r1["done"] < first:
        rest = first - r1["done"]
        r = add_tasks(srv, start, rest, 8, FILL_S, hour, "add_task (fill)")
        O["add_task_fill_c8"] = r
        start += r["done"] + r["errors"] + 8
    n_now = mcp.call("claudecron_list_tasks", {}).get("total", mcp.call("claudecron_list_tasks", {})["count"])
    O["tasks_1k"] = n_now
    lt = tool_body("claudecron_list_tasks", {})
    O["list_1k"] = series("ours", srv, lt, count=LIST_CALLS, warmup=2, label=f"list_tasks ({n_now} tasks)")
    O["rss_after_list_1k_mib"] = rss_mib(srv.pid)

    # restart on the same db: start-up with ~1,000 tasks (in the short mode the last restart is that one)
    if BIG > n_now:
        mcp.close()
        O["startup_1k_runs_ms"] = restarts(srv)
        mcp = Mcp(srv.port)
        mcp.initialize()

    # idle CPU with those tasks armed (and the peer's, idle, over the same window)
    time.sleep(SETTLE_S)
    c0 = cpu_s(srv.pid)
    pc0 = cpu_s(peer.pid) if peer else None
    w0 = time.time()
    time.sleep(IDLE_SECONDS)
    O["idle_cpu_ms"] = (cpu_s(srv.pid) - c0) * 1000
    O["idle_seconds"] = time.time() - w0
    O["rss_idle_1k_mib"] = rss_mib(srv.pid)
    if peer:
        RAW["peer"]["idle_cpu_ms"] = (cpu_s(peer.pid) - pc0) * 1000
        RAW["peer"]["rss_end_mib"] = rss_mib(peer.pid)
        peer.stop()
    log(f"idle CPU with {n_now} tasks armed: {O['idle_cpu_ms']:.0f} ms over {O['idle_seconds']:.0f} s")

    # up to BIG tasks (8 clients), list_tasks, mixed calls
    if BIG > n_now:
        r = add_tasks(srv, start, BIG - n_now, 8, FILL_S, hour, f"add_task up to {BIG} tasks")
        O["add_task_fill_big_c8"] = r
        n_big = mcp.call("claudecron_list_tasks", {}).get("total", mcp.call("claudecron_list_tasks", {})["count"])
        O["tasks_big"] = n_big
        O["list_big"] = series("ours", srv, lt, count=LIST_CALLS, warmup=2, label=f"list_tasks ({n_big} tasks)")
        O["rss_after_list_big_mib"] = rss_mib(srv.pid)
    else:
        n_big = n_now
        O["tasks_big"] = n_big
    O["calls_before_restart"] = TOTAL_CALLS["ours"]

    # restart on the same db: start-up with BIG tasks; then mixed calls in that fresh process
    mcp.close()
    O["startup_big_runs_ms"] = restarts(srv)
    time.sleep(1)
    O["rss_start_big_mib"] = rss_mib(srv.pid)
    mixed = [tool_body("claudecron_get_task", {"taskId": "bench-small-{i%10}"}),
             tool_body("claudecron_preview_schedule", {"schedule": "*/15 9-17 * * 1-5"}),
             rpc_body("tools/list"),
             tool_body("claudecron_get_history", {"taskId": ids[0], "limit": 5}),
             tool_body("claudecron_get_task", {"taskId": ids[1]})]
    O["mixed"] = series("ours", srv, mixed, clients=8, count=MIXED, label=f"mixed calls ({n_big} tasks)")
    O["calls"] = TOTAL_CALLS["ours"]
    O["rss_end_mib"] = rss_mib(srv.pid)
    srv.stop()
    return O


def build_rows(peer_skip):
    O, P = RAW["ours"], RAW["peer"]
    pk = lambda k: P.get(k) if not peer_skip else None
    short_note = "short mode" if SHORT else ""
    big = O.get("tasks_big")
    big_goal = big is not None and big >= 10000

    med = lambda runs: None if not runs else sorted(runs)[len(runs) // 2]
    runs_note = lambda runs: "" if not runs or len(runs) < 2 else \
        "median of %d starts: %s" % (len(runs), " / ".join(fmt_num(t) for t in runs))
    row("startup_empty_ms", "start-up to first initialize, empty db (ms)", med(O.get("startup_empty_runs_ms")),
        med(pk("startup_runs_ms")), note=runs_note(O.get("startup_empty_runs_ms")))
    if "startup_1k_runs_ms" in O:
        row("startup_1k_ms", f"start-up to first initialize, {O.get('tasks_1k')} tasks (ms)",
            med(O["startup_1k_runs_ms"]), note=runs_note(O["startup_1k_runs_ms"]))
    row("startup_big_ms", f"start-up to first initialize, {big} tasks (ms)", med(O.get("startup_big_runs_ms")), None,
        "≤ 100" if big_goal else None, (lambda v: v <= 100) if big_goal else None,
        ("" if big_goal else short_note + "; ") + runs_note(O.get("startup_big_runs_ms")))
    row("rss_start_mib", "RSS after start, empty (MiB)", O.get("rss_start_mib"), pk("rss_start_mib"))
    row("rss_after_small_mib", "RSS after the small-call series (MiB)", O.get("rss_after_small_mib"),
        pk("rss_after_mib"), note=f"ours {O.get('calls_small')} calls" + (f", peer {P['calls']}" if pk("calls") else ""))

    tl = O.get("tools_list") or {}
    row("tools_list.server_p50_ms", "tools/list server-side p50 (ms, from the log)", O.get("tools_list_server_p50_ms"))
    row("tools_list.server_p99_ms", "tools/list server-side p99 (ms, from the log)", O.get("tools_list_server_p99_ms"))
    series_rows("tools_list", "tools/list, 1 client", tl, pk("tools_list"))

    F = RAW.get("floor") or {}
    for c in (1, 8):
        fc = F.get(f"ping_c{c}")
        note = ("peer column: the bare responder (scripts/bench/floor.rs)" if fc else
                "the bare responder was not measured")
        if O.get(f"ping_c{c}") is not None or fc:
            o = O.get(f"ping_c{c}") or {}
            row(f"ping.c{c}.cpu_us", f"ping (whole request path, no tool), {c} client{'s' if c > 1 else ''}: "
                "server CPU/call (µs)", o.get("cpu_us_per_call"), (fc or {}).get("cpu_us_per_call"), note=note)
            row(f"ping.c{c}.p99_ms", f"ping, {c} client{'s' if c > 1 else ''}: p99 (ms)",
                o.get("p99_us") and o["p99_us"] / 1000, fc and fc.get("p99_us") and fc["p99_us"] / 1000, note=note)
    for name, label in (("get_task", "get_task"), ("preview_schedule", "preview_schedule"),
                        ("list_tasks_10", "list_tasks (10 tasks)")):
        for c in (1, 8):
            series_rows(f"{name}.c{c}", f"{label}, {c} client{'s' if c > 1 else ''}", O.get(f"{name}_c{c}"),
                        pk(f"echo_c{c}"), cpu_goal=(c == 1), p99_goal=(c == 8))

    a1 = O.get("add_task_c1") or {}
    row("add_task.c1.rps", "add_task/s, 1 client", a1.get("rps"), None, "≥ 2000", lambda v: v >= 2000,
        ("stopped at the time cap: %d calls" % a1["done"]) if a1.get("stopped_early") else "")
    row("add_task.c1.p50_ms", "add_task p50, 1 client (ms)", (a1.get("p50_us") or 0) / 1000 if a1 else None)
    for key, label in (("add_task_fill_c8", "add_task/s, 8 clients (fill to 1k)"),
                       ("add_task_fill_big_c8", f"add_task/s, 8 clients (fill to {big})")):
        r = O.get(key)
        if r:
            row(f"{key}.rps", label, r["rps"],
                note=("stopped at the time cap: %d of %d" % (r["done"], r["requested"])) if r["stopped_early"] else "")

    for key, n, rss in (("list_1k", O.get("tasks_1k"), "rss_after_list_1k_mib"),
                        ("list_big", O.get("tasks_big"), "rss_after_list_big_mib")):
        r = O.get(key)
        if not r:
            continue
        if r["done"] == 0:
            PROBLEMS.append(f"list_tasks ({n} tasks): no call succeeded ({r['first_error']})")
        note = ("stopped at the time cap: %d calls" % r["done"]) if r["stopped_early"] else ""
        row(f"{key}.p50_ms", f"list_tasks ({n} tasks) p50 (ms)", r["p50_us"] / 1000 if r["p50_us"] else None, note=note)
        row(f"{key}.cpu_us", f"list_tasks ({n} tasks) server CPU/call (µs)", r["cpu_us_per_call"])
        row(f"{key}.rss_mib", f"RSS after list_tasks with {n} tasks (MiB)", O.get(rss))

    row("rss_start_big_mib", f"RSS after restart with {big} tasks (MiB)", O.get("rss_start_big_mib"))
    mx = O.get("mixed") or {}
    series_rows("mixed.c8", "mixed calls after that restart, 8 clients", mx)
    row("rss_end_mib", f"RSS after those {mx.get('done', 0)} mixed calls, {big} tasks (MiB)", O.get("rss_end_mib"),
        None, "≤ 16" if big_goal else None, (lambda v: v <= 16) if big_goal else None,
        ("" if big_goal else short_note + "; ") + f"{O.get('calls')} calls in the whole run")

    f = O.get("fire")
    if f:
        lbl = f"{f['tasks']} every-second tasks, {f['seconds']} s"
        fl = f.get("floor") or {}
        floor_note = (f"peer = a bare spawner starting the same {f['tasks']} commands each second on the same CPU "
                      f"({fl.get('seconds')} s; scripts/bench/spawn_floor.py)") if fl else "spawn floor not measured"
        row("fire.p50_ms", f"fire lateness p50, {lbl} (ms)", f["p50_ms"], fl.get("p50_ms"), note=floor_note)
        row("fire.p99_ms", f"fire lateness p99, {lbl} (ms)", f["p99_ms"], fl.get("p99_ms"), "≤ 10", lambda v: v <= 10)
        row("fire.max_ms", f"fire lateness max, {lbl} (ms)", f["max_ms"], fl.get("max_ms"))
        row("fire.missed", f"fire missed seconds, {lbl}", f["missed"], None, "0", lambda v: v == 0,
            f"{f['fires']} of {f['expected']} fires seen")
        row("fire.doubled", f"fire doubled seconds, {lbl}", f["doubled"], None, "0", lambda v: v == 0)
        row("fire.server_p99_ms", "fire lateness p99, server-recorded start (ms)", f["server_p99_ms"],
            note=f"p50 {fmt_num(f['server_p50_ms'])}, max {fmt_num(f['server_max_ms'])}, skipped {f['skipped']}")
    row("idle_cpu_ms", f"idle CPU over {O.get('idle_seconds', 0):.0f} s, {O.get('tasks_1k')} tasks armed (ms)",
        O.get("idle_cpu_ms"), pk("idle_cpu_ms"), note="peer: no tasks")


def log_summary():
    """The server's own ERROR / WARN lines, counted, with the first few."""
    try:
        with open(OURS_LOG, errors="replace") as f:
            bad = [ln.rstrip() for ln in f if re.match(r"\[(ERROR|WARN)", ln)]
    except OSError:
        return
    RAW["ours"]["log_error_warn_lines"] = len(bad)
    if bad:
        print(f"WARNING: the claudecron log has {len(bad)} ERROR/WARN lines; first ones:")
        for ln in bad[:5]:
            print(f"   {ln[:300]}")


def main():
    t_start = time.time()
    peer_skip = opts.peer_skip
    mode = "short" if SHORT else "full"
    log(f"mode {mode}: {CALLS} calls per series (cap {SERIES_S:g} s), {BIG} tasks, fire window {FIRE_SECONDS} s, "
        f"idle window {IDLE_SECONDS} s; " + (f"servers on CPU 0, load generator on CPU 1 "
                                             f"({'taskset' if TASKSET else 'sched_setaffinity'})" if PIN else
                                             "not pinned (fewer than 2 CPUs or BENCH_PIN=0)"))
    log(f"claudecron: {opts.bin}")
    if peer_skip:
        print(f"PEER SKIPPED: {peer_skip}", flush=True)
    else:
        log(f"peer: {opts.peer_desc}")
    peer = None
    rc = 0
    try:
        if not peer_skip:
            try:
                peer = measure_peer()
            except (Fatal, OSError, ValueError, KeyError, TypeError) as e:
                peer_skip = f"the peer could not be measured: {type(e).__name__}: {e}; log: {tail(PEER_LOG)}"
                print(f"PEER SKIPPED: {peer_skip}", flush=True)
                for p in list(STARTED):
                    stop_proc(p)
                peer, RAW["peer"] = None, {}
        try:
            measure_floor()
        except (Fatal, OSError) as e:
            WARNINGS.append(f"the request floor could not be measured: {e}")
            RAW["floor"] = {}
        measure_ours(peer)
    except Fatal as e:
        print(f"bench: cannot measure claudecron: {e}", file=sys.stderr, flush=True)
        rc = 1
    except (OSError, ValueError, KeyError, TypeError) as e:  # a crashed server, an unexpected answer
        import traceback

        traceback.print_exc()
        print(f"bench: cannot measure claudecron: {type(e).__name__}: {e}; log: {tail(OURS_LOG)}",
              file=sys.stderr, flush=True)
        rc = 1
    finally:
        for p in STARTED:
            stop_proc(p)
    if rc == 0 or RAW["ours"]:
        build_rows(peer_skip)
        print_table()
    for w in WARNINGS:
        print(f"WARNING: {w}")
    log_summary()
    if PROBLEMS:
        for p in PROBLEMS:
            print(f"MEASUREMENT FAILED: {p}")
        rc = rc or 1
    if peer_skip:
        print(f"PEER SKIPPED: {peer_skip}")
        if opts.peer_skip_fatal and rc == 0:
            rc = 3
    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "seconds_taken": round(time.time() - t_start, 1), "exit_status": rc,
        "host": {"cpus": NCPU, "kernel": platform.release(), "pinned": PIN, "clk_tck": CLK},
        "ours": {"binary": opts.bin, "git": opts.git},
        "peer": {"desc": opts.peer_desc, "skipped": peer_skip or None},
        "settings": {"calls_per_series": CALLS, "series_cap_s": SERIES_S, "fill_cap_s": FILL_S, "tasks": BIG,
                     "mixed_calls": MIXED, "list_calls": LIST_CALLS, "fire_tasks": TICK_TASKS,
                     "fire_seconds": FIRE_SECONDS, "idle_seconds": IDLE_SECONDS,
                     "max_concurrent_tasks": MAX_CONCURRENT},
        "metrics": ROWS, "problems": PROBLEMS, "raw": RAW,
    }
    os.makedirs(os.path.dirname(os.path.abspath(opts.json_out)), exist_ok=True)
    with open(opts.json_out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    print(f"results: {opts.json_out} ({time.time() - t_start:.0f} s)")
    return rc


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    finally:
        for p in STARTED:
            try:
                stop_proc(p)
            except Exception:
                pass
