// Drives Debian's chromium (/usr/bin/chromium) with playwright-core for
// tests/system/test_operator_page.py: opens one edge's operator page in a
// cluster of edges and compares what it shows (the cluster's edges, the
// streams across the cluster, the last history sample, the tracker swarms) with each edge's
// /metrics, /api/cluster and /api/history fetched right after (retried over
// a few refreshes: a number may move in between); saves a full-page
// screenshot. Then, when an ingress is given, opens its page, pastes the
// admin token, clicks "drain" on a backend and reads its state back.
// Prints one JSON line on stdout; progress goes to stderr.
//
// usage: node run-operator-page.mjs '{"page": PORT, "admins": [{"edgeId": "edge-a", "port": N}],
//                                     "screenshot": "/path.png", "deadlineMs": 40000,
//                                     "ingress": {"port": N, "token": "...", "backend": "127.0.0.1:P"}}'
// Exit status: 0 when the run completed (whatever it observed), 2 when it
// could not: stderr says why.
import { chromium } from 'playwright-core';
import { adminGet, parsePrometheus, waitFor } from './admin-helpers.mjs';

const config = JSON.parse(process.argv[2]);
const CHROMIUM = '/usr/bin/chromium';
const started = Date.now();
const log = (...args) => console.error(`[run-operator-page +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
function fail(message) {
  console.error(`run-operator-page: ${message}`);
  process.exit(2);
}
setTimeout(() => fail(`deadline of ${config.deadlineMs} ms reached`), config.deadlineMs);

function sumOf(samples, name) {
  let total = 0;
  for (const [key, value] of Object.entries(samples)) if (key === name || key.startsWith(name + '{')) total += value;
  return total;
}

async function checkClusterPage(page) {
  await page.goto(`http://127.0.0.1:${config.page}/`);
  const refreshes = () => page.evaluate(() => Number(document.body.dataset.refreshes || 0));
  const readPage = () => page.evaluate(() => {
    const rows = (selector, key) => Object.fromEntries([...document.querySelectorAll(selector)].map((tr) => [
      tr.dataset[key], Object.fromEntries([...tr.querySelectorAll('td[data-field]')].map((td) => [td.dataset.field, td.textContent]))]));
    const last = {};
    for (const figure of document.querySelectorAll('figure[data-chart]'))
      last[figure.dataset.chart] = figure.querySelector('[data-last]')?.dataset.last ?? '';
    return {
      edges: rows('#edges tr', 'edge'),
      streams: rows('#cluster-streams tr', 'clusterStream'),
      tracker: Object.fromEntries([...document.querySelectorAll('#tracker td[data-field]')].map((td) => [td.dataset.field, td.textContent])),
      historySamples: Number(document.body.dataset.historySamples || 0),
      last,
      polylines: document.querySelectorAll('figure[data-chart] polyline').length,
    };
  });
  const percent = (v) => (v === null ? '\u2013' : (v * 100).toFixed(1) + ' %');
  let comparison = null;
  for (let attempt = 0; attempt < 6; attempt++) {
    const at = await refreshes();
    await waitFor('the operator page to refresh', async () => (await refreshes()) >= at + 2, 5000);
    const shown = await readPage();
    const cluster = await adminGet(config.page, '/api/cluster');
    const history = await adminGet(config.page, '/api/history');
    const metrics = {};
    for (const a of config.admins) metrics[a.edgeId] = parsePrometheus(await adminGet(a.port, '/metrics'));
    const mismatches = [];
    const expect = (what, got, want) => { if (String(got) !== String(want)) mismatches.push(`${what}: page ${got}, expected ${want}`); };
    expect('edges shown', Object.keys(shown.edges).sort().join(','), config.admins.map((a) => a.edgeId).sort().join(','));
    expect('edges in /api/cluster', cluster.edges.map((e) => e.edge).sort().join(','),
           config.admins.map((a) => a.edgeId).sort().join(','));
    const streamPeers = {};
    for (const a of config.admins) {
      const m = metrics[a.edgeId];
      const row = shown.edges[a.edgeId] || {};
      const api = cluster.edges.find((e) => e.edge === a.edgeId) || {};
      expect(`${a.edgeId} peers`, row.peers, m['mf_edge_peers_joined']);
      expect(`${a.edgeId} peers in /api/cluster`, api.peers, m['mf_edge_peers_joined']);
      expect(`${a.edgeId} connections`, row.connections, m['mf_edge_connections']);
      expect(`${a.edgeId} p2p bytes`, row.p2pBytes, m['mf_edge_p2p_bytes_total']);
      expect(`${a.edgeId} CDN bytes`, row.cdnBytes, m['mf_edge_cdn_bytes_total']);
      expect(`${a.edgeId} signals`, row.signals, m['mf_edge_signals_relayed_total']);
      expect(`${a.edgeId} errors`, row.errors, sumOf(m, 'mf_edge_errors_total'));
      expect(`${a.edgeId} offload`, row.offloadRatio, percent(api.offloadRatio));
      expect(`${a.edgeId} state`, row.state, m['mf_edge_draining'] === 1 ? 'draining' : 'up');
      expect(`${a.edgeId} valkey`, row.valkey, m['mf_edge_valkey_up'] === 1 ? 'up' : 'down');
      for (const [key, value] of Object.entries(m)) {
        const match = /^mf_edge_stream_viewers\{stream="(.*)"\}$/.exec(key);
        if (match) streamPeers[match[1]] = (streamPeers[match[1]] || 0) + value;
      }
    }
    for (const [stream, peers] of Object.entries(streamPeers))
      expect(`cluster stream ${stream} peers`, shown.streams[stream]?.peers, peers);
    const own = metrics[cluster.edge];
    expect('tracker swarms', shown.tracker.trackerSwarms, own['mf_edge_tracker_swarms']);
    expect('tracker peers', shown.tracker.trackerPeers, own['mf_edge_tracker_peers']);
    expect('tracker seeders', shown.tracker.trackerSeeders, own['mf_edge_tracker_seeders']);
    expect('tracker offers waiting', shown.tracker.trackerOutstandingOffers, own['mf_edge_tracker_outstanding_offers']);
    const newest = history.samples[history.samples.length - 1];
    expect('history samples', shown.historySamples, history.samples.length);
    expect('history: last peers', shown.last.peers, newest?.peers);
    expect('history: last peers vs mf_edge_peers_joined', newest?.peers, metrics[cluster.edge]['mf_edge_peers_joined']);
    comparison = { attempts: attempt + 1, mismatches, shown, cluster, historySamples: history.samples.length };
    if (mismatches.length === 0) break;
    log(`cluster page attempt ${attempt + 1}: ${mismatches.join('; ')}`);
  }
  await page.screenshot({ path: config.screenshot, fullPage: true });
  return comparison;
}

async function checkIngressPage(page) {
  const { port, token, backend } = config.ingress;
  await page.goto(`http://127.0.0.1:${port}/`);
  const stateOf = () => page.evaluate((b) => document.querySelector(`#backends tr[data-backend="${b}"] td[data-field="state"]`)?.textContent ?? '', backend);
  const before = await waitFor('the backend on the ingress page', async () => (await stateOf()) || null, 5000);
  await page.fill('#token', token);
  await page.click(`#backends tr[data-backend="${backend}"] button[data-action="drain"]`);
  const after = await waitFor('the backend shown draining', async () => {
    const state = await stateOf();
    return state.startsWith('drain') ? state : null;
  }, 5000).catch(async (error) => {
    const message = await page.evaluate(() => document.getElementById('action-status').textContent);
    throw new Error(`${error.message} (the page says: ${message}; state ${await stateOf()})`);
  });
  const api = await adminGet(port, '/api/backends');
  const message = await page.evaluate(() => document.getElementById('action-status').textContent);
  return { before, after, api, message };
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const report = { cluster: null, ingress: null };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => fail(`page error: ${error.message}`));
    report.cluster = await checkClusterPage(page);
    if (config.ingress) report.ingress = await checkIngressPage(page);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
  process.exit(0);
}

main().catch((error) => fail(error.stack || String(error)));
