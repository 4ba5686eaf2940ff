// Runs two Chromium pages, a master with Chromium's fake camera and a viewer, through Oxbow:
// signaling over wss:// with the official KVS WebRTC JS SDK, media forced through Oxbow's TURN
// server. Configuration comes as JSON in OXBOW_WEBRTC; the result is printed as one JSON line
// prefixed RESULT, and the exit status is non-zero on any failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const cfg = JSON.parse(process.env.OXBOW_WEBRTC);

// The pages need a secure context for crypto.subtle (the SDK signs with it): http://localhost.
const files = { '/kvs-webrtc.min.js': 'text/javascript', '/peer.html': 'text/html' };
const server = http.createServer((req, res) => {
  const type = files[req.url];
  if (!type) { res.statusCode = 404; res.end(); return; }
  res.setHeader('content-type', type);
  res.end(fs.readFileSync(path.join(here, req.url.slice(1))));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://localhost:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets,BlockInsecurePrivateNetworkRequests',
    '--ignore-certificate-errors',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  ],
});
let failed = false;
try {
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
  console.log(`RESULT ${JSON.stringify(result)}`);
} catch (e) {
  console.log(`FAILED ${e.message}`);
  failed = true;
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
