#!/usr/bin/env bash
# Tests of the packaging: the Debian package (cargo deb) and the container image (Dockerfile,
# docker-compose.yml), each with the real tools. Standalone: `bash scripts/package_test.sh`;
# scripts/test.sh calls it.
#
#   0. `claudecron health` (the image's HEALTHCHECK) against a real server: 0 healthy, 1 when
#      nothing answers; a minimal Debian 12 root file system made with debootstrap from apt's own
#      mirror (no registry is reachable here), cached as .interop-cache/package/*.tar
#   1. scripts/package/deb_checks.sh: `cargo deb`, lintian, install into a throwaway root made
#      from that file system (dpkg in a chroot, the maintainer scripts run for real): files,
#      owners, modes, the user, the conffile, the enabled unit, `systemd-analyze verify`, the
#      server running as the package's user; upgrade to a rebuilt newer version keeps the config
#      and the database; remove keeps the data; purge deletes it
#   2. scripts/package/container_checks.sh: the same file system imported with `podman import`
#      under the Dockerfile's base image names, `podman build` of the Dockerfile,
#      `podman-compose up` of docker-compose.yml, /health through the mapped port, the
#      HEALTHCHECK, an MCP initialize + add/run/delete round trip with the token
#      (scripts/smoke.sh), `podman stop` ending a running task cleanly and recording it, data
#      kept across `down`/`up`. Skipped, saying why, only when the kernel refuses containers.
#
# Environment: PACKAGE_TEST_PROFILE=dev (default: the debug build that `cargo test` made, and a
# debug build inside the container: quicker) or release (the builds users get; minutes longer).
# Tools come from Debian's packages (podman, runc, debootstrap, lintian, jq), PyPI
# (podman-compose, in a cached venv) and crates.io (cargo-deb, cached under
# .interop-cache/package); missing ones are installed when running as root, else it fails
# saying what is missing. Podman is told `--runtime runc` and `default_ulimits = []` through a
# temporary containers.conf (CONTAINERS_CONF): this machine needs them, the shipped files do not.
# Prints the .deb and image sizes. Only 127.0.0.1; every wait is bounded; what it starts it
# stops. Ends with "N passed, N failed"; exits non-zero when anything failed. On a fresh machine
# about 8 minutes (tool installs, debootstrap, two cargo builds); about 2 minutes when cached.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh" || exit 1
CACHE=$REPO/.interop-cache/package
TMP=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-package-test.XXXXXX")
START_TIME=$SECONDS
PROFILE=${PACKAGE_TEST_PROFILE:-dev}
PIDFILES=()
CLEANUPS=()
ROOTFS_TAR=$CACHE/bookworm-minbase.tar
DEB_SIZE=""
IMAGE_SIZE=""

# shellcheck disable=SC2317  # (invoked by the EXIT trap)
cleanup() {
  local c
  for c in "${CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done
  stop_pidfiles "${PIDFILES[@]}"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n== %s\n' "$*"; }
checks_on_finish() {
  echo "sizes: .deb ${DEB_SIZE:-not built}; image ${IMAGE_SIZE:-not built} (profile $PROFILE)"
  echo "runtime: $((SECONDS - START_TIME)) s"
}
# need_debs CMD:PACKAGE...: install the Debian packages whose command is missing (with their
# recommends: podman needs its network stack and fuse-overlayfs from them).
apt_updated=0
need_debs() {
  local spec cmd pkg missing=()
  for spec in "$@"; do
    cmd=${spec%%:*} pkg=${spec#*:}
    command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing (not root, cannot install): ${missing[*]}"
    return 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  if [[ $apt_updated -eq 0 ]]; then apt-get update -q >"$TMP/apt-update.log" 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
    >"$TMP/apt.log" 2>&1 || { tail -n 20 "$TMP/apt.log"; return 1; }
}
PATH=/usr/sbin:/sbin:$PATH

[[ "$PROFILE" == dev || "$PROFILE" == release ]] ||
  fatal "PACKAGE_TEST_PROFILE" "\"$PROFILE\" is not accepted; use dev or release"
[[ $(id -u) -eq 0 ]] ||
  fatal "running as root" "dpkg in a chroot, debootstrap and rootful podman need root"

# --- 0. tools, binary, health subcommand, base file system ------------------------------------
section "tools"
if need_debs curl:curl jq:jq python3:python3 debootstrap:debootstrap lintian:lintian \
  dpkg-deb:dpkg systemd-analyze:systemd unshare:util-linux chroot:coreutils; then
  pass "tools: curl, jq, debootstrap, lintian, dpkg, systemd-analyze"
else
  fatal "tools: curl, jq, debootstrap, lintian, dpkg, systemd-analyze" "see above"
fi
CARGO_DEB=$CACHE/cargo-deb/bin/cargo-deb
if [[ ! -x "$CARGO_DEB" ]]; then
  echo "installing cargo-deb 3.8.0 from crates.io into $CACHE/cargo-deb (once; a few minutes)"
  if ! timeout 900 cargo install --quiet --locked cargo-deb --version 3.8.0 \
    --root "$CACHE/cargo-deb" >"$TMP/cargo-deb.log" 2>&1; then
    fatal "cargo-deb installed" "$(tail -n 20 "$TMP/cargo-deb.log")"
  fi
fi
pass "cargo-deb: $("$CARGO_DEB" --version 2>&1 | head -n 1)"

section "binary and claudecron health"
if [[ "$PROFILE" == release ]]; then
  BUILD=(cargo build --quiet --release --bin claudecron)
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/claudecron
else
  BUILD=(cargo build --quiet --bin claudecron)
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/claudecron
fi
(cd "$REPO" && timeout 1200 "${BUILD[@]}") >"$TMP/build.log" 2>&1 ||
  fatal "${BUILD[*]}" "$(tail -n 30 "$TMP/build.log")"
pass "${BUILD[*]}"
HPORT=$(free_port)
mkdir -p "$TMP/health"
PIDFILES+=("$TMP/health/pid")
CLAUDECRON_DB_PATH=$TMP/health/tasks.db "$BIN" serve --port "$HPORT" >"$TMP/health/log" 2>&1 &
echo $! >"$TMP/health/pid"
if wait_health "http://127.0.0.1:$HPORT/health" 60 "$(cat "$TMP/health/pid")" &&
  out=$(CLAUDECRON_PORT=$HPORT CLAUDECRON_DB_PATH=$TMP/health/tasks.db "$BIN" health 2>&1); then
  [[ "$out" == healthy:* ]] && pass "claudecron health against a running server: exit 0 ($out)" ||
    fail "claudecron health prints healthy" "$out"
else
  fail "claudecron health against a running server: exit 0" "${out:-server not up: $(tail -n 5 "$TMP/health/log")}"
fi
kill "$(cat "$TMP/health/pid")" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$(cat "$TMP/health/pid")" 2>/dev/null || break; sleep 0.1; done
out=$("$BIN" health --url "http://127.0.0.1:$HPORT/health" 2>&1)
rc=$?
[[ $rc -eq 1 && "$out" == *unhealthy* ]] &&
  pass "claudecron health with nothing listening: exit 1 ($out)" ||
  fail "claudecron health with nothing listening: exit 1" "exit $rc: $out"

section "base file system (debootstrap, cached)"
if bash "$REPO/scripts/package/rootfs.sh" "$ROOTFS_TAR" 2>"$TMP/rootfs.log"; then
  pass "Debian 12 minbase root file system: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1); $(tr "\n" " " <"$TMP/rootfs.log"))"
else
  fatal "debootstrap a Debian 12 minbase root file system" "$(cat "$TMP/rootfs.log")"
fi

# --- 1. Debian package -------------------------------------------------------------------------
# shellcheck source=scripts/package/deb_checks.sh
source "$REPO/scripts/package/deb_checks.sh"

# --- 2. container ------------------------------------------------------------------------------
# shellcheck source=scripts/package/container_checks.sh
source "$REPO/scripts/package/container_checks.sh"

echo
finish
