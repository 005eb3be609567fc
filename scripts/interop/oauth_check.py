#!/usr/bin/env python3
"""claudecron's OAuth sign-in (issue 12) driven by the official MCP Python SDK's OAuth client.

Usage: oauth_check.py --url http://127.0.0.1:PORT/mcp --password PASSWORD [--prefix LABEL]
                      [--cafile PEM]   (HTTPS with a test CA, e.g. behind scripts/nginx_test.sh)

`OAuthClientProvider` (an httpx2 auth) meets the server's 401, reads the protected resource
metadata named in WWW-Authenticate, the authorization server metadata, registers itself (DCR,
RFC 7591) and starts the authorization code flow with PKCE S256. Its redirect_handler plays the
owner in the browser: it GETs the consent page, takes the form's CSRF token, submits the owner
password and reads the redirect (code, state, iss) that the callback_handler hands back. Then:
tools/list and a tools/call through the signed-in session; a refresh done by the SDK itself
(the access token made to look expired) rotates the refresh token; the spent refresh token sent
again is refused with invalid_grant and revokes the family (the SDK's current access token then
gets 401). Prints `ok - ...` / `not ok - ...` lines (interop.sh counts them); exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import html
import re
import ssl
import sys
import time
import traceback
import urllib.parse
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

CALLBACK = "http://127.0.0.1:53682/callback"  # never listened on: the handler reads the redirect
VERIFY: Any = True  # TLS verification of every client below (--cafile replaces it)


class Checks:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.failed = 0

    def ok(self, name: str) -> None:
        print(f"ok - {self.prefix}{name}", flush=True)

    def fail(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"not ok - {self.prefix}{name}: {why}", flush=True)

    def check(self, cond: bool, name: str, why: str) -> bool:
        (self.ok(name) if cond else self.fail(name, why))
        return cond


class MemoryStorage:
    """TokenStorage in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Owner:
    """The person at the browser: approves on the consent page with the password."""

    def __init__(self, password: str, ck: Checks) -> None:
        self.password = password
        self.ck = ck
        self.result: AuthorizationCodeResult | None = None
        self.pages = 0

    async def redirect_handler(self, authorization_url: str) -> None:
        self.pages += 1
        async with httpx2.AsyncClient(timeout=20.0, follow_redirects=False, verify=VERIFY) as http:
            page = await http.get(authorization_url)
            self.ck.check(page.status_code == 200 and "text/html" in page.headers.get("content-type", ""),
                          "consent page served (GET /authorize)", f"HTTP {page.status_code}: {page.text[:200]}")
            csp = page.headers.get("content-security-policy", "")
            self.ck.check("frame-ancestors 'none'" in csp, "consent page forbids framing (CSP frame-ancestors)", csp)
            m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
            action = re.search(r'<form method="post" action="([^"]+)"', page.text)
            if not (m and action):
                self.ck.fail("consent form", "no csrf_token or form action in the page")
                return
            answer = await http.post(html.unescape(action.group(1)), data={
                "csrf_token": m.group(1), "password": self.password, "decision": "approve"})
            location = answer.headers.get("location", "")
            if not self.ck.check(answer.status_code == 302 and location.startswith(CALLBACK),
                                 "consent approved with the owner password (302 to the callback)",
                                 f"HTTP {answer.status_code} location={location!r}"):
                return
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
            self.result = AuthorizationCodeResult(code=q["code"][0], state=(q.get("state") or [None])[0],
                                                  iss=(q.get("iss") or [None])[0])

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the consent step did not produce a code")
        result, self.result = self.result, None
        return result


async def session(url: str, provider: OAuthClientProvider, ck: Checks, label: str) -> bool:
    """One MCP session through the provider: tools/list and a tools/call."""
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(20.0, read=60.0), verify=VERIFY) as http:
        try:
            async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
                tools = await client.list_tools()
                names = [t.name for t in tools.tools]
                ck.check("claudecron_list_tasks" in names, f"{label}: tools/list signed in with OAuth",
                         f"tools: {names[:5]}")
                res = await client.call_tool("claudecron_list_tasks", {})
                ck.check(not res.is_error, f"{label}: tools/call claudecron_list_tasks", str(res)[:300])
                return True
        except BaseException as e:  # noqa: BLE001 - report and stop
            ck.fail(f"{label}: session", f"{type(e).__name__}: {e}"[:400])
            traceback.print_exc(file=sys.stderr)
            return False


async def raw_initialize(url: str, access_token: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "oauth-check", "version": "1"}}}
    async with httpx2.AsyncClient(timeout=20.0, verify=VERIFY) as http:
        r = await http.post(url, json=body, headers={"Authorization": f"Bearer {access_token}",
                                                     "Accept": "application/json, text/event-stream"})
        return r.status_code


async def run(url: str, password: str, ck: Checks) -> None:
    storage = MemoryStorage()
    owner = Owner(password, ck)
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(client_name="claudecron interop (Python SDK)",
                                            redirect_uris=[CALLBACK], grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage,
        redirect_handler=owner.redirect_handler,
        callback_handler=owner.callback_handler,
    )
    if not await session(url, provider, ck, "first sign-in"):
        return
    ck.check(storage.client_info is not None and str(storage.client_info.client_id).startswith("ccc_"),
             "dynamic client registration gave a client_id", repr(storage.client_info))
    ck.check(owner.pages == 1, "one consent page for the sign-in", f"{owner.pages} pages")
    first = storage.tokens
    if first is None or not first.refresh_token:
        ck.fail("tokens stored", repr(first))
        return
    ck.ok("access and refresh token stored by the SDK")

    # The SDK refreshes by itself once the access token looks expired.
    provider.context.token_expiry_time = time.time() - 1
    if not await session(url, provider, ck, "after the SDK's refresh"):
        return
    second = storage.tokens
    ck.check(second is not None and second.refresh_token != first.refresh_token
             and second.access_token != first.access_token,
             "the refresh rotated both tokens", "tokens unchanged")
    ck.check(owner.pages == 1, "the refresh needed no second consent", f"{owner.pages} pages")

    # The spent refresh token comes back: refused, and the whole family is revoked.
    token_url = str(provider.context.oauth_metadata.token_endpoint) if provider.context.oauth_metadata else ""
    async with httpx2.AsyncClient(timeout=20.0, verify=VERIFY) as http:
        r = await http.post(token_url, data={"grant_type": "refresh_token", "refresh_token": first.refresh_token,
                                             "client_id": storage.client_info.client_id})
    err: Any = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else None
    ck.check(r.status_code == 400 and err == "invalid_grant", "a reused refresh token is refused (invalid_grant)",
             f"HTTP {r.status_code} {r.text[:200]}")
    status = await raw_initialize(url, second.access_token if second else "")
    ck.check(status == 401, "the reuse revoked the family: the newest access token gets 401", f"HTTP {status}")
    async with httpx2.AsyncClient(timeout=20.0, verify=VERIFY) as http:
        r = await http.post(token_url, data={"grant_type": "refresh_token",
                                             "refresh_token": second.refresh_token if second else "",
                                             "client_id": storage.client_info.client_id})
    ck.check(r.status_code == 400 and "invalid_grant" in r.text, "the newest refresh token is revoked too",
             f"HTTP {r.status_code} {r.text[:200]}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--prefix", default="oauth[python-sdk] ")
    ap.add_argument("--cafile", help="verify TLS against this CA file")
    args = ap.parse_args()
    global VERIFY
    if args.cafile:
        VERIFY = ssl.create_default_context(cafile=args.cafile)
    ck = Checks(args.prefix)
    try:
        anyio.run(run, args.url, args.password, ck)
    except BaseException as e:  # noqa: BLE001
        ck.fail("run", f"{type(e).__name__}: {e}"[:400])
        traceback.print_exc(file=sys.stderr)
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
