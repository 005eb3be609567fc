# shellcheck shell=bash
# The check harness the shell test scripts share; sourced, never run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"
#
# Used by scripts/interop.sh, scripts/bench.sh, scripts/nginx_test.sh, scripts/ops_web_test.sh, scripts/smoke.sh, scripts/service_test.sh and
# scripts/service/{boot_test,driver}.sh. It owns:
#   - the counters PASSED and FAILED (set to 0 when sourced) and the per-check lines:
#       ok NAME / not_ok NAME [WHY]   `ok - NAME`, `not ok - NAME: WHY` (interop, nginx, smoke)
#       pass NAME / fail NAME [WHY]   `ok   NAME`, `FAIL NAME` + WHY indented (the service kit)
#     and note TEXT (`# TEXT`, counts nothing);
#   - run_counted: run a helper that prints ok / not ok lines and add them to the counters;
#   - finish (the closing `N passed, N failed` line and the exit status), fatal (not_ok, then
#     finish) and checks_abort_report (for an EXIT trap: the run ended before finish);
#   - free_port / free_ports: free TCP ports on 127.0.0.1;
#   - stop_pid: signal a process the script started, wait up to 5 s, then SIGKILL
#     (nginx_test.sh, ops_web_test.sh); stop_pidfiles: the same for the processes named in pid
#     files, all at once (service_test.sh, package_test.sh);
#   - wait_health: a bounded wait for an HTTP health URL to answer 200;
#   - req / hdr / jqb / what: one HTTP request and what the checks read from its answer
#     (nginx_test.sh, smoke.sh; interop.sh's curl table has its own, in scripts/interop/);
#   - ensure_sdk_venv: the cached Python venv with the official MCP SDK (interop.sh, nginx_test.sh);
#   - ensure_npm: a cached private npm folder holding exactly some packages (interop.sh, bench.sh).
#
# What a script may set or define to keep its own ways (all optional):
#   CHECKS_PREFIX          put before every ok / not ok name (smoke.sh: "smoke: ")
#   CHECKS_SUMMARY_PREFIX  put before the closing line (smoke.sh: "# smoke: ", so that it reads as
#                          a comment inside the suite that runs it)
#   CHECKS_EMPTY_OK=1      finish exits 0 for a run with no checks at all (everything skipped);
#                          otherwise it needs at least one pass and no failure
#   checks_on_failure      function: called by finish and checks_abort_report, before the closing
#                          line, when anything failed (interop.sh and nginx_test.sh print logs)
#   checks_on_finish       function: called by finish just before the closing line (nginx_test.sh
#                          prints its runtime)
#   REQ_CURL, REQ_DIR      for req: the curl command with its common options (set to
#                          `curl -sS --max-time 10` when sourced) and where its files go ($TMP
#                          when unset)
# run_counted writes its scratch files into the script's $TMP.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "scripts/lib/checks.sh is sourced by the test scripts, not run" >&2
  exit 2
fi

PASSED=0
FAILED=0
CHECKS_FINISHED=0
REQ_CURL=(curl -sS --max-time 10)

ok() {
  PASSED=$((PASSED + 1))
  echo "ok - ${CHECKS_PREFIX:-}$*"
}
not_ok() {
  FAILED=$((FAILED + 1))
  echo "not ok - ${CHECKS_PREFIX:-}$1: ${2:-failed}"
}
note() { echo "# $*"; }

pass() {
  PASSED=$((PASSED + 1))
  printf 'ok   %s\n' "$1"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s\n' "$1"
  [[ $# -ge 2 && -n "$2" ]] && printf '%s\n' "$2" | sed 's/^/       /' | head -n 40
  return 0
}

# run_counted LABEL CMD...: run a helper that prints ok/not ok lines; add its lines to the counters.
# When it exits non-zero without a `not ok` line of its own, that is one failure (LABEL, with the
# end of its stderr); when it printed one, the end of its stderr is shown as a note.
run_counted() {
  local label=$1
  shift
  local out=$TMP/counted.$RANDOM rc=0 p f
  "$@" >"$out" 2>"$out.err" || rc=$?
  cat "$out"
  p=$(grep -c '^ok - ' "$out" || true)
  f=$(grep -c '^not ok - ' "$out" || true)
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    not_ok "$label" "exit $rc: $(tail -n 15 "$out.err" | tr '\n' ' ')"
  elif [[ $rc -ne 0 && -s "$out.err" ]]; then
    note "$label stderr (last lines):"
    tail -n 15 "$out.err" | sed 's/^/#   /'
  fi
}

checks_summary() { echo "${CHECKS_SUMMARY_PREFIX:-}$PASSED passed, $FAILED failed"; }

# finish: the closing line; exit 0 when nothing failed and something passed (or CHECKS_EMPTY_OK=1
# and nothing ran at all), else 1.
finish() {
  CHECKS_FINISHED=1
  if [[ $FAILED -gt 0 ]] && declare -F checks_on_failure >/dev/null; then checks_on_failure; fi
  if declare -F checks_on_finish >/dev/null; then checks_on_finish; fi
  checks_summary
  if [[ $FAILED -eq 0 && ($PASSED -gt 0 || "${CHECKS_EMPTY_OK:-}" == 1) ]]; then exit 0; fi
  exit 1
}

# fatal NAME WHY: a failed setup step that ends the whole run.
fatal() {
  not_ok "$1" "$2"
  finish
}

# checks_abort_report SCRIPT RC: for the script's EXIT trap. When finish was not reached (set -e or
# a signal ended the run), count that as a failure `SCRIPT: aborted (exit RC) near line
# $ABORT_LINE` (the script's ERR trap sets ABORT_LINE), run checks_on_failure, print the closing
# line and return 1: the script then exits 1. After finish it returns 0 and prints nothing.
checks_abort_report() {
  [[ $CHECKS_FINISHED -eq 0 ]] || return 0
  not_ok "$1" "aborted (exit $2) near line ${ABORT_LINE:-?}"
  if declare -F checks_on_failure >/dev/null; then checks_on_failure; fi
  checks_summary
  return 1
}

# free_ports [N]: N (default 1) distinct TCP ports on 127.0.0.1 that were free a moment ago
# (bound together with port 0, then released), on one line.
free_ports() {
  python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()' "${1:-1}"
}
free_port() { free_ports 1; }

stop_pid() { # stop_pid PID SIGNAL: signal, wait up to 5 s, then SIGKILL
  local pid=$1 sig=$2
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  # Only if still there: a process id that is gone may already name someone else's process.
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# stop_pidfiles FILE...: SIGTERM the process named in each non-empty pid file, wait up to 5 s for
# all of them, then SIGKILL those still there (a gone id may already name someone else's process).
stop_pidfiles() {
  local f alive
  for f in "$@"; do [[ -s "$f" ]] && kill "$(cat "$f")" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for f in "$@"; do [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for f in "$@"; do
    [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && kill -9 "$(cat "$f")" 2>/dev/null
  done
  return 0
}

# wait_health URL SECONDS [PID [CURL-ARG...]]: poll GET URL (1 s per request, every 0.1 s) until it
# answers 200 (returns 0) or SECONDS have passed (returns 1); with a PID, stop as soon as that
# process is gone (returns 2). HEALTH_CODE holds the last status seen ("" when there was none).
wait_health() {
  local url=$1 secs=$2 pid=${3:-}
  shift $(($# < 3 ? $# : 3))
  local deadline=$((SECONDS + secs))
  HEALTH_CODE=""
  while ((SECONDS < deadline)); do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    HEALTH_CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true)
    [[ "$HEALTH_CODE" == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

# req NAME CURL-ARGS...: one request with "${REQ_CURL[@]}" -> $STATUS (000: no answer), $HDRS (the
# response headers) and $BODY (the body; for an event stream, the data of its last event: the
# JSON-RPC response), files REQ_DIR/NAME.{headers,body.raw,body,err}.
req() {
  local name=$1 dir=${REQ_DIR:-$TMP}
  shift
  HDRS=$dir/$name.headers
  BODY=$dir/$name.body
  STATUS=$("${REQ_CURL[@]}" -o "$BODY.raw" -D "$HDRS" -w '%{http_code}' "$@" 2>"$dir/$name.err") || STATUS=${STATUS:-000}
  [[ "$STATUS" =~ ^[0-9]{3}$ ]] || STATUS=000
  if [[ "$(hdr Content-Type)" == text/event-stream* ]]; then
    { grep '^data:' "$BODY.raw" | tail -n 1 | sed 's/^data: \{0,1\}//'; } >"$BODY" || true
  else
    cp "$BODY.raw" "$BODY" 2>/dev/null || : >"$BODY"
  fi
}
# hdr NAME -> the last value of response header NAME (any case, CR stripped)
hdr() {
  { grep -i "^$1:" "$HDRS" 2>/dev/null || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//; s/ *$//'
}
# jqb EXPR: true when the jq expression EXPR is true on $BODY
jqb() { jq -e "$1" "$BODY" >/dev/null 2>&1; }
# what NAME -> the answer to request NAME in a few words, for a failure message
what() {
  local dir=${REQ_DIR:-$TMP} b e
  b=$(head -c 300 "$dir/$1.body.raw" 2>/dev/null | tr '\n\r' '  ')
  e=$(head -c 200 "$dir/$1.err" 2>/dev/null | tr '\n' ' ')
  echo "HTTP $STATUS, body: ${b:-<empty>}${e:+, curl: $e}"
}

# ensure_sdk_venv CACHE REQUIREMENTS: a Python venv in CACHE/venv with REQUIREMENTS (the official
# MCP SDK, scripts/interop/requirements.txt) installed; kept while that file is unchanged (its hash
# in CACHE/venv/.interop-stamp), made again otherwise. Output: a note when it installs, pip's errors.
ensure_sdk_venv() {
  local cache=$1 requirements=$2 stamp
  stamp=$(sha256sum "$requirements" | cut -c1-16)
  if [[ -x "$cache/venv/bin/python" && "$(cat "$cache/venv/.interop-stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  note "installing the Python SDK into $cache/venv"
  rm -rf "$cache/venv"
  mkdir -p "$cache"
  python3 -m venv "$cache/venv" &&
    "$cache/venv/bin/pip" install --disable-pip-version-check -q -r "$requirements" &&
    echo "$stamp" >"$cache/venv/.interop-stamp"
}

# ensure_npm DIR PKG@VERSION...: a private npm folder holding exactly these packages; the stamp
# file (the package list) makes later runs offline. npm gets 10 minutes at most.
ensure_npm() {
  local dir=$1
  shift
  local stamp="$*"
  if [[ -d "$dir/node_modules" && "$(cat "$dir/.interop-stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  note "installing $* into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && npm init -y >/dev/null && timeout 600 npm install --no-audit --no-fund --loglevel=error "$@" >/dev/null) &&
    echo "$stamp" >"$dir/.interop-stamp"
}
