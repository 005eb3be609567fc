# shellcheck shell=bash
# Sourced by scripts/interop.sh: the seed plan's curl call plus the negative table.
# Uses from the caller: ok, not_ok, $TMP, and the arguments of curl_table.
#
#   curl_table PORT TOKEN OTHER_TOKEN
#
# Every request goes to 127.0.0.1:PORT, with a 10 s limit. Each negative check keeps the request
# valid except for the one thing under test, so the status can only come from that rule.

PROTO=2025-11-25
INIT_BODY='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
LIST_BODY='{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}'

# req NAME CURL-ARGS... -> STATUS, and files $HDRS (response headers) and $BODY (body; for an SSE
# answer, the data of its last event, so that jq can read the JSON-RPC message).
req() {
  local name=$1
  shift
  mkdir -p "$TMP/curl"
  HDRS=$TMP/curl/$name.headers
  BODY=$TMP/curl/$name.body
  STATUS=$(curl -sS -o "$BODY.raw" -D "$HDRS" -w '%{http_code}' --max-time 10 "$@" 2>"$TMP/curl/$name.err") || STATUS=${STATUS:-000}
  if [[ "$(hdr Content-Type)" == text/event-stream* ]]; then
    { grep '^data:' "$BODY.raw" | tail -n 1 | sed 's/^data: \{0,1\}//'; } >"$BODY" || true
  else
    cp "$BODY.raw" "$BODY"
  fi
}

# hdr NAME -> value of the response header NAME (last one if repeated; CR stripped)
hdr() {
  { grep -i "^$1:" "$HDRS" 2>/dev/null || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//; s/ *$//'
}

# jqb EXPR -> success when EXPR is true on the body
jqb() { jq -e "$1" "$BODY" >/dev/null 2>&1; }

# what NAME -> short description of the last response for failure messages
what() {
  local b
  b=$(head -c 300 "$BODY.raw" 2>/dev/null | tr '\n\r' '  ')
  local e
  e=$(head -c 200 "$TMP/curl/$1.err" 2>/dev/null | tr '\n' ' ')
  echo "HTTP $STATUS, Content-Type '$(hdr Content-Type)', body: ${b:-<empty>}${e:+, curl: $e}"
}

is_json_body() { jq -e 'type == "object" or type == "array"' "$BODY" >/dev/null 2>&1; }

# expect_status CHECK-NAME REQ-NAME WANT [extra jq condition] [extra description]
# Error statuses (>= 400) must also come with a JSON body (SPEC section 2: every error body is JSON).
expect_status() {
  local check=$1 name=$2 want=$3 cond=${4:-} desc=${5:-}
  if [[ "$STATUS" != "$want" ]]; then
    not_ok "$check" "want HTTP $want; got $(what "$name")"
  elif [[ "$want" -ge 400 ]] && ! is_json_body; then
    not_ok "$check" "HTTP $want but the body is not JSON: $(what "$name")"
  elif [[ -n "$cond" ]] && ! jqb "$cond"; then
    not_ok "$check" "HTTP $want but body fails ${desc:-$cond}: $(what "$name")"
  else
    ok "$check"
  fi
}

# new_session NAME -> NEW_SID = the MCP-Session-Id of a fresh, initialized session (empty on failure)
new_session() {
  local name=$1 sid
  req "$name" -X POST "$URL" "${JSON_H[@]}" -H "Authorization: Bearer $TOKEN" -d "$INIT_BODY"
  sid=$(hdr MCP-Session-Id)
  NEW_SID=$sid
  if [[ -n "$sid" ]]; then
    req "$name-initialized" -X POST "$URL" "${JSON_H[@]}" -H "Authorization: Bearer $TOKEN" \
      -H "MCP-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO" \
      -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  fi
}

curl_table() {
  local port=$1
  TOKEN=$2
  local other_token=$3
  BASE=http://127.0.0.1:$port
  URL=$BASE/mcp
  JSON_H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream")

  # -- the seed plan's call, exactly ---------------------------------------------------------------
  # curl -X POST http://127.0.0.1:PORT/mcp -H ... (req adds only -sS -o -D -w --max-time)
  req init -X POST "http://127.0.0.1:$port/mcp" -H "Content-Type: application/json" \
    -H "Accept: application/json, text/event-stream" -H "Authorization: Bearer $TOKEN" \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  local sid
  sid=$(hdr MCP-Session-Id)
  if [[ "$STATUS" == 200 ]] && jqb '.result.protocolVersion == "2025-11-25"' && [[ -n "$sid" ]]; then
    ok "curl initialize (seed plan): 200, protocolVersion 2025-11-25, MCP-Session-Id"
  else
    not_ok "curl initialize (seed plan)" "want 200 + result.protocolVersion 2025-11-25 + MCP-Session-Id; got $(what init), session id '${sid}'"
  fi
  if [[ -n "$sid" ]] && LC_ALL=C grep -Eq '^[!-~]{22,}$' <<<"$sid"; then
    ok "session id is visible ASCII, >= 22 chars (128+ bits)"
  else
    not_ok "session id is visible ASCII, >= 22 chars (128+ bits)" "got '${sid}'"
  fi
  if jqb '.result.capabilities.tools and .result.capabilities.logging and (.result.serverInfo.name | type == "string")'; then
    ok "initialize result declares tools + logging capabilities and serverInfo"
  else
    not_ok "initialize result declares tools + logging capabilities and serverInfo" "$(what init)"
  fi
  local AUTH_H=(-H "Authorization: Bearer $TOKEN")
  local SESS_H=(-H "MCP-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO")

  # notification -> 202, no body
  req notif -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  if [[ "$STATUS" == 202 && ! -s "$BODY.raw" ]]; then
    ok "notification (notifications/initialized) -> 202, no body"
  else
    not_ok "notification (notifications/initialized) -> 202, no body" "$(what notif)"
  fi

  # the session works
  req list -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" -d "$LIST_BODY"
  expect_status "tools/list on the session -> 200 with claudecron_add_task" list 200 \
    '[.result.tools[].name] | index("claudecron_add_task") != null' "tools list contains claudecron_add_task"
  req ping -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" -d '{"jsonrpc":"2.0","id":3,"method":"ping"}'
  expect_status "ping -> 200 with result {}" ping 200 '.id == 3 and .result == {}' "result {}"

  # -- negative table -------------------------------------------------------------------------------
  req origin -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "Origin: http://evil.example.com" -d "$INIT_BODY"
  expect_status "bad Origin (http://evil.example.com) -> 403" origin 403

  req host -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "Host: evil.example.com" -d "$INIT_BODY"
  expect_status "bad Host (evil.example.com) -> 403" host 403

  req notoken -X POST "$URL" "${JSON_H[@]}" -d "$INIT_BODY"
  local wa
  wa=$(hdr WWW-Authenticate)
  if [[ "$STATUS" == 401 && "$wa" == Bearer* && "$wa" != *resource_metadata* ]] && is_json_body; then
    ok "no token -> 401 + WWW-Authenticate: Bearer (no resource_metadata), JSON body"
  else
    not_ok "no token -> 401 + WWW-Authenticate: Bearer" "WWW-Authenticate '$wa'; $(what notoken)"
  fi

  req badtoken -X POST "$URL" "${JSON_H[@]}" -H "Authorization: Bearer wrong-$TOKEN" -d "$INIT_BODY"
  expect_status "wrong token -> 401" badtoken 401

  req badtoken-sess -X POST "$URL" "${JSON_H[@]}" -H "Authorization: Bearer wrong-$TOKEN" "${SESS_H[@]}" -d "$LIST_BODY"
  expect_status "wrong token on a live session -> 401" badtoken-sess 401

  if [[ -n "$other_token" ]]; then
    req othertoken -X POST "$URL" "${JSON_H[@]}" -H "Authorization: Bearer $other_token" "${SESS_H[@]}" -d "$LIST_BODY"
    if [[ "$STATUS" =~ ^(401|403|404)$ ]] && is_json_body; then
      ok "session answers only to the token that opened it (other valid token -> $STATUS)"
    else
      not_ok "session answers only to the token that opened it" "want 401/403/404 for another valid token; got $(what othertoken)"
    fi
  fi

  req nosession -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: $PROTO" -d "$LIST_BODY"
  expect_status "tools/list without MCP-Session-Id -> 400" nosession 400

  req unknownsession -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: $PROTO" \
    -H "MCP-Session-Id: 0123456789abcdef0123456789abcdef-unknown" -d "$LIST_BODY"
  expect_status "unknown session id -> 404" unknownsession 404

  req badversion -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Session-Id: $sid" \
    -H "MCP-Protocol-Version: 1999-01-01" -d "$LIST_BODY"
  expect_status "MCP-Protocol-Version 1999-01-01 -> 400 -32022 naming the supported versions" badversion 400 \
    '.error.code == -32022 and (.error.data.supported | index("2025-11-25")) != null' "code -32022 with data.supported"

  local v
  for v in 2024-11-05 2025-03-26 2025-06-18; do
    req "version-$v" -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Session-Id: $sid" \
      -H "MCP-Protocol-Version: $v" -d "$LIST_BODY"
    expect_status "MCP-Protocol-Version $v accepted (header leniency) -> 200" "version-$v" 200 '.result.tools | type == "array"' "a tools array"
  done

  req batch -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" \
    -d '[{"jsonrpc":"2.0","id":10,"method":"ping"},{"jsonrpc":"2.0","id":11,"method":"ping"}]'
  expect_status "batch array -> 400 with error -32600" batch 400 '.error.code == -32600' "error.code == -32600"

  req badjson -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" -d '{"jsonrpc":"2.0","id":12,"method":'
  expect_status "invalid JSON -> 400 with error -32700, id null" badjson 400 '.error.code == -32700 and has("id") and .id == null' "error.code == -32700 and id null"

  req unknownmethod -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" -d '{"jsonrpc":"2.0","id":13,"method":"no/such_method"}'
  expect_status "unknown method -> 200 with error -32601" unknownmethod 200 '.id == 13 and .error.code == -32601' "error.code == -32601"

  req textplain -X POST "$URL" -H "Content-Type: text/plain" -H "Accept: application/json, text/event-stream" \
    "${AUTH_H[@]}" "${SESS_H[@]}" -d "$LIST_BODY"
  expect_status "Content-Type text/plain -> 415" textplain 415

  # oversized body: 1.1 MiB of valid JSON (max_body_bytes defaults to 1 MiB)
  local big=$TMP/curl/big.json
  mkdir -p "$TMP/curl"
  {
    printf '{"jsonrpc":"2.0","id":14,"method":"tools/list","params":{"pad":"'
    head -c 1153434 /dev/zero | tr '\0' 'x'
    printf '"}}'
  } >"$big"
  req big -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" --data-binary "@$big"
  expect_status "1.1 MiB body -> 413" big 413

  # 2026-07-28: server/discover with the per-request envelope answers natively (dual era)
  local meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
  req discover -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: 2026-07-28" \
    -H "Mcp-Method: server/discover" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{$meta}}"
  expect_status "2026-07-28 server/discover -> 200 with supportedVersions, resultType, ttlMs" discover 200 \
    '.result.supportedVersions[0] == "2026-07-28" and .result.resultType == "complete" and (.result.ttlMs | type == "number") and (.result.capabilities.extensions | has("io.modelcontextprotocol/tasks"))' \
    "supportedVersions/resultType/ttlMs/tasks extension"
  if [[ -z "$(hdr MCP-Session-Id)" ]]; then ok "2026-07-28 answers mint no session"; else not_ok "2026-07-28 answers mint no session" "MCP-Session-Id: $(hdr MCP-Session-Id)"; fi
  # ... without the envelope: 400 -32602; Mcp-Method disagreeing with the body: 400 -32020
  req probe -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: 2026-07-28" \
    -H "Mcp-Method: server/discover" -d '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}'
  expect_status "2026-07-28 request without params._meta -> 400 -32602" probe 400 '.error.code == -32602' "code -32602"
  req mismatch -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: 2026-07-28" \
    -H "Mcp-Method: tools/call" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{$meta}}"
  expect_status "2026-07-28 Mcp-Method header != body method -> 400 -32020" mismatch 400 '.error.code == -32020' "code -32020"
  req modernping -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Protocol-Version: 2026-07-28" \
    -H "Mcp-Method: ping" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{$meta}}"
  expect_status "2026-07-28 ping (removed) -> 404 -32601" modernping 404 '.error.code == -32601' "code -32601"

  req put -X PUT "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" "${SESS_H[@]}" -d "$LIST_BODY"
  local allow
  allow=$(hdr Allow)
  if [[ "$STATUS" == 405 && -n "$allow" ]] && is_json_body; then
    ok "PUT /mcp -> 405 with Allow ($allow)"
  else
    not_ok "PUT /mcp -> 405 with Allow" "Allow '$allow'; $(what put)"
  fi

  # DELETE ends a session; the id is then unknown
  local sid2
  new_session init2
  sid2=$NEW_SID
  if [[ -z "$sid2" ]]; then
    not_ok "DELETE session -> 2xx" "could not open a second session: $(what init2)"
  else
    req delete -X DELETE "$URL" "${AUTH_H[@]}" -H "MCP-Session-Id: $sid2" -H "MCP-Protocol-Version: $PROTO"
    if [[ "$STATUS" =~ ^(200|204)$ ]]; then ok "DELETE session -> $STATUS"; else not_ok "DELETE session -> 200/204" "$(what delete)"; fi
    req afterdelete -X POST "$URL" "${JSON_H[@]}" "${AUTH_H[@]}" -H "MCP-Session-Id: $sid2" \
      -H "MCP-Protocol-Version: $PROTO" -d "$LIST_BODY"
    expect_status "request on a deleted session -> 404" afterdelete 404
  fi

  # -- plain HTTP endpoints ------------------------------------------------------------------------------
  req health "$BASE/health"
  expect_status "GET /health -> 200 {\"status\":\"ok\"}" health 200 '.status == "ok"' 'status == "ok"'

  req root "$BASE/"
  expect_status "GET / -> 200 JSON" root 200 'type == "object"' "a JSON object"
  if grep -qF -- "$TOKEN" "$BODY.raw" 2>/dev/null; then
    not_ok "GET / does not reveal the token" "the token appears in the body"
  else
    ok "GET / does not reveal the token"
  fi

  req nopath "$BASE/no/such/path"
  expect_status "unknown path -> 404 JSON" nopath 404
}
