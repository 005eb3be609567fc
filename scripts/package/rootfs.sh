#!/usr/bin/env bash
# A minimal Debian 12 root file system as a tar file, made with debootstrap from the Debian
# mirror apt already uses on this machine (no container registry is needed or reachable):
#
#   scripts/package/rootfs.sh OUT.tar
#
# Cached: an existing OUT.tar is kept. scripts/package_test.sh imports it as the Dockerfile's
# base image (podman import) and unpacks it as the throwaway root the .deb is installed into.
# Needs root and debootstrap. Prints what it did on stderr; exit non-zero on failure.
set -euo pipefail
OUT=${1:?usage: rootfs.sh OUT.tar}
SUITE=bookworm
[[ -s "$OUT" ]] && { echo "rootfs: cached $OUT" >&2; exit 0; }

# The mirror: the first http(s) URI of apt's Debian sources (deb822 or one-line format).
MIRROR=$(sed -n 's/^URIs:[[:space:]]*\(https\{0,1\}:[^[:space:]]*\/debian\/\{0,1\}\)\([[:space:]].*\)\{0,1\}$/\1/p' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [[ -z "$MIRROR" ]]; then
  MIRROR=$(sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\(https\{0,1\}:[^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' \
    /etc/apt/sources.list 2>/dev/null | head -n 1)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/claudecron-rootfs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "rootfs: debootstrap --variant=minbase $SUITE from $MIRROR" >&2
if ! debootstrap --variant=minbase "$SUITE" "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 20 "$WORK/debootstrap.log" >&2
  exit 1
fi
# As Docker Hub's debian:bookworm-slim: no apt lists or caches in the image; apt sources point
# at the same mirror.
rm -rf "$WORK/root/var/lib/apt/lists/"* "$WORK/root/var/cache/apt/archives/"*.deb "$WORK/root/var/cache/apt/"*.bin
mkdir -p "$(dirname "$OUT")"
tar --numeric-owner -C "$WORK/root" -cf "$OUT.tmp" .
mv -f "$OUT.tmp" "$OUT"
echo "rootfs: wrote $OUT ($(du -h "$OUT" | cut -f1))" >&2
