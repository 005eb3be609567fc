#!/usr/bin/env python3
"""claudecron interop: subagent tasks end to end through the official Python MCP SDK.

Run by scripts/interop.sh (part `subagent`) against a claudecron server started with
CLAUDECRON_CLAUDE_PATH = the real Claude Code CLI (npm @anthropic-ai/claude-code, pinned),
CLAUDECRON_ANTHROPIC_BASE_URL = scripts/interop/mock_anthropic.py, CLAUDECRON_ANTHROPIC_API_KEY =
dummy, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 and CLAUDE_CODE_MAX_RETRIES=0 in the server's
environment (inherited by runs), and a throwaway HOME:

    CLAUDECRON_INTEROP_TOKEN=... python subagent_check.py --url http://127.0.0.1:PORT/mcp \\
        --mock-log /tmp/.../requests.jsonl --claude-version 2.1.197

Checks (one `ok - subagent ...` / `not ok - subagent ...: details` line each):
  - the seed's weekly-code-review task (SPEC §4), created exactly as written, run once with
    claudecron_run_task + wait_seconds: success, the mock's text as output, runner claude-code,
    cost and tokens recorded, visible in get_history; Claude Code really called the mock with the
    prompt;
  - a real tool round trip (`[[bash: echo ...]]`, allowed_tools Bash): success with the tool output;
  - the prompt `--version` (it reads like an option): success, and the mock got it as the prompt;
  - max_turns 1 with a tool_use: failed, error_max_turns reason;
  - an API error (mock forced 401): failed, exactly one request (CLAUDE_CODE_MAX_RETRIES reached
    the child);
  - runner api against the same mock: success with tokens; and a forced 401: failed with the API's
    message;
  - honest endings with the real CLI (issue 13): a tool call refused in permission_mode dontAsk,
    an empty answer, a `CLAUDECRON_FAILED: reason` answer, max_budget_usd reached, a 429: each
    failed with its reason; a precheck that exits 1: skipped, and the mock got no request; a
    precheck's output reaches the mock in the prompt;
  - runner api: a 429 with retry-after 5 defers the run (queued, reason deferred: ...), then it
    succeeds with exactly one more request; a daily_budget_usd worth two runs: five fires, two
    runs, three budget skips, exactly two requests (server started with CLAUDECRON_API_PRICES).
Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from py_client import Checks, describe, short, text_of

MOCK_TEXT = "Hello from the mock Anthropic API."
# SPEC.md §4, exactly as written.
WEEKLY = {"name": "weekly-code-review", "type": "subagent", "schedule": "0 9 * * 1",
          "prompt": "Review all commits from last week in /project, summarize changes and potential issues",
          "timezone": "UTC"}
TOOL_TASK = {"name": "interop-cc-bash", "type": "subagent", "trigger": {"type": "manual"},
             "prompt": "Run this: [[bash: echo hello-from-bash]]", "allowed_tools": ["Bash"], "max_turns": 4}
# A prompt that reads like an option: Claude Code must get it as the prompt (claudecron gives
# it on stdin), not print its version.
DASH_TASK = {"name": "interop-cc-dash-prompt", "type": "subagent", "trigger": {"type": "manual"},
             "prompt": "--version"}
MAX_TURNS_TASK = {"name": "interop-cc-max-turns", "type": "subagent", "trigger": {"type": "manual"},
                  "prompt": "[[bash: echo hi]]", "max_turns": 1, "allowed_tools": ["Bash"]}
API_ERROR_TASK = {"name": "interop-cc-401", "type": "subagent", "trigger": {"type": "manual"},
                  "prompt": "[[status: 401]] this request is refused by the mock", "timeout_seconds": 60}
API_RUNNER_TASK = {"name": "interop-api-runner", "type": "subagent", "trigger": {"type": "manual"},
                   "runner": "api", "prompt": "Say hello from the api runner.", "max_tokens": 256,
                   "system": "Be brief."}
API_RUNNER_401 = {"name": "interop-api-401", "type": "subagent", "trigger": {"type": "manual"},
                  "runner": "api", "prompt": "[[status: 401]] refused"}
CC_ENDINGS = [
    # (task fields, status, reason part, label)
    ({"prompt": "[[bash: touch /tmp/claudecron-interop-denied]]", "permission_mode": "dontAsk"},
     "failed", "refused 1 tool call(s) it wanted: Bash (touch /tmp/claudecron-interop-denied)",
     "a tool call refused (permission_mode dontAsk)"),
    ({"prompt": "[[say: ]] an empty answer"}, "failed", "the run ended with an empty answer", "an empty answer"),
    ({"prompt": "[[say: CLAUDECRON_FAILED: the mock found nothing to do]]"}, "failed",
     "the run declared failure: the mock found nothing to do", "a CLAUDECRON_FAILED answer"),
    ({"prompt": "[[bash: echo over-budget]]", "allowed_tools": ["Bash"], "max_budget_usd": 0.0001},
     "failed", "spending cap (max_budget_usd): Reached maximum budget ($0.0001)", "max_budget_usd reached"),
    ({"prompt": "[[status: 429]] cc-limited"}, "failed", "usage limit reached (API 429)", "a 429"),
    ({"prompt": "precheck-skip-marker", "precheck": "echo nothing-to-do; exit 1"}, "skipped",
     "skipped: precheck: it exited with code 1", "a precheck that exits 1"),
]
WAIT_S = 90
OVERALL_TIMEOUT_S = 240
USAGE_FIELDS = ("runner", "model", "cost_usd", "input_tokens", "output_tokens", "num_turns", "session_id")


def mock_requests(path: str) -> list[dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def last_user_text(request: dict[str, Any]) -> str | None:
    """The last text block of the last message of a Messages API request."""
    messages = (request.get("body") or {}).get("messages") or []
    if not messages:
        return None
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    texts = [c.get("text") for c in content or [] if isinstance(c, dict) and c.get("type") == "text"]
    return texts[-1] if texts else None


def posts_containing(path: str, needle: str) -> list[dict[str, Any]]:
    return [r for r in mock_requests(path)
            if r.get("method") == "POST" and needle in json.dumps(r.get("body"))]


class Runner:
    def __init__(self, client: Client, ck: Checks) -> None:
        self.client = client
        self.ck = ck

    async def tool(self, label: str, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        try:
            res = await self.client.call_tool(name, args)
        except BaseException as e:  # noqa: BLE001
            self.ck.fail(label, f"{name} raised {describe(e)}")
            return None
        if res.is_error or not isinstance(res.structured_content, dict):
            self.ck.fail(label, f"{name}: isError={res.is_error}: {text_of(res)[:400]}")
            return None
        return res.structured_content

    async def add(self, task: dict[str, Any]) -> dict[str, Any] | None:
        try:
            await self.client.call_tool("claudecron_delete_task", {"taskId": task["name"]})
        except BaseException:  # noqa: BLE001,S110 - absent is fine
            pass
        sc = await self.tool(f"add_task {task['name']}", "claudecron_add_task", task)
        return sc.get("task") if sc else None

    async def run(self, name: str) -> tuple[dict[str, Any] | None, float]:
        t0 = time.monotonic()
        sc = await self.tool(f"run_task {name}", "claudecron_run_task", {"taskId": name, "wait_seconds": WAIT_S})
        took = time.monotonic() - t0
        run = sc.get("run") if sc else None
        if run is not None and run.get("status") in ("queued", "running"):
            self.ck.fail(f"run_task {name}", f"still {run.get('status')} after {WAIT_S} s")
            return None, took
        return run, took


async def scenario(r: Runner, ck: Checks, mock_log: str, claude_version: str) -> None:
    # -- the seed's weekly-code-review, exactly as written, run once through claude-code ----------
    task = await r.add(WEEKLY)
    if task is not None:
        ck.check("add_task weekly-code-review (SPEC §4, as written): effective_runner claude-code, no warning",
                 task.get("effective_runner") == "claude-code" and "warning" not in task, short(task))
    run, took = await r.run(WEEKLY["name"])
    if run is not None:
        ck.check(f"weekly-code-review run_task wait_seconds: success in {took:.1f} s",
                 run.get("status") == "success", short(run))
        ck.check("weekly-code-review: output is the mock's text", run.get("output") == MOCK_TEXT,
                 f"output={run.get('output')!r} error={run.get('error')!r}")
        ck.check("weekly-code-review: runner claude-code, cost and tokens recorded",
                 run.get("runner") == "claude-code" and (run.get("cost_usd") or 0) > 0
                 and run.get("input_tokens") == 100 and run.get("output_tokens") == 10
                 and run.get("num_turns") == 1 and bool(run.get("session_id")) and bool(run.get("model")),
                 short({k: run.get(k) for k in USAGE_FIELDS}))
        hist = await r.tool("get_history weekly-code-review", "claudecron_get_history",
                            {"taskId": WEEKLY["name"], "limit": 5})
        if hist is not None:
            row = next((x for x in hist.get("runs", []) if x.get("id") == run.get("id")), None)
            ck.check("get_history shows runner, model, tokens, cost, turns, session id",
                     row is not None and all(row.get(k) == run.get(k) for k in USAGE_FIELDS),
                     f"row={short(row)}")
        seen = posts_containing(mock_log, "Review all commits from last week in /project")
        ck.check("Claude Code sent the prompt to the mock Messages API (stream, x-api-key, claude-cli agent)",
                 bool(seen) and seen[0].get("body", {}).get("stream") is True
                 and seen[0].get("headers", {}).get("x-api-key") == "***"
                 and f"claude-cli/{claude_version}" in seen[0].get("headers", {}).get("user-agent", ""),
                 f"{len(seen)} matching requests; first: {short(seen[0]) if seen else None}")

    # -- a real tool round trip ---------------------------------------------------------------
    if await r.add(TOOL_TASK) is not None:
        run, took = await r.run(TOOL_TASK["name"])
        if run is not None:
            ck.check(f"claude-code with a Bash tool_use (allowed_tools Bash): success in {took:.1f} s, tool output",
                     run.get("status") == "success"
                     # Newer CLIs (2.1.332) append a <system-reminder> to the tool result the mock echoes.
                     and (run.get("output") or "").startswith("MOCK_DONE after tool: hello-from-bash")
                     and run.get("num_turns") == 2,
                     short(run))

    # -- a prompt that starts with a dash ------------------------------------------------------
    if await r.add(DASH_TASK) is not None:
        run, took = await r.run(DASH_TASK["name"])
        if run is not None:
            ck.check(f"claude-code with the prompt \"--version\": success with the mock's text ({took:.1f} s)",
                     run.get("status") == "success" and run.get("output") == MOCK_TEXT, short(run))
            seen = [x for x in mock_requests(mock_log)
                    if x.get("method") == "POST" and last_user_text(x) == "--version"]
            ck.check("Claude Code sent \"--version\" to the mock as the user's prompt", bool(seen),
                     f"{len(mock_requests(mock_log))} requests logged, none with that prompt")

    # -- error_max_turns ----------------------------------------------------------------------
    if await r.add(MAX_TURNS_TASK) is not None:
        run, took = await r.run(MAX_TURNS_TASK["name"])
        if run is not None:
            err = run.get("error") or ""
            ck.check(f"claude-code max_turns 1 + tool_use: failed with the error_max_turns reason ({took:.1f} s)",
                     run.get("status") == "failed" and "Reached maximum number of turns (1)" in err,
                     short(run))

    # -- an API error -------------------------------------------------------------------------
    if await r.add(API_ERROR_TASK) is not None:
        run, took = await r.run(API_ERROR_TASK["name"])
        if run is not None:
            err = run.get("error") or ""
            ck.check(f"claude-code against a forced 401: failed naming the API error ({took:.1f} s)",
                     run.get("status") == "failed" and "401" in err, short(run))
            n = len(posts_containing(mock_log, "[[status: 401]] this request"))
            ck.check("CLAUDE_CODE_MAX_RETRIES=0 reached the child: one request, no retries", n == 1,
                     f"{n} requests carried the prompt")

    # -- the api runner against the same mock -------------------------------------------------
    if await r.add(API_RUNNER_TASK) is not None:
        run, took = await r.run(API_RUNNER_TASK["name"])
        if run is not None:
            ck.check(f"runner api: success with the mock's text and tokens ({took:.1f} s)",
                     run.get("status") == "success" and run.get("output") == MOCK_TEXT
                     and run.get("runner") == "api" and run.get("input_tokens") == 100
                     and run.get("output_tokens") == 10, short(run))
            seen = posts_containing(mock_log, "Say hello from the api runner.")
            body = seen[0].get("body", {}) if seen else {}
            ck.check("runner api request: max_tokens, system, the prompt as the user message, no stream",
                     body.get("max_tokens") == 256 and body.get("system") == "Be brief."
                     and body.get("messages") == [{"role": "user", "content": API_RUNNER_TASK["prompt"]}]
                     and not body.get("stream")
                     and seen[0].get("headers", {}).get("anthropic-version") == "2023-06-01",
                     short(seen[0]) if seen else "no request seen")
    if await r.add(API_RUNNER_401) is not None:
        run, _ = await r.run(API_RUNNER_401["name"])
        if run is not None:
            err = run.get("error") or ""
            ck.check("runner api against a forced 401: failed with the API's message",
                     run.get("status") == "failed" and "401" in err and "mock forced error" in err, short(run))


async def unattended(r: Runner, ck: Checks, mock_log: str) -> None:
    """Issue 13 against the real CLI and the api runner: honest endings, precheck, deferral, caps."""
    for i, (fields, status, reason, label) in enumerate(CC_ENDINGS):
        name = f"interop-cc-ending-{i}"
        if await r.add({"name": name, "type": "subagent", "trigger": {"type": "manual"},
                        "timeout_seconds": 60, **fields}) is None:
            continue
        run, took = await r.run(name)
        if run is not None:
            ck.check(f"claude-code {label}: {status} with the reason ({took:.1f} s)",
                     run.get("status") == status and reason in (run.get("error") or ""), short(run))
            if "permission_mode" in fields:
                denials = (run.get("claude_code") or {}).get("permission_denials") or []
                ck.check("the run keeps Claude Code's permission_denials (tool and input)",
                         [d.get("tool_name") for d in denials] == ["Bash"], short(run))
    n = len(posts_containing(mock_log, "precheck-skip-marker"))
    ck.check("a skipped precheck made no request to the mock", n == 0, f"{n} requests carried the prompt")

    ctx = {"name": "interop-cc-precheck-context", "type": "subagent", "trigger": {"type": "manual"},
           "prompt": "precheck-context-marker", "precheck": "echo PRECHECK-OUTPUT-4242"}
    if await r.add(ctx) is not None:
        run, _ = await r.run(ctx["name"])
        if run is not None:
            seen = posts_containing(mock_log, "PRECHECK-OUTPUT-4242")
            ck.check("a precheck's output reaches Claude Code's prompt at the mock",
                     run.get("status") == "success" and bool(seen), f"{short(run)}; {len(seen)} requests")

    defer = {"name": "interop-api-deferred", "type": "subagent", "trigger": {"type": "manual"},
             "runner": "api", "prompt": "[[limit-once: interop-defer retry-after 5]] then succeed"}
    if await r.add(defer) is not None:
        sc = await r.tool("run_task interop-api-deferred", "claudecron_run_task", {"taskId": defer["name"]})
        run_id = ((sc or {}).get("run") or {}).get("id")
        deferred = final = None
        t0 = time.monotonic()
        while run_id is not None and time.monotonic() - t0 < 60:
            got = await r.tool("get_run deferred", "claudecron_get_run", {"runId": run_id})
            run = (got or {}).get("run") or {}
            if run.get("status") == "queued" and (run.get("error") or "").startswith("deferred: "):
                deferred = deferred or run
            if run.get("status") not in ("queued", "running"):
                final = run
                break
            await anyio.sleep(0.2)
        ck.check("runner api 429 retry-after 5: the run is deferred (queued, reason deferred: usage limit)",
                 deferred is not None and "usage limit reached (API 429)" in (deferred.get("error") or ""),
                 short(deferred or {}))
        n = len(posts_containing(mock_log, "interop-defer"))
        ck.check(f"then it succeeds with one more request ({time.monotonic() - t0:.1f} s)",
                 final is not None and final.get("status") == "success" and n == 2,
                 f"{short(final or {})}; {n} requests")

    capped = {"name": "interop-api-capped", "type": "subagent", "trigger": {"type": "manual"},
              "runner": "api", "prompt": "daily-cap-marker", "daily_budget_usd": 0.3,
              # queue: the next run_task may come before the engine saw the last run end.
              "overlap": "queue"}
    if await r.add(capped) is not None:
        runs = [(await r.run(capped["name"]))[0] or {} for _ in range(5)]
        statuses = [x.get("status") for x in runs]
        skips = [x for x in runs if x.get("status") == "skipped" and "skipped: budget:" in (x.get("error") or "")]
        n = len(posts_containing(mock_log, "daily-cap-marker"))
        ck.check("daily_budget_usd worth two runs: five fires, two runs, three budget skips, two requests",
                 statuses.count("success") == 2 and len(skips) == 3 and n == 2, f"{statuses}; {n} requests")
        sc = await r.tool("get_task interop-api-capped", "claudecron_get_task", {"taskId": capped["name"]})
        spend = ((sc or {}).get("task") or {}).get("spend") or {}
        ck.check("get_task shows the spend today and this month",
                 abs((spend.get("today_usd") or 0) - 0.4) < 1e-9 and abs((spend.get("month_usd") or 0) - 0.4) < 1e-9,
                 short(spend))


async def amain(args: argparse.Namespace) -> int:
    ck = Checks("subagent")
    token = os.environ.get("CLAUDECRON_INTEROP_TOKEN") or None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20.0, read=WAIT_S + 30)) as http:
                async with Client(streamable_http_client(args.url, http_client=http), mode="legacy") as client:
                    ck.ok("connect (python mcp SDK)")
                    await scenario(Runner(client, ck), ck, args.mock_log, args.claude_version)
                    await unattended(Runner(client, ck), ck, args.mock_log)
    except TimeoutError:
        ck.fail("scenario", f"did not finish within {OVERALL_TIMEOUT_S} s")
    except BaseException as e:  # noqa: BLE001
        ck.fail("scenario", describe(e))
    print(f"# subagent totals: passed={ck.passed} failed={ck.failed}", flush=True)
    return 0 if ck.failed == 0 and ck.passed > 0 else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--mock-log", required=True, help="the mock's request log (JSON lines)")
    ap.add_argument("--claude-version", required=True, help="the pinned Claude Code version")
    args = ap.parse_args()
    sys.exit(anyio.run(amain, args))


if __name__ == "__main__":
    main()
