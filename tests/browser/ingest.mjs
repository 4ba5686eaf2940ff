// WebRTC ingestion: one Chromium page is a camera (the channel's master, Chromium's fake camera
// and microphone) using the official KVS WebRTC JS SDK's SignalingClient; Oxbow's storage
// session offers to it and records what it sends. Configuration comes as JSON in OXBOW_INGEST;
// the result is printed as one JSON line prefixed RESULT; the exit status is non-zero on any
// failure.
import { launch, report, serveFiles } from './chromium.mjs';

const cfg = JSON.parse(process.env.OXBOW_INGEST);
const { server, origin } = await serveFiles({
  '/kvs-webrtc.min.js': 'text/javascript',
  '/peer.html': 'text/html',
});
const browser = await launch([
  '--ignore-certificate-errors',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
]);
await report(browser, server, async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.grantPermissions(['camera', 'microphone']);
  const page = await context.newPage();
  page.on('console', (m) => console.log(`[camera] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[camera] page error: ${e.message}`));
  await page.goto(`${origin}/peer.html`);
  return page.evaluate((c) => window.runIngestMaster(c), cfg);
});
