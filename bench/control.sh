#!/usr/bin/env bash
# Control-plane benchmark: starts a release `oxbow serve` on a fresh data directory, then runs
# `oxbow bench control` against it: signed DescribeStream by root and by a user bound by
# 100 policies x 10 statements, against the unauthenticated /health baseline.
# Usage: bench/control.sh [extra `oxbow bench control` flags, e.g. --connections 128]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p oxbow >&2
bin=target/release/oxbow
data=$(mktemp -d)
port=${OXBOW_BENCH_PORT:-7899}
export OXBOW_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000001 OXBOW_ROOT_SECRET_ACCESS_KEY=bench-secret
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r)"
AWS_ACCESS_KEY_ID=$OXBOW_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$OXBOW_ROOT_SECRET_ACCESS_KEY \
  "$bin" bench control --endpoint "http://127.0.0.1:$port" --server-pid "$server" "$@"
