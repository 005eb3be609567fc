#!/usr/bin/env python3
"""Judge a `conformance server --requirements 2026-07-28 -o DIR` run for the scenarios a tools-only
server can pass without the suite's fixture tools (reference/mcp-2026-07-28.md §5):

    python conformance_2026.py DIR LABEL

Reads DIR/server-<scenario>-<timestamp>/checks.json. A scenario passes when every check is
SUCCESS, SKIPPED or INFO (or WARNING, which the suite does not count as a failure; the line says
how many), except the checks listed in UNTESTABLE: those need a fixture tool the
suite asks for by name (`test_missing_capability`, `test_streaming_elicitation`,
`test_logging_tool`) and are accepted only as the suite's own "Not testable" failure
(details.untestable = true) — a real failure of them still fails. Prints one `ok - ` /
`not ok - ` line per scenario.
"""

from __future__ import annotations

import glob
import json
import os
import sys

SCENARIOS = [
    "server-stateless",
    "tools-list",
    "caching",
    "http-header-validation",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
    "input-required-result-unsupported-methods",
    "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
]
UNTESTABLE = {
    "server-stateless": {
        "sep-2575-server-rejects-undeclared-capability",
        "sep-2575-missing-capability-http-400",
        "sep-2575-http-server-no-independent-requests-on-stream",
        "sep-2575-server-no-log-without-loglevel",
    },
}
GOOD = {"SUCCESS", "SKIPPED", "INFO"}


def main() -> int:
    out_dir, label = sys.argv[1], sys.argv[2]
    failed = 0
    for scenario in SCENARIOS:
        runs = sorted(glob.glob(os.path.join(out_dir, f"server-{scenario}-2*")))
        if not runs:
            print(f"not ok - conformance-2026[{label}] {scenario}: no results in {out_dir}")
            failed += 1
            continue
        with open(os.path.join(runs[-1], "checks.json")) as f:
            checks = json.load(f)
        good = bad = untestable = warnings = 0
        problems = []
        for c in checks:
            status = c.get("status")
            if status in GOOD:
                good += status == "SUCCESS"
                continue
            if status == "WARNING":
                warnings += 1
                continue
            if c.get("id") in UNTESTABLE.get(scenario, ()) and (c.get("details") or {}).get("untestable"):
                untestable += 1
                continue
            bad += 1
            problems.append(f"{c.get('id')}: {status}: {(c.get('errorMessage') or '')[:200]}")
        note = f", {untestable} untestable without fixture tools" if untestable else ""
        note += f", {warnings} warning(s)" if warnings else ""
        if bad == 0 and good > 0:
            print(f"ok - conformance-2026[{label}] {scenario} ({good} passed, 0 failed{note})")
        else:
            failed += 1
            print(f"not ok - conformance-2026[{label}] {scenario}: {good} passed, {bad} failed{note}: "
                  + " | ".join(problems[:4]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
