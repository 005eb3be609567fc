#!/usr/bin/env python3
"""The official Python MCP SDK (PyPI `mcp`, the interop venv) against claudecron behind nginx.

Run by scripts/nginx_test.sh:

    CLAUDECRON_NGINX_TOKEN=... python py_sdk_check.py --url https://127.0.0.1:PORT/cron/mcp --insecure

Over HTTPS with a self-signed certificate (`httpx2.AsyncClient(verify=False)` with --insecure, or
--cafile FILE): connect (initialize through the proxy, session header passed back), tools/list,
then claudecron_add_task / claudecron_run_task (wait_seconds) / claudecron_delete_task of a bash
task. Prints `ok - py-sdk ...` / `not ok - py-sdk ...: why`; exit 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import warnings
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

warnings.filterwarnings("ignore", message=".*logging capability is deprecated.*")

TASK_TOOLS = ["claudecron_add_task", "claudecron_run_task", "claudecron_delete_task", "claudecron_list_tasks",
              "claudecron_get_task", "claudecron_get_run", "claudecron_cancel_run"]
PREFIX = "py-sdk (through nginx)"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, cond: bool, details: str = "") -> bool:
        if cond:
            self.passed += 1
            print(f"ok - {PREFIX} {name}", flush=True)
        else:
            self.failed += 1
            details = " ".join(str(details or "condition false").split())[:600]
            print(f"not ok - {PREFIX} {name}: {details}", flush=True)
        return cond


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def short(obj: Any) -> str:
    s = json.dumps(obj, default=str)
    return s if len(s) <= 300 else s[:300] + "..."


async def scenario(url: str, verify: Any, token: str, ck: Checks) -> None:
    statuses: list[tuple[str, int, str]] = []  # (method, status, MCP-Session-Id seen)

    async def on_response(response: httpx2.Response) -> None:
        statuses.append((response.request.method, response.status_code, response.headers.get("mcp-session-id", "")))

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, verify=verify,
                              timeout=httpx2.Timeout(20.0, read=60.0), event_hooks={"response": [on_response]})
    async with http:
        try:
            cm = Client(streamable_http_client(url, http_client=http), mode="legacy")
            client = await cm.__aenter__()
        except BaseException as e:  # noqa: BLE001
            ck.check("connect (initialize over https)", False, describe(e))
            return
        try:
            first = statuses[0] if statuses else ("?", 0, "")
            ck.check("connect: initialize over https -> 200 with MCP-Session-Id",
                     first[1] == 200 and bool(first[2]), f"first response: {first}")
            ck.check("protocolVersion 2025-11-25", client.protocol_version == "2025-11-25",
                     f"negotiated {client.protocol_version!r}")

            tools = (await client.list_tools()).tools
            names = [t.name for t in tools]
            missing = [n for n in TASK_TOOLS if n not in names]
            ck.check(f"tools/list ({len(names)} tools)", not missing, f"missing {missing}; got {names}")

            name = f"nginx-sdk-{os.getpid()}-{int(time.time())}"
            marker = f"{name}-ran"
            res = await client.call_tool("claudecron_add_task", {
                "name": name, "type": "bash", "trigger": {"type": "manual"}, "command": f"echo {marker}"})
            task = (res.structured_content or {}).get("task") or {}
            ck.check("claudecron_add_task (bash, manual)", not res.is_error and task.get("name") == name,
                     f"isError={res.is_error} structuredContent={short(res.structured_content)}")

            t0 = time.monotonic()
            res = await client.call_tool("claudecron_run_task", {"taskId": name, "wait_seconds": 20})
            run = (res.structured_content or {}).get("run") or {}
            ck.check(f"claudecron_run_task wait_seconds=20 -> success with output ({time.monotonic() - t0:.2f} s)",
                     not res.is_error and run.get("status") == "success" and run.get("exit_code") == 0
                     and marker in (run.get("output") or ""), f"run={short(run)}")

            res = await client.call_tool("claudecron_delete_task", {"taskId": name})
            ck.check("claudecron_delete_task", not res.is_error, f"structuredContent={short(res.structured_content)}")
            res = await client.call_tool("claudecron_get_task", {"taskId": name})
            ck.check("the deleted task is gone (get_task isError)", bool(res.is_error),
                     f"structuredContent={short(res.structured_content)}")
        except BaseException as e:  # noqa: BLE001
            ck.check("scenario", False, describe(e))
        finally:
            try:
                await cm.__aexit__(None, None, None)
            except BaseException as e:  # noqa: BLE001
                ck.check("close", False, describe(e))
    bad = [s for s in statuses if s[1] >= 400]
    ck.check(f"no HTTP error through the proxy ({len(statuses)} responses)", not bad, f"errors: {bad}")


async def amain(args: argparse.Namespace) -> int:
    ck = Checks()
    token = os.environ.get("CLAUDECRON_NGINX_TOKEN", "")
    verify: Any = False if args.insecure else (ssl.create_default_context(cafile=args.cafile) if args.cafile else True)
    try:
        with anyio.fail_after(60):
            await scenario(args.url, verify, token, ck)
    except TimeoutError:
        ck.check("scenario", False, "did not finish within 60 s")
    return 0 if ck.failed == 0 and ck.passed > 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="MCP endpoint, e.g. https://127.0.0.1:8443/cron/mcp")
    ap.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    ap.add_argument("--cafile", help="verify the TLS certificate against this CA file")
    sys.exit(anyio.run(amain, ap.parse_args()))


if __name__ == "__main__":
    main()
