"""GET /health every INTERVAL seconds on a fresh loopback connection, one line per sample to OUT:
`epoch<TAB>latency ms<TAB>status (0: no answer within 2 s)<TAB>start of the body`. Runs in its own
process so the chaos suite's load threads cannot delay it; stops on SIGTERM.

usage: sampler.py PORT OUT [INTERVAL]
"""

import signal
import socket
import sys
import time

port, out = int(sys.argv[1]), sys.argv[2]
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
running = True


def stop(_signum, _frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


def sample():
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return (time.perf_counter() - t0) * 1000, 0, f"{type(e).__name__}: {e}"
    latency = (time.perf_counter() - t0) * 1000
    try:
        status = int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return latency, 0, f"not HTTP: {data[:80]!r}"
    body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").replace("\t", " ").replace("\n", " ")
    return latency, status, body[:300]


with open(out, "a", buffering=1) as f:
    next_at = time.monotonic()
    while running:
        now = time.time()
        latency, status, body = sample()
        f.write(f"{now:.3f}\t{latency:.2f}\t{status}\t{body}\n")
        next_at += interval
        delay = next_at - time.monotonic()
        if delay < 0:  # a slow sample: start again from now, do not burst to catch up
            next_at = time.monotonic()
            delay = 0
        time.sleep(delay)
