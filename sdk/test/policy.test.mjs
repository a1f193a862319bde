// Policy merge (src/policy.ts): the most restrictive value any source gives wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePolicy, DEFAULT_POLICY } from '../dist/meshedflow.js';

const edge = { meshEnabled: true, maxPeers: 6, maxViewers: 0, uploadCapKbps: 0, cmafMode: 'on', offerTimeoutMs: 8000 };

test('without remote config the edge policy restricts the defaults', () => {
  assert.deepEqual(mergePolicy('s', undefined, edge, null), { ...DEFAULT_POLICY, maxPeers: 6, offerTimeoutMs: 8000 });
});

test('the kill switch from any source stops the mesh', () => {
  assert.equal(mergePolicy('s', undefined, edge, { defaults: { meshEnabled: false } }).meshEnabled, false);
  assert.equal(mergePolicy('s', undefined, edge, { streams: { s: { meshEnabled: false } } }).meshEnabled, false);
  assert.equal(mergePolicy('s', undefined, edge, { streams: { other: { meshEnabled: false } } }).meshEnabled, true);
  assert.equal(mergePolicy('s', undefined, { ...edge, meshEnabled: false }, { defaults: { meshEnabled: true } }).meshEnabled, false);
  assert.equal(mergePolicy('s', { meshEnabled: false }, edge, null).meshEnabled, false);
});

test('no source widens what another narrowed: counts, caps, timeouts, CMAF', () => {
  const remote = { defaults: { maxPeers: 10, uploadCapKbps: 4000, cmafMode: 'advertise-only', peerRequestTimeoutMs: 1500 },
                   streams: { s: { maxPeers: 3, uploadCapKbps: 8000, cmafMode: 'on', offerTimeoutMs: 5000 } } };
  assert.deepEqual(mergePolicy('s', undefined, edge, remote),
                   { meshEnabled: true, maxPeers: 3, uploadCapKbps: 4000, cmafMode: 'advertise-only', offerTimeoutMs: 5000,
                     peerRequestTimeoutMs: 1500 });
  assert.equal(mergePolicy('s', { cmafMode: 'off' }, edge, remote).cmafMode, 'off');
  // uploadCapKbps 0 means "no cap": it never lifts a cap another source set.
  assert.equal(mergePolicy('s', undefined, { ...edge, uploadCapKbps: 500 }, { defaults: { uploadCapKbps: 0 } }).uploadCapKbps, 500);
});

test('wrong types and unknown fields are ignored, never fatal', () => {
  const junk = { defaults: { maxPeers: '99', meshEnabled: 'no', cmafMode: 'turbo', offerTimeoutMs: -5, extra: 1 },
                 streams: { s: null } };
  assert.deepEqual(mergePolicy('s', undefined, edge, junk), mergePolicy('s', undefined, edge, null));
  assert.deepEqual(mergePolicy('s', undefined, 'garbage', 42), DEFAULT_POLICY);
  assert.deepEqual(mergePolicy('__proto__', undefined, null, { streams: {} }), DEFAULT_POLICY);
});
