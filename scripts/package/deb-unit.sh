#!/usr/bin/env bash
# Print the Debian package's unit (debian/claudecron.service) made from the one unit the project
# keeps, claudecron.service: the same sandbox and settings, only the paths a package uses
# (/usr/bin, /usr/share/doc instead of install.sh's /usr/local) and the header differ.
#
#   scripts/package/deb-unit.sh > debian/claudecron.service     # after editing claudecron.service
#
# scripts/package_test.sh fails when the committed copy differs from this output, so the two
# units cannot drift apart.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UNIT=$REPO/claudecron.service

cat <<'HEADER'
# claudecron: self-hosted MCP server that schedules and runs bash and Claude tasks.
#
# Installed by the Debian package to /usr/lib/systemd/system/claudecron.service (replaced on
# every upgrade: put local changes in a drop-in, `systemctl edit claudecron`, which writes
# /etc/systemd/system/claudecron.service.d/override.conf and survives upgrades).
# GENERATED from claudecron.service by scripts/package/deb-unit.sh; edit that file, not this one.
#
HEADER
# From the first line after the original header that is not about install.sh: the
# description of the sandbox ("Every task the server runs ...") and everything after it.
sed -n '/^# Every task the server runs/,$p' "$UNIT" |
  sed -e 's#/usr/local/bin/claudecron#/usr/bin/claudecron#g' \
    -e 's#/usr/local/share/doc/claudecron/#/usr/share/doc/claudecron/#g' \
    -e 's#created by scripts/install.sh#created by the package'"'"'s postinst#'
