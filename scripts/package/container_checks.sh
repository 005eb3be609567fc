# shellcheck shell=bash
# The container part of scripts/package_test.sh (sourced there, never run alone; it uses its
# REPO, TMP, CACHE, PROFILE, ROOTFS_TAR, CLEANUPS and the check functions): base images made
# here (no registry is reachable), `podman build` of the Dockerfile, `podman-compose up` of
# docker-compose.yml, then health, the HEALTHCHECK, an MCP round trip with the token, a clean
# stop that records the running task, and data kept across down/up. Sets IMAGE_SIZE. When the
# kernel refuses containers it says why and skips; everything else that fails is a failure.

section "container (podman build, podman-compose)"
# This machine's podman needs Debian's runc and no default ulimits; said here, not in the
# shipped files.
export CONTAINERS_CONF=$TMP/containers.conf
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
RUST_IMAGE=docker.io/library/rust:1-slim-bookworm
IMAGE=localhost/claudecron:package-test
PROJECT=claudecron-pkgtest
COMPOSE=$CACHE/compose-venv/bin/podman-compose
container_skip=""

if ! need_debs podman:podman runc:runc; then
  fail "podman and runc installed (Debian packages)" "see above"
  container_skip="podman or runc could not be installed"
fi
if [[ -z "$container_skip" && ! -x "$COMPOSE" ]]; then
  echo "installing podman-compose 1.6.0 from PyPI into $CACHE/compose-venv"
  rm -rf "$CACHE/compose-venv"
  if ! { python3 -m venv "$CACHE/compose-venv" &&
    "$CACHE/compose-venv/bin/pip" install -q podman-compose==1.6.0; } >"$TMP/pip.log" 2>&1; then
    fail "podman-compose installed (PyPI)" "$(tail -n 10 "$TMP/pip.log")"
    container_skip="podman-compose could not be installed"
  fi
fi

# Base images: debian:bookworm-slim is the debootstrap file system; rust:1-slim-bookworm is
# scripts/package/rust-base.Containerfile on top of it with the host's toolchain. Each is
# rebuilt only when its inputs changed (a label holds their checksum).
label_of() { podman image inspect --format "{{ index .Labels \"claudecron.test.key\" }}" "$1" 2>/dev/null; }
if [[ -z "$container_skip" ]]; then
  key=$(stat -c '%s %Y' "$ROOTFS_TAR" | md5sum | cut -c1-16)
  if [[ "$(label_of "$DEBIAN_IMAGE")" != "$key" ]]; then
    old_id=$(podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE" 2>/dev/null)
    podman import --change "LABEL claudecron.test.key=$key" --change 'CMD ["bash"]' \
      "$ROOTFS_TAR" "$DEBIAN_IMAGE" >"$TMP/import.log" 2>&1 ||
      fail "podman import of the debootstrap file system as $DEBIAN_IMAGE" "$(tail -n 5 "$TMP/import.log")"
    # The replaced base, unless something still uses it (then podman refuses and it stays).
    [[ -n "$old_id" ]] && podman rmi "$old_id" >/dev/null 2>&1
  fi
  # Can this kernel run a container at all? Only a refusal by the kernel is a skip.
  if ! out=$(timeout 120 podman run --rm --pull=never --network none "$DEBIAN_IMAGE" true 2>&1); then
    if grep -qiE 'user namespace|cgroup|operation not permitted|permission denied|clone|unshare|seccomp' <<<"$out"; then
      container_skip="the kernel refuses containers here: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    else
      fail "podman runs a container from $DEBIAN_IMAGE" "$out"
      container_skip="podman cannot run a container (see the failure above)"
    fi
  fi
fi
if [[ -z "$container_skip" ]]; then
  sysroot=$(rustc --print sysroot)
  key=$( (rustc --version; cat "$REPO/scripts/package/rust-base.Containerfile" /etc/ssl/certs/ca-certificates.crt; label_of "$DEBIAN_IMAGE") | md5sum | cut -c1-16)
  if [[ "$(label_of "$RUST_IMAGE")" != "$key" ]]; then
    ctx=$TMP/rust-base
    mkdir -p "$ctx/toolchain/bin" "$ctx/toolchain/lib/rustlib/x86_64-unknown-linux-gnu"
    cp -L "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$ctx/toolchain/bin/"
    cp -a "$sysroot"/lib/*.so* "$ctx/toolchain/lib/"
    cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/lib" "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin" \
      "$ctx/toolchain/lib/rustlib/x86_64-unknown-linux-gnu/"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
    old_id=$(podman image inspect --format '{{.Id}}' "$RUST_IMAGE" 2>/dev/null)
    if ! timeout 900 podman build --layers=false --network host --label "claudecron.test.key=$key" -t "$RUST_IMAGE" \
      -f "$REPO/scripts/package/rust-base.Containerfile" "$ctx" >"$TMP/rust-base.log" 2>&1; then
      fail "builder base image $RUST_IMAGE (host toolchain $(rustc --version))" "$(tail -n 15 "$TMP/rust-base.log")"
      container_skip="no builder base image"
    fi
    [[ -n "$old_id" ]] && podman rmi "$old_id" >/dev/null 2>&1
    rm -rf "$ctx"
  fi
  [[ -z "$container_skip" ]] &&
    pass "base images: $DEBIAN_IMAGE (debootstrap), $RUST_IMAGE (+ gcc, $(rustc --version | cut -d' ' -f1-2))"
fi

# -- the image --------------------------------------------------------------------------------
if [[ -z "$container_skip" ]]; then
  t0=$SECONDS
  if timeout 1500 podman build --layers=false --format docker --network host --build-arg "PROFILE=$PROFILE" \
    -t "$IMAGE" "$REPO" >"$TMP/image.log" 2>&1; then
    size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
    IMAGE_SIZE="$size bytes ($((size / 1000000)) MB), $IMAGE"
    pass "podman build of the Dockerfile, PROFILE=$PROFILE: $((SECONDS - t0)) s, image $IMAGE_SIZE"
  else
    fail "podman build of the Dockerfile (PROFILE=$PROFILE)" "$(tail -n 25 "$TMP/image.log")"
    container_skip="the image did not build"
  fi
fi
if [[ -z "$container_skip" ]]; then
  CLEANUPS+=("podman rmi -f $IMAGE")
  cfg=$(podman image inspect --format '{{.Config.User}}|{{.Config.StopSignal}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{if .HealthCheck}}{{json .HealthCheck.Test}}{{end}}' "$IMAGE" 2>&1)
  [[ "$cfg" == 'claudecron:claudecron|SIGTERM|{"3010/tcp":{}}|{"/data":{}}|["CMD","claudecron","health"]' ]] &&
    pass "image config: user claudecron, STOPSIGNAL SIGTERM, port 3010, volume /data, HEALTHCHECK claudecron health" ||
    fail "image config (user, stop signal, port, volume, health check)" "$cfg"
  # 0.0.0.0 inside the container only with auth: turning auth off there is refused at start.
  out=$(timeout 60 podman run --rm --pull=never --network none -e CLAUDECRON_AUTH=none "$IMAGE" 2>&1)
  rc=$?
  [[ $rc -eq 2 && "$out" == *'"none" is refused because host "0.0.0.0" is not loopback'* ]] &&
    pass "the image refuses CLAUDECRON_AUTH=none on its 0.0.0.0 listener (exit 2)" ||
    fail "the image refuses auth = none" "exit $rc: $out"
fi

# -- compose up -------------------------------------------------------------------------------
if [[ -z "$container_skip" ]]; then
  CPORT=$(free_port)
  cdir=$TMP/compose
  mkdir -p "$cdir"
  # The shipped file with two changes for the test: a free host port instead of 3010 (which
  # may be taken here) and the test's image tag; the build context is the repository.
  sed -e "s#\"127.0.0.1:3010:3010\"#\"127.0.0.1:$CPORT:3010\"#" -e "s#image: claudecron:latest#image: $IMAGE#" \
    -e "s#build: \.#build: $REPO#" "$REPO/docker-compose.yml" >"$cdir/docker-compose.yml"
  if [[ $(diff "$REPO/docker-compose.yml" "$cdir/docker-compose.yml" | grep -c '^>') -ne 3 ]]; then
    fail "docker-compose.yml has the port mapping 127.0.0.1:3010:3010, image and build lines" \
      "$(diff "$REPO/docker-compose.yml" "$cdir/docker-compose.yml")"
  fi
  compose() { (cd "$cdir" && timeout 300 "$COMPOSE" -p "$PROJECT" "$@"); }
  CLEANUPS=("compose down -v -t 30" "${CLEANUPS[@]}")
  ctr() { podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' | head -n 1; }
  BASE=http://127.0.0.1:$CPORT
  if compose up -d --no-build >"$TMP/up.log" 2>&1 && wait_health "$BASE/health" 90; then
    CTR=$(ctr)
    pass "podman-compose up -d: /health 200 through 127.0.0.1:$CPORT (container $CTR)"
  else
    fail "podman-compose up -d and /health through the mapped port" \
      "$(tail -n 15 "$TMP/up.log"; podman logs "$(ctr)" 2>&1 | tail -n 10)"
    container_skip="compose did not come up"
  fi
fi
if [[ -z "$container_skip" ]]; then
  ports=$(podman port "$CTR" 2>&1)
  [[ "$ports" == "3010/tcp -> 127.0.0.1:$CPORT" ]] && pass "published on the host's loopback only ($ports)" ||
    fail "published on 127.0.0.1 only" "$ports"
  out=$(podman healthcheck run "$CTR" 2>&1) && pass "HEALTHCHECK (claudecron health in the container): healthy" ||
    fail "HEALTHCHECK passes" "$out"
  # Every process of the container (tini and the server) as claudecron, none as root.
  who=$(podman top "$CTR" user args 2>&1)
  [[ $(tail -n +2 <<<"$who" | grep -c '^claudecron ') -ge 2 && $(tail -n +2 <<<"$who" | grep -vc '^claudecron ') -eq 0 ]] &&
    pass "every process runs as the unprivileged user claudecron ($(tail -n +2 <<<"$who" | awk '{$1=""; print}' | paste -sd, -))" ||
    fail "the container's processes run as claudecron" "$who"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' --data '{"jsonrpc":"2.0","id":1,"method":"ping"}' "$BASE/mcp")
  [[ "$code" == 401 ]] && pass "auth is on: /mcp without a token -> 401" || fail "/mcp without a token -> 401" "got $code"
  TOKEN=$(podman exec "$CTR" claudecron token 2>&1)
  [[ -n "$TOKEN" ]] && podman exec "$CTR" stat -c '%a %U' /data/token | grep -qx '600 claudecron' &&
    pass "token: \`claudecron token\` in the container; /data/token 0600 claudecron" ||
    fail "token in /data/token, 0600" "$(podman exec "$CTR" ls -la /data 2>&1)"

  # MCP initialize, tools/list, add/run/delete with the token: the project's smoke test.
  run_counted "smoke through the mapped port" bash "$REPO/scripts/smoke.sh" "$BASE" "$TOKEN"

  # A running task that ignores SIGTERM when the container is stopped: the server ends it
  # (SIGTERM, SIGKILL after its 5 s grace), records it and exits 0, all before podman's 30 s.
  export CLAUDECRON_TOKEN=$TOKEN
  mcp() { python3 "$REPO/scripts/package/mcp.py" "$BASE" "$@"; }
  mcp claudecron_add_task '{"name":"pkg-sleeper","type":"bash","trigger":{"type":"manual"},"command":"trap \"\" TERM; sleep 300"}' \
    >"$TMP/add.json" 2>&1
  run_id=$(mcp claudecron_run_task '{"taskId":"pkg-sleeper"}' 2>"$TMP/run.err" | jq -r '.run.id // empty')
  running=""
  for _ in $(seq 1 100); do
    running=$(mcp claudecron_get_run "{\"runId\":${run_id:-0}}" 2>/dev/null | jq -r '.run.status // empty')
    [[ "$running" == running ]] && break
    sleep 0.2
  done
  t0=$(date +%s.%N)
  podman stop -t 30 "$CTR" >"$TMP/stop.log" 2>&1
  took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$CTR" 2>&1)
  if [[ "$running" == running && "$exit_code" == 0 ]] && awk -v t="$took" 'BEGIN { exit !(t >= 4.5 && t < 25) }'; then
    pass "podman stop with a task ignoring SIGTERM: ended after the 5 s grace, server exited 0 in $took s (before the 30 s SIGKILL)"
  else
    fail "podman stop ends the running task and exits 0 within the grace period" \
      "run ${run_id:-none} was '${running}', exit code $exit_code, took $took s; $(podman logs "$CTR" 2>&1 | tail -n 8)"
  fi

  # down (the named volume stays), up: same token, the task and its interrupted run are there.
  if compose down -t 30 >"$TMP/down.log" 2>&1 && compose up -d --no-build >"$TMP/up2.log" 2>&1 &&
    wait_health "$BASE/health" 90; then
    CTR=$(ctr)
    token2=$(podman exec "$CTR" claudecron token 2>&1)
    hist=$(mcp claudecron_get_history '{"taskId":"pkg-sleeper"}' 2>&1)
    status=$(jq -r --argjson id "${run_id:-0}" '.runs[] | select(.id == $id) | .status' <<<"$hist" 2>/dev/null)
    [[ "$token2" == "$TOKEN" ]] && pass "down/up: the token in the volume is kept" ||
      fail "down/up keeps the token" "changed"
    [[ "$status" == interrupted ]] &&
      pass "down/up: the task and its run are kept; the stopped run is recorded interrupted" ||
      fail "the stopped run is recorded interrupted and kept across down/up" "run ${run_id:-none}: ${status:-absent}; $hist"
  else
    fail "podman-compose down, up again" "$(tail -n 10 "$TMP/down.log" "$TMP/up2.log")"
  fi
fi
if [[ -n "$container_skip" ]]; then
  echo "SKIP container checks: $container_skip"
fi
