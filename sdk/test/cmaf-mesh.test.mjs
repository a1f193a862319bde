// cmafMode between two or three cores in one process (fake WebRTC and a fake
// edge from test/fake-webrtc.mjs, a real HTTP origin from node:http whose
// segments carry CMAF chunks in the manifest and can be held part way): with
// 'on' a viewer builds a segment nobody holds whole from the verified chunks a
// peer announces (exact byte ranges, follow-ups as more is announced), rescues
// the tail with an HTTP Range when that peer leaves, bans a peer whose chunk
// lies; with 'advertise-only' and 'off' it never asks for a partial. Every
// step waits for the event that proves it (frames on the wire, counters, the
// origin's log), never for a time.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { MeshedFlowLoader, decodeMessages, TO_END } from '../dist/meshedflow.js';
import { FakeEdge, FakePeerConnection, wire } from './fake-webrtc.mjs';

globalThis.RTCPeerConnection = FakePeerConnection;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k' };
const digest = (b) => createHash('sha256').update(b).digest('base64url');
// Four CMAF chunks per segment (several 16 KiB data frames each).
const CHUNK_SIZES = [20000, 15000, 25000, 10000];
const SIZE = CHUNK_SIZES.reduce((a, b) => a + b);
const boundary = (n) => CHUNK_SIZES.slice(0, n).reduce((a, b) => a + b, 0);
const segment = (sn) => { const b = Buffer.alloc(SIZE); for (let i = 0; i < b.length; i++) b[i] = (i * 13 + sn * 7) & 255; return b; };
const SNS = [0, 1, 2, 3, 4, 5];

function manifestText() {
  const now = Math.floor(Date.now() / 1000);
  const segments = SNS.map((sn) => {
    const body = segment(sn);
    const chunks = CHUNK_SIZES.map((size, i) => ({ size, sha256: digest(body.subarray(boundary(i), boundary(i) + size)) }));
    return { uri: `seg${sn}.m4s`, sn, size: SIZE, sha256: digest(body), chunks };
  });
  const payload = { v: 1, stream: 's', rendition: 'c:index', playlist: 'index.m3u8', mediaSequence: 0, issuedAt: now,
                    expiresAt: now + 86400, segments };
  const input = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'k' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

// A held segment: every GET of it (without Range) gets its first `at` bytes,
// then more only when the test advances it.
const holds = new Map();
function hold(sn, at) {
  const h = { at, responses: [],
              advance(to) { for (const res of h.responses) res.write(segment(sn).subarray(h.at, to)); h.at = to;
                            if (to === SIZE) { for (const res of h.responses) res.end(); holds.delete(sn); } } };
  holds.set(sn, h);
  return h;
}
const log = [];
const server = createServer((req, res) => {
  log.push({ url: req.url, range: req.headers.range ?? null });
  if (req.url === '/live/c/index.m3u8.mfsig') return res.end(manifestText());
  const m = req.url.match(/^\/live\/c\/seg(\d)\.m4s$/);
  if (!m) { res.statusCode = 404; return res.end(); }
  const sn = Number(m[1]);
  const body = segment(sn);
  const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
  if (range) {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range[1]}-${range[2]}/${SIZE}`);
    return res.end(body.subarray(Number(range[1]), Number(range[2]) + 1));
  }
  const h = holds.get(sn);
  if (!h) return res.end(body);
  res.setHeader('Content-Length', SIZE);
  res.write(body.subarray(0, h.at));
  h.responses.push(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
after(() => server.close());

const context = (sn) => ({ url: `${origin}/live/c/seg${sn}.m4s`, responseType: 'arraybuffer',
                           frag: { sn, baseurl: `${origin}/live/c/index.m3u8`, relurl: `seg${sn}.m4s`, duration: 10, level: 0 } });
const loadPolicy = { maxTimeToFirstByteMs: 60000, maxLoadTimeMs: 60000 };
const cores = [];
afterEach(() => {
  for (const core of cores.splice(0)) core.destroy();
  for (const h of [...holds.values()]) h.advance(SIZE);
  wire.frames = null;
});

function viewer(edge, peerId, extra = {}) {
  // Deadlines of 60 s (meshBudgetFraction 6 of a 10 s fragment) and peer
  // timeouts of 60 s are hang bounds: nothing here waits for them.
  const core = new MeshedFlowLoader({ signalingUrl: 'wss://fake/ws', streamId: 's', peerId, manifestKeys: [jwk],
                                      socketFactory: edge.factory(), prefetchSegments: 0, meshBudgetFraction: 6, ...extra,
                                      testHooks: { policyBase: { peerRequestTimeoutMs: 60000 }, ...extra.testHooks } });
  cores.push(core);
  const segments = [];
  core.on('segment', (e) => segments.push(e));
  const Loader = core.hlsLoader();
  const load = (sn) => new Promise((resolve, reject) => {
    new Loader({}).load(context(sn), { loadPolicy }, {
      onSuccess: (response) => resolve(Buffer.from(response.data)), onError: (e) => reject(new Error(e.text)),
      onTimeout: () => reject(new Error('timeout')) });
  });
  return { core, segments, load };
}
const until = async (what, predicate, ms = 60000) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const edgePolicy = (cmafMode) => ({ meshEnabled: true, maxPeers: 8, maxViewers: 0, uploadCapKbps: 0, cmafMode, offerTimeoutMs: 60000,
                                    peerRequestTimeoutMs: 60000 });
const messages = () => (wire.frames ?? []).flatMap((f) => decodeMessages(f));
const requestsFor = (sn) => messages().filter((m) => m.type === 'request' && m.sn === sn).map((m) => [m.start, m.length]);
const announced = (sn) => messages().filter((m) => m.type === 'buffer-map').flatMap((m) => m.entries).filter((e) => e.sn === sn);
const segmentGets = (sn) => log.filter((l) => l.url === `/live/c/seg${sn}.m4s`);

/** Two linked viewers. The holder, alone, started loading segment `sn` over
 * HTTP (its first segment: nobody to wait for), and the origin holds that
 * after `chunks` whole chunks and 100 bytes more; then the other joined and
 * loaded segment 0 over HTTP. The other is one of the swarm's elected CDN
 * fetchers of every segment (httpFetchers 2 of 2 members): without partials
 * it never waits for the holder. The origin's log starts here. */
async function holderWithPartial(edge, names, sn, chunks, options = [{}, {}]) {
  wire.frames = [];
  log.length = 0;
  const h = hold(sn, boundary(chunks) + 100);
  const a = viewer(edge, names[0], options[0]);
  const holderLoad = a.load(sn);
  await until("the holder's CDN request", () => segmentGets(sn).length === 1);
  const b = viewer(edge, names[1], { httpFetchers: 2, ...options[1] });
  await b.load(0);
  await until('a link', () => a.core.stats().peers.length === 1 && b.core.stats().peers.length === 1);
  return { a, b, h, holderLoad };
}

test("'on': the verified prefix from the partial holder, follow-ups as it announces more, the rest once it is whole", async () => {
  const edge = new FakeEdge(edgePolicy('on'));
  // The requester is an elected fetcher: without partials it would go to the CDN at once.
  const { a, b, h, holderLoad } = await holderWithPartial(edge, ['fa', 'fb'], 3, 2);
  const twoChunks = () => announced(3).filter((e) => !e.complete && e.verifiedChunks === 2).length;
  await until('the partial announced', () => twoChunks() > 0);
  const byHolder = twoChunks();
  const played = b.load(3);
  await until('the prefix delivered', () => b.core.stats().p2pBytes === boundary(2));
  assert.deepEqual(requestsFor(3), [[0, boundary(2)]]);
  // The requester announces the chunks it holds verified in turn (the holder, held by the origin, announces nothing new).
  await until('the requester announcing its 2 chunks', () => twoChunks() > byHolder);
  h.advance(boundary(3));                       // the holder verifies chunk 2 and announces it
  await until('the follow-up delivered', () => b.core.stats().p2pBytes === boundary(3));
  assert.deepEqual(requestsFor(3), [[0, boundary(2)], [boundary(2), boundary(3) - boundary(2)]]);
  h.advance(SIZE);                              // the holder has it whole and announces it
  assert.deepEqual(await played, segment(3));
  assert.deepEqual(await holderLoad, segment(3));
  assert.deepEqual(requestsFor(3), [[0, boundary(2)], [boundary(2), boundary(3) - boundary(2)], [boundary(3), SIZE - boundary(3)]]);
  await until('the segment event', () => b.segments.some((s) => s.sn === 3));
  assert.equal(b.segments.find((s) => s.sn === 3).source, 'p2p');
  assert.equal(b.segments.find((s) => s.sn === 3).sha256, createHash('sha256').update(segment(3)).digest('hex'));
  assert.equal(b.core.stats().p2pBytes, SIZE);
  assert.deepEqual(segmentGets(3).map((g) => g.range), [null], 'the CDN served segment 3 once, to the holder');
  // Built from pieces, it is stored whole and announced as such.
  await until('b announcing it whole', () => b.core.stats().storedBytes >= 2 * SIZE);
  assert.equal(a.core.stats().banned.length + b.core.stats().banned.length, 0);
});

test("'on': the partial holder leaves; the tail comes from the CDN with a Range for exactly the missing bytes", async () => {
  const edge = new FakeEdge(edgePolicy('on'));
  const { a, b } = await holderWithPartial(edge, ['ra', 'rb'], 4, 1);
  await until('the partial announced', () => announced(4).some((e) => !e.complete && e.verifiedChunks === 1));
  const played = b.load(4);
  await until('the prefix delivered', () => b.core.stats().p2pBytes === boundary(1));
  a.core.destroy();
  assert.deepEqual(await played, segment(4));
  assert.deepEqual(requestsFor(4), [[0, boundary(1)]]);
  assert.deepEqual(segmentGets(4).map((g) => g.range), [null, `bytes=${boundary(1)}-${SIZE - 1}`]);
  await until('the segment event', () => b.segments.some((s) => s.sn === 4));
  assert.equal(b.segments.find((s) => s.sn === 4).source, 'p2p+range');
  assert.equal(b.core.stats().rangeRescues, 1);
  assert.equal(b.core.stats().httpBytes - SIZE, SIZE - boundary(1));   // besides its first segment: only the tail
});

test("'on': a partial holder whose chunk lies is banned; its bytes never reach the player", async () => {
  const edge = new FakeEdge(edgePolicy('on'));
  const { b, h } = await holderWithPartial(edge, ['liar', 'lb'], 5, 2, [{ testHooks: { corruptUploads: true } }, {}]);
  await until('the partial announced', () => announced(5).some((e) => !e.complete && e.verifiedChunks === 2));
  const played = b.load(5);
  await until('the liar banned', () => b.core.stats().banned.includes('liar'));
  assert.deepEqual(requestsFor(5), [[0, boundary(2)]]);
  h.advance(SIZE);                              // the origin lets the victim's own HTTP request through
  assert.deepEqual(await played, segment(5));
  await until('the segment event', () => b.segments.some((s) => s.sn === 5));
  assert.equal(b.segments.find((s) => s.sn === 5).source, 'http');
  assert.equal(b.core.stats().failedSegments, 1);
  assert.deepEqual(b.core.stats().peers, []);
});

for (const mode of ['advertise-only', 'off']) {
  test(`'${mode}': a partial is never asked for; the elected fetcher goes to the CDN`, async () => {
    const edge = new FakeEdge(edgePolicy(mode));
    const { b, h, holderLoad } = await holderWithPartial(edge, [`${mode[0]}a`, `${mode[0]}b`], 2, 2);
    if (mode === 'advertise-only') await until('the partial announced', () => announced(2).some((e) => !e.complete && e.verifiedChunks === 2));
    const played = b.load(2);
    await until("the requester's own CDN request", () => segmentGets(2).length === 2);
    h.advance(SIZE);
    assert.deepEqual(await played, segment(2));
    await holderLoad;
    assert.deepEqual(requestsFor(2), []);
    if (mode === 'off') assert.deepEqual(announced(2).filter((e) => !e.complete), []);
    await until('the segment event', () => b.segments.some((s) => s.sn === 2));
    assert.equal(b.segments.find((s) => s.sn === 2).source, 'http');
  });
}

test("'on' asking a holder in 'advertise-only': it answers absent and is not asked for a partial again", async () => {
  const edge = new FakeEdge(edgePolicy('on'));
  const { b, h } = await holderWithPartial(edge, ['ma', 'mb'], 1, 2, [{ cmafMode: 'advertise-only' }, {}]);
  await until('the partial announced', () => announced(1).some((e) => !e.complete && e.verifiedChunks === 2));
  const played = b.load(1);
  await until("the requester's own CDN request", () => segmentGets(1).length === 2);
  assert.deepEqual(requestsFor(1), [[0, boundary(2)]]);
  assert.equal(messages().filter((m) => m.type === 'absent').length, 1);
  h.advance(SIZE);
  assert.deepEqual(await played, segment(1));
  assert.deepEqual(requestsFor(1), [[0, boundary(2)]]);
  assert.deepEqual(b.core.stats().banned, []);
});

test('a whole-segment request between SDK players still asks from 0 to the end', async () => {
  const edge = new FakeEdge(edgePolicy('on'));
  const a = viewer(edge, 'wa'), b = viewer(edge, 'wb');
  await a.load(0);
  await b.load(1);
  await until('a link', () => b.core.stats().peers.length === 1);
  // An open link is not yet A's announcement that it holds segment 0.
  await until("A's announcement of segment 0", () => b.core.holders('c:index', 0).length === 1);
  wire.frames = [];
  assert.deepEqual(await b.load(0), segment(0));
  assert.deepEqual(requestsFor(0), [[0, TO_END]]);
});
