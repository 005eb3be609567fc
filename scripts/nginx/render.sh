#!/usr/bin/env bash
# Render the nginx site template (REPO/nginx.conf) for one deployment:
#
#   scripts/nginx/render.sh --server-name cron.example.com \
#       --cert /etc/letsencrypt/live/cron.example.com/fullchain.pem \
#       --key  /etc/letsencrypt/live/cron.example.com/privkey.pem \
#       [--upstream-port 3010] [--http-listen 80] [--https-listen 443] [--public-port PORT] \
#       [--template FILE] [-o OUT]
#
# --http-listen / --https-listen take anything nginx's `listen` accepts before its flags
# (`443`, `127.0.0.1:8443`). --public-port is the HTTPS port clients use, for the HTTP->HTTPS
# redirect (default: the port of --https-listen; 443 gives redirects without a port).
# Writes the site to OUT (default: stdout). Fails when a value would break the nginx syntax or a
# placeholder is left over. The cert and key are not read (only warned about when missing), so a
# site can be rendered before the certificate exists; `nginx -t` checks them.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TEMPLATE=$REPO/nginx.conf
SERVER_NAME=""
CERT=""
KEY=""
UPSTREAM_PORT=3010
HTTP_LISTEN=80
HTTPS_LISTEN=443
PUBLIC_PORT=""
OUT=""

die() {
  echo "render.sh: $*" >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --server-name) SERVER_NAME=${2:-} ;;
    --cert) CERT=${2:-} ;;
    --key) KEY=${2:-} ;;
    --upstream-port) UPSTREAM_PORT=${2:-} ;;
    --http-listen) HTTP_LISTEN=${2:-} ;;
    --https-listen) HTTPS_LISTEN=${2:-} ;;
    --public-port) PUBLIC_PORT=${2:-} ;;
    --template) TEMPLATE=${2:-} ;;
    -o | --output) OUT=${2:-} ;;
    -h | --help)
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  [[ $# -ge 2 ]] || die "$1 needs a value"
  shift 2
done

[[ -n "$SERVER_NAME" ]] || die "--server-name is required (the public host name, e.g. cron.example.com)"
[[ -n "$CERT" && -n "$KEY" ]] || die "--cert and --key are required (PEM certificate chain and private key)"
[[ -r "$TEMPLATE" ]] || die "cannot read the template $TEMPLATE"
# Values go into nginx directives verbatim (no quoting): nothing that ends or opens a directive.
plain() { # plain FLAG VALUE [spaces-ok]
  case "$2" in
    *[\;\{\}\"\'\#\$\\]*) die "$1 '$2' contains a character nginx would read as syntax: ; { } quotes # \$ \\" ;;
  esac
  if [[ -z "${3:-}" && "$2" =~ [[:space:]] ]]; then die "$1 '$2' contains white space"; fi
}
plain --server-name "$SERVER_NAME" spaces-ok # several names: "a.example.com b.example.com"
plain --cert "$CERT"
plain --key "$KEY"
plain --http-listen "$HTTP_LISTEN"
plain --https-listen "$HTTPS_LISTEN"
if ! [[ "$UPSTREAM_PORT" =~ ^[0-9]+$ ]] || ((UPSTREAM_PORT < 1 || UPSTREAM_PORT > 65535)); then
  die "--upstream-port '$UPSTREAM_PORT' is not a port number"
fi
[[ "$HTTPS_LISTEN" =~ ([0-9]+)$ ]] || die "--https-listen '$HTTPS_LISTEN' does not end in a port"
PUBLIC_PORT=${PUBLIC_PORT:-${BASH_REMATCH[1]}}
[[ "$PUBLIC_PORT" =~ ^[0-9]+$ ]] || die "--public-port '$PUBLIC_PORT' is not a port number"
SUFFIX=""
[[ "$PUBLIC_PORT" == 443 ]] || SUFFIX=":$PUBLIC_PORT"
for f in "$CERT" "$KEY"; do
  [[ -e "$f" ]] || echo "render.sh: warning: $f does not exist (yet); nginx -t will fail until it does" >&2
done

# Substitute in directives only: comment lines (the placeholder table above all) stay as written.
shopt -u patsub_replacement 2>/dev/null || true # bash 5.2: keep a & in a value literal
site=""
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" != *@@* || "$line" =~ ^[[:space:]]*# ]]; then
    site+=$line$'\n'
    continue
  fi
  line=${line//@@SERVER_NAME@@/"$SERVER_NAME"}
  line=${line//@@HTTP_LISTEN@@/"$HTTP_LISTEN"}
  line=${line//@@HTTPS_LISTEN@@/"$HTTPS_LISTEN"}
  line=${line//@@HTTPS_PORT_SUFFIX@@/"$SUFFIX"}
  line=${line//@@TLS_CERT@@/"$CERT"}
  line=${line//@@TLS_KEY@@/"$KEY"}
  line=${line//@@UPSTREAM_PORT@@/"$UPSTREAM_PORT"}
  [[ "$line" =~ @@[A-Z_]+@@ ]] && die "placeholder ${BASH_REMATCH[0]} left unrendered (the template has one this script does not know): $line"
  site+=$line$'\n'
done <"$TEMPLATE"

if [[ -n "$OUT" ]]; then
  printf '%s' "$site" >"$OUT"
else
  printf '%s' "$site"
fi
