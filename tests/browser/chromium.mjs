// What every browser test shares: a static file server for its page (pages need a secure
// context, http://localhost) and Debian's Chromium launched headless for a machine without
// internet.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);

/** Serves `files` ({'/name': 'content type'}) from this directory; resolves to the server and
 * its origin. */
export async function serveFiles(files) {
  const server = http.createServer((req, res) => {
    const type = files[req.url];
    if (!type) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', type);
    res.end(fs.readFileSync(path.join(here, req.url.slice(1))));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://localhost:${server.address().port}` };
}

/** Debian's Chromium, headless, with the flags a machine without internet needs, plus `extra`. */
export function launch(extra = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets,BlockInsecurePrivateNetworkRequests',
      ...extra,
    ],
  });
}

/** Runs `body` (which returns the result), prints it as one JSON line prefixed RESULT (or the
 * failure prefixed FAILED), closes the browser and the file server, and exits non-zero on
 * failure. */
export async function report(browser, server, body) {
  let failed = false;
  try {
    console.log(`RESULT ${JSON.stringify(await body())}`);
  } catch (e) {
    console.log(`FAILED ${e.message}`);
    failed = true;
  } finally {
    await browser.close();
    server.close();
  }
  process.exit(failed ? 1 : 0);
}
