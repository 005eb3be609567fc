"""The soak (`scripts/chaos.sh --long`): one server for CHAOS_SOAK_SECONDS (default 1800) under a
steady mixed load -- tool calls, hook events, an every-second cron task, a cron task every 5 s,
waited manual runs, tasks added and deleted, and clients that open an event stream and are
SIGKILLed -- sampling the server's RSS, open fds and threads every 10 s; at the end they must be
flat: the median of the last three samples at most the median of the first three after the
warm-up plus a small margin (RSS: 10 % or 4 MiB, whichever is larger; fds and threads: 8)."""

import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time

from harness import (HERE, TICK, Health, Mcp, Report, Server, check_health, check_tick, finish, hook_payload,
                     post_hook, tick_stats)
from scenarios_a import Loop, hook_task


def slope(rows):
    """Least-squares slope of RSS (KiB) over time (s) of metric rows (seconds, rss, fds, threads)."""
    n = len(rows)
    mx, my = sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n
    den = sum((r[0] - mx) ** 2 for r in rows)
    return sum((r[0] - mx) * (r[1] - my) for r in rows) / den if den else 0.0


def soak(ctx):
    rep = Report("soak: ")
    seconds = int(os.environ.get("CHAOS_SOAK_SECONDS", "1800"))
    warmup = min(300, max(30, seconds // 4))
    # Abandoned sessions expire after 60 s here (default 3600 s), so the steady state is reached
    # within the warm-up; history is pruned at the default 200 runs per task.
    srv = Server(ctx, "soak", env={"CLAUDECRON_SESSION_TIMEOUT_SECS": "60", "CLAUDECRON_HISTORY_KEEP_PER_TASK": "200"})
    clients = []
    loops = []
    try:
        srv.start()
        m = Mcp(srv)
        tick = m.add(TICK)
        hooked = m.add(hook_task("soak-hook", "echo $CLAUDECRON_RUN_ID; sleep 0.2"))
        five = m.add({"name": "soak-five", "type": "bash", "schedule": "*/5 * * * * *", "command": "sleep 1"})
        manual = m.add({"name": "soak-manual", "type": "bash", "command": "echo manual", "trigger": {"type": "manual"}})
        task_ids = [tick, hooked, five, manual]
        rep.note(f"{seconds} s under load (warm-up {warmup} s); metrics every 10 s in {srv.home}/metrics.tsv")
        h = Health(srv, "soak")
        t0 = time.time()
        ticks = {}

        def collect_ticks():
            for r in m.history(tick, limit=200):
                r["output"] = r.get("output_excerpt") or ""
                ticks[r["id"]] = r

        def tools():
            c = Mcp(srv, timeout=15, name="soak-tools")
            c.ok("claudecron_list_tasks", {})
            c.ok("claudecron_get_history", {"limit": 20})
            c.ok("claudecron_get_task", {"taskId": tick})
            c.ok("claudecron_preview_schedule", {"schedule": "0 9 * * 1-5", "count": 3})
            c.close()

        churn = {"n": 0}

        def add_delete():
            name = f"soak-tmp-{churn['n']}"
            churn["n"] += 1
            tid = m.add({"name": name, "type": "bash", "schedule": "0 3 * * *", "command": "true"})
            m.ok("claudecron_delete_task", {"taskId": tid})

        def waited_run():
            m.ok("claudecron_run_task", {"taskId": manual, "wait_seconds": 5})

        def client_churn():
            clients.append((time.time() + random.uniform(2, 6), subprocess.Popen(
                [sys.executable, os.path.join(HERE, "client.py"), str(srv.port), srv.token],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=dict(os.environ, CHAOS_MARK=ctx.mark))))
            for due, p in list(clients):
                if time.time() >= due:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    clients.remove((due, p))

        def hook_event():
            st, _, body = post_hook(srv, hook_payload())
            if st != 200:
                raise RuntimeError(f"POST /hooks -> {st} {body[:120]!r}")

        loops = {"hook events": Loop(hook_event, 0.5),
                 "tool sessions": Loop(tools, 0.3), "add+delete": Loop(add_delete, 5.0),
                 "waited runs": Loop(waited_run, 3.0), "killed clients": Loop(client_churn, 3.0),
                 "tick collector": Loop(collect_ticks, 60.0)}
        metrics = []
        path = os.path.join(srv.home, "metrics.tsv")
        with open(path, "w") as f:
            f.write("seconds\trss_kib\tfds\tthreads\n")
            while time.time() < t0 + seconds and srv.alive():
                row = (round(time.time() - t0), srv.rss_kib(), srv.fds(), srv.threads())
                metrics.append(row)
                f.write("\t".join(map(str, row)) + "\n")
                f.flush()
                if len(metrics) % 6 == 1:
                    rep.note(f"+{row[0]:>5} s: RSS {row[1] / 1024:.1f} MiB, fds {row[2]}, threads {row[3]}")
                time.sleep(max(0.0, t0 + len(metrics) * 10 - time.time()))
        alive = srv.alive()
        for lp in loops.values():
            lp.stop()
        for _, p in clients:
            p.send_signal(signal.SIGKILL)
            p.wait()
        clients.clear()
        t1 = time.time()
        samples = h.stop()
        rep.check(alive, f"the server ran the whole {seconds} s", f"it exited with {srv.proc.returncode}: {srv.log_tail()}")
        for name, lp in loops.items():
            rep.check(lp.errors <= max(1, lp.calls // 100), f"load '{name}': {lp.calls} rounds, {lp.errors} errors",
                      f"{lp.errors} errors in {lp.calls + lp.errors} rounds; first: {lp.first_error}")
        check_health(rep, samples, what=f"over the {seconds} s soak")
        if alive:
            with contextlib.suppress(Exception):
                collect_ticks()
        check_tick(rep, tick_stats(list(ticks.values()), [(t0 + 1, t1 - 2)]), f"over the {seconds} s soak")
        after = [r for r in metrics if r[0] >= warmup]
        if len(after) >= 6:
            start = [statistics.median(r[i] for r in after[:3]) for i in (1, 2, 3)]
            end = [statistics.median(r[i] for r in after[-3:]) for i in (1, 2, 3)]
            peak = [max(r[i] for r in metrics) for i in (1, 2, 3)]
            margins = [max(4096, start[0] * 0.10), 8, 8]
            half = after[len(after) // 2:]
            rep.note(f"RSS trend after the warm-up: {slope(after) * 60:+.0f} KiB/min overall, "
                     f"{slope(half) * 60:+.0f} KiB/min over the second half (a leak keeps its slope; warm-up "
                     "growth flattens)")
            for i, (label, unit) in enumerate((("RSS", "KiB"), ("open fds", ""), ("threads", ""))):
                text = (f"{label} flat: start {start[i]:.0f}{unit and ' ' + unit}, end {end[i]:.0f}{unit and ' ' + unit} "
                        f"(allowed end <= start + {margins[i]:.0f}; peak {peak[i]:.0f}; start = median of the first 3 "
                        f"samples after {warmup} s, end = median of the last 3)")
                rep.check(end[i] <= start[i] + margins[i], text, f"GREW: {text}")
        else:
            rep.fail("RSS, fds and threads flat", f"only {len(after)} samples after the {warmup} s warm-up "
                     "(need 6: CHAOS_SOAK_SECONDS >= warm-up + 60)")
        finish(rep, srv, task_ids, disable=[tick, five, hooked], settle_timeout=20, integrity=True)
    finally:
        for lp in (loops.values() if isinstance(loops, dict) else []):
            lp.stop_event.set()
        for _, p in clients:
            with contextlib.suppress(OSError):
                p.kill()
        srv.kill9()
