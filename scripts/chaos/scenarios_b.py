"""Scenarios 4-7: a full disk, the database deleted or made read-only under the server, a run
that escapes its process group, an overload burst."""

import errno
import os
import subprocess
import threading
import time

from harness import (MIN_WINDOW, TICK, Health, Mcp, McpError, Report, Server, api_runs, check_health,
                     check_tick, db_runs, describe_procs, finish, hook_payload, kill_procs, post_hook,
                     snapshot_deleted_db, status_counts, tick_stats, tick_text, ts, wait_for, wait_no_procs)
from scenarios_a import hook_task


class Attempts:
    """Writes tried during a fault, by kind: what each got back."""

    def __init__(self):
        self.rows = []  # (epoch, kind, ok, text)
        self.lock = threading.Lock()

    def add(self, kind, ok, text):
        with self.lock:
            self.rows.append((time.time(), kind, ok, str(text)[:300]))

    def summary(self, since=0.0):
        out = {}
        for t, kind, ok, text in self.rows:
            if t >= since:
                key = f"{kind}: {'ok' if ok else 'refused'}"
                out[key] = out.get(key, 0) + 1
        return out

    def first(self, kind, ok, since=0.0):
        return next((r for r in self.rows if r[1] == kind and r[2] == ok and r[0] >= since), None)


def write_load(srv, m, hook_tid, attempts, tag):
    """One round of writes: a hook event, a manual run, a new task (each outcome recorded)."""
    st, _, body = post_hook(srv, hook_payload(), timeout=10)
    attempts.add("POST /hooks", st == 200, f"HTTP {st} {body[:200]!r}")
    try:
        good, out = m.call("claudecron_run_task", {"taskId": hook_tid})
        attempts.add("run_task", good, out if not good else f"run {out['run']['id']} {out['run']['status']}")
    except McpError as e:
        attempts.add("run_task", False, e)
    try:
        name = f"probe-{tag}-{time.monotonic_ns()}"
        good, out = m.call("claudecron_add_task", {"name": name, "type": "bash", "command": "true",
                                                   "trigger": {"type": "manual"}})
        attempts.add("add_task", good, out if not good else f"task {out['task']['id']} stored")
    except McpError as e:
        attempts.add("add_task", False, e)


# ---------------------------------------------------------------------------------------------
# 4. a full disk
# ---------------------------------------------------------------------------------------------

def fill(path):
    """Write `path` until the file system says ENOSPC; returns (bytes written, ENOSPC seen)."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    n = f.write(b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                written += n or 0
                if not n:
                    break
    with open(path, "ab", buffering=0) as f:
        try:
            f.write(b"\0")
            return written, False
        except OSError as e:
            return written, e.errno == errno.ENOSPC


def s4_full_disk(ctx):
    rep = Report("4 full disk: ")
    disk = os.path.join(ctx.tmp, "disk")
    os.makedirs(disk, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "claudecron-chaos", disk],
                       capture_output=True, text=True)
    if r.returncode != 0:
        rep.skip("the whole scenario", f"SKIPPED LOUDLY: cannot mount a 2 MiB tmpfs at {disk}: "
                 f"{(r.stderr or r.stdout).strip()} (needs root with CAP_SYS_ADMIN, e.g. not in an unprivileged "
                 "container); the full-disk behaviour was NOT tested")
        return
    ctx.record("mount", disk)
    srv = Server(ctx, "s4", db_path=os.path.join(disk, "tasks.db"))
    try:
        srv.start()
        m = Mcp(srv)
        tick = m.add(TICK)
        writer = m.add(hook_task("writer", "echo written; head -c 3000 /dev/zero | tr '\\0' x"))
        time.sleep(2)
        h = Health(srv)
        filler = os.path.join(disk, "filler")
        written, enospc = fill(filler)
        t_full = time.time()
        rep.check(enospc, f"the data dir's 2 MiB tmpfs is full (a filler of {written // 1024} KiB, then ENOSPC)",
                  f"no ENOSPC after writing {written} bytes")
        attempts = Attempts()
        alive = True
        full_for = 20 if ctx.long else 15
        while time.time() < t_full + full_for:
            write_load(srv, m, writer, attempts, "full")
            alive = alive and srv.alive()
            time.sleep(0.5)
        t_free = time.time()
        os.remove(filler)
        rep.note(f"while full: {attempts.summary()}")
        for kind in ("add_task", "run_task", "POST /hooks"):
            bad = attempts.first(kind, False)
            if bad:
                rep.note(f"  first refusal of {kind}: {bad[3][:200]}")
        rep.check(alive and srv.alive(), f"the server did not crash while its disk was full ({full_for} s of writes)",
                  f"the server exited with {srv.proc.returncode}: {srv.log_tail()}")
        after = Attempts()

        def recorded_again():
            write_load(srv, m, writer, after, "freed")
            runs = api_runs(m, tick)
            ticked = [r for r in runs if r["status"] == "success" and r.get("scheduled_for") and ts(r["scheduled_for"]) > t_free]
            hooked = [r for r in api_runs(m, writer) if r["status"] == "success" and ts(r["queued_at"]) > t_free]
            return (ticked[0], hooked[0]) if ticked and hooked and after.first("add_task", True, t_free) else None
        again = srv.alive() and wait_for("runs to be recorded again", 15, recorded_again, 0.5)
        time.sleep(3)
        t_end = time.time()
        samples = h.stop()
        rep.check(bool(again), "after freeing space, runs are recorded again (every-second task, a hook run, a new "
                  "task) within 15 s" + (f": tick run #{again[0]['id']}, hook run #{again[1]['id']}" if again else ""),
                  f"not within 15 s of freeing space; writes since: {after.summary()}; log:\n{srv.log_tail()}")
        st = check_health(rep, samples, allowed=(200, 503))
        bodies = [s[3] for s in samples if s[2] == 503]
        if bodies:
            unnamed = [b for b in bodies if "database" not in b and "store" not in b]
            rep.check(not unnamed, f"the 503 answers of /health name the store ({len(bodies)}, e.g. {bodies[0][:120]})",
                      f"{len(unnamed)} of {len(bodies)} 503 answers do not name the database: {unnamed[0][:200] if unnamed else ''}")
        else:
            rep.note("/health answered 200 throughout the full disk (it reads only)")
        del st
        if srv.alive():
            runs = api_runs(m, tick)
            full = tick_stats(runs, [(t_full, t_free)])
            rep.note(f"every-second task while the disk was full (fires that could not be recorded do not run): "
                     f"{tick_text(full)}")
            check_tick(rep, tick_stats(runs, [(t_full, t_end - 1)]), "while full and after freeing (fires recorded)")
        finish(rep, srv, [tick, writer], disable=[tick], integrity=True)
    finally:
        srv.kill9()
        for _ in range(10):
            if subprocess.run(["umount", disk], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", disk], capture_output=True)


# ---------------------------------------------------------------------------------------------
# 5. the database deleted or made read-only under the server
# ---------------------------------------------------------------------------------------------

def chattr(flag, paths):
    return subprocess.run(["chattr", flag] + paths, capture_output=True, text=True)


REASONS = ("read-only", "readonly", "read only", "not writable", "cannot write", "immutable", "permission",
           "deleted", "removed", "missing", "gone", "replaced", "no such file", "not found", "unavailable")


def clear_reason(text):
    """An error that names the database and says what is wrong with it (not just "failed")."""
    t = text.lower()
    return ("database" in t or "tasks.db" in t or "store" in t) and any(w in t for w in REASONS)


def s5_database_gone(ctx):
    for variant in ("deleted", "read-only"):
        s5_variant(ctx, Report(f"5 database {variant}: "), variant)


def s5_variant(ctx, rep, variant):
    srv = Server(ctx, f"s5-{variant}")
    locked = []
    try:
        srv.start()
        m = Mcp(srv)
        tick = m.add(TICK)
        writer = m.add(hook_task("writer", "echo written"))
        time.sleep(2)
        h = Health(srv)
        t_fault = time.time()
        if variant == "deleted":
            gone = [srv.db + s for s in ("", "-wal", "-shm") if os.path.exists(srv.db + s)]
            for p in gone:
                os.remove(p)
            rep.note(f"removed {', '.join(os.path.basename(p) for p in gone)} under the running server")
        else:
            locked = [p for p in (srv.db, srv.db + "-wal") if os.path.exists(p)]
            r = chattr("+i", locked)
            if r.returncode != 0:
                rep.skip("the read-only variant", f"SKIPPED LOUDLY: chattr +i failed ({r.stderr.strip()}); "
                         "the read-only database was NOT tested")
                return
            for p in locked:
                ctx.record("chattr", p)
            rep.note(f"chattr +i {' '.join(os.path.basename(p) for p in locked)} (immutable: writes through open "
                     "fds fail with EPERM, new connections open read-only; tasks.db-shm is left alone)")
        attempts = Attempts()
        while time.time() < t_fault + MIN_WINDOW:
            write_load(srv, m, writer, attempts, variant.replace("-", ""))
            time.sleep(0.5)
        t_end = time.time()
        samples = h.stop()
        alive = srv.alive()
        rep.note(f"writes during the fault: {attempts.summary()}")
        check_health(rep, samples, allowed=(200, 503))
        first503 = next((s for s in samples if s[2] == 503), None)
        last = samples[-1] if samples else (0, 0, 0, "")
        what = "tasks.db was deleted" if variant == "deleted" else "tasks.db was made read-only"
        if first503:
            rep.check(first503[0] - t_fault <= 5 and ("database" in first503[3] or "store" in first503[3]),
                      f"/health reports 503 naming the database {first503[0] - t_fault:.1f} s after {what}: "
                      f"{first503[3][:140]}",
                      f"503 after {first503[0] - t_fault:.1f} s (limit 5 s) or without naming the database: {first503[3][:200]}")
        else:
            rep.fail(f"/health reports 503 naming the database within 5 s after {what}",
                     f"NOT DETECTED: /health answered {last[2]} for all {t_end - t_fault:.0f} s after {what} "
                     f"(last body: {last[3][:200]}) -- the server does not notice it")
        since = t_fault + 5
        adds = [r for r in attempts.rows if r[1] == "add_task" and r[0] >= since]
        stored = [r for r in adds if r[2]]
        unclear = [r for r in adds if not r[2] and not clear_reason(r[3])]
        if stored:
            rep.fail("writes are refused with a clear error once the fault is detected",
                     f"NOT REFUSED: add_task succeeded {len(stored)} of {len(adds)} times 5 s or more after {what} "
                     f"(e.g. {stored[0][3]})" + (" -- the tasks went into an unlinked file and vanish at the next start"
                                                if variant == "deleted" else ""))
        else:
            rep.check(adds and not unclear, f"writes are refused with a clear error ({len(adds)} add_task refused, "
                      f"e.g. {adds[0][3][:120] if adds else '-'})",
                      f"REFUSED WITHOUT A REASON: {len(unclear)} of {len(adds)} add_task errors do not say what is "
                      f"wrong with the database (read-only, deleted, ...): {unclear[0][3][:200]!r}" if unclear
                      else "no add_task was attempted")
        rep.check(alive, f"the server kept running after {what}", f"it exited with {srv.proc.returncode}: {srv.log_tail()}")
        if locked:
            chattr("-i", locked)
            locked = []
            rep.note("chattr -i: the database is writable again")
        try:
            runs = api_runs(m, tick) if alive else []
            check_tick(rep, tick_stats(runs, [(t_fault, t_end - 1)]), "during the fault (fires recorded)",
                       none_ok="the store refuses writes, so fires cannot be recorded")
        except McpError as e:
            text = str(e)
            if "no task has the id" in text:
                rep.fail("(d) every-second task fire lateness during the fault",
                         f"SPLIT DATABASE: the server no longer finds the every-second task it ran a moment ago "
                         f"(a connection opened a new, empty tasks.db): {text[:300]}")
            else:
                rep.ok(f"(d) every-second task fire lateness during the fault: reading runs is refused ({text[:120]})")
        if variant == "deleted" and os.path.exists(srv.db):
            rep.note(f"the server created a new tasks.db ({os.path.getsize(srv.db)} bytes) after the deletion: "
                     "some of its connections now use a different database than others")
        def held_db():
            snap = snapshot_deleted_db(srv, os.path.join(srv.home, "deleted-snapshot.db"))
            if not snap:
                return [], "the server holds no deleted tasks.db open"
            try:
                return db_runs(snap), "judged in the deleted tasks.db the server still holds (read via /proc/PID/fd)"
            except Exception as e:  # noqa: BLE001 - reported as what was seen
                return [], f"the deleted tasks.db the server holds could not be read: {e}"
        finish(rep, srv, [tick, writer], disable=[tick], integrity=variant != "deleted",
               final_rows=held_db if variant == "deleted" else None)
    finally:
        if locked:
            chattr("-i", locked)
        srv.kill9()


# ---------------------------------------------------------------------------------------------
# 6. a run that escapes its process group
# ---------------------------------------------------------------------------------------------

ESCAPES = {
    # variant: (command, timeout_seconds, expected status, cancel after seconds)
    # (the short sleep lets setsid(2) happen before the run ends: otherwise the end's group kill
    # can catch the child before it escapes, and the variant would pass by luck)
    "success": ("setsid sleep 300 & sleep 0.3; echo started", 10, "success", None),
    "success, output redirected": ("setsid sleep 300 >/dev/null 2>&1 & sleep 0.3; echo started", 10, "success", None),
    "timeout": ("setsid sleep 300 & sleep 60", 2, "timeout", None),
    "cancel": ("setsid sleep 300 & sleep 60", 60, "cancelled", 1.5),
}


def s6_escaped_run(ctx):
    rep = Report("6 escaped run: ")
    srv = Server(ctx, "s6")
    try:
        srv.start()
        m = Mcp(srv)
        tick = m.add(TICK)
        tasks = {v: m.add({"name": f"escape-{i}", "type": "bash", "command": c, "timeout_seconds": t,
                           "trigger": {"type": "manual"}}) for i, (v, (c, t, _, _)) in enumerate(ESCAPES.items())}
        task_ids = [tick] + list(tasks.values())
        h = Health(srv)
        t0 = time.time()
        runs = {v: m.ok("claudecron_run_task", {"taskId": tid})["run"]["id"] for v, tid in tasks.items()}
        time.sleep(1.5)
        for v, (_, _, _, cancel) in ESCAPES.items():
            if cancel is not None:
                m.call("claudecron_cancel_run", {"runId": runs[v]})
        for v, (cmd, tmo, expect, _) in ESCAPES.items():
            rid = runs[v]
            run = wait_for("the run to end", tmo + 15, lambda rid=rid: (lambda r: r if r["status"] not in ("queued", "running") else None)(
                m.ok("claudecron_get_run", {"runId": rid})["run"]))
            if not run:
                rep.fail(f"{v}: the run ends", f"run {rid} (`{cmd}`) still not ended {tmo + 15} s later")
                continue
            rep.check(run["status"] == expect, f"{v}: run {rid} ended {run['status']} after {run.get('duration_ms')} ms",
                      f"expected {expect}, got {run['status']} (error: {run.get('error')})")
            left = wait_no_procs(task_ids, [rid], 2)
            rep.check(not left, f"{v}: no process carrying CLAUDECRON_RUN_ID={rid} is left 2 s after the run ended",
                      f"ESCAPED the run's process group and outlived the run: {len(left)} left (killed now by "
                      f"the suite): {describe_procs(left)}")
            kill_procs(left)
        time.sleep(max(0.0, t0 + MIN_WINDOW - time.time()))  # a fixed server ends these runs in 2 s
        t1 = time.time()
        samples = h.stop()
        check_health(rep, samples)
        check_tick(rep, tick_stats(api_runs(m, tick), [(t0, t1 - 1)]))
        finish(rep, srv, task_ids, disable=[tick])
    finally:
        srv.kill9()


# ---------------------------------------------------------------------------------------------
# 7. an overload burst
# ---------------------------------------------------------------------------------------------

def max_overlap(intervals):
    events = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals])
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def s7_overload(ctx):
    rep = Report("7 overload: ")
    n = int(os.environ.get("CHAOS_BURST", "2000" if ctx.long else "500"))
    srv = Server(ctx, "s7")
    try:
        srv.start()
        m = Mcp(srv)
        tick = m.add(TICK)
        burst = m.add(hook_task("burst", "sleep 0.2"))
        time.sleep(1.5)
        h = Health(srv)
        t0 = time.time()
        answers = {}
        lock = threading.Lock()

        def sender(k):
            for _ in range(k):
                st, _, body = post_hook(srv, hook_payload(), timeout=30)
                with lock:
                    key = st if st == 200 else f"{st} {body[:80]!r}"
                    answers[key] = answers.get(key, 0) + 1
        threads = [threading.Thread(target=sender, args=(n // 25,)) for _ in range(25)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        t_sent = time.time()
        rep.note(f"{n} POST /hooks from 25 threads in {t_sent - t0:.1f} s: answers {answers}")
        # keep it overloaded for a while: 25 more events every 0.5 s
        topup = 0
        while time.time() < t0 + MIN_WINDOW - 4:
            threads = [threading.Thread(target=sender, args=(1,)) for _ in range(25)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            topup += 25
            time.sleep(0.5)
        n += topup
        rep.note(f"then {topup} more, 25 every 0.5 s for {time.time() - t_sent:.0f} s: answers {answers}")

        def drained():
            return not (m.history(burst, status="queued", limit=1) or m.history(burst, status="running", limit=1))
        wait_for("the burst to drain", 90, drained, 0.5)
        time.sleep(2)
        t1 = time.time()
        samples = h.stop()
        check_health(rep, samples)
        # (the API lists at most 1,000 runs: judge from the database file after the stop)
        rows = finish(rep, srv, [tick, burst], disable=[tick], settle_timeout=30)
        runs = [r for r in rows if r["task_id"] == burst]
        counts = status_counts(runs)
        skipped = [r for r in runs if r["status"] == "skipped"]
        overloaded = [r for r in skipped if "overload" in (r.get("error") or "")]
        ran = [r for r in runs if r.get("started_at")]
        queue_max = max_overlap([(ts(r["queued_at"]), ts(r["started_at"])) for r in ran])
        running_max = max_overlap([(ts(r["started_at"]), ts(r["finished_at"])) for r in ran if r.get("finished_at")])
        rep.check(answers.get(200) == n, f"all {n} events were answered 200", f"answers: {answers}")
        rep.check(len(runs) == n, f"every event is recorded as a run or a skip ({len(runs)} rows: {counts})",
                  f"{n} events, {len(runs)} rows: {counts}")
        rep.check(overloaded and len(overloaded) == len(skipped),
                  f"beyond the queue, fires are recorded skipped as overloaded ({len(overloaded)}, e.g. "
                  f"{overloaded[0]['error'][:80] if overloaded else '-'!r})",
                  f"{len(skipped)} skipped, {len(overloaded)} of them with 'overloaded' in the error; e.g. "
                  f"{(skipped[0].get('error') if skipped else None)!r}")
        rep.check(queue_max <= 50 and running_max <= 10,
                  f"the queue stayed bounded: at most {queue_max} runs of the task waited (limit 50), {running_max} ran "
                  "at once (max_concurrent_tasks 10)",
                  f"{queue_max} waited at once (limit 50), {running_max} ran at once (limit 10)")
        ok_ran = [r for r in ran if r["status"] == "success"]
        rep.check(len(ok_ran) == len(ran), f"every admitted run succeeded ({len(ok_ran)})",
                  f"admitted runs: {status_counts(ran)}")
        tick_runs = [r for r in rows if r["task_id"] == tick]
        st = tick_stats(tick_runs, [(t0, t1 - 1)])
        tick_over = [r for r in tick_runs if "overload" in (r.get("error") or "")]
        rep.check(st["fired"] >= 0.8 * st["window"] and not tick_over,
                  f"the every-second task kept running through the burst ({st['fired']} of {st['window']} s ran, "
                  f"{st['skipped']} skipped)",
                  f"only {st['fired']} of {st['window']} seconds ran; {len(tick_over)} skipped as overloaded; "
                  f"{tick_text(st)}")
        check_tick(rep, st)
    finally:
        srv.kill9()
