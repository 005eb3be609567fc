"""Runs one chaos scenario (called by scripts/chaos.sh, once per scenario, under a time bound).

usage: chaos.py SCENARIO --bin BIN --tmp DIR --mark MARK [--long]
SCENARIO: kill | slow | stream | disk | db | escape | overload | soak
"""

import argparse
import os
import sys
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Aborted, Ctx, Report, deprioritize_self  # noqa: E402
import scenarios_a  # noqa: E402
import scenarios_b  # noqa: E402
import soak  # noqa: E402

SCENARIOS = {
    "kill": scenarios_a.s1_kill_cycles,
    "slow": scenarios_a.s2_slow_clients,
    "stream": scenarios_a.s3_unread_stream,
    "disk": scenarios_b.s4_full_disk,
    "db": scenarios_b.s5_database_gone,
    "escape": scenarios_b.s6_escaped_run,
    "overload": scenarios_b.s7_overload,
    "soak": soak.soak,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--mark", required=True)
    ap.add_argument("--long", action="store_true")
    a = ap.parse_args()
    ctx = Ctx(a.bin, os.path.join(a.tmp, a.scenario), a.mark, "long" if a.long else "short")
    deprioritize_self()
    try:
        SCENARIOS[a.scenario](ctx)
    except Aborted as e:
        Report(f"{a.scenario}: ").fail("finished in time", f"stopped by {e} (the time bound of scripts/chaos.sh)")
        return 1
    except Exception as e:  # noqa: BLE001 - any crash of the scenario is one precise failure
        Report(f"{a.scenario}: ").fail("ran to the end", f"the scenario crashed: {type(e).__name__}: {e}\n"
                                        + traceback.format_exc()[-1500:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
