"""Parse claudecron's calendar feed with the `icalendar` package (PyPI) and check what it says:

    python scripts/ops_web/ics_check.py FEED_FILE

Prints `ok - ...` / `not ok - ...: why` lines (scripts/ops_web_test.sh counts them). Checks: the
feed parses, it is VERSION 2.0 with a PRODID, every event has a UID (all distinct), DTSTAMP, a
UTC DTSTART in the future, a duration and a summary; the every-second task "tick" is there with
100 events (the per-task cap) one second apart; the paused and manual tasks are not (the task
named <script>alert(1)</script> is manual).
"""

import sys
from datetime import datetime, timedelta, timezone

from icalendar import Calendar

failed = 0


def check(name, cond, why=""):
    global failed
    if cond:
        print(f"ok - calendar: {name}")
    else:
        failed += 1
        print(f"not ok - calendar: {name}: {why}")


raw = open(sys.argv[1], "rb").read()
try:
    cal = Calendar.from_ical(raw)
except Exception as e:  # noqa: BLE001 - any parse error is the finding
    check("the feed parses with icalendar", False, repr(e))
    sys.exit(1)
check("the feed parses with icalendar", True)
check("VERSION 2.0 and a PRODID", str(cal.get("VERSION")) == "2.0" and "claudecron" in str(cal.get("PRODID")),
      f"{cal.get('VERSION')} {cal.get('PRODID')}")
events = list(cal.walk("VEVENT"))
now = datetime.now(timezone.utc) - timedelta(seconds=5)
uids = [str(e.get("UID")) for e in events]
check(f"{len(events)} events, each with a distinct UID", events and len(set(uids)) == len(uids), f"{len(events)} events")
bad = [e for e in events if not (e.get("DTSTAMP") and e.get("DURATION") and e.get("SUMMARY")
                                  and e.decoded("DTSTART").tzinfo is not None and e.decoded("DTSTART") >= now)]
check("every event has DTSTAMP, DURATION, SUMMARY and a future UTC DTSTART", not bad, f"{len(bad)} bad, e.g. {bad[:1]}")
tick = sorted(e.decoded("DTSTART") for e in events if str(e.get("SUMMARY")) == "tick")
check("the every-second task: 100 events (the per-task cap), one second apart",
      len(tick) == 100 and all((b - a) == timedelta(seconds=1) for a, b in zip(tick, tick[1:])),
      f"{len(tick)} events")
names = {str(e.get("SUMMARY")) for e in events}
check("no event of paused or manual tasks", not names & {"parked", "fails", "<script>alert(1)</script>"}, str(names))
sys.exit(1 if failed else 0)
