# claudecron container image: build with cargo, run as an unprivileged user from Debian slim.
#
#   docker build -t claudecron .                      # release build (a few minutes)
#   docker compose up -d                              # docker-compose.yml: port, volume, restart
#   docker compose exec claudecron claudecron token   # the bearer token (created on first start)
#
# The server listens on 0.0.0.0:3010 inside the container only, always with bearer auth; publish
# it on the host's loopback (127.0.0.1:3010, as docker-compose.yml does) and keep nginx the only
# public door. The database, the token file (0600) and HOME live in the /data volume.
# Settings: CLAUDECRON_<KEY> environment variables, or a config file mounted at
# /etc/claudecron/config.toml. docs/RUNBOOK.md "Install" covers subagent tasks (API key or the
# `claude` CLI) inside the container.
#
# Build arguments: PROFILE=release (default) or dev (a faster debug build, for tests);
# RUST_IMAGE and RUNTIME_IMAGE name the base images (the defaults are Docker Hub's official
# rust and debian images, both Debian 12 "bookworm", so the binary's glibc matches).

ARG RUST_IMAGE=docker.io/library/rust:1-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# --- build -------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
ARG PROFILE=release
WORKDIR /src
COPY . .
# The crate registry and the target directory are build caches (kept between builds on the
# same machine, never in the image); the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    case "$PROFILE" in \
      release) dir=release ;; \
      dev) dir=debug ;; \
      *) echo "PROFILE must be release or dev, not \"$PROFILE\"" >&2; exit 2 ;; \
    esac; \
    cargo build --locked --profile "$PROFILE" --bin claudecron; \
    install -m 0755 "target/$dir/claudecron" /claudecron; \
    /claudecron --version

# --- run ---------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# ca-certificates: TLS for the tasks' own tools (git, curl added by derived images); tini: PID 1
# that forwards SIGTERM to the server and reaps processes orphaned by tasks.
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    groupadd --system --gid 10001 claudecron; \
    useradd --system --uid 10001 --gid claudecron --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin --comment "claudecron MCP server" claudecron; \
    install -d -o claudecron -g claudecron -m 0750 /data
COPY --from=build /claudecron /usr/local/bin/claudecron

# 0.0.0.0 inside the container only; auth = token is the default and is spelled out here (the
# server refuses auth = none on a non-loopback address anyway).
ENV CLAUDECRON_HOST=0.0.0.0 \
    CLAUDECRON_PORT=3010 \
    CLAUDECRON_AUTH=token \
    CLAUDECRON_DB_PATH=/data/tasks.db \
    CLAUDECRON_TOKEN_FILE=/data/token \
    HOME=/data
VOLUME ["/data"]
WORKDIR /data
USER claudecron:claudecron
EXPOSE 3010

# The server answers SIGTERM by ending every running task's process group (SIGTERM, SIGKILL
# after 5 s) and recording the runs as interrupted; give it 30 s (`docker stop -t 30`,
# stop_grace_period in docker-compose.yml) so it never meets SIGKILL.
STOPSIGNAL SIGTERM
# No curl in the image: the binary checks its own /health (exit 0 on 200, 1 otherwise).
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["claudecron", "health"]
ENTRYPOINT ["/usr/bin/tini", "--", "claudecron"]
CMD ["serve"]
