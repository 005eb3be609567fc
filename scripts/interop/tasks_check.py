#!/usr/bin/env python3
"""claudecron interop: the MCP tasks extension (io.modelcontextprotocol/tasks) driven by a 2026
tasks client built on the official Python SDK's ClientExtension API (PyPI `mcp` 2.3.0), against a
`claudecron serve` this script starts itself (so it can restart it):

    python tasks_check.py --bin target/debug/claudecron

1. a 20 s `claudecron_run_task` becomes a task: the extension's resolve polls `tasks/get`
   (working ... working, then completed) and returns the tool result with the run's output;
2. `tasks/cancel` of a running task ends the run's process group (checked in /proc);
3. the server is stopped (SIGTERM) while a task runs and started again on the same database: a
   new client's `tasks/get` for the old task id still answers (the run was recorded interrupted).

Prints `ok - tasks ...` / `not ok - tasks ...: details` per check; exit 0 when all passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from typing import Any, Literal

import httpx2
import mcp_types as T
from mcp.client import Client
from mcp.client.extension import ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from pydantic import ConfigDict, Field
from tap import Tap, free_port

warnings.filterwarnings("ignore")

EXTENSION = "io.modelcontextprotocol/tasks"
LONG_S = 20


# --- the tasks client: ~30 lines on the SDK's ClientExtension API (reference/mcp-2026-07-28.md) ---
class Task(T.Result):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    task_id: str = Field(alias="taskId")
    status: str
    poll_ms: int | None = Field(None, alias="pollIntervalMs")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Created(Task):
    result_type: Literal["task"] = Field(alias="resultType")


class Ids(T.RequestParams):
    task_id: str = Field(serialization_alias="taskId")


class Get(T.Request[Ids, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: Ids


class Cancel(T.Request[Ids, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: Ids


class Tasks(ClientExtension):
    """Polls a created task to its end (poll=True), or hands its id back at once (poll=False)."""

    identifier = EXTENSION

    def __init__(self, poll: bool = True) -> None:
        self.poll_to_end = poll
        self.seen: list[str] = []

    def claims(self):
        return (ResultClaim(result_type="task", model=Created, resolve=self.resolve),)

    async def resolve(self, t: Task, ctx) -> T.CallToolResult:
        self.seen.append(t.status)
        if not self.poll_to_end:
            # run_task's output schema wants a run: the task id is the run id.
            return T.CallToolResult(content=[T.TextContent(type="text", text=f"task {t.task_id}")],
                                    structured_content={"run": {"id": int(t.task_id), "status": t.status}})
        while t.status in ("working", "input_required"):
            await asyncio.sleep((t.poll_ms or 1000) / 1000)
            t = await ctx.session.send_request(Get(params=Ids(task_id=t.task_id)), Task)
            self.seen.append(t.status)
        if t.status == "completed":
            return T.CallToolResult.model_validate(t.result)
        return T.CallToolResult(content=[T.TextContent(type="text", text=f"{t.status}: {t.error}")], is_error=True)


# --- the checks ----------------------------------------------------------------------------------
TAP = Tap("tasks")
check = TAP.check


class ServerProc:
    def __init__(self, binary: str, data: str, port: int, token: str) -> None:
        self.binary, self.data, self.port, self.token = binary, data, port, token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDECRON_")}
        env.update(HOME=self.data, CLAUDECRON_AUTH_TOKENS=self.token, CLAUDECRON_RATE_LIMIT_PER_MINUTE="100000")
        log = open(os.path.join(self.data, "server.log"), "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--db", os.path.join(self.data, "tasks.db")], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not answer /health within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is pgid, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def client(server: ServerProc, ext: Tasks) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {server.token}"},
                              timeout=httpx2.Timeout(20.0, read=120.0))
    return http, Client(streamable_http_client(server.url, http_client=http), mode="2026-07-28", extensions=[ext])


def task_id_of(r: T.CallToolResult) -> str | None:
    """The id a non-polling resolve put in its text ("task ID")."""
    text = next((getattr(x, "text", "") for x in r.content or []), "")
    return text[5:] if text.startswith("task ") else None


async def add(c: Client, name: str, command: str) -> None:
    await c.call_tool("claudecron_delete_task", {"taskId": name})
    r = await c.call_tool("claudecron_add_task", {"name": name, "type": "bash",
                                                   "trigger": {"type": "manual"}, "command": command})
    if r.is_error:
        raise RuntimeError(f"add_task {name}: {r.content}")


async def scenario(server: ServerProc) -> None:
    # 1. a 20 s run as a task, polled to completion
    ext = Tasks(poll=True)
    http, c = client(server, ext)
    async with http, c:
        await add(c, "interop-task-20s", f"echo started; sleep {LONG_S}; echo finished-after-{LONG_S}s")
        t0 = time.monotonic()
        r = await c.call_tool("claudecron_run_task", {"taskId": "interop-task-20s"})
        took = time.monotonic() - t0
        run = (r.structured_content or {}).get("run") or {}
        check("run_task became a task (resultType task, status working)",
              bool(ext.seen) and ext.seen[0] == "working", f"statuses {ext.seen}")
        check(f"tasks/get polled working -> completed ({len(ext.seen)} polls, {took:.1f} s)",
              ext.seen[-1:] == ["completed"] and ext.seen.count("working") >= 3 and took >= LONG_S - 1,
              f"statuses {ext.seen} in {took:.1f} s")
        check("the completed task carries the tool result with the run's output",
              not r.is_error and run.get("status") == "success"
              and f"finished-after-{LONG_S}s" in (run.get("output") or ""), f"run={json.dumps(run)[:300]}")
        links = [x for x in r.content or [] if getattr(x, "type", "") == "resource_link"]
        check("the result links the run's log", bool(links) and str(links[0].uri) == f"claudecron://runs/{run.get('id')}",
              f"content types {[getattr(x, 'type', '?') for x in r.content or []]}")

    # 2. tasks/cancel ends the process group
    ext = Tasks(poll=False)
    http, c = client(server, ext)
    async with http, c:
        await add(c, "interop-task-cancel", "echo pid=$$; sleep 300 & wait")
        r = await c.call_tool("claudecron_run_task", {"taskId": "interop-task-cancel"})
        task_id = task_id_of(r)
        check("a second run_task is a task too", isinstance(task_id, str) and ext.seen == ["working"],
              f"content={r.content} seen={ext.seen}")
        pgid = None
        deadline = time.monotonic() + 30
        while pgid is None and time.monotonic() < deadline and task_id:
            g = await c.call_tool("claudecron_get_run", {"runId": int(task_id)})
            out = ((g.structured_content or {}).get("run") or {}).get("output") or ""
            pgid = next((int(line[4:]) for line in out.splitlines() if line.startswith("pid=")), None)
            if pgid is None:
                await asyncio.sleep(0.2)
        alive = group_members(pgid) if pgid else []
        check(f"the task's run is a live process group in /proc (pgid {pgid}: {len(alive)} processes)",
              len(alive) >= 2, f"members={alive}")
        if task_id:
            ack = await c.session.send_request(Cancel(params=Ids(task_id=task_id)), T.Result)
            check("tasks/cancel is acknowledged", ack is not None, f"ack={ack}")
            status = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                t = await c.session.send_request(Get(params=Ids(task_id=task_id)), Task)
                status = t.status
                if status == "cancelled":
                    break
                await asyncio.sleep(0.2)
            check("tasks/get then says cancelled", status == "cancelled", f"last status {status!r}")
        left = group_members(pgid) if pgid else [-1]
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            left = group_members(pgid) if pgid else [-1]
        check("tasks/cancel ended the whole process group (/proc)", not left, f"left={left}")

    # 3. a restart mid-task keeps the task answerable
    ext = Tasks(poll=False)
    http, c = client(server, ext)
    async with http, c:
        r = await c.call_tool("claudecron_run_task", {"taskId": "interop-task-20s"})
        task_id = task_id_of(r)
    server.stop()
    server.start()
    ext = Tasks(poll=False)
    http, c = client(server, ext)
    async with http, c:
        try:
            t = await c.session.send_request(Get(params=Ids(task_id=str(task_id))), Task)
            run = ((t.result or {}).get("structuredContent") or {}).get("run") or {}
            check("after a restart tasks/get still answers for the task (completed, run interrupted)",
                  t.task_id == task_id and t.status == "completed" and run.get("status") == "interrupted",
                  f"task={t.model_dump(by_alias=True, exclude_none=True)}")
        except BaseException as e:  # noqa: BLE001
            check("after a restart tasks/get still answers for the task", False, f"{type(e).__name__}: {e}")
        for name in ("interop-task-20s", "interop-task-cancel"):
            await c.call_tool("claudecron_delete_task", {"taskId": name})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the claudecron binary")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="claudecron-tasks-") as data:
        server = ServerProc(os.path.abspath(args.bin), data, free_port(), secrets.token_urlsafe(32))
        try:
            server.start()
            asyncio.run(asyncio.wait_for(scenario(server), timeout=240))
        except BaseException as e:  # noqa: BLE001
            while isinstance(e, BaseExceptionGroup) and e.exceptions:
                e = e.exceptions[0]
            check("scenario", False, f"{type(e).__name__}: {e}")
            log = os.path.join(data, "server.log")
            if os.path.exists(log):
                print("# server log (last 30 lines):\n# " + "\n# ".join(open(log).read().splitlines()[-30:]))
        finally:
            server.stop()
    sys.exit(TAP.totals())


if __name__ == "__main__":
    main()
