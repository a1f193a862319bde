// Drives Debian's chromium (/usr/bin/chromium, never a downloaded browser)
// with playwright-core for tests/system/test_browser.py: pages running the
// reference client (meshedflow-client.js) join streams through the ingress,
// open WebRTC data channels to each other over loopback, send checksummed
// bytes, report stats; the edge's operator page is loaded and compared with
// /api/streams and /metrics; one page is closed and must stop being
// proposed. Everything observed is printed as one JSON line on stdout (the
// Python test asserts on it); progress goes to stderr.
//
// usage: node run-pages.mjs '{"wsUrl": "wss://localhost:P/ws", "admins": [{"edgeId": "edge-a", "port": N}],
//                             "streams": {"alpha": 4, "beta": 2}, "rendition": "720p",
//                             "screenshot": "/path/operator-page.png", "deadlineMs": 50000}'
// Exit status: 0 when the run completed (whatever it observed), 2 when it
// could not (chromium missing, deadline, a page crashed): stderr says why.
import { chromium } from 'playwright-core';
import { adminGet, parsePrometheus, waitFor } from './admin-helpers.mjs';
import { readFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(process.argv[2]);
const CHROMIUM = '/usr/bin/chromium';
// The pages' origin exists only inside the browser: every request to it is
// answered from this folder (nothing is fetched from outside).
const ORIGIN = 'https://pages.meshedflow.test';
const PAYLOAD_BYTES = 128 * 1024;
const CHUNK_BYTES = 16 * 1024;
const CDN_BYTES = 64 * 1024;  // what each page pretends to have fetched from a CDN

const started = Date.now();
const log = (...args) => console.error(`[run-pages +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
function fail(message) {
  console.error(`run-pages: ${message}`);
  process.exit(2);
}
setTimeout(() => fail(`deadline of ${config.deadlineMs} ms reached`), config.deadlineMs);

// ---- in the page ----------------------------------------------------------

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>meshedflow test page</title>
<script type="module">
import { MeshedFlowClient } from './meshedflow-client.js';
window.MeshedFlowClient = MeshedFlowClient;
window.clientReady = true;
</script>`;

// Runs in the page: starts the reference client and records what a test
// needs (every peer it ever made a connection for, what arrived, errors).
function startInPage({ wsUrl, streamId, rendition, peerId, chunkBytes }) {
  const t = { linked: [], opened: [], received: {}, errors: [], joined: null, joins: 0 };
  window.t = t;
  class Recorded extends window.MeshedFlowClient {
    newLink(remote, offerer) {
      t.linked.push(remote);
      return super.newLink(remote, offerer);
    }
  }
  // Host candidates on loopback only (the machine may have other
  // interfaces; the test's traffic stays on 127.0.0.0/8).
  t.candidates = [];
  const loopback = (c) => {
    const address = (c.candidate || '').split(' ')[4];
    if (!t.candidates.includes(address)) t.candidates.push(address);
    return address?.startsWith('127.');
  };
  const client = new Recorded({ wsUrl, url: wsUrl, streamId, rendition, peerId, candidateFilter: loopback,
                                statsIntervalMs: 60000, pingIntervalMs: 2000 });
  window.client = client;
  client.addEventListener('joined', (e) => { t.joined = e.detail.message; t.joins++; });
  client.addEventListener('error', (e) => t.errors.push(e.detail.message));
  client.addEventListener('peer-error', (e) => t.errors.push(e.detail));
  client.addEventListener('channel-open', (e) => t.opened.push(e.detail.peerId));
  // Payload protocol on the channel: a JSON header {bytes, sha256}, then
  // binary chunks; the receiver checks the digest when all bytes are in.
  client.addEventListener('data', async (e) => {
    const { peerId: from, data } = e.detail;
    const r = t.received[from] ||= { expected: 0, sha256: '', chunks: [], bytes: 0, done: false, ok: false };
    if (typeof data === 'string') {
      const header = JSON.parse(data);
      Object.assign(r, { expected: header.bytes, sha256: header.sha256, chunks: [], bytes: 0, done: false, ok: false });
      return;
    }
    r.chunks.push(new Uint8Array(data));
    r.bytes += data.byteLength;
    if (r.bytes >= r.expected) {
      const all = new Uint8Array(r.bytes);
      let at = 0;
      for (const c of r.chunks) { all.set(c, at); at += c.length; }
      const digest = await crypto.subtle.digest('SHA-256', all);
      r.ok = r.bytes === r.expected && hex(digest) === r.sha256;
      r.done = true;
      r.chunks = [];
    }
  });
  window.hex = hex;
  function hex(buffer) { return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join(''); }
  window.sendPayloads = async (bytes) => {
    const sent = [];
    for (const peer of client.openPeers()) {
      const payload = new Uint8Array(bytes);
      for (let at = 0; at < bytes; at += 65536) crypto.getRandomValues(payload.subarray(at, at + 65536));
      const sha256 = hex(await crypto.subtle.digest('SHA-256', payload));
      client.sendTo(peer, JSON.stringify({ bytes, sha256 }));
      for (let at = 0; at < bytes; at += chunkBytes) client.sendTo(peer, payload.slice(at, at + chunkBytes));
      sent.push(peer);
    }
    return sent;
  };
  client.start();
}

// What a page's connections are doing, for a failure message.
function diagnose(page) {
  return page.evaluate(() => ({
    errors: window.t.errors,
    linked: window.t.linked,
    candidates: window.t.candidates,
    connections: [...window.client.connections].map(([id, l]) => ({
      id, offerer: l.offerer, connection: l.pc.connectionState, ice: l.pc.iceConnectionState,
      signaling: l.pc.signalingState, gathering: l.pc.iceGatheringState, channel: l.channel?.readyState,
      queued: l.queued.length })),
  }));
}

// ---- the run --------------------------------------------------------------

async function main() {
  try {
    await access(CHROMIUM);
  } catch {
    fail(`${CHROMIUM} is missing: install-deps.sh installs the Debian package chromium`);
  }
  const clientSource = await readFile(join(here, 'meshedflow-client.js'), 'utf8');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--allow-loopback-in-peer-connection',              // host candidates on 127.0.0.1
      // Real addresses in host candidates, not .local names; and no Local
      // Network Access checks: the pages' (routed, public-looking) origin
      // talks to the ingress on 127.0.0.1, where a real player would talk
      // to a public address.
      '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
      '--ignore-certificate-errors',                      // the run's self-signed test certificate
      '--disable-gpu',
    ],
  });
  const report = { pages: [], operator: null, departure: null, isolation: null };
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 560 } });
    // Chromium enumerates every interface (loopback included) for ICE only
    // for a page with media permission; otherwise it gathers on the default
    // route's interface alone. No camera or microphone is opened.
    await context.grantPermissions(['camera', 'microphone'], { origin: ORIGIN });
    await context.route(`${ORIGIN}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/meshedflow-client.js')
        return route.fulfill({ status: 200, contentType: 'text/javascript', body: clientSource });
      if (path === '/' || path === '/index.html')
        return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE_HTML });
      return route.fulfill({ status: 404, body: 'not found' });
    });
    const pages = [];
    for (const [streamId, count] of Object.entries(config.streams)) {
      for (let i = 0; i < count; i++) {
        const peerId = `${streamId}-${i}`;
        const page = await context.newPage();
        page.on('pageerror', (error) => log(`${peerId}: page error: ${error.message}`));
        page.on('console', (message) => { if (message.type() === 'error') log(`${peerId}: console: ${message.text()}`); });
        await page.goto(`${ORIGIN}/`);
        await page.waitForFunction(() => window.clientReady === true, null, { timeout: 5000 });
        await page.evaluate(startInPage, { wsUrl: config.wsUrl, streamId, rendition: config.rendition, peerId,
                                           chunkBytes: CHUNK_BYTES });
        await page.waitForFunction(() => window.t.joined !== null, null, { timeout: 5000 });
        const edge = await page.evaluate(() => window.t.joined.edge);
        pages.push({ page, peerId, streamId, edge });
        log(`${peerId} joined on ${edge}`);
      }
    }
    const state = (p) => p.page.evaluate(() => ({ open: window.client.openPeers(), linked: window.t.linked,
                                                   errors: window.t.errors, received: window.t.received,
                                                   totals: window.client.totals, joins: window.t.joins }));
    // Every page reaches at least one other, then the mesh settles (a page
    // is offered by every later joiner of its stream).
    await waitFor('every page to open a data channel', async () => {
      for (const p of pages) if ((await state(p)).open.length === 0) return false;
      return true;
    }, 20000).catch(async (error) => {
      for (const p of pages) log(`${p.peerId}: ${JSON.stringify(await diagnose(p.page))}`);
      throw error;
    });
    await waitFor('the mesh to settle', async () => {
      for (const p of pages) if ((await state(p)).open.length < config.streams[p.streamId] - 1) return false;
      return true;
    }, 5000).catch((error) => log(`${error.message} (at least one channel each is what is required)`));
    log('channels open');

    const sent = {};
    for (const p of pages) sent[p.peerId] = await p.page.evaluate((n) => window.sendPayloads(n), PAYLOAD_BYTES);
    await waitFor('every payload to arrive', async () => {
      for (const p of pages) {
        const s = await state(p);
        for (const q of pages)
          if (sent[q.peerId].includes(p.peerId) && !s.received[q.peerId]?.done) return false;
      }
      return true;
    }, 15000);
    log('payloads arrived');

    for (const p of pages) await p.page.evaluate((n) => { window.client.addCdnBytes(n); window.client.sendStats(); }, CDN_BYTES);
    for (const p of pages) {
      const s = await state(p);
      report.pages.push({ peerId: p.peerId, streamId: p.streamId, edge: p.edge, open: s.open, linked: s.linked,
                          sentTo: sent[p.peerId], errors: s.errors, totals: s.totals, joins: s.joins,
                          received: Object.fromEntries(Object.entries(s.received).map(
                            ([from, r]) => [from, { bytes: r.bytes, expected: r.expected, ok: r.ok }])) });
    }

    report.operator = await checkOperatorPage(context, Object.keys(config.streams)[0]);

    // Departure: the last page of the first stream closes; a fresh
    // need-peers from the first page must stop listing it.
    const [firstStream, count] = Object.entries(config.streams)[0];
    const asker = pages.find((p) => p.peerId === `${firstStream}-0`);
    const leaver = pages.find((p) => p.peerId === `${firstStream}-${count - 1}`);
    const ask = () => asker.page.evaluate(() => window.client.needPeers(8).then((peers) => peers.map((p) => p.peerId)));
    const before = await ask();
    await leaver.page.close();
    const closedAt = Date.now();
    let after = before;
    await waitFor(`${leaver.peerId} to disappear from proposals`, async () => {
      after = await ask();
      return !after.includes(leaver.peerId);
    }, 5000, 50).catch((error) => log(error.message));
    report.departure = { asker: asker.peerId, leaver: leaver.peerId, before, after, ms: Date.now() - closedAt };
    log(`departure: ${JSON.stringify(report.departure)}`);
    for (const p of pages) if (p !== leaver) await p.page.evaluate(() => window.client.stop());
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
  process.exit(0);
}

// Loads the edge's operator page for `streamId`'s edge, waits for refreshes
// after the stats, and compares what it shows with /api/streams and /metrics
// fetched right after (retried over a few refreshes: a number may move in
// between). Saves the screenshot.
async function checkOperatorPage(context, streamId) {
  let admin = null;
  for (const a of config.admins) {
    const json = await adminGet(a.port, '/api/streams');
    if (json.streams.some((s) => s.streamId === streamId)) admin = a;
  }
  if (!admin) throw new Error(`no edge lists ${streamId} in /api/streams`);
  const page = await context.newPage();
  await page.setViewportSize({ width: 940, height: 260 });
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
  await page.screenshot({ path: config.screenshot });
  await page.close();
  return comparison;
}

main().catch((error) => fail(error.stack || String(error)));
