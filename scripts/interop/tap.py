"""TAP-ish check lines shared by the interop scripts run by scripts/interop.sh: `ok - PREFIX name`
/ `not ok - PREFIX name: details`, counted; and a free loopback port."""

from __future__ import annotations

import socket


class Tap:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def check(self, name: str, cond: bool, details: str = "") -> bool:
        if cond:
            self.passed += 1
            print(f"ok - {self.prefix} {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {self.prefix} {name}: {details}", flush=True)
        return cond

    def totals(self) -> int:
        """Print the totals line; the exit status: 0 when all passed and something did."""
        print(f"# {self.prefix} totals: passed={self.passed} failed={self.failed}", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
