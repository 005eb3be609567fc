"""A throw-away MCP client for the soak: initialize, ask for log messages, open the GET event
stream and read it until killed (the soak SIGKILLs it: a client that vanishes without DELETE).

usage: client.py PORT TOKEN
"""

import json
import socket
import sys
import urllib.request

port, token = int(sys.argv[1]), sys.argv[2]
base = f"http://127.0.0.1:{port}/mcp"
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "Authorization": f"Bearer {token}"}


def post(body, session=None):
    h = dict(headers)
    if session:
        h.update({"MCP-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    req = urllib.request.Request(base, data=json.dumps(body).encode(), headers=h, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
        return resp.headers.get("MCP-Session-Id")


session = post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "chaos-soak-client", "version": "1"}}})
post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
post({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "info"}}, session)
s = socket.create_connection(("127.0.0.1", port))
s.sendall((f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
           f"Authorization: Bearer {token}\r\nMCP-Session-Id: {session}\r\n"
           "MCP-Protocol-Version: 2025-11-25\r\n\r\n").encode())
while s.recv(65536):
    pass
