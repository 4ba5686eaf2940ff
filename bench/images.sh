#!/usr/bin/env bash
# GetImages throughput at 640x360 and 1920x1080: starts a release `oxbow serve`, stores 30 s
# of H.264 at each size (ffmpeg, one key frame a second) and runs `oxbow bench images` on each:
# 100 JPEG images per call (every 200 ms over 20 s), images per second and per CPU-second.
# Baseline in the same run: ffmpeg on one thread making the same 100 JPEGs from the same file.
# Usage: bench/images.sh [calls per size]
set -euo pipefail
calls=${1:-5}
port=${OXBOW_BENCH_PORT:-7895}
serve_flags=""
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
for size in 640x360 1920x1080; do
  media=/tmp/oxbow-bench-images-$size.mkv
  if [ ! -f "$media" ]; then
    ffmpeg -y -loglevel error -f lavfi -i "testsrc2=size=$size:rate=25" -t 30 -c:v libx264 \
      -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 -f matroska "$media.tmp"
    mv "$media.tmp" "$media"
  fi
  echo "== $size"
  out=$(mktemp -d)
  /usr/bin/time -f "ffmpeg (1 thread), 100 JPEGs: %e s wall, %U s user + %S s system" \
    ffmpeg -v error -threads 1 -i "$media" -t 20 -vf fps=5 -q:v 3 -threads 1 "$out/%03d.jpg"
  rm -rf "$out"
  "$bin" bench images --endpoint "http://127.0.0.1:$port" --server-pid "$server" \
    --media "$media" --stream "images-$size" --calls "$calls"
done
