// Drives Debian's chromium (/usr/bin/chromium, never a downloaded browser)
// with playwright-core for tests/system/test_p2pml_browser.py: pages of the
// origin (nginx) play a live HLS stream with hls.js and p2p-media-loader-hlsjs
// (p2pml-player.html, its bundle built by the test), whose tracker is
// mf-edge's /announce through mf-ingress. It waits until at least
// `p2pPages` pages have received segment bytes over P2P, then prints what
// every page counted as one JSON line on stdout; progress goes to stderr.
//
// usage: node run-p2pml-pages.mjs '{"origin": "http://127.0.0.1:P", "tracker": "wss://localhost:Q/announce",
//                                   "src": "live/master.m3u8", "pages": 3, "p2pPages": 2, "deadlineMs": 120000}'
// Exit status: 0 when the run completed (whatever it observed), 2 when it
// could not (chromium missing, deadline, a page crashed): stderr says why.
import { driverLog, launchWebRtcChromium } from './admin-helpers.mjs';
import { randomBytes } from 'node:crypto';

const config = JSON.parse(process.argv[2]);

const { log, fail } = driverLog('run-p2pml-pages', config.deadlineMs);

async function main() {
  const browser = await launchWebRtcChromium(fail);
  const report = { pages: [] };
  try {
    const swarm = `p2pml-${randomBytes(6).toString('hex')}`;
    const pages = [];
    for (let i = 0; i < config.pages; i++) {
      // Viewers at different distances from the live edge (2, 4, 6 segments
      // behind), as an audience is: a later viewer needs what an earlier one
      // has already loaded, which is what a mesh shares.
      const query = new URLSearchParams({ tracker: config.tracker, src: config.src, swarm, sync: String(2 + 2 * i) });
      // A context per viewer, as separate browsers would be.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      // Chromium gathers ICE candidates on loopback only for a page with
      // media permission; no camera or microphone is opened.
      await context.grantPermissions(['camera', 'microphone'], { origin: config.origin });
      const page = await context.newPage();
      page.on('pageerror', (error) => log(`page ${i}: page error: ${error.message}`));
      page.on('console', (message) => { if (message.type() === 'error') log(`page ${i}: console: ${message.text()}`); });
      await page.goto(`${config.origin}/p2pml-player.html?${query.toString()}`);
      pages.push(page);
      log(`page ${i} opened`);
    }
    const state = (page) => page.evaluate(() => window.p2pml);
    let last = [];
    let polls = 0;
    for (;;) {
      last = await Promise.all(pages.map(state));
      if (++polls % 40 === 0) log(JSON.stringify(last.map((s) => s && { bytes: s.bytes, peers: s.peers.length, playing: s.playing, latency: s.latency })));
      const withP2p = last.filter((s) => s && s.bytes.p2p > 0).length;
      if (withP2p >= config.p2pPages) {
        log(`${withP2p} pages received bytes over P2P`);
        break;
      }
      if (last.some((s) => !s || s.errors.length > 0)) break;  // reported, the test fails on it
      await new Promise((r) => setTimeout(r, 250));
    }
    report.pages = last;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
  process.exit(0);
}

main().catch((error) => fail(error && error.stack || String(error)));
