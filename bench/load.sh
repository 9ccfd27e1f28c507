#!/usr/bin/env bash
# Mint throughput with wrk as the load generator, in a process of its own.
# Needs wrk (Debian package `wrk`). SQLite only. Usage: bench/load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-32}
command -v wrk >/dev/null || { echo "bench/load.sh needs wrk (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'pkill -P $server 2>/dev/null; kill $server 2>/dev/null; rm -rf "$work"' EXIT
# Enough tokens that none is used twice: more than the run can mint.
export TOKENS_FILE="$work/tokens" MINTS=${MINTS:-$((seconds * 8000))}
cargo bench --bench mint > "$work/server.log" 2>&1 &
server=$!
until grep -q '^READY ' "$work/server.log"; do
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 1
done
url=$(sed -n 's/^READY //p' "$work/server.log")
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/mint.lua "$url"
