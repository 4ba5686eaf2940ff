#!/usr/bin/env bash
# WebRTC ingestion benchmark: starts a release `oxbow serve` on a fresh data directory, makes a
# 2 Mbit/s H.264 camera clip with ffmpeg (1280x720, 30 fps, a key frame every 2 s, constrained
# baseline as browsers send), and runs `oxbow bench ingest`: that many str0m cameras recorded
# at once by storage sessions.
# Usage: bench/ingest.sh [extra `oxbow bench ingest` flags, e.g. --sessions 100 --seconds 30]
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7898}
serve_flags="--max-streams 100000 --max-channels 100000"
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
clip=${OXBOW_BENCH_DIR:-/tmp}/oxbow-bench-camera-720p-2mbps.h264
if [ ! -s "$clip" ]; then
  ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 \
    -c:v libx264 -profile:v baseline -pix_fmt yuv420p -b:v 2M -maxrate 2M -bufsize 1M \
    -g 60 -keyint_min 60 -sc_threshold 0 -bsf:v h264_mp4toannexb -f h264 "$clip"
fi
"$bin" bench ingest --endpoint "http://127.0.0.1:$port" --server-pid "$server" --video "$clip" "$@"
