#!/usr/bin/env bash
# Installs what the browser tests need next to them: playwright-core (no browser download; the
# tests launch Debian's /usr/bin/chromium) and the browser bundles of the official KVS WebRTC
# JS SDK, hls.js and dash.js, taken from their npm packages without their dependencies.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent
fi
# bundle <npm package@version> <file in its dist/>
bundle() {
  if [ ! -f "$2" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$1" >/dev/null && tar xzf ./*.tgz)
    cp "$tmp/package/dist/$2" .
    rm -rf "$tmp"
  fi
}
bundle amazon-kinesis-video-streams-webrtc@2.9.0 kvs-webrtc.min.js
bundle hls.js@1.6.15 hls.min.js
bundle dashjs@4.7.4 dash.all.min.js
