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
//   {"cmd": "operator", "admins": [{"edgeId": "edge-a", "port": N}], "streamId": "...", "screenshot": "/path.png"}
//                                                           -> {"ok": true, "comparison": {...}}
//     (the operator page of the edge listing streamId, compared with that
//     edge's /api/streams and /metrics: see checkOperatorPage)
//   {"cmd": "quit"}                                         -> exits 0
// A failing command answers {"ok": false, "error": "..."}. The process exits
// by itself (status 2) at its deadline: usage: node run-sdk-pages.mjs '{"originUrl": ..., "deadlineMs": N}'
import { adminGet, driverLog, launchWebRtcChromium, parsePrometheus, waitFor } from './admin-helpers.mjs';
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv[2]);
const { log, fail } = driverLog('run-sdk-pages', config.deadlineMs);
const browser = await launchWebRtcChromium(fail);
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

// Loads the operator page (/) of the edge whose /api/streams lists
// `streamId`, waits for refreshes, and compares what it shows with
// /api/streams and /metrics fetched right after (retried over a few
// refreshes: a number may move in between). Saves the screenshot.
async function checkOperatorPage({ admins, streamId, screenshot }) {
  let admin = null;
  for (const a of admins) {
    const json = await adminGet(a.port, '/api/streams');
    if (json.streams.some((s) => s.streamId === streamId)) admin = a;
  }
  if (!admin) throw new Error(`no edge lists ${streamId} in /api/streams`);
  const context = await browser.newContext({ viewport: { width: 940, height: 260 } });
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${admin.port}/`);
    const refreshes = () => page.evaluate(() => Number(document.body.dataset.refreshes || 0));
    const readPage = () => page.evaluate(() => {
      const rows = {};
      for (const tr of document.querySelectorAll('#streams tr')) {
        const key = tr.dataset.rendition ? `${tr.dataset.stream}/${tr.dataset.rendition}` : tr.dataset.stream;
        rows[key] = Object.fromEntries([...tr.querySelectorAll('td[data-field]')].map((td) => [td.dataset.field, td.textContent]));
      }
      return { edge: document.getElementById('edge').textContent, peers: document.getElementById('peers').textContent, rows };
    });
    const percent = (v) => (v === null ? '\u2013' : (v * 100).toFixed(1) + ' %');
    let comparison = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const at = await refreshes();
      await waitFor('the operator page to refresh', async () => (await refreshes()) >= at + 2, 5000);
      const shown = await readPage();
      const json = await adminGet(admin.port, '/api/streams');
      const metrics = parsePrometheus(await adminGet(admin.port, '/metrics'));
      const mismatches = [];
      const expect = (what, got, want) => { if (String(got) !== String(want)) mismatches.push(`${what}: page ${got}, expected ${want}`); };
      expect('edge', shown.edge, json.edge);
      expect('total peers', shown.peers, json.peers);
      expect('total peers vs mf_edge_peers_joined', json.peers, metrics['mf_edge_peers_joined']);
      for (const s of json.streams) {
        const row = shown.rows[s.streamId] || {};
        expect(`${s.streamId} peers`, row.peers, s.peers);
        expect(`${s.streamId} peers vs mf_edge_stream_viewers`, s.peers, metrics[`mf_edge_stream_viewers{stream="${s.streamId}"}`]);
        expect(`${s.streamId} p2pBytes vs mf_edge_stream_p2p_bytes_total`, s.p2pBytes,
               metrics[`mf_edge_stream_p2p_bytes_total{stream="${s.streamId}"}`]);
        expect(`${s.streamId} proposals`, row.proposals, s.proposals);
        expect(`${s.streamId} connected proposals`, (row.connectedProposals || '').split(' ')[0], s.connectedProposals);
        expect(`${s.streamId} offload`, row.offloadRatio, percent(s.offloadRatio));
        for (const r of s.renditions) expect(`${s.streamId}/${r.rendition} peers`, shown.rows[`${s.streamId}/${r.rendition}`]?.peers, r.peers);
      }
      expect('stream rows', Object.keys(shown.rows).filter((k) => !k.includes('/')).sort().join(','),
             json.streams.map((s) => s.streamId).sort().join(','));
      comparison = { edge: admin.edgeId, attempts: attempt + 1, mismatches, json, shown };
      if (mismatches.length === 0) break;
      log(`operator page attempt ${attempt + 1}: ${mismatches.join('; ')}`);
    }
    await page.screenshot({ path: screenshot });
    return comparison;
  } finally {
    await context.close();
  }
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
    } else if (command.cmd === 'operator') {
      answer = { ok: true, comparison: await checkOperatorPage(command) };
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
