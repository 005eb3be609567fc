#!/usr/bin/env python3
"""The floor under fire lateness: what starting N shell commands at each whole second costs on this
CPU with nothing else in the way. At each of SECONDS whole seconds it posix_spawns N copies of
`/bin/sh -c 'date +%s.%N >> DIR/i'` (the benchmark's every-second task command) as fast as it
can, then reaps them. bench.py runs it pinned to the servers' CPU after claudecron's window, and
reads the files exactly as it reads claudecron's: lateness = the fractional part of each stamp.

    spawn_floor.py N SECONDS DIR      prints one JSON object: {"n", "seconds", "first_second"}
"""
import json
import os
import sys
import time


def main():
    if len(sys.argv) != 4:
        print("usage: spawn_floor.py N SECONDS DIR", file=sys.stderr)
        return 2
    n, seconds, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    first = int(time.time()) + 1
    pids = []
    for k in range(seconds):
        wake = first + k
        time.sleep(max(0.0, wake - time.time()))
        for i in range(n):
            pids.append(os.posix_spawn("/bin/sh", ["sh", "-c", f"date +%s.%N >> {out}/{i}"], os.environ))
        while pids:
            os.waitpid(pids.pop(), 0)
    print(json.dumps({"n": n, "seconds": seconds, "first_second": first}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
