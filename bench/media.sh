#!/usr/bin/env bash
# Media benchmark: starts a release `oxbow serve` on a fresh data directory, then runs
# `oxbow bench media` against it with the server's pid (for CPU/RSS) and a dd baseline in the
# same data directory. Extra arguments go to `oxbow bench media` (e.g. --streams 500).
# Server flags can be passed through OXBOW_SERVE_FLAGS (e.g. "--put-max-bytes-per-sec 0").
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p oxbow >&2
bin=target/release/oxbow
data=$(mktemp -d "${OXBOW_BENCH_DIR:-/tmp}/oxbow-bench.XXXXXX")
port=${OXBOW_BENCH_PORT:-7898}
export OXBOW_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000001 OXBOW_ROOT_SECRET_ACCESS_KEY=bench-secret
ulimit -n 65536 2>/dev/null || true
# shellcheck disable=SC2086
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" \
  --get-media-max-connections 100 --media-tps-per-stream 0 ${OXBOW_SERVE_FLAGS:-} >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r)"
AWS_ACCESS_KEY_ID=$OXBOW_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$OXBOW_ROOT_SECRET_ACCESS_KEY \
  "$bin" bench media --endpoint "http://127.0.0.1:$port" --server-pid "$server" \
  --disk-baseline-dir "$data" "$@"
