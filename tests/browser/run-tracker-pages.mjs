// Drives Debian's chromium (/usr/bin/chromium, never a downloaded browser)
// with playwright-core for tests/system/test_tracker_browser.py: pages
// running the bittorrent-tracker client from npm (bundled with esbuild by
// the test) announce the same info_hash on mf-edge's tracker path, receive
// an offer or an answer through it, and open a WebRTC data channel to each
// other over loopback; each sends a greeting the other must receive. What
// was observed is printed as one JSON line on stdout (the Python test
// asserts on it); progress goes to stderr.
//
// usage: node run-tracker-pages.mjs '{"announceUrl": "wss://localhost:P/announce", "bundle": "/path/tracker-client.js",
//                                     "pages": 2, "deadlineMs": 30000}'
// "announceUrls": [...] instead of announceUrl gives page i the URL i modulo
// their count (pages on different edges of a cluster). A page that has not
// received a greeting announces again every 2 s (its offers then reach
// members that registered after its first announce: presence between edges
// is eventually consistent, docs/cluster.md).
// Exit status: 0 when the run completed (whatever it observed), 2 when it
// could not (chromium missing, deadline, a page crashed): stderr says why.
import { driverLog, launchWebRtcChromium, waitFor } from './admin-helpers.mjs';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

const config = JSON.parse(process.argv[2]);
// The pages' origin exists only inside the browser (nothing is fetched from outside).
const ORIGIN = 'https://pages.meshedflow.test';

const { log, fail } = driverLog('run-tracker-pages', config.deadlineMs);

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>tracker page</title>
<script src="/tracker-client.js"></script></head><body><script>window.bundleReady = typeof window.TrackerClient === 'function';</script></body></html>`;

// Runs in the page: one bittorrent-tracker client, its events recorded in window.t.
function startInPage({ announceUrl, infoHash, peerId }) {
  window.t = { updates: [], warnings: [], errors: [], peers: 0, connected: [], received: [] };
  // No STUN servers (the library's default names public ones): host
  // candidates on loopback are all a test needs, and nothing goes outside.
  const client = new window.TrackerClient({ infoHash, peerId, announce: [announceUrl], port: 6881,
                                            rtcConfig: { iceServers: [] } });
  window.client = client;
  client.on('update', (data) => window.t.updates.push({ complete: data.complete, incomplete: data.incomplete }));
  client.on('warning', (error) => window.t.warnings.push(String(error && error.message || error)));
  client.on('error', (error) => window.t.errors.push(String(error && error.message || error)));
  client.on('peer', (peer) => {
    window.t.peers++;
    const onConnect = () => {
      window.t.connected.push(peer.id || 'connected');
      peer.send(`hello from ${peerId}`);
    };
    if (peer.connected) onConnect();
    else peer.once('connect', onConnect);
    peer.on('data', (data) => window.t.received.push(new TextDecoder().decode(data)));
    peer.on('error', (error) => window.t.errors.push(`peer: ${error.message}`));
  });
  client.start();
}

async function main() {
  const bundle = await readFile(config.bundle, 'utf8');
  const browser = await launchWebRtcChromium(fail);
  const report = { pages: [] };
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    // Chromium gathers ICE candidates on every interface (loopback included)
    // only for a page with media permission. No camera or microphone is opened.
    await context.grantPermissions(['camera', 'microphone'], { origin: ORIGIN });
    await context.route(`${ORIGIN}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/tracker-client.js') return route.fulfill({ status: 200, contentType: 'text/javascript', body: bundle });
      if (path === '/' || path === '/index.html') return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE_HTML });
      return route.fulfill({ status: 404, body: 'not found' });
    });
    const infoHash = randomBytes(20).toString('hex');
    const pages = [];
    for (let i = 0; i < config.pages; i++) {
      const peerId = randomBytes(20).toString('hex');
      const page = await context.newPage();
      page.on('pageerror', (error) => log(`page ${i}: page error: ${error.message}`));
      page.on('console', (message) => { if (message.type() === 'error') log(`page ${i}: console: ${message.text()}`); });
      await page.goto(`${ORIGIN}/`);
      await page.waitForFunction(() => window.bundleReady === true, null, { timeout: 5000 });
      const urls = config.announceUrls || [config.announceUrl];
      await page.evaluate(startInPage, { announceUrl: urls[i % urls.length], infoHash, peerId });
      // Each page's first announce is answered before the next page starts,
      // so the later page's offers find the earlier one in the swarm.
      await page.waitForFunction(() => window.t.updates.length > 0 || window.t.warnings.length > 0, null,
                                 { timeout: 5000 });
      pages.push({ page, peerId });
      log(`page ${i} announced`);
    }
    const state = (p) => p.page.evaluate(() => window.t);
    let polls = 0;
    await waitFor('every page to open a data channel and receive a greeting', async () => {
      const waiting = [];
      for (const p of pages) if ((await state(p)).received.length === 0) waiting.push(p);
      if (++polls % 20 === 0) for (const p of waiting) await p.page.evaluate(() => window.client.update());
      return waiting.length === 0;
    }, config.deadlineMs - 5000).catch(async (error) => {
      for (const p of pages) log(`${p.peerId}: ${JSON.stringify(await state(p))}`);
      throw error;
    });
    for (const p of pages) report.pages.push({ peerId: p.peerId, ...(await state(p)) });
    for (const p of pages) await p.page.evaluate(() => new Promise((resolve) => window.client.destroy(resolve)));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
  process.exit(0);
}

main().catch((error) => fail(error && error.stack || String(error)));
