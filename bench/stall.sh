#!/usr/bin/env bash
# Stalled-client benchmark: starts a release `oxbow serve` on a fresh data directory, then
# runs `oxbow bench stall` against it (readers that never read, producers that stall
# mid-fragment; server RSS before, while held, and after). Extra arguments go to
# `oxbow bench stall` (e.g. --readers 200 --producers 200 --rounds 3).
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7897}
serve_flags="--get-media-max-connections 1000 --media-tps-per-stream 0 --put-max-bytes-per-sec 0"
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
"$bin" bench stall --endpoint "http://127.0.0.1:$port" --server-pid "$server" "$@"
