#!/usr/bin/env bash
# Installs what the browser test needs next to it: playwright-core (no browser download; the
# test launches Debian's /usr/bin/chromium) and the KVS WebRTC JS SDK's browser bundle, taken
# from the npm package without installing its dependencies.
set -euo pipefail
cd "$(dirname "$0")"
sdk=2.9.0
if [ ! -d node_modules/playwright-core ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
fi
if [ ! -f kvs-webrtc.min.js ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "amazon-kinesis-video-streams-webrtc@$sdk" >/dev/null && tar xzf ./*.tgz)
  cp "$tmp/package/dist/kvs-webrtc.min.js" .
  rm -rf "$tmp"
fi
