#!/usr/bin/env bash
# Install (or upgrade) claudecron as a systemd service. Idempotent: run it again after every
# build; it replaces the binary, the unit and the docs, and never touches an existing config,
# the database or the token.
#
#   sudo scripts/install.sh [--binary PATH] [--source DIR] [--no-start]
#   DESTDIR=/tmp/root scripts/install.sh --binary target/release/claudecron   # staged, no root
#
# What it does (paths are prefixed with $DESTDIR when set):
#   1. system group and user `claudecron` (no login shell, home /var/lib/claudecron, not created)
#   2. /usr/local/bin/claudecron (0755 root:root) from --binary, else DIR/target/release/claudecron,
#      built with `cargo build --release` when missing
#   3. /etc/systemd/system/claudecron.service (0644), /usr/local/share/doc/claudecron/ (docs)
#   4. /etc/claudecron/ (0750 root:claudecron) and /etc/claudecron/config.toml from
#      config.example.toml (0640 root:claudecron) only when the config is absent
#   5. /var/lib/claudecron (0750 claudecron:claudecron; systemd's StateDirectory= keeps it so)
#   6. `claudecron check` of the config as the claudecron user, then `systemctl daemon-reload`
#      and `systemctl enable --now claudecron` (an already running service is left running:
#      `systemctl restart claudecron` picks up a new binary; scripts/deploy.sh does that)
#
# With DESTDIR set, nothing outside DESTDIR is changed: no useradd, no chown, no check against
# the real /var/lib, no systemctl; each skipped step is printed as "would run: ...". Step 6 is
# also skipped (with a message) when systemd is not running (no /run/systemd/system).
#
# Options:
#   --binary PATH   the claudecron binary to install (default: DIR/target/release/claudecron)
#   --source DIR    where claudecron.service, config.example.toml and docs/ are (default: the
#                   repository this script is in; scripts/deploy.sh passes its upload directory)
#   --no-start      install and enable, but do not start or check
set -euo pipefail

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'install.sh: %s\n' "$*"; }

SOURCE=""
BINARY=""
START=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; BINARY=$2; shift 2 ;;
    --binary=*) BINARY=${1#*=}; shift ;;
    --source) [[ $# -ge 2 ]] || die "--source needs a directory"; SOURCE=$2; shift 2 ;;
    --source=*) SOURCE=${1#*=}; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \"$1\"; accepted: --binary PATH, --source DIR, --no-start" ;;
  esac
done

if [[ -z "$SOURCE" ]]; then
  SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
[[ -d "$SOURCE" ]] || die "source directory $SOURCE does not exist"
SOURCE=$(cd "$SOURCE" && pwd)

# DESTDIR: a staging root. Empty means the real system.
DESTDIR=${DESTDIR:-}
if [[ -n "$DESTDIR" ]]; then
  mkdir -p "$DESTDIR"
  DESTDIR=$(cd "$DESTDIR" && pwd)
  [[ "$DESTDIR" != "/" ]] || DESTDIR=""
fi
STAGED=0
[[ -n "$DESTDIR" ]] && STAGED=1

USER_NAME=claudecron
BIN_DIR=/usr/local/bin
UNIT_DIR=/etc/systemd/system
CONF_DIR=/etc/claudecron
STATE_DIR=/var/lib/claudecron
DOC_DIR=/usr/local/share/doc/claudecron
UNIT_SRC=$SOURCE/claudecron.service
CONF_SRC=$SOURCE/config.example.toml

would() { say "would run: $*"; }

[[ -f "$UNIT_SRC" ]] || die "unit file $UNIT_SRC not found (use --source DIR)"
[[ -f "$CONF_SRC" ]] || die "config example $CONF_SRC not found (use --source DIR)"

if [[ $STAGED -eq 0 && $(id -u) -ne 0 ]]; then
  die "must run as root (sudo $0 ...), or set DESTDIR=DIR to stage the files without root"
fi

# --- 2a. the binary: find or build it first, so a failed build changes nothing ---------------
if [[ -z "$BINARY" ]]; then
  BINARY=$SOURCE/target/release/claudecron
  if [[ ! -x "$BINARY" ]]; then
    [[ -f "$SOURCE/Cargo.toml" ]] || die "no binary at $BINARY and no Cargo.toml in $SOURCE to build one; pass --binary PATH"
    command -v cargo >/dev/null 2>&1 ||
      die "no binary at $BINARY and cargo is not on PATH; build it first (cargo build --release) or pass --binary PATH"
    say "no binary at $BINARY; building: cargo build --release"
    (cd "$SOURCE" && cargo build --release)
  fi
fi
[[ -f "$BINARY" && -x "$BINARY" ]] || die "binary $BINARY does not exist or is not executable"
"$BINARY" --version >/dev/null 2>&1 || die "binary $BINARY does not run (\`$BINARY --version\` failed)"

# --- 1. user and group ---------------------------------------------------------------------
NOLOGIN=/usr/sbin/nologin
[[ -x $NOLOGIN ]] || NOLOGIN=/sbin/nologin
GROUPADD=(groupadd --system "$USER_NAME")
USERADD=(useradd --system --gid "$USER_NAME" --home-dir "$STATE_DIR" --no-create-home
  --shell "$NOLOGIN" --comment "claudecron MCP server" "$USER_NAME")
if [[ $STAGED -eq 1 ]]; then
  would "${GROUPADD[*]}   (if the group does not exist)"
  would "${USERADD[*]}   (if the user does not exist)"
else
  if getent group "$USER_NAME" >/dev/null; then
    say "group $USER_NAME exists"
  else
    "${GROUPADD[@]}"
    say "created system group $USER_NAME"
  fi
  if id -u "$USER_NAME" >/dev/null 2>&1; then
    say "user $USER_NAME exists"
  else
    "${USERADD[@]}"
    say "created system user $USER_NAME (home $STATE_DIR, shell $NOLOGIN)"
  fi
fi

# chown only on the real system; staged files keep the caller's owner.
own() { # own OWNER:GROUP PATH
  if [[ $STAGED -eq 1 ]]; then
    would "chown $1 $2"
  else
    chown "$1" "$DESTDIR$2"
  fi
}

# Copy SRC to DEST (a path on the target system) with MODE, atomically (temp file + rename), so a
# running binary is never overwritten in place. Prints whether it changed.
CHANGED_UNIT=0
put() { # put SRC DEST MODE
  local src=$1 dest=$DESTDIR$2 mode=$3 tmp
  mkdir -p "$(dirname "$dest")"
  if [[ -f "$dest" ]] && cmp -s "$src" "$dest"; then
    chmod "$mode" "$dest"
    say "$2 unchanged"
    return 1
  fi
  tmp=$(mktemp "$dest.XXXXXX")
  install -m "$mode" "$src" "$tmp"
  mv -f "$tmp" "$dest"
  say "installed $2 (mode $mode)"
  return 0
}

# --- 2b. binary, unit, docs ---------------------------------------------------------------------
put "$BINARY" "$BIN_DIR/claudecron" 0755 || true
own root:root "$BIN_DIR/claudecron"
if put "$UNIT_SRC" "$UNIT_DIR/claudecron.service" 0644; then CHANGED_UNIT=1; fi
own root:root "$UNIT_DIR/claudecron.service"
# Docs: from a checkout (docs/) or from deploy.sh's flat upload directory.
for doc in RUNBOOK-service.md RUNBOOK.md; do
  for src in "$SOURCE/docs/$doc" "$SOURCE/$doc"; do
    if [[ -f "$src" ]]; then
      put "$src" "$DOC_DIR/$doc" 0644 || true
      break
    fi
  done
done

# --- 4. configuration (never overwritten) -----------------------------------------------------
mkdir -p "$DESTDIR$CONF_DIR"
chmod 0750 "$DESTDIR$CONF_DIR"
own root:"$USER_NAME" "$CONF_DIR"
CONF=$CONF_DIR/config.toml
if [[ -e "$DESTDIR$CONF" ]]; then
  say "$CONF exists; kept as it is (compare with $CONF_SRC for new keys)"
else
  tmp=$(mktemp "$DESTDIR$CONF.XXXXXX")
  install -m 0640 "$CONF_SRC" "$tmp"
  mv -f "$tmp" "$DESTDIR$CONF"
  say "installed $CONF from config.example.toml (mode 0640); edit public_url, then restart"
fi
own root:"$USER_NAME" "$CONF"

# --- 5. state directory ----------------------------------------------------------------------
mkdir -p "$DESTDIR$STATE_DIR"
chmod 0750 "$DESTDIR$STATE_DIR"
own "$USER_NAME:$USER_NAME" "$STATE_DIR"

# --- 6. validate, then hand over to systemd ---------------------------------------------------
CHECK=(runuser -u "$USER_NAME" -- "$BIN_DIR/claudecron" check --config "$CONF")
if [[ $STAGED -eq 1 ]]; then
  would "${CHECK[*]}"
  would "systemctl daemon-reload"
  if [[ $START -eq 1 ]]; then would "systemctl enable --now claudecron"; else would "systemctl enable claudecron"; fi
  say "staged into $DESTDIR; the real system was not changed"
  exit 0
fi

if [[ $START -eq 1 ]]; then
  # umask 027 as in the unit (UMask=0027): `check` may create the database on first install.
  if ! (umask 027 && "${CHECK[@]}" >/dev/null); then
    die "the configuration was refused: fix $CONF (see the message above), then run this script again"
  fi
  say "configuration $CONF accepted"
fi

if [[ ! -d /run/systemd/system ]]; then
  say "systemd is not running on this machine; skipped: systemctl daemon-reload, systemctl enable --now claudecron"
  say "start it by hand: runuser -u $USER_NAME -- $BIN_DIR/claudecron serve --config $CONF"
  exit 0
fi

systemctl daemon-reload
if [[ $START -eq 1 ]]; then
  was_active=0
  systemctl is-active --quiet claudecron && was_active=1
  systemctl enable --now claudecron
  if [[ $was_active -eq 1 ]]; then
    say "claudecron was already running; it keeps the old binary until: systemctl restart claudecron"
  else
    say "claudecron enabled and started: systemctl status claudecron; journalctl -u claudecron"
  fi
else
  systemctl enable claudecron
  say "claudecron enabled (not started): systemctl start claudecron"
fi
[[ $CHANGED_UNIT -eq 1 ]] && say "the unit file changed; daemon-reload done"
say "done"
