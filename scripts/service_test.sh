#!/usr/bin/env bash
# Tests of the service kit: claudecron.service, config.example.toml, scripts/install.sh and
# scripts/deploy.sh. Standalone: `bash scripts/service_test.sh`; scripts/test.sh calls it.
#
#   1. install.sh into a DESTDIR: the files, their modes and contents; no useradd, chown or
#      systemctl outside it; a second run keeps an edited config and repairs a changed unit
#   2. `systemd-analyze verify` of the unit exactly as install.sh placed it (DESTDIR as --root,
#      with the host's own units copied in for the dependencies), and a broken copy must fail
#      (so the check can fail); `systemd-analyze security --offline` exposure ≤ 2.0
#   3. `claudecron check --config config.example.toml` (db_path etc. pointed at a temp dir by
#      CLAUDECRON_* variables) accepts the example, with its commented-out keys too; every key
#      of src/config/mod.rs KEYS is documented in the example
#   4. deploy.sh through ssh/scp shims against a local stand-in "remote" (a temp directory;
#      install.sh runs there under DESTDIR; a fake systemctl's `restart` starts the installed
#      binary on a free 127.0.0.1 port): build → copy → install → restart → health in that order
#      and exit 0; with /health on a dead port it fails loudly (non-zero, message, journal shown)
#   5. scripts/service/boot_test.sh: the same kit under a real systemd booted in private
#      namespaces (install for real, Type=notify, tasks under the sandbox, the sudo and path-unit
#      recipes, stop and restart); skipped with a reason where it cannot run
#
# Needs bash, coreutils, curl, python3 (free ports), cargo (or CLAUDECRON_BIN=path to a built
# binary) and systemd-analyze (installed from Debian's `systemd` package when absent and running
# as root).
# Only 127.0.0.1; every wait is bounded; everything it starts is stopped. Ends with the line
# "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-service-test.XXXXXX")
START_TIME=$SECONDS
PIDFILES=()

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  stop_pidfiles "${PIDFILES[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mode_of() { stat -c '%a' "$1" 2>/dev/null || echo missing; }
section() { printf '\n== %s\n' "$*"; }

# --- the binary -----------------------------------------------------------------------------
section "binary"
if [[ -n "${CLAUDECRON_BIN:-}" ]]; then
  BIN=$CLAUDECRON_BIN
else
  if ! (cd "$REPO" && timeout 600 cargo build --quiet --bin claudecron) >"$TMP/build.log" 2>&1; then
    fail "cargo build --bin claudecron" "$(tail -n 30 "$TMP/build.log")"
    echo
    finish
  fi
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/claudecron
fi
if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  pass "binary $BIN runs ($("$BIN" --version))"
else
  fail "binary $BIN runs"
  echo
  finish
fi

# --- 1. install.sh into a DESTDIR -----------------------------------------------------------
section "install.sh (DESTDIR)"
ROOT=$TMP/root
# Stand-ins for the commands install.sh must not run under DESTDIR: each logs its call.
GUARD=$TMP/guard-bin
mkdir -p "$GUARD"
for cmd in useradd groupadd chown runuser systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/guard.log"\nexit 0\n' "$cmd" "$TMP" >"$GUARD/$cmd"
  chmod +x "$GUARD/$cmd"
done
: >"$TMP/guard.log"
user_before=$(getent passwd claudecron || true)

if DESTDIR=$ROOT PATH="$GUARD:$PATH" bash "$REPO/scripts/install.sh" --binary "$BIN" \
  >"$TMP/install1.log" 2>&1; then
  pass "install.sh into DESTDIR exits 0"
else
  fail "install.sh into DESTDIR exits 0" "$(cat "$TMP/install1.log")"
fi
[[ "$(mode_of "$ROOT/usr/local/bin/claudecron")" == 755 ]] && cmp -s "$BIN" "$ROOT/usr/local/bin/claudecron" &&
  pass "binary installed at /usr/local/bin/claudecron, mode 0755" ||
  fail "binary installed at /usr/local/bin/claudecron, mode 0755" "mode $(mode_of "$ROOT/usr/local/bin/claudecron")"
[[ "$(mode_of "$ROOT/etc/systemd/system/claudecron.service")" == 644 ]] &&
  cmp -s "$REPO/claudecron.service" "$ROOT/etc/systemd/system/claudecron.service" &&
  pass "unit installed at /etc/systemd/system/claudecron.service, mode 0644" ||
  fail "unit installed at /etc/systemd/system/claudecron.service, mode 0644" \
    "mode $(mode_of "$ROOT/etc/systemd/system/claudecron.service")"
[[ "$(mode_of "$ROOT/etc/claudecron/config.toml")" == 640 ]] &&
  cmp -s "$REPO/config.example.toml" "$ROOT/etc/claudecron/config.toml" &&
  pass "config installed from config.example.toml at /etc/claudecron/config.toml, mode 0640" ||
  fail "config installed from config.example.toml at /etc/claudecron/config.toml, mode 0640" \
    "mode $(mode_of "$ROOT/etc/claudecron/config.toml")"
[[ "$(mode_of "$ROOT/etc/claudecron")" == 750 && "$(mode_of "$ROOT/var/lib/claudecron")" == 750 ]] &&
  pass "directories /etc/claudecron and /var/lib/claudecron, mode 0750" ||
  fail "directories /etc/claudecron and /var/lib/claudecron, mode 0750" \
    "$(mode_of "$ROOT/etc/claudecron") $(mode_of "$ROOT/var/lib/claudecron")"
if grep -q 'would run: useradd --system --gid claudecron --home-dir /var/lib/claudecron --no-create-home --shell /usr/sbin/nologin' "$TMP/install1.log" &&
  grep -q 'would run: systemctl enable --now claudecron' "$TMP/install1.log" &&
  grep -q 'would run: chown root:claudecron /etc/claudecron/config.toml' "$TMP/install1.log"; then
  pass "DESTDIR run reports the user, chown and systemctl steps it skipped"
else
  fail "DESTDIR run reports the user, chown and systemctl steps it skipped" "$(cat "$TMP/install1.log")"
fi
if [[ ! -s "$TMP/guard.log" && "$(getent passwd claudecron || true)" == "$user_before" ]]; then
  pass "DESTDIR run called no useradd/groupadd/chown/runuser/systemctl"
else
  fail "DESTDIR run called no useradd/groupadd/chown/runuser/systemctl" "$(cat "$TMP/guard.log")"
fi
unexpected=$(cd "$ROOT" && find . -type f | sort | grep -v -x -e ./usr/local/bin/claudecron \
  -e ./etc/systemd/system/claudecron.service -e ./etc/claudecron/config.toml \
  -e './usr/local/share/doc/claudecron/RUNBOOK[-a-z]*\.md' || true)
[[ -z "$unexpected" ]] && pass "DESTDIR holds only the installed files (no temp leftovers)" ||
  fail "DESTDIR holds only the installed files (no temp leftovers)" "$unexpected"

# Second run: an edited config is kept; a changed unit is put back; still exit 0.
printf '\n# local edit by the operator\n' >>"$ROOT/etc/claudecron/config.toml"
printf '\n# stray edit\n' >>"$ROOT/etc/systemd/system/claudecron.service"
config_sum=$(md5sum <"$ROOT/etc/claudecron/config.toml")
if DESTDIR=$ROOT PATH="$GUARD:$PATH" bash "$REPO/scripts/install.sh" --binary "$BIN" \
  >"$TMP/install2.log" 2>&1; then
  pass "install.sh second run exits 0 (idempotent)"
else
  fail "install.sh second run exits 0 (idempotent)" "$(cat "$TMP/install2.log")"
fi
[[ "$(md5sum <"$ROOT/etc/claudecron/config.toml")" == "$config_sum" && "$(mode_of "$ROOT/etc/claudecron/config.toml")" == 640 ]] &&
  grep -q 'config.toml exists; kept' "$TMP/install2.log" &&
  pass "second run keeps the existing (edited) config" ||
  fail "second run keeps the existing (edited) config" "$(cat "$TMP/install2.log")"
cmp -s "$REPO/claudecron.service" "$ROOT/etc/systemd/system/claudecron.service" &&
  grep -q 'claudecron unchanged' "$TMP/install2.log" &&
  pass "second run restores the unit and leaves the identical binary alone" ||
  fail "second run restores the unit and leaves the identical binary alone" "$(cat "$TMP/install2.log")"

# Third run without --binary and no build possible: refuses clearly, changes nothing.
if out=$(DESTDIR=$TMP/root-nobuild PATH="$GUARD:$PATH" bash "$REPO/scripts/install.sh" \
  --binary "$TMP/does-not-exist" 2>&1); then
  fail "install.sh with a missing --binary fails" "$out"
else
  [[ ! -e "$TMP/root-nobuild/usr/local/bin/claudecron" && "$out" == *"does not exist"* ]] &&
    pass "install.sh with a missing --binary fails before installing anything" ||
    fail "install.sh with a missing --binary fails before installing anything" "$out"
fi

# --- 2. systemd-analyze verify / security ----------------------------------------------------
section "systemd-analyze"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "systemd-analyze not found; installing Debian's systemd package"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } \
      >"$TMP/apt.log" 2>&1 || true
  fi
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  # --root makes verify resolve ExecStart= (/usr/local/bin/claudecron) and the unit's
  # dependencies inside the staged root, so the host's own units are copied in for the latter.
  mkdir -p "$ROOT/usr/lib/systemd"
  for d in /usr/lib/systemd/system /lib/systemd/system; do
    if [[ -d "$d" ]]; then cp -a "$d" "$ROOT/usr/lib/systemd/" && break; fi
  done
  if out=$(systemd-analyze verify --root="$ROOT" claudecron.service 2>&1) && [[ -z "$out" ]]; then
    pass "systemd-analyze verify of the installed unit: no errors, no warnings"
  else
    fail "systemd-analyze verify of the installed unit: no errors, no warnings" "$out"
  fi
  # Negative controls: the same check must catch a bad value and a missing binary.
  BAD=$TMP/bad-root
  mkdir -p "$BAD/etc/systemd/system" "$BAD/usr/lib/systemd"
  cp -a "$ROOT/usr/lib/systemd/system" "$BAD/usr/lib/systemd/"
  sed 's/^KillMode=mixed$/KillMode=mixd/' "$REPO/claudecron.service" >"$BAD/etc/systemd/system/claudecron.service"
  out=$(systemd-analyze verify --root="$BAD" claudecron.service 2>&1)
  [[ "$out" == *"kill mode"* && "$out" == *"claudecron is not executable"* ]] &&
    pass "verify reports a broken copy (bad KillMode, missing binary)" ||
    fail "verify reports a broken copy (bad KillMode, missing binary)" "$out"
  sec=$(systemd-analyze security --offline=true --root="$ROOT" claudecron.service 2>&1)
  score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for claudecron.service: \([0-9.]*\).*/\1/p')
  if [[ -n "$score" ]] && systemd-analyze security --offline=true --root="$ROOT" --threshold=20 \
    claudecron.service >/dev/null 2>&1; then
    pass "systemd-analyze security --offline: exposure $score (≤ 2.0)"
  else
    fail "systemd-analyze security --offline: exposure ≤ 2.0" "$(printf '%s\n' "$sec" | tail -n 5)"
  fi
else
  fail "systemd-analyze available (Debian package systemd)" "$(tail -n 5 "$TMP/apt.log" 2>/dev/null)"
fi

# --- 3. the example config ----------------------------------------------------------------------
section "config.example.toml"
mkdir -p "$TMP/check"
if out=$(cd "$TMP" && CLAUDECRON_DB_PATH=$TMP/check/tasks.db "$BIN" check \
  --config "$REPO/config.example.toml" 2>&1) && [[ "$out" == *"integrity ok"* ]]; then
  pass "claudecron check accepts config.example.toml (db_path via CLAUDECRON_DB_PATH)"
else
  fail "claudecron check accepts config.example.toml (db_path via CLAUDECRON_DB_PATH)" "$out"
fi
for kv in "host = 127.0.0.1" "port = 3010" "trust_proxy = true" "log_path = (stderr)"; do
  key=${kv%% = *}
  val=${kv#* = }
  if printf '%s\n' "$out" | grep -Eq "^ +$key +=  *$(printf '%s' "$val" | sed 's/[()]/\\&/g')\$"; then
    pass "example config gives $key = $val"
  else
    fail "example config gives $key = $val" "$(printf '%s\n' "$out" | grep -E "^ +$key " || echo "(no $key line)")"
  fi
done
# The commented-out keys (no default) are valid too once uncommented.
sed -E 's/^# (public_url|token_file|log_path|anthropic_api_key) = /\1 = /' \
  "$REPO/config.example.toml" >"$TMP/all-keys.toml"
if out=$(CLAUDECRON_DB_PATH=$TMP/check/tasks.db CLAUDECRON_TOKEN_FILE=$TMP/check/token \
  CLAUDECRON_LOG_PATH=$TMP/check/log "$BIN" check --config "$TMP/all-keys.toml" 2>&1) &&
  [[ "$out" == *"public_url             = https://mcp.example.com/cron"* ]]; then
  pass "claudecron check accepts the example with its commented-out keys enabled"
else
  fail "claudecron check accepts the example with its commented-out keys enabled" "$out"
fi
# Every key the server knows (config::KEYS, config::oauth::KEYS, config::approval::KEYS) is documented (as `key = `
# or `# key = `), and nothing else.
keys=$({ sed -n '/^const KEYS/,/^];/p' "$REPO/src/config/mod.rs"
  sed -n '/const KEYS/,/^];/p' "$REPO/src/config/oauth.rs"
  sed -n '/const KEYS/,/^];/p' "$REPO/src/config/approval.rs"; } | tr -d ' \n' |
  grep -oE '\("[a-z_]+",Kind::' | sed -E 's/^\("([a-z_]+)".*/\1/' | sort)
documented=$(grep -oE '^(# )?[a-z_]+ = ' "$REPO/config.example.toml" | sed -E 's/^# //; s/ = $//' | sort -u)
if [[ -n "$keys" && "$keys" == "$documented" ]]; then
  pass "config.example.toml documents exactly the $(wc -l <<<"$keys") keys of src/config (KEYS, oauth::KEYS, approval::KEYS)"
else
  fail "config.example.toml documents exactly the keys of src/config (KEYS, oauth::KEYS, approval::KEYS)" \
    "$(diff <(echo "$keys") <(echo "$documented") | sed 's/^</missing in example:/; s/^>/not a key:/' | grep -v '^[0-9]')"
fi

# --- 4. deploy.sh through shims ----------------------------------------------------------------
section "deploy.sh (shim ssh/scp, local stand-in remote)"
read -r PORT DEAD < <(free_ports 2) || true # the deploy target's port, and one nothing answers on
if [[ -z "$PORT" || -z "$DEAD" ]]; then
  fail "free loopback ports for the deploy test"
else
  SHIMS=$TMP/shims
  RBIN=$TMP/remote-bin # what the remote's PATH has first: fake sudo/systemctl/journalctl
  RROOT=$TMP/remote-root # the remote's "/" for install.sh (DESTDIR)
  RHOME=$TMP/remote-home
  RSTATE=$TMP/remote-state
  LOG=$TMP/deploy-steps.log
  mkdir -p "$SHIMS" "$RBIN" "$RROOT" "$RHOME" "$RSTATE"
  : >"$LOG"
  PIDFILES+=("$RSTATE/server.pid")

  # ssh [options] TARGET COMMAND...: runs COMMAND with bash in the remote's home, with the
  # remote's fake tools first on PATH and DESTDIR pointing at the remote's root.
  cat >"$SHIMS/ssh" <<EOF
#!/usr/bin/env bash
while [[ \$# -gt 0 ]]; do
  case "\$1" in
    -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
target=\$1; shift
echo "ssh \$target \$*" >>"$LOG"
cd "$RHOME" && PATH="$RBIN:\$PATH" DESTDIR="$RROOT" exec bash -c "\$*"
EOF
  # scp [options] SOURCE... TARGET:DIR/: copies into DIR (relative to the remote's home).
  cat >"$SHIMS/scp" <<EOF
#!/usr/bin/env bash
args=()
for a in "\$@"; do [[ "\$a" == -* ]] || args+=("\$a"); done
dest=\${args[-1]}; unset 'args[-1]'
echo "scp \${#args[@]} files to \$dest" >>"$LOG"
dir=\${dest#*:}
cd "$RHOME" && cp "\${args[@]}" "\$dir"
EOF
  cat >"$SHIMS/build" <<EOF
#!/usr/bin/env bash
echo "build" >>"$LOG"
mkdir -p "$TMP/build-out" && cp "$BIN" "$TMP/build-out/claudecron"
EOF
  cat >"$RBIN/sudo" <<EOF
#!/usr/bin/env bash
echo "sudo \$*" >>"$LOG"
exec "\$@"
EOF
  # systemctl restart claudecron: (re)starts the binary install.sh put in the remote's root,
  # with the installed config, on the test port (unless $RSTATE/no-start exists).
  cat >"$RBIN/systemctl" <<EOF
#!/usr/bin/env bash
echo "systemctl \$*" >>"$LOG"
if [[ "\$1" == restart && "\$2" == claudecron ]]; then
  if [[ -f "$RSTATE/server.pid" ]]; then
    kill "\$(cat "$RSTATE/server.pid")" 2>/dev/null
    for _ in \$(seq 1 50); do kill -0 "\$(cat "$RSTATE/server.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$RSTATE/server.pid"
  fi
  [[ -f "$RSTATE/no-start" ]] && exit 0
  setsid "$RROOT/usr/local/bin/claudecron" serve --config "$RROOT/etc/claudecron/config.toml" \\
    --host 127.0.0.1 --port "$PORT" --db "$RSTATE/tasks.db" </dev/null >"$RSTATE/server.log" 2>&1 &
  echo \$! >"$RSTATE/server.pid"
fi
exit 0
EOF
  cat >"$RBIN/journalctl" <<EOF
#!/usr/bin/env bash
echo "journalctl \$*" >>"$LOG"
echo "-- stand-in journal of claudecron --"
EOF
  chmod +x "$SHIMS"/* "$RBIN"/*

  deploy() {
    CLAUDECRON_DEPLOY_SSH="$SHIMS/ssh" CLAUDECRON_DEPLOY_SCP="$SHIMS/scp -q" \
      CLAUDECRON_DEPLOY_BUILD="bash $SHIMS/build" CLAUDECRON_DEPLOY_HOST=vps.test \
      CLAUDECRON_DEPLOY_USER=deployer CLAUDECRON_DEPLOY_PATH=claudecron-deploy \
      timeout 60 bash "$REPO/scripts/deploy.sh" --binary "$TMP/build-out/claudecron" "$@"
  }

  # Happy path: health through `ssh … curl http://127.0.0.1:PORT/health` on the "remote".
  t0=$SECONDS
  if deploy --port "$PORT" --health-timeout 20 >"$TMP/deploy-ok.log" 2>&1; then
    pass "deploy.sh succeeds against a healthy remote ($((SECONDS - t0)) s)"
  else
    fail "deploy.sh succeeds against a healthy remote" "$(cat "$TMP/deploy-ok.log"; echo '-- steps:'; cat "$LOG"; echo '-- server:'; cat "$RSTATE/server.log" 2>/dev/null)"
  fi
  # The order of what happened, from the shims' log.
  line_of() { grep -n -m1 -E "$1" "$LOG" | cut -d: -f1; }
  l_build=$(line_of '^build$')
  l_mkdir=$(line_of '^ssh deployer@vps\.test mkdir -p claudecron-deploy$')
  l_copy=$(line_of '^scp [0-9]+ files to deployer@vps\.test:claudecron-deploy/$')
  l_install=$(line_of '^sudo bash claudecron-deploy/install\.sh --source claudecron-deploy --binary claudecron-deploy/claudecron$')
  l_restart=$(line_of '^systemctl restart claudecron$')
  l_health=$(line_of "^ssh deployer@vps\.test curl -fsS --max-time 5 http://127\.0\.0\.1:$PORT/health$")
  if [[ -n "$l_build" && -n "$l_mkdir" && -n "$l_copy" && -n "$l_install" && -n "$l_restart" && -n "$l_health" ]] &&
    ((l_build < l_mkdir && l_mkdir < l_copy && l_copy < l_install && l_install < l_restart && l_restart < l_health)); then
    pass "deploy steps ran in order: build → copy → install → restart → health"
  else
    fail "deploy steps ran in order: build → copy → install → restart → health" "$(cat "$LOG")"
  fi
  [[ -x "$RHOME/claudecron-deploy/claudecron" && -f "$RHOME/claudecron-deploy/install.sh" &&
    -f "$RHOME/claudecron-deploy/claudecron.service" && -f "$RHOME/claudecron-deploy/config.example.toml" &&
    -f "$RROOT/usr/local/share/doc/claudecron/RUNBOOK-service.md" ]] &&
    cmp -s "$BIN" "$RROOT/usr/local/bin/claudecron" &&
    [[ "$(mode_of "$RROOT/etc/claudecron/config.toml")" == 640 ]] &&
    pass "the remote got the upload and install.sh installed it (binary, config 0640, docs)" ||
    fail "the remote got the upload and install.sh installed it (binary, config 0640, docs)" "$(cd "$TMP" && find remote-home remote-root -maxdepth 5 | head -30)"
  grep -q '"status":"ok"' "$TMP/deploy-ok.log" && grep -q 'deployed claudecron' "$TMP/deploy-ok.log" &&
    [[ "$(readlink "/proc/$(cat "$RSTATE/server.pid" 2>/dev/null)/exe" 2>/dev/null)" == "$RROOT/usr/local/bin/claudecron" ]] &&
    pass "health answered by the installed binary, serving the installed config" ||
    fail "health answered by the installed binary, serving the installed config" "$(tail -n 5 "$TMP/deploy-ok.log")"

  # Failure paths: the restarted service never answers.
  touch "$RSTATE/no-start"
  : >"$LOG"
  t0=$SECONDS
  deploy --health-url "http://127.0.0.1:$DEAD/health" --health-timeout 3 >"$TMP/deploy-dead.log" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q 'DEPLOY FAILED: health check failed' "$TMP/deploy-dead.log" &&
    grep -q "did not become healthy within 3s" "$TMP/deploy-dead.log" &&
    grep -q 'journalctl -u claudecron' "$LOG" && grep -q 'stand-in journal' "$TMP/deploy-dead.log" && ((took < 15)); then
    pass "deploy.sh fails loudly when --health-url never answers (exit $rc after ${took}s, journal shown)"
  else
    fail "deploy.sh fails loudly when --health-url never answers" "exit $rc after ${took}s; $(cat "$TMP/deploy-dead.log")"
  fi
  t0=$SECONDS
  deploy --no-build --port "$DEAD" --health-timeout 2 >"$TMP/deploy-dead2.log" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  if [[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "DEPLOY FAILED: health check failed: http://127.0.0.1:$DEAD/health (curl on deployer@vps.test)" "$TMP/deploy-dead2.log" && ((took < 15)); then
    pass "deploy.sh fails loudly when the remote's /health (over ssh) never answers (exit $rc after ${took}s)"
  else
    fail "deploy.sh fails loudly when the remote's /health (over ssh) never answers" "exit $rc after ${took}s; $(cat "$TMP/deploy-dead2.log")"
  fi
  if out=$(CLAUDECRON_DEPLOY_HOST="" timeout 10 bash "$REPO/scripts/deploy.sh" 2>&1); then
    fail "deploy.sh without a host refuses" "$out"
  else
    [[ "$out" == *"no remote host"* ]] && pass "deploy.sh without a host refuses with a message" ||
      fail "deploy.sh without a host refuses with a message" "$out"
  fi
fi

# --- 5. the same kit under a real systemd (scripts/service/boot_test.sh) -------------------------
# Boots systemd as PID 1 in private namespaces (root file system read-only, overlays, own network)
# and installs, runs tasks, stops and restarts for real. It boots a whole init system on the
# machine, so it is opt-in: CLAUDECRON_SYSTEMD_BOOT_TEST=1 runs it (missing prerequisites — root,
# unshare, writable cgroups, systemd — are then a failure); unset or 0 skips it.
section "real systemd (scripts/service/boot_test.sh)"
if [[ "${CLAUDECRON_SYSTEMD_BOOT_TEST:-0}" != 1 ]]; then
  echo "skip: the real-systemd boot test is opt-in (CLAUDECRON_SYSTEMD_BOOT_TEST=1)"
else
  auto=0
  CLAUDECRON_BOOT_TEST_AUTO=$auto timeout 180 bash "$REPO/scripts/service/boot_test.sh" "$BIN" \
    >"$TMP/boot.log" 2>&1
  rc=$?
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/boot.log"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/boot.log" | tail -n 1)
  if [[ -n "$summary" ]]; then
    PASSED=$((PASSED + ${summary%% passed*}))
    b_failed=${summary#*, }
    FAILED=$((FAILED + ${b_failed%% failed}))
  fi
  if [[ $rc -ne 0 && ( -z "$summary" || "$summary" == *", 0 failed" ) ]]; then
    fail "scripts/service/boot_test.sh exited $rc"
  fi
fi

printf '\nservice tests took %ds\n' "$((SECONDS - START_TIME))"
finish
