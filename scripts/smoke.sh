#!/usr/bin/env bash
# Smoke test of a running claudecron, direct or behind nginx:
#
#   scripts/smoke.sh URL [TOKEN]
#
#   URL    the server's base URL: http://127.0.0.1:3010 (direct) or https://HOST/cron (nginx);
#          a trailing / or /mcp is ignored.
#   TOKEN  a bearer token; when omitted, $CLAUDECRON_TOKEN. (On the server: `claudecron token`.)
#
# Checks, in order: GET URL/health is 200 {"status":"ok"}; the curl `initialize` of the setup
# guide (protocolVersion 2025-11-25) answers 200 with an MCP-Session-Id header;
# notifications/initialized is 202; tools/list has the task tools; a bash task is added
# (claudecron_add_task, manual trigger), run (claudecron_run_task with wait_seconds: success,
# exit 0, its output; with require_approval on, the run is refused as pending_approval instead)
# and deleted (claudecron_delete_task); the session is closed (DELETE).
# Prints `ok - smoke: ...` / `not ok - smoke: ...: why` per check; exits 0 only when all passed.
#
# Environment:
#   SMOKE_INSECURE=1    accept a self-signed / unverifiable TLS certificate (curl -k)
#   CURL_CA_BUNDLE=FILE verify TLS against this CA file instead (read by curl itself)
#   SMOKE_TIMEOUT       seconds per request (default 30; the run itself may take up to 20)
#
# Needs curl and jq. The token is handed to curl in a 0600 temp file, never on its command line.
set -uo pipefail

# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
CHECKS_PREFIX="smoke: "          # ok - smoke: ... / not ok - smoke: ...: why
CHECKS_SUMMARY_PREFIX="# smoke: " # a comment line inside the suite that runs this one

PROTO=2025-11-25
TIMEOUT=${SMOKE_TIMEOUT:-30}

usage() {
  echo "usage: $0 URL [TOKEN]   (e.g. $0 https://cron.example.com/cron \"\$(claudecron token)\")" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
case "$1" in -h | --help) usage ;; esac
BASE=${1%/}
BASE=${BASE%/mcp}
TOKEN=${2:-${CLAUDECRON_TOKEN:-}}
[[ "$BASE" == http://* || "$BASE" == https://* ]] || {
  echo "smoke.sh: URL must start with http:// or https:// (got '$1')" >&2
  exit 2
}
[[ -n "$TOKEN" ]] || {
  echo "smoke.sh: no token: pass it as the second argument or set CLAUDECRON_TOKEN" >&2
  exit 2
}
for tool in curl jq; do
  command -v "$tool" >/dev/null || fatal "setup" "$tool is not installed (Debian: apt-get install $tool)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-smoke.XXXXXX")
SID=""
TASK=""
PENDING=false
# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  # A check failed between add and delete: do not leave the smoke task behind.
  if [[ -n "$TASK" && -n "$SID" ]]; then
    call_tool cleanup claudecron_delete_task "$(jq -cn --arg t "$TASK" '{taskId: $t}')" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

AUTH_FILE=$TMP/auth.header
(umask 077 && printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_FILE")
# req NAME CURL-ARGS... -> $STATUS, files $TMP/NAME.{headers,body.raw,body}; hdr, jqb, what:
# scripts/lib/checks.sh
REQ_CURL=(curl -sS --max-time "$TIMEOUT")
[[ "${SMOKE_INSECURE:-}" == 1 || "${SMOKE_INSECURE:-}" == true ]] && REQ_CURL+=(-k)

JSON_H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream")
# post NAME JSON-BODY: a JSON-RPC POST on the session
post() {
  req "$1" -X POST "$BASE/mcp" "${JSON_H[@]}" -H @"$AUTH_FILE" \
    -H "MCP-Session-Id: $SID" -H "MCP-Protocol-Version: $PROTO" -d "$2"
}
# call_tool NAME TOOL ARGS-JSON: tools/call; success when HTTP 200 and the result is not isError
NEXT_ID=10
call_tool() {
  NEXT_ID=$((NEXT_ID + 1))
  post "$1" "$(jq -cn --argjson id "$NEXT_ID" --arg n "$2" --argjson a "$3" \
    '{jsonrpc: "2.0", id: $id, method: "tools/call", params: {name: $n, arguments: $a}}')"
  [[ "$STATUS" == 200 ]] && jqb '.result and (.result.isError | not)'
}

echo "# smoke: $BASE"

# 1. health (no token)
req health "$BASE/health"
if [[ "$STATUS" == 200 ]] && jqb '.status == "ok"'; then
  ok "GET /health -> 200 status ok (version $(jq -r '.version // "?"' "$BODY"))"
else
  not_ok "GET /health -> 200 status ok" "$(what health)"
fi

# 2. the setup guide's curl initialize
req init -X POST "$BASE/mcp" -H "Content-Type: application/json" \
  -H "Accept: application/json, text/event-stream" -H @"$AUTH_FILE" \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
SID=$(hdr MCP-Session-Id)
if [[ "$STATUS" == 200 ]] && jqb '.result.protocolVersion == "2025-11-25"' && [[ -n "$SID" ]]; then
  ok "initialize -> 200, protocolVersion 2025-11-25, MCP-Session-Id header"
else
  not_ok "initialize -> 200, protocolVersion 2025-11-25, MCP-Session-Id header" "$(what init), session id '${SID}'"
  [[ "$STATUS" == 401 ]] && echo "# smoke: 401: the token is not one the server accepts (claudecron token)"
  [[ "$STATUS" == 403 ]] && echo "# smoke: 403: Host or Origin not allowed: set public_url (or allowed_hosts) on the server"
  finish
fi

# 3. initialized
post initialized '{"jsonrpc":"2.0","method":"notifications/initialized"}'
if [[ "$STATUS" == 202 ]]; then ok "notifications/initialized -> 202"; else not_ok "notifications/initialized -> 202" "$(what initialized)"; fi

# 4. tools/list
post list '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}'
# shellcheck disable=SC2016  # $n is a jq variable
if [[ "$STATUS" == 200 ]] && jqb '[.result.tools[].name] as $n | all("claudecron_add_task", "claudecron_run_task", "claudecron_delete_task", "claudecron_list_tasks"; IN($n[]))'; then
  ok "tools/list -> $(jq '.result.tools | length' "$BODY") tools incl. add_task, run_task, delete_task"
else
  not_ok "tools/list has the task tools" "$(what list)"
fi

# 5-7. add, run (waiting), delete a bash task
MARK=smoke-$(date +%s)-$RANDOM
if call_tool add claudecron_add_task "$(jq -cn --arg n "$MARK" \
  '{name: $n, type: "bash", trigger: {type: "manual"}, command: ("echo " + $n + "-ran"), description: "scripts/smoke.sh (deleted at once)"}')"; then
  TASK=$MARK
  PENDING=$(jq -r '.result.structuredContent.task.pending_approval // false' "$BODY")
  ok "claudecron_add_task $MARK (bash, manual)"
else
  not_ok "claudecron_add_task $MARK" "$(what add)"
fi
if [[ -n "$TASK" && "$PENDING" == true ]]; then
  # require_approval is on (the production example): the model's task must not run before the
  # owner approves it on the host, so the check is that the run is refused, naming the way out.
  if post run "$(jq -cn --arg t "$TASK" '{jsonrpc: "2.0", id: 90, method: "tools/call", params: {name: "claudecron_run_task", arguments: {taskId: $t}}}')" &&
    jqb '.result.isError == true and (.result.content[0].text | contains("pending_approval") and contains("claudecron approve"))'; then
    ok "require_approval: the new task is pending_approval and claudecron_run_task is refused (approve on the host)"
  else
    not_ok "require_approval: a run of a pending task is refused" "$(what run)"
  fi
elif [[ -n "$TASK" ]]; then
  if call_tool run claudecron_run_task "$(jq -cn --arg t "$TASK" '{taskId: $t, wait_seconds: 20}')" &&
    jq -e --arg m "$MARK-ran" '.result.structuredContent.run |
      .status == "success" and .exit_code == 0 and ((.output // "") | contains($m))' "$BODY" >/dev/null 2>&1; then
    ok "claudecron_run_task wait_seconds=20 -> success, exit 0, output '$MARK-ran' ($(jq -r '.result.structuredContent.run.duration_ms // "?"' "$BODY") ms)"
  else
    not_ok "claudecron_run_task wait_seconds=20 -> success with the task's output" "$(what run)"
  fi
fi
if [[ -n "$TASK" ]]; then
  if call_tool delete claudecron_delete_task "$(jq -cn --arg t "$TASK" '{taskId: $t}')"; then
    TASK=""
    ok "claudecron_delete_task $MARK"
  else
    not_ok "claudecron_delete_task $MARK" "$(what delete)"
  fi
fi

# 8. end the session
req end -X DELETE "$BASE/mcp" -H @"$AUTH_FILE" -H "MCP-Session-Id: $SID" -H "MCP-Protocol-Version: $PROTO"
if [[ "$STATUS" == 200 || "$STATUS" == 204 ]]; then
  ok "DELETE /mcp ends the session ($STATUS)"
  SID=""
else
  not_ok "DELETE /mcp ends the session" "$(what end)"
fi

finish
