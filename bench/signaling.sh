#!/usr/bin/env bash
# Signaling benchmark: starts a release `oxbow serve` on a fresh data directory (viewers per
# channel raised to the benchmark's), then runs `oxbow bench signaling` against it.
# Usage: bench/signaling.sh [extra `oxbow bench signaling` flags, e.g. --channels 1000]
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7897}
serve_flags="--signaling-max-viewers 100 --signaling-connect-tps 0 --max-channels 100000"
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
"$bin" bench signaling --endpoint "http://127.0.0.1:$port" --server-pid "$server" "$@"
