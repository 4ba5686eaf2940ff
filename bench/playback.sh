#!/usr/bin/env bash
# Playback benchmark: starts a release `oxbow serve` and Debian's nginx (serving, as static
# files, the same playlist and segment bytes Oxbow serves) and runs `oxbow bench playback`:
# many HLS players on one stored stream against both, a new player's time to first media,
# GetClip throughput. Media: 240 s of 640x360 H.264 + AAC made by ffmpeg.
# Usage: bench/playback.sh [extra `oxbow bench playback` flags, e.g. --players 200]
set -euo pipefail
port=${OXBOW_BENCH_PORT:-7897}
nginx_port=7898
serve_flags=""
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
media=${OXBOW_BENCH_MEDIA:-/tmp/oxbow-bench-240s.mkv}
if [ ! -f "$media" ]; then
  ffmpeg -y -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi \
    -i sine=frequency=440:sample_rate=48000 -t 240 -c:v libx264 -preset ultrafast -g 25 \
    -keyint_min 25 -sc_threshold 0 -bf 0 -b:v 1500k -c:a aac -f matroska "$media.tmp"
  mv "$media.tmp" "$media"
fi
static=$(mktemp -d)
chmod 755 "$static"   # nginx workers run as another user
conf=$(mktemp)
# nginx as a tuned static server would be: sendfile, keep-alive, one worker per core.
cat > "$conf" <<NGINX
worker_processes $(nproc);
pid $static/nginx.pid;
error_log /dev/null;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 60;
  types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4; }
  server { listen 127.0.0.1:$nginx_port; root $static; }
}
NGINX
nginx -c "$conf" -p "$static"
trap 'nginx -c "$conf" -p "$static" -s stop 2>/dev/null; kill $server 2>/dev/null; rm -rf "$data" "$static" "$conf"' EXIT
"$bin" bench playback --endpoint "http://127.0.0.1:$port" --server-pid "$server" \
  --media "$media" --static-dir "$static" --static-url "http://127.0.0.1:$nginx_port" "$@"
