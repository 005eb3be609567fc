#!/usr/bin/env bash
# /metrics with a real Prometheus and /status in a real browser:
#
#   bash scripts/ops_web_test.sh
#
# 1. tools: Debian's `prometheus` (with promtool) and `chromium`, installed with apt-get when
#    missing (root only; otherwise it fails saying what to install); playwright-core from npm into
#    the cache folder (REPO/.interop-cache/playwright) to drive Chromium;
# 2. `promtool check rules` on docs/alerts.example.yml and `promtool test rules` on
#    scripts/ops_web/alerts_test.yml (every alert fires where it should, and only there);
# 3. builds the debug binary (or CLAUDECRON_BIN) and starts `claudecron serve` on a free loopback
#    port with a temp data dir and a random token; scripts/ops_web/seed.py adds tasks over MCP
#    (an every-second task, a failing one, a paused one, one named <script>alert(1)</script>);
# 4. `promtool check metrics` on our /metrics; a Prometheus (as the current user, free loopback
#    port, generated scrape config with the token in a credentials file, 1 s scrape interval,
#    temp storage, the example alert rules loaded) scrapes it; the test queries Prometheus' HTTP
#    API until the run counter of the every-second task and the lateness histogram have grown,
#    checks `up`, the failed run's counter and that the rules were loaded;
#    /calendar.ics is parsed by Python's icalendar (PyPI, pinned in scripts/ops_web/requirements.txt,
#    in a cached venv) and checked by scripts/ops_web/ics_check.py;
# 5. scripts/ops_web/browser.mjs drives headless Chromium through the status page (login, task
#    list, a run's output, the <script> name inert, cookie flags, phone width); screenshots go to
#    REPO/target/ops-web-artifacts/ (gitignored) and their paths are printed; then
#    scripts/ops_web/consent.mjs drives the OAuth consent page of a second server with
#    oauth_enabled (renders under its CSP, the <script> client name inert, a wrong password
#    refused, the right one leads to the callback with code, state and iss; screenshots
#    oauth-consent-*.png in the same folder);
# 6. the same browser checks through nginx (Debian's nginx-light, installed when missing) with the
#    project's nginx.conf rendered by scripts/nginx/render.sh: https://127.0.0.1:PORT/cron/status
#    with a self-signed certificate, nginx's own security headers on top of ours; screenshots in
#    REPO/target/ops-web-artifacts/behind-nginx/;
# 7. prints `ok - ...` / `not ok - ...: why`, ends with `N passed, N failed`, exits non-zero when
#    anything failed. Takes about 30-60 s once the tools are installed.
#
# Environment: CLAUDECRON_BIN (use this binary), OPS_WEB_KEEP_TMP=1 (keep the temp dir).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
HERE=$REPO/scripts/ops_web
CACHE=${CLAUDECRON_INTEROP_CACHE:-$REPO/.interop-cache}
ARTIFACTS=$REPO/target/ops-web-artifacts
PLAYWRIGHT_PKG=playwright-core@1.65.1
STARTED_AT=$SECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-ops-web.XXXXXX")
SERVER_PID=""
OAUTH_PID=""
PROM_PID=""
NGINX_PID=""

# shellcheck disable=SC2317  # (called by finish and checks_abort_report when anything failed)
checks_on_failure() {
  local f
  for f in "$TMP/server.log" "$TMP/oauth/server.log" "$TMP/prometheus.log" "$TMP/nginx/error.log"; do
    [[ -s "$f" ]] || continue
    echo "# ---- $f (last 40 lines) ----"
    tail -n 40 "$f" | sed 's/^/#   /'
  done
}
# shellcheck disable=SC2317  # (called by finish)
checks_on_finish() { note "runtime $((SECONDS - STARTED_AT)) s"; }

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  local rc=$?
  stop_pid "$PROM_PID" TERM
  stop_pid "$NGINX_PID" TERM
  stop_pid "$SERVER_PID" TERM
  stop_pid "$OAUTH_PID" TERM
  checks_abort_report ops_web_test.sh "$rc" || rc=1
  if [[ -n "${OPS_WEB_KEEP_TMP:-}" ]]; then echo "# kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap 'ABORT_LINE=$LINENO' ERR
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------------
# 1. tools
# ------------------------------------------------------------------------------------------------
missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
for tool in curl python3 node npm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || fatal "setup: ${missing[*]}" "not installed, and only root may install it; run: sudo apt-get install ${missing[*]}"
  note "installing ${missing[*]} from Debian's packages (apt-get)"
  # 101: invoke-rc.d must not start prometheus' or nginx's own service.
  policy_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_created=1
  fi
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }; } >"$TMP/apt.log" 2>&1 ||
    { [[ $policy_created -eq 1 ]] && rm -f /usr/sbin/policy-rc.d; fatal "setup: apt-get install ${missing[*]}" "$(tail -n 15 "$TMP/apt.log" | tr '\n' ' ')"; }
  [[ $policy_created -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
fi
ensure_npm "$CACHE/playwright" "$PLAYWRIGHT_PKG" >"$TMP/npm.log" 2>&1 ||
  fatal "setup: npm install $PLAYWRIGHT_PKG" "$(tail -n 15 "$TMP/npm.log" | tr '\n' ' ')"
note "$(prometheus --version 2>&1 | head -n 1); $(/usr/bin/chromium --version 2>/dev/null | head -n 1); $PLAYWRIGHT_PKG"

# ------------------------------------------------------------------------------------------------
# 2. the alert rules
# ------------------------------------------------------------------------------------------------
if out=$(promtool check rules "$REPO/docs/alerts.example.yml" 2>&1); then
  ok "promtool check rules docs/alerts.example.yml"
else
  not_ok "promtool check rules docs/alerts.example.yml" "$(echo "$out" | tr '\n' ' ')"
fi
if out=$(cd "$HERE" && promtool test rules alerts_test.yml 2>&1); then
  ok "promtool test rules: every example alert fires where expected and only there"
else
  not_ok "promtool test rules scripts/ops_web/alerts_test.yml" "$(echo "$out" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------------------------------------
# 3. claudecron with tasks
# ------------------------------------------------------------------------------------------------
if [[ -n "${CLAUDECRON_BIN:-}" ]]; then
  BIN=$CLAUDECRON_BIN
else
  (cd "$REPO" && cargo build --quiet --bin claudecron) >"$TMP/build.log" 2>&1 ||
    fatal "build: cargo build" "$(tail -n 30 "$TMP/build.log" | tr '\n' ' ')"
  BIN=$REPO/target/debug/claudecron
fi
[[ -x "$BIN" ]] || fatal "setup: claudecron binary" "$BIN is not executable"
read -r PORT PROM_PORT < <(free_ports 2)
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
CAL_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
mkdir -p "$TMP/data" "$TMP/prom"
HOME=$TMP CLAUDECRON_DB_PATH=$TMP/data/tasks.db CLAUDECRON_PORT=$PORT CLAUDECRON_AUTH_TOKENS=$TOKEN \
  CLAUDECRON_CALENDAR_TOKEN=$CAL_KEY \
  "$BIN" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
BASE=http://127.0.0.1:$PORT
wait_health "$BASE/health" 30 "$SERVER_PID" || fatal "claudecron starts" "no 200 from /health (last: ${HEALTH_CODE:-none})"
XSS_RUN=$(python3 "$HERE/seed.py" "$BASE" "$TOKEN" 2>"$TMP/seed.err") ||
  fatal "seed tasks over MCP" "$(tr '\n' ' ' <"$TMP/seed.err")"
ok "claudecron serves on $BASE with 4 tasks (run $XSS_RUN of the <script> task done)"

# ------------------------------------------------------------------------------------------------
# 4. /metrics and a real Prometheus
# ------------------------------------------------------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/metrics")
[[ "$code" == 401 ]] && ok "/metrics without the token: 401" || not_ok "/metrics without the token" "answered $code, not 401"
curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" "$BASE/metrics" >"$TMP/metrics.txt"
if out=$(promtool check metrics <"$TMP/metrics.txt" 2>&1); then
  ok "promtool check metrics: our exposition is clean ($(grep -vc '^#' "$TMP/metrics.txt") samples)"
else
  not_ok "promtool check metrics" "$(echo "$out" | head -n 10 | tr '\n' ' ')"
fi

printf '%s' "$TOKEN" >"$TMP/scrape.token"
chmod 600 "$TMP/scrape.token"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/docs/alerts.example.yml
scrape_configs:
  - job_name: claudecron
    metrics_path: /metrics
    authorization:
      credentials_file: $TMP/scrape.token
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
PROM=http://127.0.0.1:$PROM_PORT
wait_health "$PROM/-/ready" 60 "$PROM_PID" || fatal "prometheus starts" "not ready within 60 s (last: ${HEALTH_CODE:-none})"
ok "prometheus runs as $(id -un) on $PROM"

# query EXPR: the first sample's value of an instant query ("" when there is none).
query() {
  curl -sS --max-time 5 -G "$PROM/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
# wait_query EXPR SECONDS: poll until EXPR has a sample (the expression does the comparing).
wait_query() {
  local deadline=$((SECONDS + $2)) v=""
  while ((SECONDS < deadline)); do
    v=$(query "$1")
    [[ -n "$v" ]] && { echo "$v"; return 0; }
    sleep 0.5
  done
  return 1
}
if v=$(wait_query 'up{job="claudecron"} == 1' 60); then ok "Prometheus scrapes /metrics with the token (up = $v)"; else
  not_ok "Prometheus scrapes /metrics" "up is not 1: $(curl -s "$PROM/api/v1/targets" | head -c 600)"
fi
first=$(query 'claudecron_runs_total{task="tick",status="success"}')
if v=$(wait_query "claudecron_runs_total{task=\"tick\",status=\"success\"} >= ${first:-0} + 3" 60); then
  ok "run counter of the every-second task grows in Prometheus (${first:-none} -> $v)"
else
  not_ok "run counter in Prometheus" "claudecron_runs_total{task=\"tick\",status=\"success\"} stayed at ${first:-none}"
fi
if v=$(wait_query 'claudecron_fire_lateness_seconds_count >= 3' 30); then
  p99=$(query 'histogram_quantile(0.99, sum by (le) (claudecron_fire_lateness_seconds_bucket))')
  # One query (one instant): the +Inf bucket equals the count.
  diff=$(query 'claudecron_fire_lateness_seconds_bucket{le="+Inf"} - ignoring(le) claudecron_fire_lateness_seconds_count')
  if [[ "$diff" == 0 && -n "$p99" ]]; then
    ok "lateness histogram in Prometheus: $v fires, p99 <= ${p99} s (histogram_quantile)"
  else
    not_ok "lateness histogram in Prometheus" "count $v, +Inf bucket minus count: ${diff:-none}, p99 ${p99:-none}"
  fi
else
  not_ok "lateness histogram in Prometheus" "claudecron_fire_lateness_seconds_count never reached 3"
fi
v=$(query 'claudecron_runs_total{task="fails",status="failed"}')
[[ "$v" == 1 ]] && ok "the failed run is counted (status=\"failed\")" || not_ok "failed run counted" "got '${v}'"
v=$(query 'claudecron_task_enabled{task="parked"}')
[[ "$v" == 0 ]] && ok "the paused task shows claudecron_task_enabled 0" || not_ok "paused task gauge" "got '${v}'"
v=$(query 'claudecron_task_last_success_timestamp_seconds{task="<script>alert(1)</script>"}')
[[ -n "$v" ]] && ok "a task name with <, >, ( and / is a label Prometheus reads back" || not_ok "odd task name as a label" "no series"
rules=$(curl -sS --max-time 5 "$PROM/api/v1/rules" | python3 -c 'import json,sys; print(len([r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]))' 2>/dev/null || echo 0)
[[ "$rules" == 6 ]] && ok "Prometheus loaded the 6 example alert rules" || not_ok "alert rules loaded" "$rules rules"
# A failure while Prometheus watches (the one before it started is its counter's first value,
# which increase() does not count).
python3 "$HERE/seed.py" "$BASE" "$TOKEN" run fails >/dev/null 2>"$TMP/seed.err" ||
  not_ok "run the failing task again" "$(tr '\n' ' ' <"$TMP/seed.err")"
v=$(wait_query 'ALERTS{alertname="ClaudecronTaskFailing",task="fails"}' 30) &&
  ok "ClaudecronTaskFailing is pending/firing for the failing task in the live Prometheus" ||
  not_ok "ClaudecronTaskFailing live" "no ALERTS series for task fails"

# The calendar feed, read by Python's icalendar parser.
if ensure_sdk_venv "$CACHE/icalendar" "$HERE/requirements.txt" >"$TMP/venv.log" 2>&1; then
  code=$(curl -sS --max-time 10 -o "$TMP/feed.ics" -w '%{http_code}' "$BASE/calendar.ics?key=$CAL_KEY")
  if [[ "$code" == 200 ]]; then
    run_counted "calendar" "$CACHE/icalendar/venv/bin/python" "$HERE/ics_check.py" "$TMP/feed.ics"
  else
    not_ok "GET /calendar.ics with its key" "answered $code"
  fi
  code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/calendar.ics?key=$TOKEN")
  [[ "$code" == 403 ]] && ok "/calendar.ics with the bearer token instead of its key: 403" || not_ok "calendar key" "answered $code"
else
  not_ok "setup: pip install icalendar" "$(tail -n 10 "$TMP/venv.log" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------------------------------------
# 5. the status page in Chromium
# ------------------------------------------------------------------------------------------------
rm -rf "$ARTIFACTS"
# An ES module finds its packages from its own folder (NODE_PATH does not apply): run a copy there.
cp "$HERE/browser.mjs" "$HERE/harness.mjs" "$CACHE/playwright/"
run_counted "browser" node "$CACHE/playwright/browser.mjs" "$BASE" "$TOKEN" "$XSS_RUN" "$ARTIFACTS"
# ------------------------------------------------------------------------------------------------
# 5b. the OAuth consent page (issue 12) in Chromium: a second server with oauth_enabled and an
#     owner password; a client registered under the name <script>alert(1)</script>
# ------------------------------------------------------------------------------------------------
OAUTH_PORT=$(free_ports 1)
OAUTH_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
mkdir -p "$TMP/oauth"
OAUTH_HASH=$(printf '%s\n' "$OAUTH_PASSWORD" | HOME=$TMP "$BIN" oauth set-password --print --db "$TMP/oauth/hash.db" 2>/dev/null) ||
  fatal "claudecron oauth set-password --print" "no hash"
HOME=$TMP CLAUDECRON_DB_PATH=$TMP/oauth/tasks.db CLAUDECRON_PORT=$OAUTH_PORT CLAUDECRON_AUTH_TOKENS=$TOKEN \
  CLAUDECRON_OAUTH_ENABLED=true CLAUDECRON_PUBLIC_URL="http://127.0.0.1:$OAUTH_PORT" \
  CLAUDECRON_OAUTH_PASSWORD_HASH="$OAUTH_HASH" "$BIN" serve >"$TMP/oauth/server.log" 2>&1 &
OAUTH_PID=$!
OBASE=http://127.0.0.1:$OAUTH_PORT
if wait_health "$OBASE/health" 30 "$OAUTH_PID"; then
  CALLBACK=http://127.0.0.1:$(free_ports 1)/callback
  client=$(curl -sS --max-time 10 -X POST "$OBASE/register" -H "Content-Type: application/json" \
    -d "{\"redirect_uris\":[\"$CALLBACK\"],\"client_name\":\"<script>alert(1)</script>\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' 2>/dev/null || true)
  if [[ -n "$client" ]]; then
    authorize="$OBASE/authorize?response_type=code&client_id=$client&redirect_uri=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$CALLBACK")&state=chromium-state&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    cp "$HERE/consent.mjs" "$HERE/harness.mjs" "$CACHE/playwright/"
    run_counted "consent page" node "$CACHE/playwright/consent.mjs" "$authorize" "$CALLBACK" "$OAUTH_PASSWORD" "$ARTIFACTS"
  else
    not_ok "register an OAuth client named <script>alert(1)</script>" "no client_id"
  fi
  if grep -qF -e "$OAUTH_PASSWORD" -e ccac_ "$TMP/oauth/server.log"; then
    not_ok "the OAuth server log holds no password and no code" "it does"
  else
    ok "the OAuth server log holds no password and no code"
  fi
else
  not_ok "claudecron with oauth_enabled starts" "no 200 from $OBASE/health: $(tail -n 5 "$TMP/oauth/server.log" | tr '\n' ' ')"
fi
stop_pid "$OAUTH_PID" TERM
OAUTH_PID=""

# ------------------------------------------------------------------------------------------------
# 6. the same in Chromium through nginx with the project's nginx.conf (prefix /cron, TLS, nginx's
#    own security headers on top of ours)
# ------------------------------------------------------------------------------------------------
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$TMP/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$TMP/nginx/key.pem" -out "$TMP/nginx/cert.pem" >"$TMP/nginx/openssl.log" 2>&1 ||
  fatal "self-signed certificate" "$(tail -n 5 "$TMP/nginx/openssl.log" | tr '\n' ' ')"
read -r HTTP_PORT HTTPS_PORT < <(free_ports 2)
bash "$REPO/scripts/nginx/render.sh" --server-name 127.0.0.1 --http-listen "127.0.0.1:$HTTP_PORT" \
  --https-listen "127.0.0.1:$HTTPS_PORT" --cert "$TMP/nginx/cert.pem" --key "$TMP/nginx/key.pem" \
  --upstream-port "$PORT" -o "$TMP/nginx/site.conf" 2>"$TMP/nginx/render.err" ||
  fatal "render nginx.conf" "$(tr '\n' ' ' <"$TMP/nginx/render.err")"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root $(id -gn root);"
temp_paths=""
for m in client_body proxy fastcgi uwsgi scgi; do
  if [[ "$m" != client_body ]] && "$NGINX_BIN" -V 2>&1 | grep -q -- "--without-http_${m}_module"; then continue; fi
  mkdir -p "$TMP/nginx/$m" && temp_paths+="${m}_temp_path $TMP/nginx/$m; "
done
printf '%s\n' "$user_line" "worker_processes 1;" "daemon off;" "pid $TMP/nginx/nginx.pid;" \
  "error_log $TMP/nginx/error.log notice;" "events { worker_connections 256; }" \
  "http { access_log off; $temp_paths include $TMP/nginx/site.conf; }" >"$TMP/nginx/nginx.conf"
"$NGINX_BIN" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/run.log" 2>&1 &
NGINX_PID=$!
SITE=https://127.0.0.1:$HTTPS_PORT/cron
if wait_health "$SITE/health" 30 "$NGINX_PID" -k; then
  ok "nginx (the project's nginx.conf) serves claudecron on $SITE"
  run_counted "browser via nginx" node "$CACHE/playwright/browser.mjs" "$SITE" "$TOKEN" "$XSS_RUN" \
    "$ARTIFACTS/behind-nginx" "browser via nginx"
else
  not_ok "nginx in front" "no 200 from $SITE/health: $(tail -n 5 "$TMP/nginx/error.log" "$TMP/nginx/run.log" 2>/dev/null | tr '\n' ' ')"
fi
if grep -q "$TOKEN" "$TMP/server.log"; then not_ok "the token never reaches the server log" "it does"; else ok "the token never reaches the server log"; fi
finish
