#!/usr/bin/env bash
# Every test claudecron has, in one command (the README's test command; CI runs exactly this):
# formatting, lints, the Rust unit and integration tests (real binary, real SQLite, real HTTP,
# real processes and signals), the interop suite (clients we did not write: Python MCP SDK, the
# official conformance suite, mcp-remote, curl, the real Claude Code CLI), a real nginx in front,
# the fault-injection suite (kill -9, slow clients, an unread stream, full disk, a database
# deleted or read-only, escaped processes, overload), and the service kit (systemd unit,
# install/deploy scripts). Exits non-zero on the first
# failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==> %s\n' "$*"; }

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

stage "test tools from Debian's packages (libfaketime for the clock-jump test)"
if ! compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libfaketime >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libfaketime >/dev/null; }
  else
    echo "libfaketime is missing and cannot be installed here (not root): the clock-jump test will FAIL; install it with apt-get install libfaketime"
  fi
fi

stage "cargo test"
cargo test --all-targets

stage "fault-injection suite, short mode (scripts/chaos.sh)"
bash scripts/chaos.sh

stage "benchmark script still runs (scripts/bench.sh, shortened, debug build; numbers not judged)"
CLAUDECRON_BIN=target/debug/claudecron BENCH_SECONDS=3 BENCH_IDLE_SECONDS=2 bash scripts/bench.sh

stage "interop suite (scripts/interop.sh)"
bash scripts/interop.sh

stage "nginx in front, for real (scripts/nginx_test.sh)"
bash scripts/nginx_test.sh

stage "service kit: unit, install, deploy, example config (scripts/service_test.sh)"
bash scripts/service_test.sh

stage "export to systemd / Kubernetes / cron, checked with systemd-analyze and kubernetes-validate (scripts/ops_test.sh)"
bash scripts/ops_test.sh

stage "/metrics with a real Prometheus, /status in headless Chromium (scripts/ops_web_test.sh, ~20 s once the tools are installed)"
bash scripts/ops_web_test.sh

stage "packaging: the .deb (cargo deb, lintian, dpkg) and the container (podman build, podman-compose) (scripts/package_test.sh)"
bash scripts/package_test.sh
