// Scheduling decisions (src/scheduler.ts) with a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFetch, electFetchers, choosePrefetch, missingRanges, rangeHeader, rankPeers, PeerMeter, expectedDeliveryMs } from '../dist/meshedflow.js';
import { FakeClock } from './fake-clock.mjs';

const clock = new FakeClock();
const peer = (peerId, bytesPerSecond = 5e6, latencyMs = 20, inFlight = 0) => ({ peerId, bytesPerSecond, latencyMs, inFlight });
const base = (over) => ({ self: 'me', key: '720p/10', size: 1e6, nowMs: clock.now(), deadlineMs: clock.now() + 3000,
                          peers: [], holders: new Set(), fetchers: 1, httpReserveMs: 1000, meshUsable: true, ...over });

test('near the playhead: the peer that delivers before the deadline, else HTTP', () => {
  const fast = peer('fast', 10e6), slow = peer('slow', 1e5);
  assert.deepEqual(planFetch(base({ peers: [slow, fast], holders: new Set(['slow', 'fast']) })),
                   { kind: 'peer', peerId: 'fast', timeoutMs: 2000 });
  // Only a peer too slow for the deadline holds it: HTTP.
  assert.deepEqual(planFetch(base({ peers: [slow, fast], holders: new Set(['slow']) })), { kind: 'http' });
  // Mesh off or unverifiable: HTTP whatever the peers hold.
  assert.deepEqual(planFetch(base({ peers: [fast], holders: new Set(['fast']), meshUsable: false })), { kind: 'http' });
  // Alone: HTTP.
  assert.deepEqual(planFetch(base({})), { kind: 'http' });
});

test('nobody holds it: only the elected fetchers go to the CDN, the rest wait until the reserve', () => {
  const members = ['me', 'a', 'b', 'c'];
  const peers = members.filter((m) => m !== 'me').map((m) => peer(m));
  let httpNow = 0;
  for (let sn = 0; sn < 200; sn++) {
    const key = `720p/${sn}`;
    const [elected] = electFetchers(members, key, 1);
    const plan = planFetch(base({ key, peers }));
    if (elected === 'me') { assert.deepEqual(plan, { kind: 'http' }); httpNow++; }
    else assert.deepEqual(plan, { kind: 'wait', untilMs: clock.now() + 2000 });
  }
  // About a quarter of the segments each (rendezvous hashing spreads them).
  assert.ok(httpNow > 25 && httpNow < 80, `elected for ${httpNow} of 200`);
  // Past the reserve: HTTP whatever the election says.
  for (let sn = 0; sn < 20; sn++)
    assert.deepEqual(planFetch(base({ key: `720p/${sn}`, peers, deadlineMs: clock.now() + 900 })), { kind: 'http' });
});

test('just joined, peers still connecting: wait for their buffer maps, except for the first segment', () => {
  // No open peer but two being connected: wait until the reserve.
  assert.deepEqual(planFetch(base({ connecting: 2 })), { kind: 'wait', untilMs: clock.now() + 2000 });
  // The session's first segment: HTTP at once (startup never waits on the mesh).
  assert.deepEqual(planFetch(base({ connecting: 2, startup: true })), { kind: 'http' });
  // Past the reserve: HTTP.
  assert.deepEqual(planFetch(base({ connecting: 2, deadlineMs: clock.now() + 900 })), { kind: 'http' });
  // Nobody connecting: alone, HTTP.
  assert.deepEqual(planFetch(base({ connecting: 0 })), { kind: 'http' });
  // Once a connected peer holds it, it comes from that peer.
  assert.deepEqual(planFetch(base({ connecting: 1, peers: [peer('a')], holders: new Set(['a']) })),
                   { kind: 'peer', peerId: 'a', timeoutMs: 2000 });
  clock.advance(2000);
  assert.deepEqual(planFetch(base({ connecting: 2 })), { kind: 'wait', untilMs: clock.now() + 2000 });
});

test('every member computes the same election, whatever the order it knows the members in', () => {
  for (let sn = 0; sn < 50; sn++) {
    const a = electFetchers(['p1', 'p2', 'p3', 'p4', 'p5'], `r/${sn}`, 2);
    const b = electFetchers(['p5', 'p3', 'p1', 'p4', 'p2', 'p3'], `r/${sn}`, 2);
    assert.deepEqual(a, b);
    assert.equal(a.length, 2);
  }
  assert.equal(electFetchers(['solo'], 'x', 3).length, 1);
});

test('prefetch: rarest first when enabled, nearest first otherwise, never what we have', () => {
  const holders = { 11: 3, 12: 1, 13: 0, 14: 2, 15: 1 };
  const count = (sn) => holders[sn] ?? 0;
  assert.deepEqual(choosePrefetch([11, 12, 13, 14, 15], new Set([12]), count, 3, true), [15, 14, 11]);
  assert.deepEqual(choosePrefetch([11, 12, 13, 14, 15], new Set(), count, 3, true), [12, 15, 14]);
  assert.deepEqual(choosePrefetch([11, 12, 13, 14, 15], new Set(), count, 3, false), [11, 12, 14]);
  assert.deepEqual(choosePrefetch([13], new Set(), count, 3, true), []);
});

test('range rescue plans exactly the missing bytes', () => {
  assert.deepEqual(missingRanges([[0, 400]], 1000), [[400, 1000]]);
  assert.deepEqual(missingRanges([], 1000), [[0, 1000]]);
  assert.deepEqual(missingRanges([[0, 1000]], 1000), []);
  assert.deepEqual(missingRanges([[500, 700], [0, 100], [90, 200]], 1000), [[200, 500], [700, 1000]]);
  assert.equal(rangeHeader([400, 1000]), 'bytes=400-999');
});

test('peers rank by measured throughput and latency; the meter smooths samples', () => {
  const m = new PeerMeter('x', 0.5);
  assert.equal(m.bytesPerSecond, null);
  const start = clock.now();
  clock.advance(100);
  m.sampleTransfer(1e6, clock.now() - start);         // 10 MB/s
  assert.equal(m.bytesPerSecond, 1e7);
  m.sampleTransfer(1e6, 1000);                         // 1 MB/s
  assert.equal(m.bytesPerSecond, 5.5e6);
  m.sampleLatency(40); m.sampleLatency(20);
  assert.equal(m.latencyMs, 30);
  const ranked = rankPeers([peer('slow', 1e5), peer('busy', 1e7, 20, 5), peer('best', 1e7), peer('far', 1e7, 900)], 1e6);
  assert.deepEqual(ranked.map((p) => p.peerId), ['best', 'busy', 'far', 'slow']);
  assert.ok(expectedDeliveryMs(peer('u', null, null), 1e6) > 1000);
});
