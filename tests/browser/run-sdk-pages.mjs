// Drives Debian's chromium (/usr/bin/chromium, never a downloaded browser)
// with playwright-core for tests/system/test_sdk_browser.py: each page is a
// viewer playing an HLS stream with real hls.js and the SDK's loader
// (sdk-player.html, served by the test's nginx origin), each in a browser
// context of its own (its own storage and network state, as separate
// browsers would have). The Python side (tests/system/sdk_pages.py)
// sends one JSON command per stdin line and gets one JSON line per command on
// stdout; progress goes to stderr.
//
//   {"cmd": "open", "viewers": [{...startPlayer config...}], "rampMs": N}
//                                                           -> {"ok": true} once every page plays
//     (viewer i starts opening at i * rampMs / viewers.length, without
//     waiting for the ones before it: a ramp, not a queue)
//   {"cmd": "report"}                                       -> {"ok": true, "pages": {peerId: report}}
//   {"cmd": "close", "peerId": "..."}                       -> {"ok": true} (its context closed at once)
//   {"cmd": "quit"}                                         -> exits 0
// A failing command answers {"ok": false, "error": "..."}. The process exits
// by itself (status 2) at its deadline: usage: node run-sdk-pages.mjs '{"originUrl": ..., "deadlineMs": N}'
import { chromium } from 'playwright-core';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv[2]);
const CHROMIUM = '/usr/bin/chromium';
const started = Date.now();
const log = (...args) => console.error(`[run-sdk-pages +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
setTimeout(() => { log(`deadline of ${config.deadlineMs} ms reached`); process.exit(2); }, config.deadlineMs).unref();

try {
  await access(CHROMIUM);
} catch {
  log(`${CHROMIUM} is missing: install-deps.sh installs the Debian package chromium`);
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
    '--ignore-certificate-errors',          // the run's self-signed certificate on the ingress
    '--autoplay-policy=no-user-gesture-required',
    '--disable-gpu',
  ],
});
const pages = new Map();

async function open(viewer) {
  // The user agent names the viewer, so the origin's access log says whose
  // request each line was (docs/pilot.md, "The origin's access log").
  const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/${browser.version()} ` +
                    `Safari/537.36 MeshedFlowViewer/${viewer.peerId}`;
  const context = await browser.newContext({ ignoreHTTPSErrors: true, userAgent });
  // Chromium gathers ICE candidates on every interface (loopback included)
  // only for a page with media permission; no camera or microphone is opened.
  await context.grantPermissions(['camera', 'microphone'], { origin: config.originUrl });
  const page = await context.newPage();
  page.on('pageerror', (error) => log(`${viewer.peerId}: page error: ${error.message}`));
  page.on('console', (m) => { if (m.type() === 'error') log(`${viewer.peerId}: console: ${m.text()}`); });
  await page.goto(`${config.originUrl}/sdk-player.html`);
  await page.waitForFunction(() => window.playerReady === true, null, { timeout: 10000 });
  await page.evaluate((cfg) => window.startPlayer(cfg), viewer);
  pages.set(viewer.peerId, page);
}

async function report() {
  const out = {};
  for (const [peerId, page] of pages) out[peerId] = await page.evaluate(() => window.report());
  return out;
}

const commands = createInterface({ input: process.stdin });
for await (const line of commands) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  let answer;
  try {
    if (command.cmd === 'open') {
      const step = (command.rampMs ?? 0) / command.viewers.length;
      await Promise.all(command.viewers.map((viewer, i) =>
        new Promise((resolve) => setTimeout(resolve, i * step)).then(() => open(viewer))));
      answer = { ok: true };
    } else if (command.cmd === 'report') {
      answer = { ok: true, pages: await report() };
    } else if (command.cmd === 'close') {
      await pages.get(command.peerId)?.context().close();
      pages.delete(command.peerId);
      answer = { ok: true };
    } else if (command.cmd === 'quit') {
      break;
    } else {
      answer = { ok: false, error: `unknown command ${command.cmd}` };
    }
  } catch (error) {
    answer = { ok: false, error: String(error?.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await browser.close();
process.exit(0);
