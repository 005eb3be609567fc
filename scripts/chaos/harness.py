"""The chaos suite's harness (stdlib only, Python 3.11): starting the real server, speaking MCP and
/hooks to it, sampling /health from a separate process, reading runs (API and SQLite), scanning
/proc for a server's run processes, and reporting checks to scripts/chaos.sh.

Reporting protocol (stdout, read line by line by scripts/chaos.sh, which counts through
scripts/lib/checks.sh): `@@PASS<TAB>name`, `@@FAIL<TAB>name<TAB>why` (newlines in why as the two
characters backslash-n), `@@SKIP<TAB>name<TAB>why`; every other line is printed as it is.
"""

import contextlib
import http.client
import json
import math
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = {"success", "failed", "timeout", "cancelled", "skipped", "interrupted"}
HEALTH_LIMIT_MS = float(os.environ.get("CHAOS_HEALTH_P99_MS", "100"))
# The helper (its load threads, the soak's clients) runs at this niceness; the servers and the
# /health sampler are started `nice -n -LOAD_NICE`, back at the caller's priority (needs root or
# CAP_SYS_NICE; otherwise everything stays at LOAD_NICE). On a small host the suite's own load then
# queues behind the server it measures instead of delaying its answers.
LOAD_NICE = int(os.environ.get("CHAOS_LOAD_NICE", "10"))
# Each fault lasts at least this long, so /health's p99 is taken over 200 or more samples and
# ignores the worst two (over fewer than 100 samples a nearest-rank p99 is the maximum).
MIN_WINDOW = 20.0


def deprioritize_self():
    """Lower this process's priority by LOAD_NICE (called once, before anything is started)."""
    if LOAD_NICE:
        os.nice(LOAD_NICE)


def at_normal_priority(argv):
    """argv run at the priority the helper had before deprioritize_self()."""
    return ["nice", "-n", str(-LOAD_NICE)] + argv if LOAD_NICE else argv


class Aborted(Exception):
    """SIGTERM/SIGINT from scripts/chaos.sh (its time bound): clean up and stop."""


def _on_signal(signum, _frame):
    raise Aborted(f"signal {signum}")


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

class Report:
    def __init__(self, prefix):
        self.prefix = prefix
        self.failed = 0

    def _emit(self, kind, name, why=""):
        why = str(why).replace("\r", "").replace("\n", "\\n")
        print(f"@@{kind}\t{self.prefix}{name}\t{why}", flush=True)

    def check(self, cond, name, why=""):
        if cond:
            self._emit("PASS", name)
        else:
            self.failed += 1
            self._emit("FAIL", name, why or "failed")
        return bool(cond)

    def ok(self, name):
        self.check(True, name)

    def fail(self, name, why):
        self.check(False, name, why)

    def skip(self, name, why):
        self._emit("SKIP", name, why)

    def note(self, text):
        for line in str(text).splitlines() or [""]:
            print(f"# {self.prefix}{line}", flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


def ms(x):
    return f"{x:.1f} ms"


def ts(text):
    """An RFC 3339 time (as the server writes it) -> epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, timeout, check, interval=0.05):
    """Call check() until it returns a true value (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

class Ctx:
    """What every scenario gets: the binary, the scratch root, the mark and the mode."""

    def __init__(self, binary, tmp, mark, mode):
        self.binary, self.tmp, self.mark, self.mode = binary, tmp, mark, mode
        self.long = mode == "long"
        os.makedirs(tmp, exist_ok=True)

    def record(self, kind, value):
        """Tell scripts/chaos.sh about something to undo if we die (`mount DIR`, `chattr FILE`);
        processes need no list: everything started carries CHAOS_MARK in its environment."""
        with open(os.path.join(self.tmp, "cleanup.list"), "a") as f:
            f.write(f"{kind} {value}\n")


class Server:
    """`claudecron serve` on a free loopback port, data (db) where asked, log appended to a file."""

    def __init__(self, ctx, name, db_path=None, env=None):
        self.ctx = ctx
        self.home = os.path.join(ctx.tmp, name)
        os.makedirs(self.home, exist_ok=True)
        self.db = db_path or os.path.join(self.home, "tasks.db")
        self.log = os.path.join(self.home, "server.log")
        self.token = "chaos" + secrets.token_hex(24)
        self.extra_env = dict(env or {})
        self.proc = None
        self.port = None
        self.starts = 0

    def env(self):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("CLAUDECRON_") and k not in ("ANTHROPIC_API_KEY", "CHAOS_MARK")}
        e.update({
            "HOME": self.home,
            "CLAUDECRON_AUTH_TOKENS": self.token,
            "CLAUDECRON_RATE_LIMIT_PER_MINUTE": "1000000",
            "CLAUDECRON_HISTORY_KEEP_PER_TASK": "100000",
            # Every run inherits the server's environment: scripts/chaos.sh finds whatever this
            # invocation left behind by this mark (and ends it by pid).
            "CHAOS_MARK": self.ctx.mark,
        })
        e.update(self.extra_env)
        return e

    def start(self, timeout=30, accept=(200,)):
        last = ""
        for _ in range(4):
            self.port = free_port()
            mark = os.path.getsize(self.log) if os.path.exists(self.log) else 0
            logf = open(self.log, "ab")
            self.proc = subprocess.Popen(
                at_normal_priority([self.ctx.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                    "--db", self.db]),
                env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf,
                start_new_session=True)
            logf.close()
            self.starts += 1
            want = f"listening on http://127.0.0.1:{self.port}".encode()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = f"exited with {self.proc.returncode}: {self.log_tail(mark)}"
                    break
                with open(self.log, "rb") as f:
                    f.seek(mark)
                    announced = want in f.read()
                if announced:
                    st, _, _ = http_get(self.port, "/health", timeout=2)
                    if st in accept:
                        return self
                time.sleep(0.05)
            else:
                self.kill9()
                raise RuntimeError(f"server not ready within {timeout} s: {self.log_tail(mark)}")
            if "cannot listen" not in last and "Address already in use" not in last:
                break
        raise RuntimeError(f"server did not start: {last}")

    def log_tail(self, since=0, lines=12):
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def term(self, timeout=25):
        """SIGTERM; returns (exit code or None if it had to be killed, seconds to exit)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            rc = None
        return rc, time.monotonic() - t0

    # /proc numbers of the server process
    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))


# ---------------------------------------------------------------------------------------------
# HTTP, MCP and /hooks
# ---------------------------------------------------------------------------------------------

def http_request(port, method, path, headers=None, body=None, timeout=15, source=None):
    """One request on a fresh connection -> (status, headers dict (lower-case), body bytes);
    (0, {}, error text) when there was no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    except (OSError, http.client.HTTPException) as e:
        return 0, {}, f"{type(e).__name__}: {e}".encode()
    finally:
        conn.close()


def http_get(port, path, timeout=5):
    return http_request(port, "GET", path, timeout=timeout)


class McpError(Exception):
    pass


class Mcp:
    """An initialized MCP session (protocol 2025-11-25) on a server."""

    def __init__(self, server, timeout=20, name="chaos"):
        self.server = server
        self.port = server.port
        self.timeout = timeout
        self.session = None
        self.ids = 0
        msg = self.rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                      "clientInfo": {"name": name, "version": "1"}})
        if "result" not in msg:
            raise McpError(f"initialize: {msg}")
        self.notify("notifications/initialized")

    def headers(self):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "Authorization": f"Bearer {self.server.token}"}
        if self.session:
            h["MCP-Session-Id"] = self.session
            h["MCP-Protocol-Version"] = "2025-11-25"
        return h

    def post(self, body):
        st, hdrs, data = http_request(self.port, "POST", "/mcp", self.headers(),
                                      json.dumps(body).encode(), timeout=self.timeout)
        if st == 0:
            raise McpError(f"{body.get('method')}: no answer ({data.decode(errors='replace')})")
        if not self.session and "mcp-session-id" in hdrs:
            self.session = hdrs["mcp-session-id"]
        return st, hdrs, data

    def rpc(self, method, params=None):
        self.ids += 1
        st, hdrs, data = self.post({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params or {}})
        text = data.decode(errors="replace")
        if hdrs.get("content-type", "").startswith("text/event-stream"):
            datas = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
            text = datas[-1] if datas else ""
        if st != 200:
            raise McpError(f"{method}: HTTP {st}: {text[:300]}")
        try:
            return json.loads(text)
        except ValueError:
            raise McpError(f"{method}: HTTP {st}, not JSON: {text[:300]}") from None

    def notify(self, method, params=None):
        body = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        self.post(body)

    def call(self, name, args):
        """tools/call -> (ok, structuredContent or error text)."""
        msg = self.rpc("tools/call", {"name": name, "arguments": args})
        if "error" in msg:
            return False, f"JSON-RPC error {msg['error'].get('code')}: {msg['error'].get('message')}"
        res = msg.get("result", {})
        if res.get("isError"):
            return False, " ".join(c.get("text", "") for c in res.get("content", []))
        return True, res.get("structuredContent")

    def ok(self, name, args):
        good, out = self.call(name, args)
        if not good:
            raise McpError(f"{name} {json.dumps(args)[:200]}: {out}")
        return out

    def add(self, args):
        return self.ok("claudecron_add_task", args)["task"]["id"]

    def history(self, task=None, status="all", limit=1000):
        args = {"limit": limit, "status": status}
        if task:
            args["taskId"] = task
        return self.ok("claudecron_get_history", args)["runs"]

    def close(self):
        if self.session:
            http_request(self.port, "DELETE", "/mcp", self.headers(), timeout=5)
            self.session = None


def post_hook(server, payload, timeout=15, source=None):
    return http_request(server.port, "POST", "/hooks",
                        {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"},
                        json.dumps(payload).encode(), timeout=timeout, source=source)


def hook_payload(tool="Write", path="/tmp/chaos.txt"):
    return {"hook_event_name": "PostToolUse", "session_id": "chaos", "cwd": "/tmp",
            "tool_name": tool, "tool_input": {"file_path": path}, "tool_response": {}}


TICK = {"name": "tick", "type": "bash", "schedule": "* * * * * *", "command": "date +%s.%N"}


# ---------------------------------------------------------------------------------------------
# /health, sampled from its own process (the load threads here cannot delay it through the GIL)
# ---------------------------------------------------------------------------------------------

class Health:
    def __init__(self, server, label="h"):
        self.path = os.path.join(server.home, f"health-{label}-{server.starts}-{time.monotonic_ns()}.tsv")
        self.proc = subprocess.Popen(at_normal_priority([sys.executable, os.path.join(HERE, "sampler.py"),
                                                         str(server.port), self.path, "0.1"]),
                                     stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, CHAOS_MARK=server.ctx.mark))

    def stop(self):
        """Stop sampling; the samples: (epoch, latency ms, status (0: no answer), body head)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        out = []
        with contextlib.suppress(OSError), open(self.path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 3)
                if len(parts) >= 3:
                    out.append((float(parts[0]), float(parts[1]), int(parts[2]), parts[3] if len(parts) > 3 else ""))
        return out


def health_stats(samples):
    lat = [s[1] for s in samples]
    if not lat:
        return {"n": 0}
    return {"n": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat)}


def check_health(rep, samples, allowed=(200,), what="during the fault"):
    """(a) /health keeps answering within HEALTH_LIMIT_MS: judged on the p99 of the window (a
    sample without an answer counts with its full 2 s wait), so one outlier caused by the suite's
    own load on a busy host does not fail it; every answer must have a status in `allowed`."""
    st = health_stats(samples)
    name = f"(a) /health within {HEALTH_LIMIT_MS:.0f} ms at p99 {what}"
    if st["n"] < 10:
        rep.fail(name, f"only {st['n']} samples were taken (the sampler needs ~100 ms per sample)")
        return st
    t0 = samples[0][0]
    codes = {}
    for s in samples:
        codes[s[2]] = codes.get(s[2], 0) + 1
    wrong = [s for s in samples if s[2] != 0 and s[2] not in allowed]
    silent = [s for s in samples if s[2] == 0]
    numbers = (f"n={st['n']}, p50 {ms(st['p50'])}, p99 {ms(st['p99'])}, max {ms(st['max'])}, "
               f"statuses {dict(sorted(codes.items()))}" + (f", {len(silent)} without an answer" if silent else ""))
    why = []
    if st["p99"] > HEALTH_LIMIT_MS:
        slow = sorted(samples, key=lambda s: -s[1])[:5]
        why.append(f"p99 {ms(st['p99'])} > {HEALTH_LIMIT_MS:.0f} ms; slowest: "
                   + ", ".join(f"{s[1]:.0f} ms (HTTP {s[2]}) at +{s[0] - t0:.1f} s" for s in slow))
    if wrong:
        why.append(f"{len(wrong)} of {st['n']} answers had a status outside {list(allowed)}; first at "
                   f"+{wrong[0][0] - t0:.1f} s: HTTP {wrong[0][2]} {wrong[0][3][:160]!r}")
    if silent and not why:
        rep.note(f"/health gave no answer within 2 s {len(silent)} time(s) (within p99): first at "
                 f"+{silent[0][0] - t0:.1f} s: {silent[0][3][:100]}")
    rep.check(not why, f"{name} ({numbers})", "; ".join(why) + f"\n({numbers})")
    st["codes"] = codes
    return st


# ---------------------------------------------------------------------------------------------
# Runs: from the API and from the database file
# ---------------------------------------------------------------------------------------------

RUN_COLUMNS = "id, task_id, trigger, status, scheduled_for, queued_at, started_at, finished_at, output, error"


def db_connect(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def db_runs(path, task_id=None):
    with contextlib.closing(db_connect(path)) as db:
        db.row_factory = sqlite3.Row
        q = f"SELECT {RUN_COLUMNS} FROM runs" + (" WHERE task_id = ?" if task_id else "") + " ORDER BY id"
        return [dict(r) for r in db.execute(q, (task_id,) if task_id else ())]


def db_integrity(path):
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        return "; ".join(r[0] for r in db.execute("PRAGMA integrity_check"))


def api_runs(mcp, task):
    """A task's runs from get_history (output = the excerpt), oldest first."""
    runs = mcp.history(task)
    for r in runs:
        r["output"] = r.get("output_excerpt") or ""
    return sorted(runs, key=lambda r: r["id"])


def status_counts(runs):
    c = {}
    for r in runs:
        c[r["status"]] = c.get(r["status"], 0) + 1
    return dict(sorted(c.items()))


def tick_stats(runs, windows):
    """Fire lateness of the every-second task for fires scheduled inside `windows` (a list of
    (t0, t1) epoch pairs): the run's `date +%s.%N` minus its scheduled second (= the fractional
    part of the second it ran in, while under a second), in ms; missing = whole seconds of the
    windows without any run row."""
    lat, seen, skipped, other, window, others = [], set(), 0, 0, set(), {}
    for t0, t1 in windows:
        window |= set(range(math.ceil(t0), math.ceil(t1)))
    for r in runs:
        if not r.get("scheduled_for"):
            continue
        sf = ts(r["scheduled_for"])
        if not any(t0 <= sf < t1 for t0, t1 in windows):
            continue
        seen.add(round(sf))
        if r["status"] == "skipped":
            skipped += 1
            continue
        m = re.search(r"(\d{9,}\.\d+)", r.get("output") or "")
        if r["status"] == "success" and m:
            lat.append((float(m.group(1)) - sf) * 1000)
        else:
            other += 1
            others[r["status"]] = others.get(r["status"], 0) + 1
    missing = sorted(window - seen)
    st = {"fired": len(lat), "skipped": skipped, "other": other, "missing": len(missing),
          "window": len(window), "missing_list": missing[:10], "others": others}
    if lat:
        st.update(p50=pct(lat, 50), p99=pct(lat, 99), max=max(lat))
    return st


def tick_text(st):
    if not st["fired"]:
        return (f"no fire ran ({st['window']} s window, skipped {st['skipped']}, other {st['others'] or 0}, "
                f"missing {st['missing']})")
    return (f"p50 {ms(st['p50'])}, p99 {ms(st['p99'])}, max {ms(st['max'])}; {st['fired']} fires ran in a "
            f"{st['window']} s window, skipped {st['skipped']}, other {st['other']}, seconds without a run {st['missing']}")


LATE_LIMIT_MS = float(os.environ.get("CHAOS_LATE_P99_MS", "500"))


def check_tick(rep, st, what="during the fault", strict=False, none_ok=None):
    """(d) the every-second task's fire lateness, p99 under LATE_LIMIT_MS; with strict, no second
    of the window may be skipped or missing either. none_ok: why no fire at all is acceptable
    here (a store that refuses writes cannot record, so does not run, a fire)."""
    text = tick_text(st)
    why = []
    if not st["fired"] and none_ok and not st["skipped"] and not st["other"]:
        rep.ok(f"(d) every-second task fire lateness {what}: no fire was recorded ({none_ok}; {st['window']} s "
               "window)")
        return
    if not st["fired"] and st["other"]:
        why.append(f"the every-second task has {st['other']} runs in the window but none ended success with its "
                   f"output: {st['others']}")
    elif not st["fired"]:
        why.append("the every-second task never ran")
    elif st["p99"] > LATE_LIMIT_MS:
        why.append(f"lateness p99 {ms(st['p99'])} > {LATE_LIMIT_MS:.0f} ms")
    if strict and (st["skipped"] or st["missing"]):
        why.append(f"fires were skipped ({st['skipped']}) or missing ({st['missing']}: {st['missing_list']})")
    rep.check(not why, f"(d) every-second task fire lateness {what} ({text})", "; ".join(why) + f"\n({text})")


# ---------------------------------------------------------------------------------------------
# Processes of a server's runs, from /proc
# ---------------------------------------------------------------------------------------------

def run_processes(task_ids, run_ids=None):
    """Live (not zombie) processes whose environment has CLAUDECRON_TASK_ID in task_ids (and
    CLAUDECRON_RUN_ID in run_ids, when given)."""
    task_ids = set(task_ids)
    runs = {str(r) for r in run_ids} if run_ids is not None else None
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if rest[0] in "ZX":
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        vals = {}
        for kv in env:
            if kv.startswith(b"CLAUDECRON_TASK_ID=") or kv.startswith(b"CLAUDECRON_RUN_ID="):
                k, _, v = kv.decode(errors="replace").partition("=")
                vals[k] = v
        if vals.get("CLAUDECRON_TASK_ID") in task_ids and "CLAUDECRON_RUN_ID" in vals:
            if runs is None or vals["CLAUDECRON_RUN_ID"] in runs:
                found.append({"pid": int(name), "ppid": int(rest[1]), "pgid": int(rest[2]), "sid": int(rest[3]),
                              "run": vals["CLAUDECRON_RUN_ID"], "cmd": cmd[:80]})
    return found


def describe_procs(procs, limit=8):
    return "; ".join(f"pid {p['pid']} `{p['cmd']}` run {p['run']} (pgid {p['pgid']}, sid {p['sid']}, ppid {p['ppid']})"
                     for p in procs[:limit]) + (f"; … {len(procs) - limit} more" if len(procs) > limit else "")


def kill_procs(procs):
    for p in procs:
        with contextlib.suppress(OSError):
            os.kill(p["pid"], signal.SIGKILL)


def wait_no_procs(task_ids, run_ids=None, timeout=5.0):
    """Wait (bounded) for no live process of these runs; returns what is still there."""
    left = []

    def gone():
        nonlocal left
        left = run_processes(task_ids, run_ids)
        return not left
    wait_for("run processes to end", timeout, gone, 0.1)
    return left


def check_no_procs(rep, task_ids, what, run_ids=None, timeout=5.0):
    """(c) no process of this server's runs left (the suite kills what it finds)."""
    left = wait_no_procs(task_ids, run_ids, timeout)
    rep.check(not left, f"(c) no process of this server's runs left {what}",
              f"{len(left)} processes still carry a CLAUDECRON_RUN_ID of this server {timeout:.0f} s later "
              f"(killed now by the suite): {describe_procs(left)}")
    kill_procs(left)
    return left


# ---------------------------------------------------------------------------------------------
# The server's side of one loopback connection
# ---------------------------------------------------------------------------------------------

def _tcp_entry(server_port, client_port):
    """/proc/net/tcp row of the server's end of the connection from client_port: (inode, tx_queue)."""
    want_local, want_rem = f"0100007F:{server_port:04X}", f":{client_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1] == want_local and p[2].endswith(want_rem):
                return int(p[9]), int(p[4].split(":")[0], 16)
    return None, None


def server_tx_queue(server_port, client_port):
    """Bytes the server has written to this connection that the client has not taken yet."""
    return _tcp_entry(server_port, client_port)[1]


def shrink_server_sndbuf(server, client_port, size=4096):
    """Set SO_SNDBUF on the server's end of one connection (pidfd_getfd(2), root or ptrace
    rights, Linux >= 5.6): the kernel then buffers only a few KiB for it instead of autotuning up
    to tcp_wmem's 4 MiB, so a client that never reads makes the server's writes block within a
    few dozen events. Returns the server's fd number, or raises OSError."""
    import ctypes
    inode, _ = _tcp_entry(server.port, client_port)
    if inode is None:
        raise OSError(f"no /proc/net/tcp row for 127.0.0.1:{server.port} <- :{client_port}")
    target = None
    for fd in os.listdir(f"/proc/{server.pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{server.pid}/fd/{fd}") == f"socket:[{inode}]":
                target = int(fd)
                break
    if target is None:
        raise OSError(f"the server holds no fd for socket inode {inode}")
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(server.pid)
    try:
        dup = libc.syscall(438, pidfd, target, 0)  # SYS_pidfd_getfd (same number on every arch)
        if dup < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"pidfd_getfd: {os.strerror(err)}")
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=dup)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    finally:
        s.close()  # closes our duplicate only; the server's fd and the connection stay
    return target


# ---------------------------------------------------------------------------------------------
# The end of a scenario
# ---------------------------------------------------------------------------------------------

def settle(mcp, disable=(), timeout=15.0):
    """Disable the given tasks, then wait (bounded) until no run is queued or running; returns the
    runs still queued/running (from the API) at the end."""
    for t in disable:
        with contextlib.suppress(McpError):
            mcp.ok("claudecron_toggle_task", {"taskId": t, "enabled": False})
    left = []

    def idle():
        nonlocal left
        try:
            left = mcp.history(status="running") + mcp.history(status="queued")
        except McpError as e:
            left = [{"id": "?", "status": f"unknown ({e})"}]
        return not left
    wait_for("runs to settle", timeout, idle, 0.25)
    return left


def snapshot_deleted_db(server, dest):
    """Copy the database the server still holds open after its files were deleted (through
    /proc/PID/fd/N, "tasks.db (deleted)" and its -wal) to dest; returns dest, or None."""
    found = {}
    for fd in os.listdir(f"/proc/{server.pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{server.pid}/fd/{fd}")
            for suffix in ("", "-wal"):
                if target == f"{server.db}{suffix} (deleted)":
                    found.setdefault(suffix, f"/proc/{server.pid}/fd/{fd}")
    if "" not in found:
        return None
    for suffix, src in found.items():
        with open(src, "rb") as a, open(dest + suffix, "wb") as b:
            b.write(a.read())
    return dest


def finish(rep, server, task_ids, disable=(), settle_timeout=15.0, integrity=False, api=True, final_rows=None):
    """The common end: (b) no run left queued/running (the server's own view after the load, then
    the database after SIGTERM), the server exits on SIGTERM, (c) no process of its runs left.
    final_rows: called after the settle and before SIGTERM; returns (rows, what) to judge instead
    of the database file after the stop (e.g. the deleted database the server still held)."""
    stuck = []
    if api and server.alive():
        try:
            mcp = Mcp(server)
            stuck = settle(mcp, disable, settle_timeout)
            mcp.close()
        except McpError as e:
            stuck = [{"id": "?", "status": f"could not ask the server: {e}"}]
    override = final_rows() if final_rows and server.alive() else None
    alive_before = server.alive()
    rc, secs = server.term()
    if alive_before:
        rep.check(rc == 0, f"the server exits 0 on SIGTERM at the end ({secs:.1f} s)",
                  f"exit {rc} after {secs:.1f} s (None: still running after 25 s, killed)\n{server.log_tail()}")
    rows = []
    db_note = ""
    if override is not None:
        rows, db_note = override
        db_note = f"; {db_note}"
    elif os.path.exists(server.db):
        try:
            rows = db_runs(server.db)
        except sqlite3.Error as e:
            db_note = f"; the database could not be read after the stop: {e}"
    else:
        db_note = "; the database file is gone"
    open_rows = [r for r in rows if r["status"] not in TERMINAL]
    counts = status_counts(rows)
    why = []
    if stuck:
        why.append(f"{len(stuck)} runs still queued/running {settle_timeout:.0f} s after the load stopped: "
                   + ", ".join(f"#{r['id']} {r.get('status')} (task {r.get('task_id', '?')}, started {r.get('started_at')})"
                               for r in stuck[:8]))
    if open_rows:
        why.append(f"{len(open_rows)} rows not terminal in the database{db_note or ' after SIGTERM'}: "
                   + ", ".join(f"#{r['id']} {r['status']}" for r in open_rows[:8]))
    rep.check(not why, f"(b) every recorded run ended with a terminal status ({len(rows)} runs: {counts}{db_note})",
              "; ".join(why))
    if integrity and os.path.exists(server.db):
        res = db_integrity(server.db)
        rep.check(res == "ok", f"PRAGMA integrity_check: {res[:60]}", f"integrity_check said: {res[:500]}")
    check_no_procs(rep, task_ids, "after the scenario")
    return rows
