#!/usr/bin/env bash
# Deploy claudecron to a remote host over ssh: build → copy → install → restart → health.
#
#   scripts/deploy.sh --host vps.example.com [--user deploy] [--path claudecron-deploy]
#   CLAUDECRON_DEPLOY_HOST=vps.example.com scripts/deploy.sh
#
# One naming scheme: every setting is a CLAUDECRON_DEPLOY_* variable or the matching flag (flags
# win). The seed plan's script mixed REMOTE_* and SERVER_* names for the same things; those are
# not read.
#
#   flag               variable                            default
#   --host HOST        CLAUDECRON_DEPLOY_HOST              (required)
#   --user USER        CLAUDECRON_DEPLOY_USER              (ssh's default: ~/.ssh/config or $USER)
#   --path DIR         CLAUDECRON_DEPLOY_PATH              claudecron-deploy (upload directory on
#                                                          the remote, relative to the remote home;
#                                                          the service itself is installed by
#                                                          install.sh to /usr/local/bin etc.)
#   --port PORT        CLAUDECRON_DEPLOY_PORT              3010 (the server's port on the remote)
#   --health-url URL   CLAUDECRON_DEPLOY_HEALTH_URL        (none: `curl` over ssh on the remote,
#                                                          http://127.0.0.1:PORT/health; with a URL,
#                                                          e.g. https://mcp.example.com/cron/health,
#                                                          it is fetched from this machine)
#   --health-timeout S CLAUDECRON_DEPLOY_HEALTH_TIMEOUT    60 (seconds to wait for /health)
#   --binary PATH      CLAUDECRON_DEPLOY_BINARY            target/release/claudecron
#   --no-build         CLAUDECRON_DEPLOY_NO_BUILD=1        deploy --binary as it is
#                      CLAUDECRON_DEPLOY_BUILD             cargo build --release --locked
#                      CLAUDECRON_DEPLOY_SSH               ssh      (command words; e.g.
#                                                                   "ssh -p 2222 -i ~/.ssh/deploy")
#                      CLAUDECRON_DEPLOY_SCP               scp      (e.g. "scp -P 2222")
#                      CLAUDECRON_DEPLOY_SUDO              sudo     (empty when the user is root)
#
# Steps (each prints "==> step"; any failure stops the deploy with a non-zero exit):
#   1. build    CLAUDECRON_DEPLOY_BUILD in the repository (skipped with --no-build)
#   2. copy     mkdir -p PATH on the remote; scp the binary, claudecron.service,
#               config.example.toml, scripts/install.sh and docs/RUNBOOK*.md into it
#   3. install  sudo bash PATH/install.sh --source PATH --binary PATH/claudecron (idempotent;
#               keeps /etc/claudecron/config.toml, the database and the token)
#   4. restart  sudo systemctl restart claudecron (returns once the server sent READY=1)
#   5. health   poll /health until it answers {"status":"ok",...} with the version just built,
#               at most --health-timeout seconds; on failure print the last journal lines of
#               the unit and exit 1
#
# The remote user needs sudo rights for install.sh and systemctl without a password prompt (or
# CLAUDECRON_DEPLOY_SSH="ssh -t" to type it; or be root with CLAUDECRON_DEPLOY_SUDO=""). scripts/service_test.sh runs this script against a local stand-in
# "remote" through CLAUDECRON_DEPLOY_SSH / _SCP shims.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
  printf '\ndeploy.sh: DEPLOY FAILED: %s\n' "$*" >&2
  exit 1
}
step() { printf '==> %s\n' "$*"; }

HOST=${CLAUDECRON_DEPLOY_HOST:-}
RUSER=${CLAUDECRON_DEPLOY_USER:-}
RPATH=${CLAUDECRON_DEPLOY_PATH:-claudecron-deploy}
RPORT=${CLAUDECRON_DEPLOY_PORT:-3010}
HEALTH_URL=${CLAUDECRON_DEPLOY_HEALTH_URL:-}
HEALTH_TIMEOUT=${CLAUDECRON_DEPLOY_HEALTH_TIMEOUT:-60}
BINARY=${CLAUDECRON_DEPLOY_BINARY:-}
NO_BUILD=${CLAUDECRON_DEPLOY_NO_BUILD:-0}
BUILD=${CLAUDECRON_DEPLOY_BUILD:-cargo build --release --locked}
SUDO=${CLAUDECRON_DEPLOY_SUDO-sudo}
read -r -a SSH <<<"${CLAUDECRON_DEPLOY_SSH:-ssh}"
read -r -a SCP <<<"${CLAUDECRON_DEPLOY_SCP:-scp}"

need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --host) need "$@"; HOST=$2; shift 2 ;;
    --user) need "$@"; RUSER=$2; shift 2 ;;
    --path) need "$@"; RPATH=$2; shift 2 ;;
    --port) need "$@"; RPORT=$2; shift 2 ;;
    --health-url) need "$@"; HEALTH_URL=$2; shift 2 ;;
    --health-timeout) need "$@"; HEALTH_TIMEOUT=$2; shift 2 ;;
    --binary) need "$@"; BINARY=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \"$1\" (see --help)" ;;
  esac
done

[[ -n "$HOST" ]] || die "no remote host: pass --host HOST or set CLAUDECRON_DEPLOY_HOST"
[[ "$RPORT" =~ ^[0-9]+$ ]] || die "--port must be a number, got \"$RPORT\""
[[ "$HEALTH_TIMEOUT" =~ ^[0-9]+$ && "$HEALTH_TIMEOUT" -ge 1 ]] ||
  die "--health-timeout must be a whole number of seconds ≥ 1, got \"$HEALTH_TIMEOUT\""
[[ "$RPATH" != *[[:space:]]* ]] || die "--path must not contain spaces: \"$RPATH\""
BINARY=${BINARY:-$REPO/target/release/claudecron}
TARGET=${RUSER:+$RUSER@}$HOST
Q_PATH=$(printf '%q' "$RPATH")

remote() { "${SSH[@]}" "$TARGET" "$@"; }

printf 'deploy.sh: %s → %s:%s (port %s)\n' "$REPO" "$TARGET" "$RPATH" "$RPORT"

# --- 1. build -----------------------------------------------------------------------------------
if [[ "$NO_BUILD" == 1 ]]; then
  step "build (skipped: --no-build; deploying $BINARY)"
else
  step "build: $BUILD"
  (cd "$REPO" && eval "$BUILD") || die "build failed: $BUILD"
fi
[[ -x "$BINARY" ]] || die "no executable binary at $BINARY after the build"
LOCAL_VERSION=$("$BINARY" --version 2>/dev/null | awk '{print $NF}') ||
  die "$BINARY --version failed"

# --- 2. copy ------------------------------------------------------------------------------------
step "copy to $TARGET:$RPATH"
FILES=("$BINARY" "$REPO/claudecron.service" "$REPO/config.example.toml" "$REPO/scripts/install.sh")
for doc in "$REPO"/docs/RUNBOOK*.md; do
  [[ -f "$doc" ]] && FILES+=("$doc")
done
remote "mkdir -p $Q_PATH" || die "ssh $TARGET: cannot create $RPATH"
# The binary must be called claudecron in the upload directory.
if [[ "$(basename "$BINARY")" != claudecron ]]; then
  STAGE=$(mktemp -d)
  trap 'rm -rf "$STAGE"' EXIT
  cp "$BINARY" "$STAGE/claudecron"
  FILES[0]=$STAGE/claudecron
fi
"${SCP[@]}" "${FILES[@]}" "$TARGET:$RPATH/" || die "scp to $TARGET:$RPATH failed"

# --- 3. install ---------------------------------------------------------------------------------
step "install: ${SUDO:+$SUDO }bash $RPATH/install.sh"
remote "${SUDO:+$SUDO }bash $Q_PATH/install.sh --source $Q_PATH --binary $Q_PATH/claudecron" ||
  die "install.sh failed on $TARGET (its message is above)"

# --- 4. restart ---------------------------------------------------------------------------------
step "restart: ${SUDO:+$SUDO }systemctl restart claudecron"
remote "${SUDO:+$SUDO }systemctl restart claudecron" ||
  die "systemctl restart claudecron failed on $TARGET; see: ${SUDO:+$SUDO }journalctl -u claudecron -n 50"

# --- 5. health ----------------------------------------------------------------------------------
if [[ -n "$HEALTH_URL" ]]; then
  where="$HEALTH_URL (from here)"
  probe() { curl -fsS --max-time 5 "$HEALTH_URL"; }
else
  where="http://127.0.0.1:$RPORT/health (curl on $TARGET)"
  probe() { remote "curl -fsS --max-time 5 http://127.0.0.1:$RPORT/health"; }
fi
step "health: $where, up to ${HEALTH_TIMEOUT}s"
deadline=$((SECONDS + HEALTH_TIMEOUT))
attempts=0
last=""
while :; do
  attempts=$((attempts + 1))
  if body=$(probe 2>&1); then
    if [[ "$body" == *'"status":"ok"'* ]]; then
      remote_version=$(printf '%s' "$body" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
      if [[ -n "$LOCAL_VERSION" && -n "$remote_version" && "$remote_version" != "$LOCAL_VERSION" ]]; then
        last="answers version $remote_version, but $LOCAL_VERSION was deployed"
      else
        printf '%s\n' "$body"
        printf 'deploy.sh: deployed claudecron %s to %s; /health ok after %d attempt(s)\n' \
          "${remote_version:-?}" "$TARGET" "$attempts"
        exit 0
      fi
    else
      last="answered but not ok: $body"
    fi
  else
    last=$body
  fi
  ((SECONDS < deadline)) || break
  sleep 1
done

{
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
  printf '!! claudecron on %s did not become healthy within %ss\n' "$TARGET" "$HEALTH_TIMEOUT"
  printf '!! probe: %s, %d attempt(s)\n' "$where" "$attempts"
  printf '!! last answer: %s\n' "${last:-(none)}"
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
  printf '\nlast journal lines of the unit on %s:\n' "$TARGET"
} >&2
remote "${SUDO:+$SUDO }systemctl --no-pager status claudecron; ${SUDO:+$SUDO }journalctl -u claudecron -n 40 --no-pager" >&2 || true
die "health check failed: $where"
