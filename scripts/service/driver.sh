#!/usr/bin/env bash
# Runs INSIDE the systemd that scripts/service/boot_test.sh boots (never on a real host: it
# installs claudecron, adds users, sudoers rules and units). Usage: driver.sh REPO
# Prints "ok ..." / "FAIL ..." lines; boot_test.sh counts them.
set -uo pipefail
REPO=$1
[[ -f /mnt/claudecron && -f /mnt/.claudecron-boot && "$(cat /proc/1/comm)" == systemd ]] || {
  echo "FAIL driver.sh must run inside scripts/service/boot_test.sh's namespaces"
  exit 1
}

# pass / fail (the "ok   ..." / "FAIL ..." lines boot_test.sh counts) and wait_health. This file
# runs from a copy in /mnt, so the library comes from REPO (visible, read-only, in the namespaces).
# shellcheck source=scripts/lib/checks.sh
source "$REPO/scripts/lib/checks.sh" || exit 1
show() { systemctl show claudecron -p "$1" --value; }
B=http://127.0.0.1:3010

# --- MCP over curl: run a bash task and print "status=… exit=…" and its output ---------------
SID=""
mcp_open() {
  local tok
  tok=$(cat /var/lib/claudecron/token)
  H=(-H "Authorization: Bearer $tok" -H "Content-Type: application/json"
    -H "Accept: application/json, text/event-stream")
  SID=$(curl -s --max-time 5 -D - -o /dev/null "${H[@]}" "$B/mcp" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"boot-test","version":"1"}}}' |
    grep -i '^mcp-session-id' | cut -d: -f2 | tr -d ' \r')
  H+=(-H "MCP-Session-Id: $SID" -H "MCP-Protocol-Version: 2025-11-25")
  curl -s --max-time 5 "${H[@]}" "$B/mcp" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
}
call() {
  curl -s --max-time 60 "${H[@]}" "$B/mcp" -d "$(jq -cn --arg n "$1" --argjson a "$2" \
    '{jsonrpc:"2.0",id:2,method:"tools/call",params:{name:$n,arguments:$a}}')"
}
# approve NAME: the owner's approval on the host (the installed example config has
# require_approval = true), as root with the approval key, naming the full content hash that
# `pending` shows, as docs/RUNBOOK.md says
approve() {
  local hash
  hash=$(claudecron pending --json --config /etc/claudecron/config.toml |
    jq -r --arg n "$1" '.pending[] | select(.name == $n) | .content_sha256')
  claudecron approve "$1" --content "$hash" --config /etc/claudecron/config.toml >/dev/null
}
# task NAME COMMAND [WAIT]: add a manual bash task, approve it and run it (waiting WAIT s, default 30)
task() {
  call claudecron_add_task "$(jq -cn --arg n "$1" --arg c "$2" '{name:$n,type:"bash",trigger:{type:"manual"},command:$c}')" >/dev/null
  approve "$1"
  call claudecron_run_task "$(jq -cn --arg n "$1" --argjson w "${3:-30}" '{taskId:$n,wait_seconds:$w}')" |
    jq -r '.result.structuredContent.run | "status=\(.status) exit=\(.exit_code)\n\(.output // "")"'
}

# --- install.sh for real ------------------------------------------------------------------------
if out=$(bash "$REPO/scripts/install.sh" --binary /mnt/claudecron 2>&1); then
  pass "install.sh (real system, no DESTDIR) exits 0"
else
  fail "install.sh (real system, no DESTDIR) exits 0" "$out"
fi
pw=$(getent passwd claudecron)
[[ "$pw" == claudecron:x:*:*:*:/var/lib/claudecron:/usr/sbin/nologin ]] && getent group claudecron >/dev/null &&
  pass "system user claudecron: home /var/lib/claudecron, shell nologin" ||
  fail "system user claudecron: home /var/lib/claudecron, shell nologin" "$pw"
perms=$(stat -c '%n %a %U:%G' /usr/local/bin/claudecron /etc/systemd/system/claudecron.service \
  /etc/claudecron /etc/claudecron/config.toml /var/lib/claudecron 2>&1)
expected="/usr/local/bin/claudecron 755 root:root
/etc/systemd/system/claudecron.service 644 root:root
/etc/claudecron 750 root:claudecron
/etc/claudecron/config.toml 640 root:claudecron
/var/lib/claudecron 750 claudecron:claudecron"
[[ "$perms" == "$expected" ]] && pass "installed files, modes and owners" ||
  fail "installed files, modes and owners" "$perms"
if [[ "$(systemctl is-enabled claudecron)" == enabled && "$(show ActiveState)" == active ]] && wait_health "$B/health" 10; then
  pass "enabled, active, /health ok"
else
  fail "enabled, active, /health ok" "$(systemctl status claudecron --no-pager 2>&1 | tail -n 15)"
fi
status_text=$(show StatusText)
[[ "$(show Type)" == notify && "$status_text" == "listening on 127.0.0.1:3010" ]] &&
  pass "Type=notify: READY=1 with STATUS=\"$status_text\" from the server" ||
  fail "Type=notify: READY=1 with STATUS= from the server" "Type=$(show Type) StatusText=$status_text"
db_mode=$(stat -c '%a %U' /var/lib/claudecron/tasks.db /var/lib/claudecron/token 2>&1 | tr '\n' ' ')
[[ "$db_mode" == "640 claudecron 600 claudecron " ]] &&
  pass "database 0640 and token 0600, owned by claudecron" ||
  fail "database 0640 and token 0600, owned by claudecron" "$db_mode"
out=$(systemd-analyze verify /etc/systemd/system/claudecron.service 2>&1)
[[ -z "$out" ]] && pass "systemd-analyze verify (against the running manager): clean" ||
  fail "systemd-analyze verify (against the running manager): clean" "$out"
score=$(systemd-analyze security claudecron.service 2>&1 | sed -n 's/.*Overall exposure level for claudecron.service: \([0-9.]*\).*/\1/p')
[[ -n "$score" ]] && awk -v s="$score" 'BEGIN{exit !(s <= 2.0)}' &&
  pass "systemd-analyze security claudecron (online): exposure $score" ||
  fail "systemd-analyze security claudecron (online): exposure ≤ 2.0" "$score"

printf '\n# operator edit\n' >>/etc/claudecron/config.toml
sum=$(md5sum </etc/claudecron/config.toml)
pid_before=$(show MainPID)
if out=$(bash "$REPO/scripts/install.sh" --binary /mnt/claudecron 2>&1) &&
  [[ "$(md5sum </etc/claudecron/config.toml)" == "$sum" && "$(show MainPID)" == "$pid_before" ]]; then
  pass "install.sh again: exit 0, edited config kept, running service left alone"
else
  fail "install.sh again: exit 0, edited config kept, running service left alone" "$out"
fi

# --- the approval key pair: root's private key, the server checks with the public one ---------
if out=$(claudecron approve --init-key --config /etc/claudecron/config.toml 2>&1) &&
  systemctl restart claudecron && wait_health "$B/health" 10; then
  pass "claudecron approve --init-key as root, then restart"
else
  fail "claudecron approve --init-key as root, then restart" "$out"
fi
keys=$(stat -c '%n %a %U:%G' /etc/claudecron/approval.key /etc/claudecron/approval.pub 2>&1)
[[ "$keys" == "/etc/claudecron/approval.key 600 root:root
/etc/claudecron/approval.pub 644 root:root" ]] &&
  journalctl -u claudecron --no-pager | grep -q 'approvals are checked with the public key /etc/claudecron/approval.pub' &&
  ! journalctl -u claudecron --no-pager | grep -q 'could forge approvals' &&
  pass "approval key pair next to the config (private root 0600, public 0644); the server loads the public key and cannot read the private one" ||
  fail "approval key pair next to the config; the server loads the public key only" "$keys"

# --- what a bash task can and cannot do -----------------------------------------------------
mcp_open
out=$(task ordinary 'set -e
echo "user=$(id -un) home=$HOME cwd=$PWD"
echo data >"$HOME/file" && echo wrote-home
echo data >/tmp/file && echo wrote-tmp
. /etc/os-release && echo "os=$ID"
curl -fsS http://127.0.0.1:3010/health | grep -q "\"status\":\"ok\"" && echo curl-ok
ps -e | grep -q claudecron && echo ps-ok
cat /proc/loadavg >/dev/null && echo loadavg-ok
nice -n 5 true && echo nice-ok
ulimit -n 1024 && echo ulimit-ok
git --version >/dev/null && echo git-ok
if command -v node >/dev/null; then node -e "let s=0; for (let i=0;i<2e7;i++) s+=i; console.log(\"node-ok\")"; else echo node-ok; fi')
want="status=success exit=0
user=claudecron home=/var/lib/claudecron cwd=/var/lib/claudecron
wrote-home
wrote-tmp
os=debian
curl-ok
ps-ok
loadavg-ok
nice-ok
ulimit-ok
git-ok
node-ok"
[[ "$out" == "$want" ]] &&
  pass "a bash task does ordinary work (HOME, /tmp, curl, ps, /proc, nice, ulimit, git, node JIT)" ||
  fail "a bash task does ordinary work (HOME, /tmp, curl, ps, /proc, nice, ulimit, git, node JIT)" "$(diff <(echo "$want") <(echo "$out"))"
out=$(task forbidden 'touch /etc/x 2>/dev/null && echo etc-writable
touch /usr/local/bin/x 2>/dev/null && echo usr-writable
ls /home >/dev/null 2>&1 && echo home-readable
ls /dev/vda /dev/sda >/dev/null 2>&1 && echo disk-visible
grep -q "NoNewPrivs:.1" /proc/self/status && echo nnp-set
cat /etc/claudecron/approval.key >/dev/null 2>&1 && echo approval-key-readable
echo end')
[[ "$out" == "status=success exit=0
nnp-set
end" ]] && pass "a task cannot write /etc or /usr, read /home or the approval key, see disks; no_new_privs is set" ||
  fail "a task cannot write /etc or /usr, read /home or the approval key, see disks; no_new_privs is set" "$out"

owned=$(find /var/lib/claudecron -xdev ! -user claudecron 2>&1)
[[ -z "$owned" ]] &&
  pass "root's claudecron approve wrote as the database's owner: nothing in /var/lib/claudecron is root's" ||
  fail "root's claudecron approve wrote as the database's owner" "$owned"

# --- reloading nginx from a task: path unit (no sudo), then sudo ---------------------------------
cat >/etc/systemd/system/nginx.service <<'EOF'
[Unit]
Description=stand-in nginx for boot_test.sh
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reload >>/run/nginx-reloads'
EOF
systemctl daemon-reload && systemctl start nginx
install -m 0644 "$REPO/scripts/service/claudecron-nginx-reload.path" \
  "$REPO/scripts/service/claudecron-nginx-reload.service" /etc/systemd/system/
install -d -m 0750 -o claudecron -g claudecron /var/lib/claudecron/requests
systemctl daemon-reload && systemctl enable --now claudecron-nginx-reload.path 2>/dev/null
out=$(task path-reload 'date >>"$HOME/requests/nginx-reload" && echo requested')
for _ in $(seq 1 50); do [[ -s /run/nginx-reloads ]] && break; sleep 0.1; done
[[ "$out" == *requested* && "$(cat /run/nginx-reloads 2>/dev/null)" == reload ]] &&
  pass "claudecron-nginx-reload.path: a task reloads nginx without sudo, unit unchanged" ||
  fail "claudecron-nginx-reload.path: a task reloads nginx without sudo, unit unchanged" "$out; reloads: $(cat /run/nginx-reloads 2>/dev/null)"
systemctl disable --now claudecron-nginx-reload.path 2>/dev/null
rm -f /run/nginx-reloads

if ! command -v sudo >/dev/null 2>&1; then
  deb=$(ls /mnt/sudo_*.deb 2>/dev/null | head -n 1)
  [[ -n "$deb" ]] && dpkg -i "$deb" >/dev/null 2>&1
fi
if command -v sudo >/dev/null 2>&1; then
  install -m 0440 "$REPO/scripts/service/sudoers-nginx-reload" /etc/sudoers.d/claudecron-nginx
  visudo -c -q -f /etc/sudoers.d/claudecron-nginx || fail "visudo accepts scripts/service/sudoers-nginx-reload"
  out=$(task sudo-blocked 'sudo -n /usr/bin/systemctl reload nginx 2>&1; echo rc=$?')
  [[ "$out" == *'"no new privileges" flag is set'* && "$out" == *rc=1* && ! -s /run/nginx-reloads ]] &&
    pass "with the unit as shipped, sudo in a task is refused (no new privileges)" ||
    fail "with the unit as shipped, sudo in a task is refused (no new privileges)" "$out"
  install -D -m 0644 "$REPO/scripts/service/sudo-override.conf" /etc/systemd/system/claudecron.service.d/sudo.conf
  systemctl daemon-reload && systemctl restart claudecron && wait_health "$B/health" 10 && mcp_open
  out=$(task sudo-allowed 'sudo -n /usr/bin/systemctl reload nginx; echo reload-rc=$?
sudo -n /usr/bin/systemctl restart nginx 2>/dev/null; echo restart-rc=$?
sudo -n /usr/bin/id -u 2>/dev/null; echo id-rc=$?')
  [[ "$out" == *reload-rc=0*restart-rc=1*id-rc=1* && "$(cat /run/nginx-reloads 2>/dev/null)" == reload ]] &&
    pass "with sudo-override.conf + sudoers-nginx-reload: reload nginx works, nothing else does" ||
    fail "with sudo-override.conf + sudoers-nginx-reload: reload nginx works, nothing else does" "$out"
  score=$(systemd-analyze security claudecron.service 2>&1 | sed -n 's/.*Overall exposure level for claudecron.service: \([0-9.]*.*\)/\1/p')
  echo "     (exposure with the sudo drop-in: $score)"
  rm -rf /etc/systemd/system/claudecron.service.d
  systemctl daemon-reload && systemctl restart claudecron && wait_health "$B/health" 10 && mcp_open
else
  echo "skip sudo recipe: no sudo package available"
fi

# --- stop: KillMode=mixed, the server's grace, TimeoutStopSec ------------------------------------
call claudecron_add_task '{"name":"stubborn","type":"bash","trigger":{"type":"manual"},"command":"trap \"\" TERM; sleep 120 & wait; sleep 120"}' >/dev/null
approve stubborn
call claudecron_run_task '{"taskId":"stubborn"}' >/dev/null
for _ in $(seq 1 25); do pgrep -u claudecron -x sleep >/dev/null && break; sleep 0.2; done
t0=$(date +%s.%N)
systemctl stop claudecron
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
left=$(pgrep -u claudecron | tr '\n' ' ')
if [[ "$(show Result)" == success && "$(show ExecMainStatus)" == 0 && -z "$left" ]] &&
  awk -v t="$took" 'BEGIN{exit !(t >= 4.5 && t < 30)}' &&
  journalctl -u claudecron --no-pager | grep -q 'task stubborn (manual) ended interrupted'; then
  pass "systemctl stop with a SIGTERM-ignoring task: ${took}s, run interrupted, exit 0, no process left"
else
  fail "systemctl stop with a SIGTERM-ignoring task" "took ${took}s Result=$(show Result) status=$(show ExecMainStatus) left=[$left]
$(journalctl -u claudecron --no-pager | tail -n 5)"
fi

# --- Restart=on-failure -------------------------------------------------------------------------
systemctl start claudecron && wait_health "$B/health" 10
pid=$(show MainPID)
kill -9 "$pid"
if wait_health "$B/health" 20 && [[ "$(show MainPID)" != "$pid" && "$(show NRestarts)" -ge 1 ]]; then
  pass "Restart=on-failure: back after kill -9 (NRestarts=$(show NRestarts))"
else
  fail "Restart=on-failure: back after kill -9" "$(systemctl status claudecron --no-pager 2>&1 | tail -n 10)"
fi
exit 0
