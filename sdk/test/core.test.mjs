// The core's hls.js side (src/core.ts) under Node, without WebRTC: a local
// HTTP origin (node:http) and a fake signaling socket. Covers the Loader
// interface hls.js relies on (stats at construction, context, callbacks once,
// destroy after success is silent), HTTP as hls.js's loaders do it
// (timeouts, Range, stats), manifest-driven sharing, and the product page's
// class pattern as docs/sdk.md fixes it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { MeshedFlowLoader, createLoaderStats, renditionForPlaylist } from '../dist/meshedflow.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k' };
const segment = (sn) => Buffer.alloc(5000 + sn, sn);
const digest = (b) => createHash('sha256').update(b).digest('base64url');

function manifest(stream, rendition, corruptSn, sns = [0, 1, 2]) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { v: 1, stream, rendition, playlist: 'index.m3u8', mediaSequence: 0, issuedAt: now, expiresAt: now + 600,
                    segments: sns.map((sn) => ({ uri: `seg${sn}.m4s`, sn, size: segment(sn).length,
                                                       sha256: digest(sn === corruptSn ? Buffer.from('x') : segment(sn)) })) };
  const input = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'mf-manifest+jws', kid: 'k' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}\n`;
}

const log = [];
let laggingFetches = 0;
const server = createServer((req, res) => {
  log.push({ url: req.url, range: req.headers.range ?? null });
  const m = req.url.match(/^\/live\/(\w+)\/(.*)$/);
  if (req.url.startsWith('/slow/')) return setTimeout(() => res.end('late'), 2000);
  if (req.url.startsWith('/half/')) { res.write(Buffer.alloc(1000, 1)); return setTimeout(() => res.end('late'), 2000); }
  if (!m) { res.statusCode = 404; return res.end(); }
  const [, rendition, file] = m;
  // 'lagging': a live manifest re-signed late, listing segment 3 only from its second fetch on.
  if (file === 'index.m3u8.mfsig' && rendition === 'lagging')
    return res.end(manifest('s', `${rendition}:index`, -1, ++laggingFetches > 1 ? [0, 1, 2, 3] : [0, 1, 2]));
  if (file === 'index.m3u8.mfsig') return res.end(manifest('s', `${rendition}:index`, 1));
  const seg = file.match(/^seg(\d)\.m4s$/);
  if (!seg) { res.statusCode = 404; return res.end(); }
  const body = segment(Number(seg[1]));
  const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
  if (range) {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range[1]}-${range[2]}/${body.length}`);
    return res.end(body.subarray(Number(range[1]), Number(range[2]) + 1));
  }
  res.setHeader('Age', '3');
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
after(() => server.close());

const sockets = [];
const socketFactory = (url, protocol) => {
  const s = { url, protocol, readyState: 0, sent: [], send(t) { this.sent.push(JSON.parse(t)); }, close() { this.readyState = 3; },
              onopen: null, onmessage: null, onclose: null, onerror: null };
  sockets.push(s);
  return s;
};
const newCore = (over = {}) => new MeshedFlowLoader({ signalingUrl: 'wss://edge.test/ws', streamId: 's', peerId: 'viewer-1',
                                                      manifestKeys: [jwk], socketFactory, ...over });
const loadPolicy = { maxTimeToFirstByteMs: 5000, maxLoadTimeMs: 10000 };
const fragContext = (sn, rendition = 'r360p') => ({
  url: `${origin}/live/${rendition}/seg${sn}.m4s`, responseType: 'arraybuffer',
  frag: { sn, baseurl: `${origin}/live/${rendition}/index.m3u8`, relurl: `seg${sn}.m4s`, duration: 1, level: 0 } });

function load(Loader, context, config = { loadPolicy }) {
  const loader = new Loader({});
  const statsAtConstruction = loader.stats;
  return new Promise((resolve) => {
    const calls = [];
    const done = (kind) => (...args) => { calls.push(kind); setTimeout(() => resolve({ loader, calls, args, statsAtConstruction }), 20); };
    loader.load(context, config, { onSuccess: done('success'), onError: done('error'), onTimeout: done('timeout'),
                                   onAbort: done('abort') });
  });
}

test('hlsLoader(): stats exist at construction and are the ones filled; context is set; one callback', async () => {
  const core = newCore();
  const Loader = core.hlsLoader();
  const { loader, calls, args, statsAtConstruction } = await load(Loader, fragContext(0));
  assert.deepEqual(calls, ['success']);
  const [response, stats] = args;
  assert.equal(stats, statsAtConstruction);
  assert.equal(loader.context.frag.sn, 0);
  assert.deepEqual(Buffer.from(response.data), segment(0));
  assert.ok(stats.loading.start > 0 && stats.loading.first >= stats.loading.start && stats.loading.end >= stats.loading.first);
  assert.equal(stats.loaded, segment(0).length);
  assert.equal(stats.total, segment(0).length);
  assert.ok(stats.bwEstimate > 0);
  loader.destroy();  // hls.js destroys every loader after success: no onAbort
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls, ['success']);
  // It joined the swarm of the playlist's folder, and the verified segment is kept for peers.
  assert.equal(core.stats().swarm.rendition, 'r360p:index');
  assert.equal(core.stats().verifiedSegments, 1);
  assert.equal(core.stats().storedBytes, segment(0).length);
  assert.equal(core.stats().httpBytes, segment(0).length);
  core.destroy();
});

test('a live segment the manifest does not list yet: the manifest is fetched again until it does, then shared', async () => {
  const core = newCore();
  const segments = [];
  core.on('segment', (e) => segments.push(e));
  const { calls } = await load(core.hlsLoader(), { ...fragContext(3, 'lagging'), frag: { ...fragContext(3, 'lagging').frag, duration: 2 } });
  assert.deepEqual(calls, ['success']);
  assert.equal(laggingFetches, 2);
  assert.deepEqual(segments.map((e) => [e.sn, e.source, e.verified]), [[3, 'http', true]]);
  core.destroy();
});

test('HTTP bytes that fail the manifest are played but never shared', async () => {
  const core = newCore();
  const { calls, args } = await load(core.hlsLoader(), fragContext(1));  // the manifest lies about seg1
  assert.deepEqual(calls, ['success']);
  assert.deepEqual(Buffer.from(args[0].data), segment(1));
  assert.equal(core.stats().storedBytes, 0);
  assert.equal(core.stats().failedSegments, 1);
  core.destroy();
});

test('without a manifest key nothing is verified or shared, playback still works', async () => {
  const core = newCore({ manifestKeys: [] });
  const { calls } = await load(core.hlsLoader(), fragContext(2));
  assert.deepEqual(calls, ['success']);
  assert.equal(core.stats().storedBytes, 0);
  core.destroy();
});

test('init segments, parts and byte ranges go over HTTP as hls.js asks (Range header, 206)', async () => {
  const core = newCore();
  const context = { ...fragContext(2), rangeStart: 100, rangeEnd: 200 };
  const { calls, args } = await load(core.hlsLoader(), context);
  assert.deepEqual(calls, ['success']);
  assert.equal(args[0].code, 206);
  assert.deepEqual(Buffer.from(args[0].data), segment(2).subarray(100, 200));
  assert.equal(log.at(-1).range, 'bytes=100-199');
  const { args: initArgs } = await load(core.hlsLoader(), { ...fragContext(0), frag: { sn: 'initSegment', baseurl: fragContext(0).frag.baseurl } });
  assert.equal(initArgs[0].code, 200);
  core.destroy();
});

test('time to first byte over loadPolicy.maxTimeToFirstByteMs: onTimeout, as hls.js loaders do', async () => {
  const core = newCore();
  const { calls } = await load(core.hlsLoader(), { url: `${origin}/slow/x`, responseType: 'arraybuffer' },
                               { loadPolicy: { maxTimeToFirstByteMs: 100, maxLoadTimeMs: 5000 } });
  assert.deepEqual(calls, ['timeout']);
  core.destroy();
});

test('an aborted HTTP load still counts the bytes that arrived as CDN bytes (they cost the origin)', async () => {
  const core = newCore();
  const loader = new (core.hlsLoader())({});
  loader.load({ url: `${origin}/half/z`, responseType: 'arraybuffer' }, { loadPolicy },
              { onSuccess: () => {}, onError: () => {}, onTimeout: () => {}, onAbort: () => {} });
  const end = Date.now() + 5000;
  while (loader.stats.loaded < 1000 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  loader.abort();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(core.stats().httpBytes, 1000);
  core.destroy();
});

test('abort() calls onAbort once and marks the stats; 404 is onError with the status', async () => {
  const core = newCore();
  const Loader = core.hlsLoader();
  const loader = new Loader({});
  const calls = [];
  loader.load({ url: `${origin}/slow/y`, responseType: 'arraybuffer' }, { loadPolicy },
              { onSuccess: () => calls.push('success'), onError: () => calls.push('error'), onTimeout: () => calls.push('timeout'),
                onAbort: (stats) => calls.push(['abort', stats.aborted]) });
  loader.abort();
  loader.abort();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(calls, [['abort', true]]);
  const { calls: c2, args } = await load(Loader, { url: `${origin}/nothing`, responseType: 'arraybuffer' });
  assert.deepEqual(c2, ['error']);
  assert.equal(args[0].code, 404);
  core.destroy();
});

test("the product page's class pattern, fixed as docs/sdk.md shows: the instance owns stats the core fills", async () => {
  const core = newCore();
  class SharedLoader {
    constructor() { if (!SharedLoader.core) SharedLoader.core = core; this.core = SharedLoader.core; this.stats = createLoaderStats(); this.context = null; }
    load(context, config, callbacks) { this.context = context; this.currentRequest = this.core.load(context, config, callbacks, this.stats); }
    abort() { if (this.currentRequest) this.currentRequest.abort(); }
    destroy() { if (this.currentRequest) this.currentRequest.destroy(); }
  }
  const { calls, args, statsAtConstruction } = await load(SharedLoader, fragContext(0));
  assert.deepEqual(calls, ['success']);
  assert.equal(args[1], statsAtConstruction);
  assert.equal(statsAtConstruction.loaded, segment(0).length);
  core.destroy();
});

test("the core joins with ?stream=, the subprotocol, and mf-sign's rendition name", async () => {
  const before = sockets.length;
  const core = newCore();
  await load(core.hlsLoader(), fragContext(0, 'r180p'));
  const s = sockets[before];
  assert.equal(s.protocol, 'meshedflow.v1');
  assert.equal(new URL(s.url).searchParams.get('stream'), 's');
  s.readyState = 1;
  s.onopen();
  assert.deepEqual(s.sent[0], { type: 'join', id: 'join', streamId: 's', rendition: 'r180p:index', peerId: 'viewer-1' });
  // The edge's policy with the kill switch: the merged policy says so.
  s.onmessage({ data: JSON.stringify({ type: 'joined', peerId: 'viewer-1', streamId: 's', rendition: 'r180p:index', edge: 'e', session: 'x',
                                       heartbeatMs: 5000, policy: { meshEnabled: false, maxPeers: 4 } }) });
  assert.equal(core.stats().policy.meshEnabled, false);
  core.destroy();
  assert.equal(s.readyState, 3);
});

test("renditionForPlaylist is mf-sign's rule", () => {
  assert.equal(renditionForPlaylist('https://cdn/live/720p/index.m3u8'), '720p:index');
  assert.equal(renditionForPlaylist('https://cdn/live/stream_1.m3u8?token=x'), 'live:stream_1');
  assert.equal(renditionForPlaylist('https://cdn/index.m3u8'), null);
  assert.equal(renditionForPlaylist('https://cdn/live/720p/index.mpd'), null);
  assert.equal(renditionForPlaylist('https://cdn/live/a%20b/index.m3u8'), null);
});

test('attach(hls): hls.js destroying destroys the core', async () => {
  const before = sockets.length;
  const core = newCore();
  const handlers = {};
  core.attach({ on: (event, fn) => { handlers[event] = fn; } });
  assert.deepEqual(Object.keys(handlers).sort(), ['hlsDestroying', 'hlsMediaAttached', 'hlsMediaDetached']);
  await load(core.hlsLoader(), fragContext(0));
  const s = sockets[before];
  s.readyState = 1;
  s.onopen();
  handlers.hlsDestroying();
  assert.equal(s.readyState, 3);
  assert.equal(core.stats().storedBytes, 0);
});
