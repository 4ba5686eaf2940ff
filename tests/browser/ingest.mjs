// WebRTC ingestion: one Chromium page is a camera (the channel's master, Chromium's fake camera
// and microphone) using the official KVS WebRTC JS SDK's SignalingClient; Oxbow's storage
// session offers to it and records what it sends. With `viewer` set, a second page watches
// through the session at the same time. Configuration comes as JSON in OXBOW_INGEST;
// the result is printed as one JSON line prefixed RESULT; the exit status is non-zero on any
// failure.
import { launch, report, serveFiles } from './chromium.mjs';

const cfg = JSON.parse(process.env.OXBOW_INGEST);
const { server, origin } = await serveFiles({
  '/kvs-webrtc.min.js': 'text/javascript',
  '/kvs-storage.min.js': 'text/javascript',
  '/peer.html': 'text/html',
});
const browser = await launch([
  '--ignore-certificate-errors',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
]);
await report(browser, server, async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.grantPermissions(['camera', 'microphone']);
  const page = async (name) => {
    const p = await context.newPage();
    p.on('console', (m) => console.log(`[${name}] ${m.text()}`));
    p.on('pageerror', (e) => console.log(`[${name}] page error: ${e.message}`));
    await p.goto(`${origin}/peer.html`);
    return p;
  };
  const camera = (await page('camera')).evaluate((c) => window.runIngestMaster(c), cfg);
  if (!cfg.viewer) return camera;
  const viewer = (await page('viewer')).evaluate((c) => window.runSessionViewer(c), cfg);
  const [result, watched] = await Promise.all([camera, viewer]);
  return { ...result, viewer: watched };
});
