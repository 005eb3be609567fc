#!/usr/bin/env bash
# Export to systemd, Kubernetes and cron, checked with the real tools. Standalone:
# `bash scripts/ops_test.sh`; scripts/test.sh calls it.
#
#   1. a live `claudecron serve` on a free 127.0.0.1 port gets cron tasks in zones with and
#      without daylight saving (the OR rule, macros, L, 5L, 5#2, seconds) and one task of each
#      kind that cannot be exported (scripts/ops/check_export.py setup)
#   2. `claudecron export --format systemd --out DIR`: `systemd-analyze verify` accepts every
#      generated unit (and rejects a broken copy, so the check can fail); every OnCalendar= line
#      through `systemd-analyze calendar --iterations=20` gives the same instants as
#      `claudecron preview-schedule --count 20` of the task, except the two DST cases the
#      RUNBOOK documents (checked to differ exactly there); the tasks left out are listed with
#      the reason and the exit code is 1
#   3. `--format k8s`: the CronJob manifests validate with kubernetes-validate (PyPI, in a cached
#      venv; offline schemas) --strict for Kubernetes 1.27 (timeZone GA) and 1.33; a broken copy
#      fails
#   4. `--format crontab`: each line's fields give the task's 20 next instants; the crontab
#      imports back (`import-crontab --dry-run --json`) with the same schedules and zones
#
# Needs bash, curl, python3 (3.9+: zoneinfo), jq, systemd-analyze (Debian's `systemd`, installed
# when absent and running as root), cargo (or CLAUDECRON_BIN). Only 127.0.0.1; every wait is
# bounded; what it starts it stops. Ends with "N passed, N failed"; exits non-zero on a failure.
# About 40 s with a built binary (the first run also installs kubernetes-validate).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-ops-test.XXXXXX")
CACHE=${CLAUDECRON_OPS_CACHE:-$REPO/.ops-cache}
PY_HELPER=$REPO/scripts/ops/check_export.py
SERVER_PID=""
START_TIME=$SECONDS

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -9 "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
checks_on_finish() { note "ops_test.sh took $((SECONDS - START_TIME)) s"; }
# shellcheck disable=SC2317
checks_on_failure() {
  [[ -f "$TMP/server.log" ]] && { note "server log (last lines):"; tail -n 20 "$TMP/server.log" | sed 's/^/#   /'; }
}

# --- tools ----------------------------------------------------------------------------------
for tool in curl python3 jq; do
  command -v "$tool" >/dev/null || fatal "setup: $tool" "$tool is missing; install it (apt-get install $tool)"
done
if ! command -v systemd-analyze >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    note "installing Debian's systemd package for systemd-analyze"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd; } >"$TMP/apt.log" 2>&1 ||
      fatal "setup: systemd-analyze" "apt-get install systemd failed: $(tail -n 5 "$TMP/apt.log" | tr '\n' ' ')"
  else
    fatal "setup: systemd-analyze" "missing and cannot be installed here (not root); apt-get install systemd"
  fi
fi
ensure_sdk_venv "$CACHE" "$REPO/scripts/ops/requirements.txt" >"$TMP/venv.log" 2>&1 ||
  fatal "setup: python venv (kubernetes-validate)" "$(tail -n 20 "$TMP/venv.log" | tr '\n' ' ')"
KV=$CACHE/venv/bin/kubernetes-validate
[[ -x "$KV" ]] || fatal "setup: kubernetes-validate" "not found in $CACHE/venv"

if [[ -n "${CLAUDECRON_BIN:-}" ]]; then
  BIN=$CLAUDECRON_BIN
else
  (cd "$REPO" && timeout 900 cargo build --quiet --bin claudecron) >"$TMP/build.log" 2>&1 ||
    fatal "cargo build --bin claudecron" "$(tail -n 30 "$TMP/build.log" | tr '\n' ' ')"
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/claudecron
fi

# --- 1. a server with tasks -----------------------------------------------------------------
PORT=$(free_port)
TOKEN=ops-test-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export CLAUDECRON_URL=http://127.0.0.1:$PORT CLAUDECRON_TOKEN=$TOKEN
env -u CLAUDECRON_CONFIG HOME="$TMP" CLAUDECRON_AUTH_TOKENS="$TOKEN" CLAUDECRON_RATE_LIMIT_PER_MINUTE=100000 \
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --db "$TMP/tasks.db" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
wait_health "$CLAUDECRON_URL/health" 30 "$SERVER_PID" || fatal "server starts" "no /health within 30 s"
run_counted "setup tasks" python3 "$PY_HELPER" setup "$CLAUDECRON_URL" "$TOKEN"

cc() { "$BIN" "$@" --url "$CLAUDECRON_URL" --token "$TOKEN"; }

# --- 2. systemd -----------------------------------------------------------------------------
SD=$TMP/systemd
cc export --format systemd --out "$SD" >"$TMP/sd.out" 2>"$TMP/sd.err"
rc=$?
if [[ $rc -eq 1 ]] && grep -q '^not exported: on-file: file-watch' "$TMP/sd.err" &&
  grep -q '^not exported: on-hook: hook' "$TMP/sd.err" && grep -q '^not exported: after-report: after' "$TMP/sd.err" &&
  grep -q '^not exported: every-10m: interval' "$TMP/sd.err" && grep -q '^not exported: agent: a subagent' "$TMP/sd.err"; then
  ok "systemd export lists the 5 tasks it cannot express, with the reason, and exits 1"
else
  not_ok "systemd export lists what it cannot express" "exit $rc; $(head -c 600 "$TMP/sd.err")"
fi
units=("$SD"/*.service "$SD"/*.timer)
if [[ ${#units[@]} -ge 26 ]] && (cd "$SD" && systemd-analyze verify ./*.service ./*.timer) >"$TMP/verify.log" 2>&1 &&
  ! grep -qi 'error\|bad\|ignoring' "$TMP/verify.log"; then
  ok "systemd-analyze verify: all ${#units[@]} generated units"
else
  not_ok "systemd-analyze verify" "$(head -c 800 "$TMP/verify.log") (${#units[@]} units)"
fi
mkdir -p "$TMP/broken"
sed 's/^OnCalendar=.*/OnCalendar=Funday 25:61/' "$SD/claudecron-weekday-report.timer" >"$TMP/broken/claudecron-weekday-report.timer"
cp "$SD/claudecron-weekday-report.service" "$TMP/broken/"
if (cd "$TMP/broken" && systemd-analyze verify ./*.timer ./*.service) >/dev/null 2>&1; then
  not_ok "systemd-analyze verify rejects a broken timer" "it passed, so the check above proves nothing"
else
  ok "systemd-analyze verify rejects a broken timer (the check can fail)"
fi
if grep -q '^OnCalendar=\*-\*-01 09:00:00 America/New_York$' "$SD/claudecron-first-or-monday.timer" &&
  grep -q '^OnCalendar=Mon \*-\*-\* 09:00:00 America/New_York$' "$SD/claudecron-first-or-monday.timer"; then
  ok "the day-of-month/day-of-week OR rule is two OnCalendar= lines"
else
  not_ok "OR rule as two OnCalendar= lines" "$(grep OnCalendar "$SD/claudecron-first-or-monday.timer")"
fi
run_counted "OnCalendar vs preview-schedule" python3 "$PY_HELPER" calendars "$BIN" "$SD"

# --- 3. Kubernetes --------------------------------------------------------------------------
K8S=$TMP/k8s
cc export --format k8s --out "$K8S" --image debian:bookworm-slim >/dev/null 2>"$TMP/k8s.err"
manifests=("$K8S"/*.yaml)
for version in 1.27.0 1.33.0; do
  if [[ ${#manifests[@]} -ge 9 ]] && "$KV" --strict -k "$version" "${manifests[@]}" >"$TMP/kv.log" 2>&1; then
    ok "kubernetes-validate --strict -k $version: all ${#manifests[@]} CronJobs"
  else
    not_ok "kubernetes-validate -k $version" "$(head -c 800 "$TMP/kv.log") (${#manifests[@]} manifests)"
  fi
done
sed 's/concurrencyPolicy: Forbid/concurrencyPolicy: 5/; s/  suspend: false/  suspend: false\n  unknownField: 1/' \
  "$K8S/weekday-report.yaml" >"$TMP/broken.yaml"
if "$KV" --strict -k 1.33.0 "$TMP/broken.yaml" >/dev/null 2>&1; then
  not_ok "kubernetes-validate rejects a broken CronJob" "it passed, so the check above proves nothing"
else
  ok "kubernetes-validate rejects a broken CronJob (the check can fail)"
fi
if grep -q 'timeZone: "America/New_York"' "$K8S/first-or-monday.yaml" && grep -q 'schedule: "0 9 1 \* 1"' "$K8S/first-or-monday.yaml" &&
  grep -q 'concurrencyPolicy: Forbid' "$K8S/weekday-report.yaml" && grep -q 'concurrencyPolicy: Allow' "$K8S/first-or-monday.yaml" &&
  grep -q 'backoffLimit: 2' "$K8S/first-or-monday.yaml" && grep -q 'startingDeadlineSeconds: 10' "$K8S/weekday-report.yaml" &&
  ! grep -q '^  startingDeadlineSeconds:' "$K8S/quarter-hourly.yaml"; then
  ok "CronJobs carry timeZone, schedule, concurrencyPolicy from overlap, backoffLimit from retries, startingDeadlineSeconds from catch_up"
else
  not_ok "CronJob fields" "$(head -c 600 "$K8S/first-or-monday.yaml")"
fi
if grep -q '^not exported: last-day: Kubernetes has no L, W or # day forms' "$TMP/k8s.err" &&
  grep -q '^not exported: seconds-field: Kubernetes schedules have no seconds field' "$TMP/k8s.err"; then
  ok "k8s export lists L and seconds schedules as not expressible"
else
  not_ok "k8s export lists what it cannot express" "$(head -c 600 "$TMP/k8s.err")"
fi

# --- 4. crontab -----------------------------------------------------------------------------
cc export --format crontab --out "$TMP/cron" >/dev/null 2>"$TMP/cron.err"
CRONTAB=$TMP/cron/claudecron.crontab
if [[ -s "$CRONTAB" ]]; then
  run_counted "crontab lines vs preview-schedule" python3 "$PY_HELPER" crontab "$BIN" "$CRONTAB"
  cc import-crontab "$CRONTAB" --dry-run --json >"$TMP/back.json" 2>"$TMP/back.err"
  jobs=$(grep -cv '^\s*#\|^\s*$\|^CRON_TZ=' "$CRONTAB")
  if jq -e --argjson n "$jobs" '(.tasks | length) == $n and (.skipped | length) == 0' "$TMP/back.json" >/dev/null; then
    ok "the exported crontab imports back: $jobs jobs, none refused"
  else
    not_ok "crontab round trip" "$(head -c 600 "$TMP/back.json") $(head -c 300 "$TMP/back.err")"
  fi
else
  not_ok "crontab export" "$(head -c 600 "$TMP/cron.err")"
fi

finish
