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
# JoinStorageSession from a page, as the KVS WebRTC JS SDK's own example calls it: the AWS SDK
# for JavaScript's WebRTC storage client, bundled for the browser with esbuild.
if [ ! -f kvs-storage.min.js ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm init -y >/dev/null \
    && npm install --no-audit --no-fund --silent \
      @aws-sdk/client-kinesis-video-webrtc-storage@3.926.0 esbuild@0.25.12 \
    && printf '%s\n' "export { KinesisVideoWebRTCStorageClient, JoinStorageSessionCommand, JoinStorageSessionAsViewerCommand } from '@aws-sdk/client-kinesis-video-webrtc-storage';" > entry.js \
    && npx esbuild entry.js --bundle --format=iife --global-name=KVSStorage --minify \
      --platform=browser --log-level=warning --outfile=kvs-storage.min.js)
  cp "$tmp/kvs-storage.min.js" .
  rm -rf "$tmp"
fi
bundle hls.js@1.6.15 hls.min.js
bundle dashjs@4.7.4 dash.all.min.js
