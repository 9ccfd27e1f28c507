# syntax=docker/dockerfile:1
#
# trustpub in a container: a Rust build stage, then a small Debian runtime.
#
#   docker build -t trustpub .
#   docker run --rm -p 127.0.0.1:8080:8080 trustpub  # SQLite inside the container
#
# docker-compose.yml runs it next to PostgreSQL instead.

# ---- build ------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src

# The whole workspace (see .dockerignore): Cargo needs every member's manifest,
# and `sqlx::migrate!` embeds migrations/ into the binary at compile time.
COPY . .

# The caches keep downloaded crates and compiled dependencies between builds;
# the binary is copied out of the cached target folder in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin trustpub \
 && install -D -m 0755 target/release/trustpub /out/trustpub

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to OIDC issuers and to PostgreSQL.
# curl: the container health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed, non-root user. Its home is the working directory, where the default
# SQLite URL (sqlite://data/trustpub.db) puts its file.
RUN groupadd --system --gid 10001 trustpub \
 && useradd --system --uid 10001 --gid trustpub \
      --home-dir /var/lib/trustpub --shell /usr/sbin/nologin trustpub \
 && install -d -o trustpub -g trustpub -m 0750 /var/lib/trustpub \
 && install -d -m 0755 /etc/trustpub

COPY --from=build /out/trustpub /usr/local/bin/trustpub
# A default configuration, so that the image runs on its own; mount your own
# file over it (docker-compose.yml does).
COPY examples/docker.toml /etc/trustpub/trustpub.toml

USER trustpub:trustpub
WORKDIR /var/lib/trustpub

EXPOSE 8080

# /readyz answers 503 while the store is unreachable; curl -f turns that into
# an unhealthy container.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]

# SIGTERM (docker stop) lets in-flight requests finish; see server.shutdown_timeout.
STOPSIGNAL SIGTERM

ENTRYPOINT ["trustpub"]
CMD ["serve", "--config", "/etc/trustpub/trustpub.toml"]
