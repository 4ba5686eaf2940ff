#!/usr/bin/env bash
# Media benchmark: starts a release `oxbow serve` on a fresh data directory, then runs
# `oxbow bench media` against it with the server's pid (for CPU/RSS) and a dd baseline in the
# same data directory. Extra arguments go to `oxbow bench media` (e.g. --streams 500).
# Server flags can be passed through OXBOW_SERVE_FLAGS (e.g. "--put-max-bytes-per-sec 0").
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7898}
serve_flags="--get-media-max-connections 100 --media-tps-per-stream 0"
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
"$bin" bench media --endpoint "http://127.0.0.1:$port" --server-pid "$server" \
  --disk-baseline-dir "$data" "$@"
