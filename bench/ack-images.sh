#!/usr/bin/env bash
# Does image generation slow PutMedia? 100 producers send real H.264 (640x360, 1 s fragments,
# every 10th fragment tagged AWS_KINESISVIDEO_IMAGE_GENERATION) in real time to one release
# `oxbow serve`: once to streams without image generation, once to streams with it (a JPEG a
# second of each tagged fragment, written under the server's data directory), alternating,
# in the same run. Reports each run's PERSISTED ack p50/p99 and the images written.
# Usage: bench/ack-images.sh [runs] [seconds] [streams]
set -euo pipefail
runs=${1:-3} seconds=${2:-20} streams=${3:-100}
port=${OXBOW_BENCH_PORT:-7894}
serve_flags=""
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
media=/tmp/oxbow-bench-images-640x360.mkv
if [ ! -f "$media" ]; then
  ffmpeg -y -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -t 30 -c:v libx264 \
    -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 -f matroska "$media.tmp"
  mv "$media.tmp" "$media"
fi
for run in $(seq "$runs"); do
  for generation in off on; do
    flags=""
    [ "$generation" = on ] && flags="--image-generation"
    echo "== run $run, image generation $generation"
    # shellcheck disable=SC2086
    "$bin" bench media --endpoint "http://127.0.0.1:$port" --server-pid "$server" \
      --streams "$streams" --consumers 0 --seconds "$seconds" --fragment-ms 1000 \
      --media "$media" --tag-images-every 10 $flags | grep -E "PERSISTED|server:"
    echo "images written so far: $(find "$data/images" -name '*.jpg' 2>/dev/null | wc -l)"
  done
done
