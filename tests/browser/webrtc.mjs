// Runs two Chromium pages, a master with Chromium's fake camera and a viewer, through Oxbow:
// signaling over wss:// with the official KVS WebRTC JS SDK, media forced through Oxbow's TURN
// server. Configuration comes as JSON in OXBOW_WEBRTC; the result is printed as one JSON line
// prefixed RESULT, and the exit status is non-zero on any failure.
import { launch, report, serveFiles } from './chromium.mjs';

const cfg = JSON.parse(process.env.OXBOW_WEBRTC);
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
  await context.grantPermissions(['camera']);
  const pages = {};
  for (const name of ['master', 'viewer']) {
    const page = await context.newPage();
    page.on('console', (m) => console.log(`[${name}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[${name}] page error: ${e.message}`));
    await page.goto(`${origin}/peer.html`);
    pages[name] = page;
  }
  console.log(await pages.master.evaluate((c) => window.runMaster(c), cfg));
  const result = await pages.viewer.evaluate((c) => window.runViewer(c), cfg);
  result.masterReceived = await pages.master.evaluate(() => window.received);
  return result;
});
