# shellcheck shell=bash
# The Debian package part of scripts/package_test.sh (sourced there, never run alone; it uses
# its REPO, TMP, CACHE, BIN, PROFILE, CARGO_DEB, ROOTFS_TAR, PIDFILES and the check functions):
# build the .deb twice (the version and a newer revision) with cargo deb, lintian, then install,
# upgrade, remove and purge it in a throwaway root unpacked from the debootstrap file system,
# dpkg and the maintainer scripts running for real inside it (chroot, own mount namespace with
# its own /proc). Sets DEB_SIZE.

section "Debian package (cargo deb, lintian, dpkg in a throwaway root)"
DEB_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)
# build_deb REVISION OUTDIR: the package of the binary $BIN with Debian revision REVISION.
build_deb() {
  local args=(--no-build --deb-version "$DEB_VERSION-$1" -o "$2/")
  [[ "$PROFILE" == dev ]] && args+=(--profile dev)
  mkdir -p "$2"
  (cd "$REPO" && PATH=$(dirname "$CARGO_DEB"):$PATH cargo deb "${args[@]}") >"$2/build.log" 2>&1 &&
    compgen -G "$2/claudecron_${DEB_VERSION}-$1_*.deb" >/dev/null
}
DEB1="" DEB2=""
if build_deb 1 "$TMP/deb1" && build_deb 2 "$TMP/deb2"; then
  DEB1=$(compgen -G "$TMP/deb1/claudecron_*.deb" | head -n 1)
  DEB2=$(compgen -G "$TMP/deb2/claudecron_*.deb" | head -n 1)
  DEB_SIZE="$(stat -c %s "$DEB1") bytes ($(du -h "$DEB1" | cut -f1)), $(basename "$DEB1")"
  pass "cargo deb: $(basename "$DEB1") and $(basename "$DEB2") ($DEB_SIZE)"
else
  fail "cargo deb builds the package" "$(tail -n 20 "$TMP"/deb*/build.log)"
fi

if [[ -n "$DEB1" ]]; then
  # -- lintian: no error and no warning beyond the explained overrides ------------------------
  lintian --fail-on error,warning "$DEB1" >"$TMP/lintian.log" 2>&1
  rc=$?
  out=$(grep -v 'running with root privileges' "$TMP/lintian.log")
  if [[ $rc -eq 0 ]] && ! grep -q '^[EW]: ' <<<"$out"; then
    pass "lintian $(lintian --version | awk '{print $2}'): no errors, no warnings (each override explained in debian/lintian-overrides)"
  else
    fail "lintian: no errors, no warnings" "exit $rc: $out"
  fi
  # -- contents -------------------------------------------------------------------------------
  contents=$(dpkg-deb -c "$DEB1" | awk '{print $1, $2, $6}')
  missing=""
  for want in "-rwxr-xr-x 0/0 ./usr/bin/claudecron" \
    "-rw-r----- 0/0 ./etc/claudecron/config.toml" \
    "-rw-r--r-- 0/0 ./usr/lib/systemd/system/claudecron.service" \
    "-rw-r--r-- 0/0 ./usr/share/claudecron/nginx.conf" \
    "-rw-r--r-- 0/0 ./usr/share/doc/claudecron/RUNBOOK.md" \
    "-rw-r--r-- 0/0 ./usr/share/doc/claudecron/copyright" \
    "-rw-r--r-- 0/0 ./usr/share/lintian/overrides/claudecron"; do
    grep -qxF -- "$want" <<<"$contents" || missing+="$want; "
  done
  [[ -z "$missing" ]] && pass "package contents: binary, conffile, unit, nginx template, docs, modes" ||
    fail "package contents" "missing: $missing"
  dpkg-deb --fsys-tarfile "$DEB1" | tar -xO ./usr/lib/systemd/system/claudecron.service >"$TMP/deb-unit"
  if cmp -s "$TMP/deb-unit" "$REPO/debian/claudecron.service" &&
    bash "$REPO/scripts/package/deb-unit.sh" | cmp -s - "$REPO/debian/claudecron.service"; then
    pass "the packaged unit is debian/claudecron.service, made from claudecron.service (no drift)"
  else
    fail "debian/claudecron.service is up to date" \
      "run: scripts/package/deb-unit.sh > debian/claudecron.service; $(bash "$REPO/scripts/package/deb-unit.sh" | diff - "$REPO/debian/claudecron.service" | head -n 10)"
  fi
  [[ "$(dpkg-deb -I "$DEB1" conffiles 2>/dev/null)" == "/etc/claudecron/config.toml" ]] &&
    pass "conffiles: /etc/claudecron/config.toml" ||
    fail "conffiles: /etc/claudecron/config.toml" "$(dpkg-deb -I "$DEB1" conffiles 2>&1)"

  # -- install into a throwaway root ------------------------------------------------------------
  R=$TMP/debroot
  mkdir -p "$R"
  tar -xf "$ROOTFS_TAR" -C "$R"
  cp "$DEB1" "$DEB2" "$R/tmp/"
  # in_root CMD...: run CMD inside the root in a private mount namespace with its own /proc.
  in_root() {
    unshare --mount --fork -- sh -c 'r=$1; shift; mount -t proc proc "$r/proc" && exec chroot "$r" "$@"' \
      sh "$R" "$@"
  }
  stat_in() { in_root stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing; }
  # root_server PIDFILE PORT: the installed server, as the package's user, on PORT (background).
  root_server() {
    local uid gid
    uid=$(in_root id -u claudecron) gid=$(in_root id -g claudecron)
    (umask 027 && exec unshare --mount --fork -- sh -c \
      'r=$1 pidfile=$2 port=$3 ids=$4; mount -t proc proc "$r/proc" && echo $$ >"$pidfile" &&
       exec chroot --userspec="$ids" "$r" env HOME=/var/lib/claudecron \
         /usr/bin/claudecron serve --config /etc/claudecron/config.toml --port "$port"' \
      sh "$R" "$1" "$2" "$uid:$gid") >>"$TMP/root-server.log" 2>&1 &
  }
  stop_root_server() {
    [[ -s "$1" ]] || return 0
    kill "$(cat "$1")" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$(cat "$1")" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$(cat "$1")" 2>/dev/null
  }

  # No systemd runs in this root (nor is it installed). The maintainer scripts are told one runs
  # (/run/systemd/system) and deb-systemd-invoke, which would start and stop the unit, is a
  # stand-in that logs its calls, so what the scripts ask of systemd on install, upgrade and
  # remove is checked (a real systemd starting the same unit: scripts/service/boot_test.sh).
  mkdir -p "$R/run/systemd/system"
  printf '#!/bin/sh\necho "deb-systemd-invoke $*" >>/tmp/systemd-calls.log\n' >"$R/usr/bin/deb-systemd-invoke"
  chmod 0755 "$R/usr/bin/deb-systemd-invoke"
  calls() { cat "$R/tmp/systemd-calls.log" 2>/dev/null; : >"$R/tmp/systemd-calls.log"; }
  if in_root dpkg -i "/tmp/$(basename "$DEB1")" >"$TMP/dpkg-i.log" 2>&1; then
    pass "dpkg -i $(basename "$DEB1") in a fresh Debian 12 root (maintainer scripts ran)"
  else
    fail "dpkg -i in a fresh Debian 12 root" "$(tail -n 20 "$TMP/dpkg-i.log")"
  fi
  pw=$(in_root getent passwd claudecron)
  IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
  [[ -n "$pw" && "$uid" -lt 1000 && "$home" == /var/lib/claudecron && "$shell" == /usr/sbin/nologin ]] &&
    pass "system user claudecron: uid $uid, home $home, shell $shell" ||
    fail "system user claudecron (uid < 1000, home /var/lib/claudecron, nologin)" "$pw"
  got="$(stat_in /usr/bin/claudecron) | $(stat_in /etc/claudecron) | $(stat_in /etc/claudecron/config.toml) | $(stat_in /var/lib/claudecron) | $(stat_in /usr/lib/systemd/system/claudecron.service)"
  want="755 root:root | 750 root:claudecron | 640 root:claudecron | 750 claudecron:claudecron | 644 root:root"
  [[ "$got" == "$want" ]] &&
    pass "owners and modes: binary, /etc/claudecron, config.toml, /var/lib/claudecron, unit ($got)" ||
    fail "owners and modes (binary | /etc/claudecron | config.toml | /var/lib/claudecron | unit)" "want $want
got  $got"
  in_root dpkg-query -W -f='${Conffiles}\n' claudecron | grep -q '^ /etc/claudecron/config.toml [0-9a-f]\{32\}$' &&
    pass "dpkg records /etc/claudecron/config.toml as a conffile" ||
    fail "dpkg records the conffile" "$(in_root dpkg-query -W -f='${Conffiles}' claudecron 2>&1)"
  # (/lib is /usr/lib on Debian 12's merged /usr; deb-systemd-helper writes the /lib spelling)
  link=$(readlink "$R/etc/systemd/system/multi-user.target.wants/claudecron.service")
  [[ "$link" == /lib/systemd/system/claudecron.service || "$link" == /usr/lib/systemd/system/claudecron.service ]] &&
    pass "unit enabled by postinst (multi-user.target.wants/claudecron.service)" ||
    fail "unit enabled by postinst" "$(ls -l "$R/etc/systemd/system/multi-user.target.wants/" 2>&1)"
  got=$(calls)
  grep -qx 'deb-systemd-invoke start claudecron.service' <<<"$got" &&
    pass "install starts the service under systemd (postinst: deb-systemd-invoke start claudecron.service)" ||
    fail "postinst starts the service" "calls: $got"

  # systemd-analyze verify of the unit as installed (the host's units copied in for its
  # dependencies, never over the package's files).
  cp -an /usr/lib/systemd/system/. "$R/usr/lib/systemd/system/" 2>/dev/null ||
    cp -an /lib/systemd/system/. "$R/usr/lib/systemd/system/" 2>/dev/null
  if out=$(systemd-analyze verify --root="$R" claudecron.service 2>&1) && [[ -z "$out" ]]; then
    pass "systemd-analyze verify of the installed unit: no errors, no warnings"
  else
    fail "systemd-analyze verify of the installed unit" "$out"
  fi
  if systemd-analyze security --offline=true --root="$R" --threshold=20 claudecron.service >/dev/null 2>&1; then
    pass "systemd-analyze security --offline of the installed unit: exposure ≤ 2.0"
  else
    fail "systemd-analyze security --offline ≤ 2.0" \
      "$(systemd-analyze security --offline=true --root="$R" claudecron.service 2>&1 | tail -n 3)"
  fi

  # The installed server, as the package's user with the installed config: it starts, answers,
  # and keeps a task in its database (for the upgrade check below).
  RPORT=$(free_port)
  PIDFILES+=("$TMP/root-server.pid")
  root_server "$TMP/root-server.pid" "$RPORT"
  if wait_health "http://127.0.0.1:$RPORT/health" 60 &&
    TOKEN1=$(cat "$R/var/lib/claudecron/token" 2>/dev/null) && [[ -n "$TOKEN1" ]] &&
    CLAUDECRON_TOKEN=$TOKEN1 python3 "$REPO/scripts/package/mcp.py" "http://127.0.0.1:$RPORT" \
      claudecron_add_task '{"name":"deb-kept","type":"bash","trigger":{"type":"manual"},"command":"true"}' \
      >"$TMP/root-add.json" 2>&1; then
    pass "the installed server runs as claudecron with /etc/claudecron/config.toml; a task added"
  else
    fail "the installed server runs as claudecron and takes a task" \
      "$(tail -n 10 "$TMP/root-server.log"; cat "$TMP/root-add.json" 2>/dev/null)"
  fi
  stop_root_server "$TMP/root-server.pid"
  [[ "$(stat_in /var/lib/claudecron/token)" == "600 claudecron:claudecron" ]] &&
    pass "token file /var/lib/claudecron/token: 0600 claudecron" ||
    fail "token file 0600 claudecron" "$(stat_in /var/lib/claudecron/token)"

  # -- upgrade to the newer revision: config edit and database kept ------------------------------
  printf '\n# edited by the administrator (package test)\n' >>"$R/etc/claudecron/config.toml"
  conf_sum=$(md5sum <"$R/etc/claudecron/config.toml")
  token_sum=$(md5sum <"$R/var/lib/claudecron/token")
  if in_root dpkg -i "/tmp/$(basename "$DEB2")" >"$TMP/dpkg-up.log" 2>&1 &&
    [[ "$(in_root dpkg-query -W -f='${Version}' claudecron)" == "$DEB_VERSION-2" ]]; then
    got=$(calls)
    grep -qx 'deb-systemd-invoke restart claudecron.service' <<<"$got" &&
      pass "upgrade: dpkg -i $(basename "$DEB2") over $DEB_VERSION-1 restarts the service" ||
      fail "upgrade restarts the service" "calls: $got"
  else
    fail "upgrade to $DEB_VERSION-2" "$(tail -n 20 "$TMP/dpkg-up.log")"
  fi
  [[ "$(md5sum <"$R/etc/claudecron/config.toml")" == "$conf_sum" &&
    "$(stat_in /etc/claudecron/config.toml)" == "640 root:claudecron" ]] &&
    pass "upgrade keeps the edited config (0640 root:claudecron)" ||
    fail "upgrade keeps the edited config" "$(stat_in /etc/claudecron/config.toml); $(tail -n 5 "$TMP/dpkg-up.log")"
  out=$(in_root runuser -u claudecron -- /usr/bin/claudecron check --config /etc/claudecron/config.toml 2>&1)
  [[ "$out" == *"1 tasks"* && "$(md5sum <"$R/var/lib/claudecron/token")" == "$token_sum" ]] &&
    pass "upgrade keeps the database (the task is there) and the token" ||
    fail "upgrade keeps the database and the token" "$(tail -n 3 <<<"$out")"

  # -- remove keeps data and config; purge deletes them -------------------------------------------
  if in_root dpkg -r claudecron >"$TMP/dpkg-r.log" 2>&1 && [[ ! -e "$R/usr/bin/claudecron" ]] &&
    [[ -f "$R/var/lib/claudecron/tasks.db" && -f "$R/var/lib/claudecron/token" ]] &&
    [[ "$(md5sum <"$R/etc/claudecron/config.toml")" == "$conf_sum" ]]; then
    got=$(calls)
    grep -qx 'deb-systemd-invoke stop claudecron.service' <<<"$got" &&
      pass "dpkg -r: service stopped; binary gone; database, token and config kept" ||
      fail "dpkg -r stops the service" "calls: $got"
  else
    fail "dpkg -r keeps the data and the config" "$(tail -n 10 "$TMP/dpkg-r.log"; ls -la "$R/var/lib/claudecron" 2>&1)"
  fi
  if in_root dpkg -P claudecron >"$TMP/dpkg-p.log" 2>&1 && [[ ! -e "$R/var/lib/claudecron" && ! -e "$R/etc/claudecron" ]] &&
    ! in_root dpkg-statoverride --list | grep -q claudecron &&
    [[ ! -e "$R/etc/systemd/system/multi-user.target.wants/claudecron.service" ]]; then
    pass "dpkg -P: /var/lib/claudecron, /etc/claudecron, the overrides and the enablement are gone"
  else
    fail "dpkg -P deletes the data" "$(tail -n 10 "$TMP/dpkg-p.log"; ls -la "$R/var/lib/claudecron" "$R/etc/claudecron" 2>&1; in_root dpkg-statoverride --list)"
  fi
fi
