// Plays a session URL in headless Chromium with hls.js or dash.js (player.html). Configuration
// comes as JSON in OXBOW_PLAYER ({kind: "hls"|"dash", url, seconds, lowLatency}); the result is
// printed as one JSON line prefixed RESULT, and the exit status is non-zero on any failure.
import { launch, report, serveFiles } from './chromium.mjs';

const cfg = JSON.parse(process.env.OXBOW_PLAYER);
const { server, origin } = await serveFiles({
  '/player.html': 'text/html',
  '/hls.min.js': 'text/javascript',
  '/dash.all.min.js': 'text/javascript',
});
const browser = await launch(['--autoplay-policy=no-user-gesture-required']);
await report(browser, server, async () => {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page] error: ${e.message}`));
  await page.goto(`${origin}/player.html`);
  const startedAt = Date.now();
  const result = cfg.kind === 'dash'
    ? await page.evaluate((c) => window.playDash(c.url, c.seconds), cfg)
    : await page.evaluate((c) => window.playHls(c.url, c.seconds, c.lowLatency), cfg);
  result.timeToFirstFrameMs = result.firstFrameAt - startedAt;
  return result;
});
