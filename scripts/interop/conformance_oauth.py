#!/usr/bin/env python3
"""The conformance suite's authorization-server scenarios against claudecron's OAuth server.

Usage: conformance_oauth.py --conformance BIN --issuer URL --password PASSWORD --results DIR

`conformance authorization` runs `authorization-server-metadata-endpoint` and
`authorization-code-grant` (the second needs the first's result, so both run in one call; the
suite has only these two authorization-server scenarios). The code grant needs a registered client
and a person at a browser: this script registers a client (DCR) with the suite's loopback callback
as redirect URI, waits for the authorization URL the suite prints, and plays the browser with
plain HTTP: GET the consent page, submit the form with the owner password and the page's CSRF
token, then GET the redirect (the suite's callback server), as a browser would. Each scenario's
checks.json is then judged: every check SUCCESS. Prints `ok - ...` / `not ok - ...` lines.
"""

from __future__ import annotations

import argparse
import html
import json
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SCENARIOS = ["authorization-server-metadata-endpoint", "authorization-code-grant"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register(issuer: str, redirect: str) -> str:
    req = urllib.request.Request(f"{issuer}/register", method="POST",
                                 data=json.dumps({"redirect_uris": [redirect], "client_name": "conformance suite",
                                                  "token_endpoint_auth_method": "none"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["client_id"]


def browser(authorize_url: str, password: str) -> str:
    """The owner at the browser: consent page, form with the password, the redirect followed."""
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(authorize_url, timeout=10) as r:
        page = r.read().decode()
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    if not (csrf and action):
        return f"no consent form in the page: {page[:200]}"
    form = urllib.parse.urlencode({"csrf_token": csrf.group(1), "password": password, "decision": "approve"})
    try:
        opener.open(urllib.request.Request(html.unescape(action.group(1)), data=form.encode(), method="POST"), timeout=10)
        return "the consent form did not redirect"
    except urllib.error.HTTPError as e:
        if e.code != 302:
            return f"the consent form answered HTTP {e.code}"
        location = e.headers.get("Location", "")
    with urllib.request.urlopen(location, timeout=10) as r:  # the suite's callback server
        r.read()
    return ""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conformance", required=True, help="the suite's bin (node_modules/.bin/conformance)")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    failed = 0

    def ok(name: str) -> None:
        print(f"ok - conformance[oauth] {name}", flush=True)

    def not_ok(name: str, why: str) -> None:
        nonlocal failed
        failed += 1
        print(f"not ok - conformance[oauth] {name}: {why}", flush=True)

    port = free_port()
    client_id = register(args.issuer, f"http://127.0.0.1:{port}/callback")
    results = pathlib.Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [args.conformance, "authorization", "--url", args.issuer, "--client-id", client_id, "--port", str(port),
         "--resource", f"{args.issuer}/mcp", "-o", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(results))
    lines: list[str] = []
    browser_error: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(f"{args.issuer}/authorize?"):
                try:
                    browser_error.append(browser(line.strip(), args.password))
                except Exception as e:  # noqa: BLE001 - reported below
                    browser_error.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        rc = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = -1
    t.join(timeout=5)
    out = "".join(lines)
    if browser_error == [""]:
        ok("browser step scripted: consent page, password, redirect to the suite's callback")
    else:
        not_ok("browser step", "; ".join(browser_error) or "the suite printed no authorization URL")
    for scenario in SCENARIOS:
        files = sorted(results.glob(f"authorization-server-{scenario}-*/checks.json"))
        if not files:
            not_ok(scenario, f"no checks.json (suite exit {rc}); output: {out[-600:]!r}")
            continue
        checks = json.loads(files[-1].read_text())
        bad = [f"{c.get('id')}: {c.get('status')} {c.get('errorMessage', '')}" for c in checks
               if c.get("status") != "SUCCESS"]
        if checks and not bad:
            ok(f"{scenario} ({len(checks)} checks SUCCESS)")
        else:
            not_ok(scenario, "; ".join(bad) or "no checks")
    if rc != 0:
        not_ok("suite exit status", f"{rc}; output: {out[-400:]!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
