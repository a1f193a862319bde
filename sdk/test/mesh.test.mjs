// Two or three cores in one process (fake WebRTC and a fake edge from
// test/fake-webrtc.mjs, a real HTTP origin from node:http): a segment goes
// from one viewer to another verified; a lying viewer is banned and its
// victim plays the HTTP bytes; a swarm fetches a segment nobody holds from
// the CDN once; the kill switch closes every link.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { MeshedFlowLoader } from '../dist/meshedflow.js';
import { FakeEdge, FakePeerConnection } from './fake-webrtc.mjs';

globalThis.RTCPeerConnection = FakePeerConnection;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k' };
const segment = (sn) => { const b = Buffer.alloc(40000 + sn); for (let i = 0; i < b.length; i++) b[i] = (i * 7 + sn) & 255; return b; };
const digest = (b) => createHash('sha256').update(b).digest('base64url');
const SNS = [0, 1, 2, 3, 4, 5];
// What the manifest lists: all of SNS, or a live window that a test grows.
let published = SNS;

function manifestText() {
  const now = Math.floor(Date.now() / 1000);
  const payload = { v: 1, stream: 's', rendition: 'r:index', playlist: 'index.m3u8', mediaSequence: 0, issuedAt: now,
                    // A live manifest expires soon (mf-sign signs one for a few
                    // segment durations), but not while a slowed test runs.
                    expiresAt: now + (published === SNS ? 86400 : 120),
                    segments: published.map((sn) => ({ uri: `seg${sn}.m4s`, sn, size: segment(sn).length, sha256: digest(segment(sn)) })) };
  const input = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'k' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
const requests = [];
const server = createServer((req, res) => {
  requests.push(req.url);
  if (req.url === '/live/r/index.m3u8.mfsig') return res.end(manifestText());
  const m = req.url.match(/^\/live\/r\/seg(\d)\.m4s$/);
  if (!m) { res.statusCode = 404; return res.end(); }
  res.end(segment(Number(m[1])));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
after(() => server.close());

const context = (sn) => ({ url: `${origin}/live/r/seg${sn}.m4s`, responseType: 'arraybuffer',
                           frag: { sn, baseurl: `${origin}/live/r/index.m3u8`, relurl: `seg${sn}.m4s`, duration: 10, level: 0 } });
const loadPolicy = { maxTimeToFirstByteMs: 60000, maxLoadTimeMs: 60000 };
// Every core a test makes is destroyed after it, passed or failed: a core's
// timers would otherwise keep this process running for ever.
const cores = [];
afterEach(() => { for (const core of cores.splice(0)) core.destroy(); });

function viewer(edge, peerId, extra = {}) {
  const core = new MeshedFlowLoader({ signalingUrl: 'wss://fake/ws', streamId: 's', peerId, manifestKeys: [jwk],
                                      socketFactory: edge.factory(), prefetchSegments: 0,
                                      // The mesh may take up to 60 s of a 10 s fragment: what these
                                      // tests check must not depend on how fast a loaded machine runs them.
                                      meshBudgetFraction: 6, ...extra,
                                      testHooks: { policyBase: { peerRequestTimeoutMs: 60000 }, ...extra.testHooks } });
  cores.push(core);
  const segments = [];
  core.on('segment', (e) => segments.push(e));
  const linkEvents = [];
  core.on('peer-connecting', (e) => linkEvents.push(['connecting', e.peerId, e.offerer]));
  core.on('peer-open', (e) => linkEvents.push(['open', e.peerId, e.offerer]));
  const Loader = core.hlsLoader();
  const load = (sn) => new Promise((resolve, reject) => {
    new Loader({}).load(context(sn), { loadPolicy }, {
      onSuccess: (response) => resolve(Buffer.from(response.data)), onError: (e) => reject(new Error(e.text)),
      onTimeout: () => reject(new Error('timeout')) });
  });
  return { core, segments, load, linkEvents };
}
const until = async (what, predicate, ms = 60000) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
// The links a viewer opened, [peerId, offerer], each announced first by peer-connecting.
const opens = (v) => {
  const opened = v.linkEvents.filter(([kind]) => kind === 'open');
  for (const [, peerId, offerer] of opened)
    assert.ok(v.linkEvents.some(([kind, p, o]) => kind === 'connecting' && p === peerId && o === offerer), `${peerId} opened unannounced`);
  return opened.map(([, peerId, offerer]) => [peerId, offerer]);
};
const count = (url) => requests.filter((r) => r === url).length;
// Timeouts are hang bounds here (a loaded machine stalls this process for
// seconds); the scheduler's timing is tested on a fake clock
// (scheduler.test.mjs).
const edgePolicy = { meshEnabled: true, maxPeers: 8, maxViewers: 0, uploadCapKbps: 0, cmafMode: 'off', offerTimeoutMs: 60000,
                     peerRequestTimeoutMs: 60000 };

test('a segment one viewer holds reaches the other from the peer, verified', async () => {
  const edge = new FakeEdge(edgePolicy);
  const a = viewer(edge, 'a1'), b = viewer(edge, 'b1');
  assert.deepEqual(await a.load(0), segment(0));              // alone: HTTP, kept for peers
  await b.load(5);                                            // B joins (HTTP: nobody holds 5... A is elected or not, both fine)
  await until('a link', () => a.core.stats().peers.length === 1 && b.core.stats().peers.length === 1);
  // An open link is not yet A's announcement that it holds seg0: until B has
  // it, B rightly fetches seg0 over HTTP. Wait for the announcement itself
  // (the core's list of open links that hold a complete segment).
  await until("A's announcement of seg0", () => b.core.holders('r:index', 0).length === 1);
  const before = count('/live/r/seg0.m4s');
  assert.deepEqual(await b.load(0), segment(0));
  assert.equal(count('/live/r/seg0.m4s'), before, 'seg0 came from the CDN again');
  await until('the segment event', () => b.segments.some((s) => s.sn === 0));
  assert.equal(b.segments.find((s) => s.sn === 0).source, 'p2p');
  assert.equal(b.core.stats().p2pBytes, segment(0).length);
  assert.ok(a.core.stats().uploadedBytes > segment(0).length);
  // B joined second and was proposed A: B offered, A answered; the one
  // connection counts once, on B's side (docs/protocol.md, `stats`).
  assert.deepEqual(opens(a), [['b1', false]]);
  assert.deepEqual(opens(b), [['a1', true]]);
  assert.equal(a.core.stats().connectedProposals, 0);
  assert.equal(b.core.stats().connectedProposals, 1);
  a.core.destroy(); b.core.destroy();
});

test('a lying viewer: its bytes never reach the player, it is banned, HTTP serves the segment', async () => {
  const edge = new FakeEdge(edgePolicy);
  const liar = viewer(edge, 'liar', { testHooks: { corruptUploads: true } }), b = viewer(edge, 'b2');
  await liar.load(1);
  await b.load(4);
  await until('a link', () => b.core.stats().peers.length === 1);
  await until("the liar's announcement of seg1", () => b.core.holders('r:index', 1).length === 1);
  assert.deepEqual(await b.load(1), segment(1));
  assert.deepEqual(b.core.stats().banned, ['liar']);
  assert.equal(b.core.stats().failedSegments, 1);
  await until('the segment event', () => b.segments.some((s) => s.sn === 1));
  assert.equal(b.segments.find((s) => s.sn === 1).source, 'http');
  await until('the link to close', () => b.core.stats().peers.length === 0);
  liar.core.destroy(); b.core.destroy();
});

test('a segment nobody holds: the swarm fetches it from the CDN once', async () => {
  const edge = new FakeEdge(edgePolicy);
  const v = ['x1', 'x2', 'x3'].map((p) => viewer(edge, p));
  for (const [i, w] of v.entries()) await w.load(i);  // join one by one
  await until('a full mesh', () => v.every((w) => w.core.stats().peers.length === 2));
  const bodies = await Promise.all(v.map((w) => w.load(3)));
  for (const body of bodies) assert.deepEqual(body, segment(3));
  assert.equal(count('/live/r/seg3.m4s'), 1);
  for (const w of v) w.core.destroy();
});

test('live: a new segment is fetched from the CDN once, by its elected fetcher, and reaches the others before they ask', async () => {
  published = [0, 1, 2];
  try {
    const edge = new FakeEdge(edgePolicy);
    // A live manifest (signed for 6 s, as mf-sign signs a live playlist).
    const v = ['l1', 'l2', 'l3'].map((p) => viewer(edge, p, { prefetchSegments: 3 }));
    for (const [i, w] of v.entries()) await w.load(i);
    await until('a full mesh', () => v.every((w) => w.core.stats().peers.length === 2));
    for (const w of v) await w.load(2);
    const before = count('/live/r/seg3.m4s');
    published = [0, 1, 2, 3];       // mf-sign signs segment 3; no player has asked for it
    await until('every viewer to hold segment 3', () => v.every((w) => w.core.stats().storedBytes >= segment(3).length + segment(2).length));
    assert.equal(count('/live/r/seg3.m4s') - before, 1);
    for (const w of v) assert.deepEqual(await w.load(3), segment(3));
    await until('the segment events', () => v.every((w) => w.segments.some((s) => s.sn === 3)));
    assert.deepEqual(v.map((w) => w.segments.find((s) => s.sn === 3).source), ['cache', 'cache', 'cache']);
    assert.equal(count('/live/r/seg3.m4s') - before, 1);
    for (const w of v) w.core.destroy();
  } finally {
    published = SNS;
  }
});

test('the kill switch from the edge closes every link; loads go on over HTTP', async () => {
  const edge = new FakeEdge(edgePolicy);
  const a = viewer(edge, 'k1'), b = viewer(edge, 'k2');
  await a.load(2);
  await b.load(5);
  await until('a link', () => a.core.stats().peers.length === 1);
  edge.push({ ...edgePolicy, meshEnabled: false });
  await until('no links', () => a.core.stats().peers.length === 0 && b.core.stats().peers.length === 0);
  assert.equal(b.core.stats().policy.meshEnabled, false);
  const before = b.core.stats().p2pBytes;
  assert.deepEqual(await b.load(2), segment(2));
  assert.equal(b.core.stats().p2pBytes, before);
  a.core.destroy(); b.core.destroy();
});
