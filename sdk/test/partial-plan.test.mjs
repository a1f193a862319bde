// Partial segments (src/partial-plan.ts and planFetch's 'partial' in
// src/scheduler.ts) with a fake clock: which peer is asked for which byte
// range, follow-ups as holders announce more, the tail rescued over HTTP at
// the deadline, peers that refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPartialFetch, chunkOffset, planFetch } from '../dist/meshedflow.js';
import { FakeClock } from './fake-clock.mjs';

const clock = new FakeClock();
// Four chunks: [0, 100) [100, 250) [250, 450) [450, 500).
const chunkSizes = [100, 150, 200, 50];
const peer = (peerId, announced, bytesPerSecond = 5e6, latencyMs = 20) =>
  ({ peerId, bytesPerSecond, latencyMs, inFlight: 0, complete: announced === 'whole', verifiedChunks: announced === 'whole' ? 0 : announced });
const plan = (over) => planPartialFetch({ chunkSizes, have: 0, nowMs: clock.now(), deadlineMs: clock.now() + 4000, candidates: [],
                                          refused: new Map(), ...over });

test('chunk offsets are where each chunk starts', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 9].map((i) => chunkOffset(chunkSizes, i)), [0, 100, 250, 450, 500, 500]);
});

test('the peer announcing the most verified chunks gives exactly those', () => {
  assert.deepEqual(plan({ candidates: [peer('a', 1), peer('b', 2), peer('c', 0)] }),
                   { kind: 'peer', peerId: 'b', start: 0, end: 250, timeoutMs: 4000 });
  // Announcing more chunks than the manifest lists buys nothing past the end.
  assert.deepEqual(plan({ have: 2, candidates: [peer('a', 9)] }), { kind: 'peer', peerId: 'a', start: 250, end: 500, timeoutMs: 4000 });
  // Ties: the best ranked for those bytes.
  assert.deepEqual(plan({ candidates: [peer('slow', 2, 1e4), peer('fast', 2, 1e7)] }).peerId, 'fast');
  // A peer announcing the segment whole gives all the rest, before any partial holder.
  assert.deepEqual(plan({ have: 1, candidates: [peer('a', 3), peer('w', 'whole')] }),
                   { kind: 'peer', peerId: 'w', start: 100, end: 500, timeoutMs: 4000 });
});

test('follow-ups: as the holder announces more, the next request starts where the verified bytes end', () => {
  const deadlineMs = clock.now() + 4000;
  const at = (have, announced) => planPartialFetch({ chunkSizes, have, nowMs: clock.now(), deadlineMs, candidates: [peer('a', announced)], refused: new Map() });
  assert.deepEqual(at(0, 1), { kind: 'peer', peerId: 'a', start: 0, end: 100, timeoutMs: 4000 });
  clock.advance(500);
  // Got chunk 0; the holder announces nothing more yet: wait for its map until the deadline.
  assert.deepEqual(at(1, 1), { kind: 'wait', untilMs: deadlineMs });
  clock.advance(700);
  assert.deepEqual(at(1, 3), { kind: 'peer', peerId: 'a', start: 100, end: 450, timeoutMs: 2800 });
  clock.advance(300);
  assert.deepEqual(at(3, 'whole'), { kind: 'peer', peerId: 'a', start: 450, end: 500, timeoutMs: 2500 });
  assert.deepEqual(at(4, 'whole'), { kind: 'done' });
});

test('the tail is rescued over HTTP at the deadline, or at once when nobody is left to ask', () => {
  const deadlineMs = clock.now() + 1000;
  const at = (over) => planPartialFetch({ chunkSizes, have: 2, nowMs: clock.now(), deadlineMs, candidates: [peer('a', 2)], refused: new Map(), ...over });
  assert.deepEqual(at({}), { kind: 'wait', untilMs: deadlineMs });
  clock.advance(999);
  assert.deepEqual(at({}), { kind: 'wait', untilMs: deadlineMs });
  clock.advance(1);
  assert.deepEqual(at({}), { kind: 'rescue', start: 250, end: 500 });
  // Even a holder announcing more is not asked past the deadline.
  assert.deepEqual(at({ candidates: [peer('a', 'whole')] }), { kind: 'rescue', start: 250, end: 500 });
  // Nothing verified at the deadline: the whole segment goes back to the whole-segment plan (HTTP).
  assert.deepEqual(at({ have: 0 }), { kind: 'none' });
  // Before the deadline, no peer left and none connecting: the tail at once; one connecting: wait for it.
  const early = { nowMs: deadlineMs - 900 };
  assert.deepEqual(at({ ...early, candidates: [] }), { kind: 'rescue', start: 250, end: 500 });
  assert.deepEqual(at({ ...early, candidates: [], connecting: 1 }), { kind: 'wait', untilMs: deadlineMs });
});

test('a peer that refused is not asked again for a partial; announcing the segment whole, once more', () => {
  assert.deepEqual(plan({ candidates: [peer('a', 2)], refused: new Map([['a', 'partial']]) }), { kind: 'none' });
  assert.deepEqual(plan({ candidates: [peer('a', 2), peer('b', 1)], refused: new Map([['a', 'partial']]) }).peerId, 'b');
  assert.deepEqual(plan({ candidates: [peer('a', 'whole')], refused: new Map([['a', 'partial']]) }).peerId, 'a');
  assert.deepEqual(plan({ candidates: [peer('a', 'whole')], refused: new Map([['a', 'whole']]) }), { kind: 'none' });
  // Holding some chunks already, nobody else to ask: wait for news until the deadline.
  assert.deepEqual(plan({ have: 1, candidates: [peer('a', 3)], refused: new Map([['a', 'partial']]) }).kind, 'wait');
});

test("planFetch: a partial holder and no whole one: build from pieces, before any election; never past the deadline", () => {
  const base = { self: 'me', key: 'r/7', size: 500, nowMs: clock.now(), deadlineMs: clock.now() + 3000, fetchers: 1,
                 httpReserveMs: 0, meshUsable: true };
  const peers = [{ peerId: 'a', bytesPerSecond: 5e6, latencyMs: 20, inFlight: 0 }];
  assert.deepEqual(planFetch({ ...base, peers, holders: new Set(), partialHolders: new Set(['a']) }), { kind: 'partial' });
  // Without partial holders (cmafMode 'advertise-only' or 'off': the core passes none) nothing changes.
  const without = planFetch({ ...base, peers, holders: new Set() });
  assert.notEqual(without.kind, 'partial');
  assert.deepEqual(planFetch({ ...base, peers, holders: new Set(), partialHolders: new Set() }), without);
  // A whole holder wins.
  assert.deepEqual(planFetch({ ...base, peers, holders: new Set(['a']), partialHolders: new Set(['a']) }).kind, 'peer');
  // A partial holder that is not a usable peer, the mesh off, or past the deadline: not partial.
  assert.notEqual(planFetch({ ...base, peers, holders: new Set(), partialHolders: new Set(['x']) }).kind, 'partial');
  assert.deepEqual(planFetch({ ...base, peers, holders: new Set(), partialHolders: new Set(['a']), meshUsable: false }), { kind: 'http' });
  assert.deepEqual(planFetch({ ...base, peers, holders: new Set(), partialHolders: new Set(['a']), deadlineMs: clock.now() }), { kind: 'http' });
});
