#!/usr/bin/env bash
# Live latency in real players: a producer sends H.264 + AAC in real time (`oxbow put
# --realtime`) and hls.js (low-latency mode on the default server, classic mode with
# --no-low-latency-hls) and dash.js play it in Debian's Chromium (tests/browser/players.mjs);
# reported per run: how far behind the producer's clock the playhead runs (median over the
# run), the player's time to first frame, and its stalls. Needs tests/browser/setup.sh.
# Usage: bench/latency.sh [runs per player] [seconds per run]
set -euo pipefail
runs=${1:-3} seconds=${2:-10}
port=${OXBOW_BENCH_PORT:-7896}
serve_flags=${LATENCY_SERVE_FLAGS:-}
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"
media=/tmp/oxbow-bench-latency.mkv
if [ ! -f "$media" ]; then
  ffmpeg -y -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi \
    -i sine=frequency=440:sample_rate=48000 -t 600 -c:v libx264 -preset ultrafast -g 25 \
    -keyint_min 25 -sc_threshold 0 -bf 0 -c:a aac -f matroska "$media.tmp"
  mv "$media.tmp" "$media"
fi
sign() { curl -s --fail --aws-sigv4 "aws:amz:us-east-1:kinesisvideo" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'content-type: application/json' "http://127.0.0.1:$port$1" -d "$2"; }
"$bin" put live "$media" --realtime --endpoint "http://127.0.0.1:$port" >/dev/null 2>&1 &
producer=$!
trap 'kill $producer $server 2>/dev/null; rm -rf "$data"' EXIT
sleep 4
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
play() { # kind url lowLatency
  OXBOW_PLAYER="{\"kind\":\"$1\",\"url\":\"$2\",\"seconds\":$seconds,\"lowLatency\":$3}" \
    node tests/browser/players.mjs | sed -n 's/^RESULT //p'
}
for run in $(seq "$runs"); do
  for kind in hls dash; do
    if [ "$kind" = hls ]; then
      url=$(sign /getHLSStreamingSessionURL '{"StreamName":"live","HLSFragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP"},"DisplayFragmentTimestamp":"ALWAYS"}' | field '["HLSStreamingSessionURL"]')
      result=$(play hls "$url" true)
    else
      url=$(sign /getDASHStreamingSessionURL '{"StreamName":"live","DASHFragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP"}}' | field '["DASHStreamingSessionURL"]')
      result=$(play dash "$url" false)
    fi
    echo "$result" | python3 -c "
import json,sys
r=json.load(sys.stdin)
print(f'run $run $kind: latency {r[\"latencyMedianMs\"]:.0f} ms, first frame {r[\"timeToFirstFrameMs\"]} ms, stalls {r[\"stalls\"]}, frames {r[\"framesDecoded\"]}')"
  done
done
