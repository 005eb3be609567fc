#!/usr/bin/env bash
# claudecron fault-injection suite (chaos): the real debug binary under faults, each scenario on
# its own server (free 127.0.0.1 port, temp data dir). Every scenario checks
#   (a) /health answers within 100 ms at p99, sampled every ~100 ms from a separate process during
#       the fault (p50/p99 reported),
#   (b) every recorded run ends with a terminal status (none left queued/running),
#   (c) no process carrying a CLAUDECRON_RUN_ID of that server's runs is left (/proc scan),
#   (d) fire lateness of an every-second `date +%s.%N` cron task during the fault (p50/p99).
# Scenarios (names for the command line):
#   kill      kill -9 and SIGTERM cycles under load (5 + 5; 50 + 50 with --long), recovery, integrity
#   slow      slow and abandoned clients (partial heads and bodies, slowloris, connect-and-drop)
#   stream    an event stream that is never read (small socket buffers) while runs notify
#   disk      the data dir on a full 2 MiB tmpfs (skipped loudly when mount is not permitted)
#   db        tasks.db deleted, then made read-only (chattr +i), under the running server
#   escape    a run that escapes its process group (`setsid sleep 300 &`): success/timeout/cancel
#   overload  500 hook events at once to an overlap=allow task next to an every-second task
#   soak      (--long only) one server for CHAOS_SOAK_SECONDS (1800) under mixed load; RSS, fds
#             and threads sampled every 10 s must end flat
#
# usage: scripts/chaos.sh [--long] [SCENARIO...]
#   short mode (default): all seven scenarios in about 3 minutes (CI); --long: longer scenarios
#   and the 30-minute soak. Environment: CLAUDECRON_BIN (default target/debug/claudecron, built
#   with `cargo build` when missing), CHAOS_SOAK_SECONDS (1800), CHAOS_HEALTH_P99_MS (100),
#   CHAOS_LATE_P99_MS (500), CHAOS_MCP_P99_MS (500), CHAOS_LOAD_NICE (10: the helper's own load
#   runs niced, the servers and the /health sampler do not), CHAOS_BOUND_SECONDS (each scenario's
#   time bound; default 150, 1200 with --long, soak + 300), CHAOS_KEEP=1 (keep the scratch dir;
#   it is kept anyway when something failed). Needs python3 (3.11, stdlib only); root for the tmpfs
#   mount, chattr and pidfd_getfd. Talks only to 127.0.0.1. Docs: docs/RUNBOOK.md, "Fault-injection
#   suite (chaos)".
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/checks.sh
source "$REPO/scripts/lib/checks.sh"

ALL=(kill slow stream disk db escape overload)
LONG=0
WANT=()
for arg in "$@"; do
  case "$arg" in
  --long) LONG=1 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  kill | slow | stream | disk | db | escape | overload | soak) WANT+=("$arg") ;;
  *)
    echo "unknown argument: $arg (see --help)" >&2
    exit 2
    ;;
  esac
done
if [[ ${#WANT[@]} -eq 0 ]]; then
  WANT=("${ALL[@]}")
  [[ $LONG == 1 ]] && WANT+=(soak)
fi

declare -A TITLE=(
  [kill]="1. kill -9 and SIGTERM cycles under load"
  [slow]="2. slow and abandoned clients"
  [stream]="3. an unread event stream"
  [disk]="4. a full disk"
  [db]="5. the database deleted or made read-only under the server"
  [escape]="6. a run that escapes its process group"
  [overload]="7. an overload burst"
  [soak]="soak: one server under steady mixed load"
)
SOAK_SECONDS=${CHAOS_SOAK_SECONDS:-1800}
# Time bound of each scenario (seconds): generous next to its usual time, so a hang fails it.
budget() {
  if [[ -n "${CHAOS_BOUND_SECONDS:-}" ]]; then
    echo "$CHAOS_BOUND_SECONDS"
    return
  fi
  case "$1" in
  soak) echo $((SOAK_SECONDS + 300)) ;;
  *) if [[ $LONG == 1 ]]; then echo 1200; else echo 150; fi ;;
  esac
}

if [[ -z "${CLAUDECRON_BIN:-}" ]]; then
  CLAUDECRON_BIN=$REPO/target/debug/claudecron
  if [[ ! -x "$CLAUDECRON_BIN" ]]; then
    note "building the debug binary (cargo build)"
    (cd "$REPO" && cargo build --quiet)
  fi
fi
[[ -x "$CLAUDECRON_BIN" ]] || fatal "binary" "CLAUDECRON_BIN=$CLAUDECRON_BIN is not an executable"
CLAUDECRON_BIN=$(cd "$(dirname "$CLAUDECRON_BIN")" && pwd)/$(basename "$CLAUDECRON_BIN")

export PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d /tmp/claudecron-chaos.XXXXXX)
# Every server (so every run it starts), sampler and client of this invocation carries this in
# its environment; the clean-up ends what is left by pid.
MARK=chaos-$$-$RANDOM$RANDOM
SKIPPED=()
STARTED=$SECONDS

# Processes carrying our mark, one pid per line (never this shell or its parents).
marked_pids() {
  python3 - "$MARK" <<'PY'
import os, sys
want = f"CHAOS_MARK={sys.argv[1]}".encode()
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            if want in open(f"/proc/{p}/environ", "rb").read().split(b"\0"):
                print(p)
        except OSError:
            pass
PY
}

undo_faults() {
  local kind what
  [[ -f "$TMP/cleanup.list" ]] || return 0
  while read -r kind what; do
    case "$kind" in
    chattr) chattr -i "$what" 2>/dev/null || true ;;
    mount) mountpoint -q "$what" 2>/dev/null && { umount "$what" 2>/dev/null || umount -l "$what" 2>/dev/null || true; } ;;
    esac
  done < <(cat "$TMP"/*/cleanup.list "$TMP/cleanup.list" 2>/dev/null)
}

cleanup() {
  local pids
  pids=$(marked_pids || true)
  # shellcheck disable=SC2086
  [[ -n "$pids" ]] && kill -9 $pids 2>/dev/null || true
  undo_faults
  if [[ $FAILED -eq 0 && "${CHAOS_KEEP:-}" != 1 ]]; then
    rm -rf "$TMP"
  else
    echo "# scratch dir kept: $TMP (server logs: $TMP/*/*/server.log, /health samples: health-*.tsv)"
  fi
}
trap 'ABORT_LINE=$LINENO' ERR
trap 'rc=$?; checks_abort_report chaos.sh "$rc" || rc=1; cleanup; exit $rc' EXIT

checks_on_finish() {
  if [[ ${#SKIPPED[@]} -gt 0 ]]; then
    echo "################################################################################"
    for s in "${SKIPPED[@]}"; do echo "# SKIPPED: $s"; done
    echo "################################################################################"
  fi
  echo "# chaos suite ($([[ $LONG == 1 ]] && echo long || echo short) mode) took $((SECONDS - STARTED)) s"
}

# run_scenario NAME: the helper's @@PASS/@@FAIL/@@SKIP lines become checks; other lines are shown.
run_scenario() {
  local name=$1 bound line kind rest check why failed_before=$FAILED t0=$SECONDS rc
  bound=$(budget "$name")
  echo
  note "== ${TITLE[$name]} (bound ${bound} s) =="
  while IFS= read -r line; do
    case "$line" in
    @@PASS$'\t'* | @@FAIL$'\t'* | @@SKIP$'\t'*)
      kind=${line%%$'\t'*}
      rest=${line#*$'\t'}
      check=${rest%%$'\t'*}
      why=${rest#*$'\t'}
      [[ "$rest" == *$'\t'* ]] || why=""
      case "$kind" in
      @@PASS) pass "$check" ;;
      @@FAIL) fail "$check" "${why//\\n/$'\n'}" ;;
      @@SKIP)
        SKIPPED+=("$check: $why")
        printf 'SKIP %s\n       %s\n' "$check" "$why"
        ;;
      esac
      ;;
    @@RC\ *) rc=${line#@@RC } ;;
    *) echo "$line" ;;
    esac
  done < <(
    timeout -k 15 "$bound" python3 "$REPO/scripts/chaos/chaos.py" "$name" --bin "$CLAUDECRON_BIN" \
      --tmp "$TMP" --mark "$MARK" $([[ $LONG == 1 ]] && echo --long) 2>&1
    echo "@@RC $?"
  )
  if [[ "${rc:-1}" != 0 && $FAILED -eq $failed_before ]]; then
    if [[ "${rc:-}" == 124 || "${rc:-}" == 137 ]]; then
      fail "$name: finished within its bound" "stopped after $bound s (exit $rc)"
    else
      fail "$name: helper exited cleanly" "exit ${rc:-?}"
    fi
  fi
  note "${TITLE[$name]}: $((SECONDS - t0)) s"
}

note "claudecron chaos suite: $CLAUDECRON_BIN, scratch $TMP, scenarios: ${WANT[*]}"
for name in "${WANT[@]}"; do
  run_scenario "$name"
done

# (c) for the whole suite: nothing it started is left (servers, runs, samplers, clients).
sleep 0.5
left=$(marked_pids | tr '\n' ' ')
if [[ -z "${left// /}" ]]; then
  pass "no process started by the suite is left (CHAOS_MARK scan of /proc)"
else
  fail "no process started by the suite is left (CHAOS_MARK scan of /proc)" \
    "left: $(for p in $left; do printf '%s `%s` ' "$p" "$(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-60)"; done)"
fi
finish
