#!/usr/bin/env python3
"""A mock Anthropic Messages API on 127.0.0.1, Python stdlib only (reference/claude-code.md §3.6).

Used by scripts/interop.sh so the real Claude Code CLI (`claude -p`) and claudecron's `api` runner
can run fully offline:

    python3 mock_anthropic.py --port 8780 [--log requests.jsonl] [--force-status 401]

What it answers:
  HEAD / (and any other HEAD)          404 with no body (Claude Code's connectivity probe; 404 is fine)
  POST /v1/messages[?beta=true]        a message: as an SSE stream when the body has "stream": true
                                       (message_start, ping, content_block_start/delta/stop per block,
                                       message_delta, message_stop), else the message object as JSON
  POST /v1/messages/count_tokens       {"input_tokens": N}
  anything else                        404 {"type":"error","error":{"type":"not_found_error",...}}

Choosing the reply: role "system" messages are skipped; when the last user message holds a
tool_result the answer is `MOCK_DONE after tool: <first 200 chars of the result>`; else when the last
user text holds a directive whose tool is offered in "tools", a short text plus a tool_use block
(stop_reason "tool_use"); else the fixed text `Hello from the mock Anthropic API.`.
Directives in the user text:
  [[bash: CMD]]                  Bash tool_use {"command": CMD, "description": "mock"}
  [[write: /abs/path|CONTENT]]   Write tool_use {"file_path", "content"}
  [[tool: NAME {json}]]          any offered tool with that input
  [[status: N]]                  answer this request with HTTP status N and an API error body
                                 (401 authentication_error, 429 rate_limit_error, 529 overloaded_error,
                                 else api_error / invalid_request_error); no tools needed
  [[sleep: S]]                   wait S seconds (float) before answering
  [[say: TEXT]]                  answer exactly TEXT (may be empty) in the main conversation (a
                                 request with tools) or a tool-less api-runner request; for the
                                 endings a run must report honestly (empty, CLAUDECRON_FAILED: ...)
  [[limit-once: KEY retry-after S]]  the first request carrying KEY is answered 429
                                 rate_limit_error with `retry-after: S`; later ones normally
--force-status N does the same as [[status: N]] for every POST.

Usage is always input_tokens 100, output_tokens 10 (Claude Code reports total_cost_usd 0.00075 for
that with its default model). Every request is logged as one JSON line (method, path, headers with
x-api-key / authorization masked, body) to --log, when given. Prints `listening on PORT` on stdout
once it accepts connections.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FIXED_TEXT = "Hello from the mock Anthropic API."
USAGE_IN = 100
USAGE_OUT = 10
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_ids = itertools.count(1)
_log_lock = threading.Lock()
_limited: set[str] = set()


def next_id(prefix: str) -> str:
    return f"{prefix}_mock{next(_ids):06d}"


def user_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def tool_result_text(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if not isinstance(content, list):
        return None
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, list):
                return "\n".join(b.get("text", "") for b in inner if isinstance(b, dict))
            return str(inner if inner is not None else "")
    return None


def last_user(body: dict[str, Any]) -> dict[str, Any] | None:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") != "system"]
    for m in reversed(messages):
        if m.get("role") == "user":
            return m
    return None


def directive(text: str, name: str) -> str | None:
    m = re.search(r"\[\[" + name + r":\s*(.*?)\]\]", text, re.S)
    return m.group(1).strip() if m else None


def tool_use_for(text: str, offered: set[str]) -> tuple[str, dict[str, Any]] | None:
    cmd = directive(text, "bash")
    if cmd is not None and "Bash" in offered:
        return "Bash", {"command": cmd, "description": "mock"}
    w = directive(text, "write")
    if w is not None and "Write" in offered and "|" in w:
        path, content = w.split("|", 1)
        return "Write", {"file_path": path.strip(), "content": content}
    t = directive(text, "tool")
    if t is not None:
        name, _, raw = t.partition(" ")
        if name in offered:
            try:
                args = json.loads(raw) if raw.strip() else {}
            except ValueError:
                args = {}
            return name, args if isinstance(args, dict) else {}
    return None


def reply_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop_reason for a request."""
    offered = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
    msg = last_user(body)
    if msg is None:
        return [{"type": "text", "text": FIXED_TEXT}], "end_turn"
    result = tool_result_text(msg)
    if result is not None:
        return [{"type": "text", "text": f"MOCK_DONE after tool: {result[:200]}"}], "end_turn"
    said = directive(user_text(msg), "say")
    if said is not None and (offered or not body.get("stream")):
        return [{"type": "text", "text": said}], "end_turn"
    use = tool_use_for(user_text(msg), offered) if offered else None
    if use is not None:
        name, args = use
        return [
            {"type": "text", "text": f"Calling {name}."},
            {"type": "tool_use", "id": next_id("toolu"), "name": name, "input": args},
        ], "tool_use"
    return [{"type": "text", "text": FIXED_TEXT}], "end_turn"


def usage() -> dict[str, Any]:
    return {
        "input_tokens": USAGE_IN,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": USAGE_OUT,
        "service_tier": "standard",
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_body(message: dict[str, Any]) -> bytes:
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = dict(usage(), output_tokens=1)
    out = [sse("message_start", {"type": "message_start", "message": start}), sse("ping", {"type": "ping"})]
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": block["text"]}}))
        else:
            out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "tool_use", "id": block["id"],
                                                                     "name": block["name"], "input": {}}}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(block["input"])}}))
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": USAGE_OUT}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-anthropic/1"
    force_status: int | None = None
    log_path: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet stderr
        pass

    def log_request_json(self, body: Any) -> None:
        if not self.log_path:
            return
        headers = {k.lower(): ("***" if k.lower() in ("x-api-key", "authorization") else v)
                   for k, v in self.headers.items()}
        line = json.dumps({"time": time.time(), "method": self.command, "path": self.path,
                           "headers": headers, "body": body})
        with _log_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def send(self, status: int, body: bytes, content_type: str = "application/json",
             extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", next_id("req"))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_body(self, status: int, message: str) -> None:
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
        self.send(status, body)

    def do_HEAD(self) -> None:  # noqa: N802
        self.log_request_json(None)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.log_request_json(None)
        self.send_error_body(404, f"mock: no route for GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")[:2000]}
        self.log_request_json(body)
        path = self.path.split("?", 1)[0]
        if not isinstance(body, dict):
            body = {}
        msg = last_user(body)
        text = user_text(msg) if msg else ""
        sleep = directive(text, "sleep")
        if sleep:
            try:
                time.sleep(min(float(sleep), 600.0))
            except ValueError:
                pass
        status = self.force_status
        forced = directive(text, "status")
        if forced and forced.isdigit():
            status = int(forced)
        if status:
            self.send_error_body(status, "mock forced error")
            return
        once = directive(text, "limit-once")
        if once:
            key, _, wait = once.partition(" retry-after ")
            with _log_lock:
                first = key not in _limited
                _limited.add(key)
            if first:
                body429 = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                                  "message": "mock usage limit"}}).encode()
                self.send(429, body429, extra={"retry-after": wait.strip() or "5"})
                return
        if path == "/v1/messages/count_tokens":
            self.send(200, json.dumps({"input_tokens": USAGE_IN}).encode())
            return
        if path != "/v1/messages":
            self.send_error_body(404, f"mock: no route for POST {path}")
            return
        blocks, stop_reason = reply_blocks(body)
        message = {
            "id": next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or "claude-mock",
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage(),
        }
        if body.get("stream"):
            self.send(200, stream_body(message), "text/event-stream", {"Cache-Control": "no-cache"})
        else:
            self.send(200, json.dumps(message).encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--force-status", type=int, help="answer every POST with this HTTP status")
    args = ap.parse_args()
    Handler.force_status = args.force_status
    Handler.log_path = args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
