#!/usr/bin/env bash
# The service kit under a REAL systemd: boots /lib/systemd/systemd as PID 1 in private
# namespaces on this machine and checks, inside it:
#   - scripts/install.sh for real (no DESTDIR): useradd, modes and owners, `check` as the
#     claudecron user, daemon-reload, enable --now; a second run keeps the config
#   - Type=notify readiness (active only once listening, STATUS= from the server), /health,
#     `systemd-analyze verify` and `systemd-analyze security` against the running manager
#   - the hardening lets a bash task do ordinary work (HOME, /tmp, network to loopback, ps,
#     nice/ulimit, git, Node's JIT when node is installed) and stops what it should (writing
#     /etc, reading /home, sudo)
#   - the sudo recipe: scripts/service/sudoers-nginx-reload + scripts/service/sudo-override.conf
#     let a task run `sudo -n systemctl reload nginx` (a stand-in nginx.service) and nothing
#     else (skipped when no sudo package can be had)
#   - stop: a task that ignores SIGTERM is ended by the server after its 5 s grace; the stop
#     takes < TimeoutStopSec and the unit ends with Result=success, exit status 0
#   - Restart=on-failure: after `kill -9` of the server it is back within RestartSec + 10 s
#
# Isolation (nothing on the host changes): new pid, mount, network (loopback only), cgroup, UTS
# and IPC namespaces; the root file system is read-only inside except overlays on /etc, /var,
# /usr, /root and /home whose upper layers live in a temp dir, a private tmpfs on /tmp and /run,
# /sys and /proc/sys read-only; systemd's cgroup is a fresh sub-cgroup of this machine's.
#
# Needs root, util-linux unshare/nsenter, overlayfs, a writable cgroup hierarchy (v2, or v1
# hybrid with a "unified" mount), /lib/systemd/systemd, curl and jq; with
# CLAUDECRON_BOOT_TEST_AUTO=1 (how scripts/service_test.sh calls it) a missing prerequisite is a
# skip, not a failure. Run alone:  sudo bash scripts/service/boot_test.sh [BINARY]
# Ends with "N passed, N failed"; exit status non-zero on failure. About 30 s.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/checks.sh" || exit 1
CHECKS_EMPTY_OK=1 # all skipped (CLAUDECRON_BOOT_TEST_AUTO=1, a prerequisite missing): exit 0
BIN=${1:-${CLAUDECRON_BIN:-$REPO/target/debug/claudecron}}

# --- prerequisites ---------------------------------------------------------------------------
missing=""
[[ $(id -u) -eq 0 ]] || missing+=" root"
for c in unshare nsenter curl jq ip mount; do command -v "$c" >/dev/null 2>&1 || missing+=" $c"; done
[[ -x /lib/systemd/systemd ]] || missing+=" /lib/systemd/systemd"
[[ -x "$BIN" ]] || missing+=" $BIN"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || missing+=" overlayfs"
CG_DIRS=()
if [[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" == cgroup2fs ]]; then
  CG_DIRS=(/sys/fs/cgroup)
elif [[ -d /sys/fs/cgroup/unified ]]; then
  CG_DIRS=(/sys/fs/cgroup/unified)
  [[ -d /sys/fs/cgroup/systemd ]] && CG_DIRS+=(/sys/fs/cgroup/systemd)
else
  missing+=" cgroup-v2"
fi
if [[ -n "$missing" ]]; then
  if [[ "${CLAUDECRON_BOOT_TEST_AUTO:-}" == 1 ]]; then
    echo "skip the real-systemd boot test: missing$missing"
  else
    fail "prerequisites for booting systemd in namespaces" "missing:$missing"
  fi
  finish
fi

W=$(mktemp -d /tmp/claudecron-boot.XXXXXX)
CG=claudecron-boot-$$
STARTER=""
SD=""
# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  [[ -n "$SD" ]] && kill -9 "$SD" 2>/dev/null
  # Everything still in the test's cgroup (the whole booted system) goes too.
  [[ -f "${CG_DIRS[0]}/$CG/cgroup.kill" ]] && echo 1 >"${CG_DIRS[0]}/$CG/cgroup.kill" 2>/dev/null
  if [[ -n "$STARTER" ]]; then
    for _ in $(seq 1 50); do kill -0 "$STARTER" 2>/dev/null || break; sleep 0.1; done
  fi
  local d
  for _ in $(seq 1 100); do
    [[ -n "$(find "${CG_DIRS[0]}/$CG" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]] || break
    sleep 0.1
  done
  for d in "${CG_DIRS[@]}"; do
    [[ -d "$d/$CG" ]] && find "$d/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d "$d/$CG" ]] && echo "boot_test.sh: warning: could not remove cgroup $d/$CG" >&2
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W/in" "$W/layers"
cp "$BIN" "$W/in/claudecron"
cp "$REPO/scripts/service/driver.sh" "$W/in/driver.sh"
echo "scripts/service/boot_test.sh" >"$W/in/.claudecron-boot"
# sudo for the sudo recipe: the host's package file, else Debian's (skipped when neither).
if ! command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (cd "$W/in" && apt-get download sudo) >"$W/apt.log" 2>&1 || true
fi

cat >"$W/inner.sh" <<EOF
#!/bin/bash
set -e
mount --make-rprivate /
mount -t proc proc /proc
for d in etc var usr root home; do
  mkdir -p "$W/layers/\$d-up" "$W/layers/\$d-work"
  mount -t overlay overlay -o "lowerdir=/\$d,upperdir=$W/layers/\$d-up,workdir=$W/layers/\$d-work" "/\$d"
done
mount -t tmpfs -o mode=755 tmpfs /mnt
cp -a "$W/in/." /mnt/
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
mount -o remount,bind,ro /sys
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -t tmpfs -o mode=755 tmpfs /run
ip link set lo up
hostname claudecron-boot
# Only what the test needs: no host services, timers or gettys.
find /etc/systemd/system -path '*.wants/*' -delete
export container=claudecron-boot
exec /lib/systemd/systemd --system --log-target=console --log-level=notice </dev/null >/mnt/systemd.log 2>&1
EOF
cat >"$W/start.sh" <<EOF
#!/bin/bash
for d in ${CG_DIRS[*]}; do mkdir -p "\$d/$CG" && echo \$\$ >"\$d/$CG/cgroup.procs"; done
exec unshare --mount --pid --net --cgroup --uts --ipc --fork bash "$W/inner.sh"
EOF
bash "$W/start.sh" >"$W/start.log" 2>&1 &
STARTER=$!
disown "$STARTER"

state=""
for _ in $(seq 1 100); do
  # unshare's child becomes systemd once inner.sh has set up the namespaces and exec'd it.
  if [[ -z "$SD" || "$(cat "/proc/$SD/comm" 2>/dev/null)" != systemd ]]; then
    SD=$(cat "/proc/$STARTER/task/$STARTER/children" 2>/dev/null | awk '{print $1}')
  fi
  if [[ -n "$SD" && "$(cat "/proc/$SD/comm" 2>/dev/null)" == systemd ]]; then
    state=$(timeout 5 nsenter -t "$SD" -a systemctl is-system-running 2>/dev/null)
    [[ "$state" == running || "$state" == degraded ]] && break
  fi
  kill -0 "$STARTER" 2>/dev/null || break
  sleep 0.2
done
if [[ "$state" == running || "$state" == degraded ]]; then
  pass "systemd booted as PID 1 in private namespaces ($state)"
else
  fail "systemd booted as PID 1 in private namespaces" "state '${state}'; $(cat "$W/start.log")"
  finish
fi

# The checks run inside, as the operator would type them; they print ok/FAIL lines.
timeout 120 nsenter -t "$SD" -a bash /mnt/driver.sh "$REPO" >"$W/driver.log" 2>&1
rc=$?
cat "$W/driver.log"
PASSED=$((PASSED + $(grep -c '^ok ' "$W/driver.log")))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$W/driver.log")))
[[ $rc -eq 0 ]] || fail "driver.sh exited $rc"
finish
