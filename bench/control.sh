#!/usr/bin/env bash
# Control-plane benchmark: starts a release `oxbow serve` on a fresh data directory, then runs
# `oxbow bench control` against it: signed DescribeStream by root and by a user bound by
# 100 policies x 10 statements, against the unauthenticated /health baseline.
# Usage: bench/control.sh [extra `oxbow bench control` flags, e.g. --connections 128]
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7899}
serve_flags=""
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
"$bin" bench control --endpoint "http://127.0.0.1:$port" --server-pid "$server" "$@"
