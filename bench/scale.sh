#!/usr/bin/env bash
# Scale benchmark (bench/scale.rs): many registries, many stored credentials,
# a purge under mint load; on SQLite, and on PostgreSQL too when
# TEST_DATABASE_URL names a server. Installs wrk (Debian's package) when it
# is missing. Settings by environment: REGISTRIES (default 1,100,1000),
# CREDENTIALS (default 0,1000000,5000000), PURGE_ROWS (default 1000000),
# SECONDS per wrk run (default 5), CONNECTIONS (default 32).
#   bench/scale.sh
#   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
exec cargo bench --locked --bench scale
