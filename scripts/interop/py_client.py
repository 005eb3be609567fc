#!/usr/bin/env python3
"""claudecron interop probe: drive the server with the official Python MCP SDK (PyPI `mcp` 2.x).

Run by scripts/interop.sh inside the cached venv:

    CLAUDECRON_INTEROP_TOKEN=... python py_client.py --url http://127.0.0.1:PORT/mcp --mode legacy
    CLAUDECRON_INTEROP_TOKEN=... python py_client.py --url http://127.0.0.1:PORT/mcp --mode auto
    CLAUDECRON_INTEROP_TOKEN=... python py_client.py --url http://127.0.0.1:PORT/mcp --mode 2026-07-28

legacy speaks 2025-11-25 (initialize, session, GET stream); auto probes server/discover and must
stay on 2026-07-28 (the server speaks it); 2026-07-28 adopts it without a probe. On 2026-07-28
there is no ping or logging/setLevel: log messages arrive on the request's own stream because the
client opts in with `log_level` (the `_meta` logLevel).

The bearer token is read from the environment (never from argv, so it does not show in `ps`) and
sent as `Authorization: Bearer TOKEN` on every HTTP request through an `httpx2.AsyncClient(headers=...)`
handed to `mcp.client.streamable_http.streamable_http_client(url, http_client=...)`.

Prints one TAP-ish line per check (`ok - py[MODE] name` / `not ok - py[MODE] name: details`);
exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# logging/setLevel and ping are deprecated in the 2026 revision; the legacy mode uses them.
warnings.filterwarnings("ignore", message=".*logging capability is deprecated.*")
warnings.filterwarnings("ignore", message=".*ping is removed.*")

# --------------------------------------------------------------------------------------------
# Result shapes the checks expect. The server is young: adjust names here, in one place.
# --------------------------------------------------------------------------------------------
LEGACY_PROTOCOL = "2025-11-25"
MODERN_PROTOCOL = "2026-07-28"
EXPECTED_TOOLS = [
    "claudecron_add_task",
    "claudecron_list_tasks",
    "claudecron_get_task",
    "claudecron_update_task",
    "claudecron_delete_task",
    "claudecron_toggle_task",
    "claudecron_get_history",
    "claudecron_get_run",
    "claudecron_preview_schedule",
    "claudecron_run_task",
    "claudecron_cancel_run",
    "claudecron_trigger_hook",
]
# add/get/update/toggle: structuredContent[TASK_KEY] is the task object. When the key is absent
# the structuredContent itself is taken as the task if it carries TASK_ID.
TASK_KEY = "task"
TASK_ID = "id"
TASK_NAME = "name"
TASK_ENABLED = "enabled"
LIST_KEY = "tasks"  # list_tasks -> {"tasks": [task row, ...]}
HISTORY_KEY = "runs"  # get_history -> {"runs": [...]}
PREVIEW_KEYS = ("fire_times", "next_runs")  # preview_schedule -> {"<one of these>": [...]}
ERROR_FIELD_WORD = "timezone"  # the isError message for a bad timezone must name the field

# The seed plan's three example calls (SPEC.md section 4), exactly as written.
SEED_TASKS = [
    {"name": "daily-backup", "type": "bash", "schedule": "0 2 * * *", "command": "/opt/scripts/backup.sh",
     "timezone": "Europe/Moscow"},
    {"name": "weekly-code-review", "type": "subagent", "schedule": "0 9 * * 1",
     "prompt": "Review all commits from last week in /project, summarize changes and potential issues",
     "timezone": "UTC"},
    {"name": "config-watcher", "type": "bash",
     "trigger": {"type": "file-watch", "path": "/etc/nginx/nginx.conf"},
     "command": "nginx -t && systemctl reload nginx"},
]
UPDATED_SCHEDULE = "30 3 * * *"
PREVIEW_ARGS = {"schedule": "0 9 * * 1-5", "timezone": "Europe/Moscow", "count": 3}
BAD_TASK = {"name": "interop-bad-tz", "type": "bash", "schedule": "0 2 * * *", "command": "true",
            "timezone": "Europe/Moskow"}
# run_task / cancel_run: a manual task that prints, sleeps and prints again; a long one to cancel.
RUN_TASK = {"name": "interop-run", "type": "bash", "trigger": {"type": "manual"},
            "command": "echo hello-from-run; sleep 2; echo done-after-sleep"}
LONG_TASK = {"name": "interop-long", "type": "bash", "trigger": {"type": "manual"}, "command": "sleep 300"}
HOOK_TASK = {"name": "interop-hook", "type": "bash",
             "trigger": {"type": "hook", "event": "PostToolUse", "matcher": "Write|Edit", "file_pattern": "*.py"},
             "command": "echo \"hook=$CLAUDECRON_HOOK_EVENT tool=$CLAUDECRON_TOOL_NAME file=$CLAUDECRON_FILE_PATH\""}
OVERALL_TIMEOUT_S = 90


class Checks:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def ok(self, name: str) -> None:
        self.passed += 1
        print(f"ok - {self.prefix} {name}", flush=True)

    def fail(self, name: str, details: str) -> None:
        self.failed += 1
        details = " ".join(str(details).split())
        if len(details) > 600:
            details = details[:600] + "..."
        print(f"not ok - {self.prefix} {name}: {details}", flush=True)

    def check(self, name: str, cond: bool, details: str = "") -> bool:
        if cond:
            self.ok(name)
        else:
            self.fail(name, details or "condition false")
        return cond


def leaf_errors(exc: BaseException) -> list[BaseException]:
    """Flatten (nested) exception groups into their leaf exceptions."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for e in exc.exceptions:
            out.extend(leaf_errors(e))
        return out
    return [exc]


def describe(exc: BaseException) -> str:
    parts = []
    for e in leaf_errors(exc):
        if isinstance(e, MCPError):
            parts.append(f"MCPError {e.code}: {e.message}")
        else:
            parts.append(f"{type(e).__name__}: {e}")
    return "; ".join(parts)


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") or "" for c in (result.content or []))


def task_of(sc: Any) -> dict[str, Any] | None:
    if not isinstance(sc, dict):
        return None
    t = sc.get(TASK_KEY)
    if isinstance(t, dict):
        return t
    if TASK_ID in sc:
        return sc
    return None


def short(obj: Any) -> str:
    s = json.dumps(obj, default=str)
    return s if len(s) <= 300 else s[:300] + "..."


async def run(url: str, mode: str, token: str | None, ck: Checks) -> None:
    sent: list[tuple[str, str, str]] = []  # (http method, MCP-Protocol-Version, body method)
    logs: list[Any] = []  # notifications/message params received (run finished / failed)

    async def on_log(params: Any) -> None:
        logs.append(params)

    async def on_request(request: httpx2.Request) -> None:
        body_method = ""
        if request.method == "POST":
            try:
                body_method = json.loads(request.content or b"{}").get("method", "") or ""
            except (ValueError, AttributeError):
                body_method = "?"
        sent.append((request.method, request.headers.get("mcp-protocol-version", ""), body_method))

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(20.0, read=60.0),
        event_hooks={"request": [on_request]},
    )

    async with http:
        transport = streamable_http_client(url, http_client=http)
        try:
            client_cm = Client(transport, mode=mode, logging_callback=on_log,
                               log_level=None if mode == "legacy" else "info")
            client = await client_cm.__aenter__()
        except BaseException as e:  # noqa: BLE001 - report and stop
            ck.fail("connect", describe(e))
            return
        ck.ok("connect")
        try:
            await scenario(client, mode, sent, ck)
            await run_scenario(client, mode, logs, ck)
        finally:
            try:
                await client_cm.__aexit__(None, None, None)
            except BaseException as e:  # noqa: BLE001
                ck.fail("close", describe(e))


async def call(client: Client, ck: Checks, label: str, tool: str, args: dict[str, Any]) -> Any:
    """Call a tool; returns the CallToolResult, or None (after recording a failure) on exceptions."""
    try:
        return await client.call_tool(tool, args)
    except BaseException as e:  # noqa: BLE001
        ck.fail(label, f"{tool} raised {describe(e)}")
        return None


def expect_ok(ck: Checks, label: str, res: Any) -> bool:
    if res is None:
        return False
    if res.is_error:
        ck.fail(label, f"isError: {text_of(res)}")
        return False
    if not isinstance(res.structured_content, dict):
        ck.fail(label, f"no structuredContent object (content: {text_of(res)[:200]})")
        return False
    if not any(getattr(c, "type", "") == "text" and getattr(c, "text", "") for c in res.content or []):
        ck.fail(label, "no readable text block next to structuredContent")
        return False
    return True


async def scenario(client: Client, mode: str, sent: list[tuple[str, str, str]], ck: Checks) -> None:
    # -- negotiation --------------------------------------------------------------------------
    expected = LEGACY_PROTOCOL if mode == "legacy" else MODERN_PROTOCOL
    ck.check("protocolVersion is " + expected, client.protocol_version == expected,
             f"negotiated {client.protocol_version!r}")
    if mode == "auto":
        posts = [s for s in sent if s[0] == "POST"]
        probed = bool(posts) and posts[0][1] == MODERN_PROTOCOL and posts[0][2] == "server/discover"
        stayed = not any(s[2] == "initialize" for s in posts)
        ck.check("auto mode probed server/discover (2026-07-28) and stayed on 2026-07-28 (no initialize)",
                 probed and stayed, f"requests sent: {posts[:4]}")
    if mode != MODERN_PROTOCOL:  # a pinned mode adopts a synthesized discover result: no serverInfo
        info = client.server_info
        ck.check("serverInfo present", info is not None and bool(info.name), f"serverInfo={info!r}")

    if mode == "legacy":
        try:
            t0 = time.monotonic()
            await client.send_ping()
            ck.ok(f"ping ({(time.monotonic() - t0) * 1000:.1f} ms)")
        except BaseException as e:  # noqa: BLE001
            ck.fail("ping", describe(e))

    # -- tools/list ---------------------------------------------------------------------------
    tools: list[Any] = []
    try:
        cursor = None
        for _ in range(20):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
    except BaseException as e:  # noqa: BLE001
        ck.fail("tools/list", describe(e))
    names = [t.name for t in tools]
    missing = [n for n in EXPECTED_TOOLS if n not in names]
    ck.check(f"tools/list has the {len(EXPECTED_TOOLS)} task tools", not missing, f"missing {missing}; got {names}")
    bad_shape = []
    for t in tools:
        schema = t.input_schema or {}
        why = []
        if not t.description:
            why.append("description")
        if not t.title:
            why.append("title")
        if schema.get("type") != "object":
            why.append("inputSchema.type")
        if not t.output_schema:
            why.append("outputSchema")
        if t.annotations is None:
            why.append("annotations")
        if why:
            bad_shape.append(f"{t.name} lacks {'/'.join(why)}")
    ck.check("every tool has title, description, object inputSchema, outputSchema, annotations",
             bool(tools) and not bad_shape, "; ".join(bad_shape) or "no tools")

    # -- clean up leftovers of an earlier, interrupted run (not a check) ----------------------
    for t in SEED_TASKS + [BAD_TASK]:
        try:
            await client.call_tool("claudecron_delete_task", {"taskId": t["name"]})
        except BaseException:  # noqa: BLE001,S110
            pass

    # -- add the three seed tasks -------------------------------------------------------------
    backup = SEED_TASKS[0]
    res = await call(client, ck, "add_task daily-backup", "claudecron_add_task", backup)
    task_id = None
    if expect_ok(ck, "add_task daily-backup", res):
        t = task_of(res.structured_content)
        if ck.check("add_task daily-backup returns the task with an id",
                    t is not None and bool(t.get(TASK_ID)) and t.get(TASK_NAME) == backup["name"],
                    f"structuredContent={short(res.structured_content)}"):
            task_id = str(t[TASK_ID])
    for seed in SEED_TASKS[1:]:
        res = await call(client, ck, f"add_task {seed['name']}", "claudecron_add_task", seed)
        if expect_ok(ck, f"add_task {seed['name']}", res):
            t = task_of(res.structured_content)
            ck.check(f"add_task {seed['name']} (seed example) accepted",
                     t is not None and t.get(TASK_NAME) == seed["name"],
                     f"structuredContent={short(res.structured_content)}")

    # -- list -----------------------------------------------------------------------------------
    res = await call(client, ck, "list_tasks", "claudecron_list_tasks", {})
    if expect_ok(ck, "list_tasks", res):
        rows = res.structured_content.get(LIST_KEY)
        listed = [r.get(TASK_NAME) for r in rows] if isinstance(rows, list) else None
        ck.check("list_tasks lists the three seed tasks",
                 listed is not None and all(s["name"] in listed for s in SEED_TASKS),
                 f"structuredContent={short(res.structured_content)}")

    # -- get by name and by id -------------------------------------------------------------------
    res = await call(client, ck, "get_task by name", "claudecron_get_task", {"taskId": backup["name"]})
    if expect_ok(ck, "get_task by name", res):
        t = task_of(res.structured_content)
        ck.check("get_task by name returns the task",
                 t is not None and t.get(TASK_NAME) == backup["name"]
                 and (task_id is None or str(t.get(TASK_ID)) == task_id),
                 f"structuredContent={short(res.structured_content)}")
    if task_id:
        res = await call(client, ck, "get_task by id", "claudecron_get_task", {"taskId": task_id})
        if expect_ok(ck, "get_task by id", res):
            t = task_of(res.structured_content)
            ck.check("get_task by id returns the task",
                     t is not None and str(t.get(TASK_ID)) == task_id and t.get(TASK_NAME) == backup["name"],
                     f"structuredContent={short(res.structured_content)}")
    else:
        ck.fail("get_task by id", "no task id from add_task")
    ref = task_id or backup["name"]

    # -- update ---------------------------------------------------------------------------------
    res = await call(client, ck, "update_task schedule", "claudecron_update_task",
                     {"taskId": ref, "schedule": UPDATED_SCHEDULE})
    if expect_ok(ck, "update_task schedule", res):
        ck.check("update_task returns the new schedule",
                 UPDATED_SCHEDULE in json.dumps(res.structured_content),
                 f"structuredContent={short(res.structured_content)}")

    # -- toggle -----------------------------------------------------------------------------------
    res = await call(client, ck, "toggle_task off", "claudecron_toggle_task", {"taskId": ref, "enabled": False})
    if expect_ok(ck, "toggle_task off", res):
        t = task_of(res.structured_content)
        ck.check("toggle_task returns enabled=false", t is not None and t.get(TASK_ENABLED) is False,
                 f"structuredContent={short(res.structured_content)}")
    res = await call(client, ck, "get_task after toggle", "claudecron_get_task", {"taskId": backup["name"]})
    if expect_ok(ck, "get_task after toggle", res):
        t = task_of(res.structured_content)
        ck.check("get_task shows enabled=false and the updated schedule",
                 t is not None and t.get(TASK_ENABLED) is False
                 and UPDATED_SCHEDULE in json.dumps(res.structured_content),
                 f"structuredContent={short(res.structured_content)}")

    # -- history ------------------------------------------------------------------------------------
    res = await call(client, ck, "get_history", "claudecron_get_history", {"taskId": ref})
    if expect_ok(ck, "get_history", res):
        ck.check("get_history returns a run list", isinstance(res.structured_content.get(HISTORY_KEY), list),
                 f"structuredContent={short(res.structured_content)}")

    # -- preview ------------------------------------------------------------------------------------
    res = await call(client, ck, "preview_schedule", "claudecron_preview_schedule", PREVIEW_ARGS)
    if expect_ok(ck, "preview_schedule", res):
        ft = next((res.structured_content[k] for k in PREVIEW_KEYS if k in res.structured_content), None)
        ck.check("preview_schedule returns 3 fire times", isinstance(ft, list) and len(ft) == PREVIEW_ARGS["count"],
                 f"structuredContent={short(res.structured_content)}")
        if isinstance(ft, list) and ft:
            # 0 9 * * 1-5 in Europe/Moscow (UTC+3, no DST): every local fire time is 09:00+03:00
            ck.check("preview_schedule fire times are 09:00 in Europe/Moscow (+03:00)",
                     all("T09:00:00+03:00" in json.dumps(x) for x in ft), f"fire times: {short(ft)}")

    # -- bad arguments --------------------------------------------------------------------------------
    res = await call(client, ck, "add_task bad timezone", "claudecron_add_task", BAD_TASK)
    if res is not None:
        msg = text_of(res)
        ck.check("add_task with timezone Europe/Moskow is isError naming the field",
                 bool(res.is_error) and ERROR_FIELD_WORD in msg.lower(),
                 f"isError={res.is_error} text={msg[:300]!r}")
    res = await call(client, ck, "get_task after bad add", "claudecron_get_task", {"taskId": BAD_TASK["name"]})
    if res is not None:
        ck.check("rejected add_task created nothing", bool(res.is_error),
                 f"get_task {BAD_TASK['name']} found: {short(res.structured_content)}")
    res = await call(client, ck, "get_run unknown id", "claudecron_get_run", {"runId": "no-such-run-000"})
    if res is not None:
        ck.check("get_run with an unknown runId is isError", bool(res.is_error),
                 f"structuredContent={short(res.structured_content)}")
    try:
        res = await client.call_tool("claudecron_no_such_tool", {})
        ck.fail("unknown tool is JSON-RPC error -32602", f"got a result: isError={res.is_error} {text_of(res)[:200]!r}")
    except MCPError as e:
        ck.check("unknown tool is JSON-RPC error -32602", e.code == -32602, f"got {e.code}: {e.message}")
    except BaseException as e:  # noqa: BLE001
        ck.fail("unknown tool is JSON-RPC error -32602", describe(e))

    # -- delete -------------------------------------------------------------------------------------------
    res = await call(client, ck, "delete_task daily-backup", "claudecron_delete_task", {"taskId": ref})
    if expect_ok(ck, "delete_task daily-backup", res):
        ck.ok("delete_task daily-backup")
    res = await call(client, ck, "get_task after delete", "claudecron_get_task", {"taskId": backup["name"]})
    if res is not None:
        ck.check("deleted task is gone (get_task isError)", bool(res.is_error),
                 f"structuredContent={short(res.structured_content)}")
    for seed in SEED_TASKS[1:]:
        res = await call(client, ck, f"delete_task {seed['name']}", "claudecron_delete_task", {"taskId": seed["name"]})
        if expect_ok(ck, f"delete_task {seed['name']}", res):
            ck.ok(f"delete_task {seed['name']}")
    res = await call(client, ck, "list_tasks after delete", "claudecron_list_tasks", {})
    if expect_ok(ck, "list_tasks after delete", res):
        rows = res.structured_content.get(LIST_KEY)
        left = [r.get(TASK_NAME) for r in rows] if isinstance(rows, list) else rows
        ck.check("list_tasks is empty of seed tasks after delete",
                 isinstance(left, list) and not any(s["name"] in left for s in SEED_TASKS), f"left: {left}")


async def run_scenario(client: Client, mode: str, logs: list[Any], ck: Checks) -> None:
    """run_task with wait_seconds and a progress token, run notifications, the run's log as a
    resource, cancel_run."""
    for t in (RUN_TASK, LONG_TASK, HOOK_TASK):
        try:
            await client.call_tool("claudecron_delete_task", {"taskId": t["name"]})
        except BaseException:  # noqa: BLE001,S110
            pass
    if mode == "legacy":
        try:
            await client.set_logging_level("info")
            ck.ok("logging/setLevel info")
        except BaseException as e:  # noqa: BLE001
            ck.fail("logging/setLevel info", describe(e))
    for t in (RUN_TASK, LONG_TASK):
        res = await call(client, ck, f"add_task {t['name']}", "claudecron_add_task", t)
        expect_ok(ck, f"add_task {t['name']}", res)

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    t0 = time.monotonic()
    try:
        res = await client.call_tool("claudecron_run_task", {"taskId": RUN_TASK["name"], "wait_seconds": 30},
                                     progress_callback=on_progress)
    except BaseException as e:  # noqa: BLE001
        ck.fail("run_task with wait_seconds", describe(e))
        res = None
    took = time.monotonic() - t0
    run_id = None
    if expect_ok(ck, "run_task with wait_seconds", res):
        run = res.structured_content.get("run") or {}
        run_id = run.get("id")
        out = run.get("output") or ""
        ck.check(f"run_task waited for the finished run ({took:.1f} s)",
                 run.get("status") == "success" and run.get("exit_code") == 0
                 and "hello-from-run" in out and "done-after-sleep" in out,
                 f"run={short(run)}")
    values = [p[0] for p in progress]
    ck.check(f"progress notifications arrived while waiting ({len(progress)})",
             len(values) >= 1 and all(b > a for a, b in zip(values, values[1:])),
             f"progress={progress}")
    # The run's end is announced on the GET stream to a session whose level admits it (legacy), on
    # the request's own stream to a request whose _meta logLevel admits it (2026-07-28).
    with anyio.move_on_after(5):
        while not any(isinstance(getattr(m, "data", None), dict) and m.data.get("run_id") == run_id for m in logs):
            await anyio.sleep(0.05)
    ck.check("notifications/message announced the finished run",
             any(isinstance(getattr(m, "data", None), dict) and m.data.get("run_id") == run_id
                 and m.data.get("status") == "success" for m in logs),
             f"messages={[getattr(m, 'data', m) for m in logs][:5]}")

    if run_id is not None:
        await resource_checks(client, res, run_id, ck)

    res = await call(client, ck, "run_task without waiting", "claudecron_run_task", {"taskId": LONG_TASK["name"]})
    long_id = None
    if expect_ok(ck, "run_task without waiting", res):
        run = res.structured_content.get("run") or {}
        long_id = run.get("id")
        ck.check("run_task returns the run id at once", isinstance(long_id, int)
                 and run.get("status") in ("queued", "running"), f"run={short(run)}")
    if long_id is not None:
        res = await call(client, ck, "cancel_run", "claudecron_cancel_run", {"runId": long_id})
        if expect_ok(ck, "cancel_run", res):
            run = res.structured_content.get("run") or {}
            ck.check("cancel_run ends the long run", run.get("status") == "cancelled", f"run={short(run)}")
    # trigger_hook: the way an mcp_tool hook fires hook tasks over this session.
    res = await call(client, ck, "add_task interop-hook", "claudecron_add_task", HOOK_TASK)
    expect_ok(ck, "add_task interop-hook", res)
    res = await call(client, ck, "trigger_hook", "claudecron_trigger_hook",
                     {"event": "PostToolUse", "tool_name": "Edit", "file_path": "/srv/app/main.py", "session_id": "py"})
    if expect_ok(ck, "trigger_hook", res):
        matched = res.structured_content.get("matched") or []
        hook_run = matched[0].get("run_id") if len(matched) == 1 else None
        ck.check("trigger_hook matched the hook task and started a run",
                 len(matched) == 1 and matched[0].get("task_name") == HOOK_TASK["name"] and isinstance(hook_run, int),
                 f"structuredContent={short(res.structured_content)}")
        if isinstance(hook_run, int):
            out = ""
            with anyio.move_on_after(10):
                while True:
                    r = await client.call_tool("claudecron_get_run", {"runId": hook_run})
                    run = (r.structured_content or {}).get("run") or {}
                    if run.get("status") not in ("queued", "running"):
                        out = run.get("output") or ""
                        break
                    await anyio.sleep(0.1)
            ck.check("the hook run saw the event in its environment",
                     "hook=PostToolUse tool=Edit file=/srv/app/main.py" in out, f"output={out!r}")
    res = await call(client, ck, "trigger_hook without a match", "claudecron_trigger_hook",
                     {"event": "PostToolUse", "tool_name": "Bash"})
    if expect_ok(ck, "trigger_hook without a match", res):
        ck.check("trigger_hook with no matching task matches nothing", res.structured_content.get("count") == 0,
                 f"structuredContent={short(res.structured_content)}")
    for t in (RUN_TASK, LONG_TASK, HOOK_TASK):
        res = await call(client, ck, f"delete_task {t['name']}", "claudecron_delete_task", {"taskId": t["name"]})
        expect_ok(ck, f"delete_task {t['name']}", res)


async def resource_checks(client: Client, res: Any, run_id: int, ck: Checks) -> None:
    """The run_task result links the run's log; resources/read returns its output."""
    links = [c for c in res.content or [] if getattr(c, "type", "") == "resource_link"]
    uri = str(links[0].uri) if links else ""
    ck.check("run_task result carries a resource_link to the run", uri == f"claudecron://runs/{run_id}",
             f"content types: {[getattr(c, 'type', '?') for c in res.content or []]} uri={uri!r}")
    try:
        read = await client.read_resource(uri or f"claudecron://runs/{run_id}")
        text = "".join(getattr(c, "text", "") or "" for c in read.contents)
        ck.check("resources/read of the run returns its output",
                 "hello-from-run" in text and "status: success" in text, f"text={text[:300]!r}")
    except BaseException as e:  # noqa: BLE001
        ck.fail("resources/read of the run", describe(e))
    try:
        listed = await client.list_resources()
        uris = [str(r.uri) for r in listed.resources]
        ck.check("resources/list offers the task's latest run",
                 any(u.endswith("/latest-run") for u in uris), f"uris={uris[:5]}")
        templates = await client.list_resource_templates()
        names = [t.uri_template for t in templates.resource_templates]
        ck.check("resources/templates/list has the run template",
                 "claudecron://runs/{runId}" in names, f"templates={names}")
    except BaseException as e:  # noqa: BLE001
        ck.fail("resources/list and templates", describe(e))


async def amain(args: argparse.Namespace) -> int:
    ck = Checks(f"py[{args.mode}]")
    token = os.environ.get("CLAUDECRON_INTEROP_TOKEN") or None
    try:
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            await run(args.url, args.mode, token, ck)
    except TimeoutError:
        ck.fail("scenario", f"did not finish within {OVERALL_TIMEOUT_S} s")
    except BaseException as e:  # noqa: BLE001
        ck.fail("scenario", describe(e))
        if os.environ.get("INTEROP_DEBUG"):
            traceback.print_exc()
    print(f"# py[{args.mode}] totals: passed={ck.passed} failed={ck.failed}", flush=True)
    return 0 if ck.failed == 0 and ck.passed > 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="MCP endpoint, e.g. http://127.0.0.1:3010/mcp")
    ap.add_argument("--mode", choices=["legacy", "auto", "2026-07-28"], default="legacy")
    args = ap.parse_args()
    sys.exit(anyio.run(amain, args))


if __name__ == "__main__":
    main()
