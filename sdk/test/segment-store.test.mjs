// The store of verified segments (src/segment-store.ts): bounds and partials.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SegmentStore } from '../dist/meshedflow.js';

const bytes = (n, v = 1) => new Uint8Array(n).fill(v);

test('a horizon behind the newest segment of each rendition', () => {
  const store = new SegmentStore(1e9, 2);
  for (const sn of [1, 2, 3, 4]) store.put('r', sn, bytes(10));
  store.put('q', 1, bytes(10));
  assert.deepEqual(store.entries('r').map((e) => e.sn), [2, 3, 4]);
  assert.deepEqual(store.entries('q').map((e) => e.sn), [1]);
  assert.equal(store.size, 40);
});

test('a byte cap over all renditions: the oldest go first; the new one stays', () => {
  const store = new SegmentStore(100, 1000);
  store.put('a', 5, bytes(40));
  store.put('b', 1, bytes(40));
  const changed = store.put('a', 6, bytes(40));
  assert.deepEqual([...changed].sort(), ['a', 'b']);
  assert.equal(store.has('b', 1), false);
  assert.deepEqual(store.entries('a').map((e) => e.sn), [5, 6]);
  assert.equal(store.size, 80);
  assert.equal(store.put('a', 7, bytes(101)).size, 0);  // larger than the cap: not kept
  assert.equal(store.has('a', 7), false);
});

test('partials: announced with their verified chunks, served only within the verified prefix and only when allowed', () => {
  const store = new SegmentStore(1e9, 100);
  const prefix = bytes(300, 7);
  assert.equal(store.setPartial('r', 9, prefix.subarray(0, 100), 1000, 1), true);
  assert.equal(store.setPartial('r', 9, prefix.subarray(0, 100), 1000, 1), false);  // no progress
  assert.equal(store.setPartial('r', 9, prefix, 1000, 3), true);
  assert.deepEqual(store.entries('r'), []);
  assert.deepEqual(store.entries('r', true), [{ sn: 9, complete: false, verifiedChunks: 3 }]);
  assert.deepEqual(store.renditionNames(), ['r']);
  assert.equal(store.slice('r', 9, 0, 300, false), null);                 // advertise-only: never served
  assert.deepEqual(store.slice('r', 9, 100, 200, true), { bytes: prefix.subarray(100, 300), size: 1000 });
  assert.equal(store.slice('r', 9, 100, 201, true), null);                // beyond the verified prefix
  assert.equal(store.slice('r', 9, 0, 0xffffffff, true), null);           // to the end: not there yet
  store.put('r', 9, bytes(1000, 7));                                       // the whole segment replaces it
  assert.deepEqual(store.entries('r', true), [{ sn: 9, complete: true, verifiedChunks: 0 }]);
  assert.equal(store.slice('r', 9, 0, 0xffffffff, false).bytes.length, 1000);
  assert.equal(store.setPartial('r', 9, prefix, 1000, 5), false);         // whole already
  store.setPartial('r', 10, prefix, 1000, 1);
  assert.equal(store.dropPartial('r', 10), true);
  assert.equal(store.dropPartial('r', 10), false);
  assert.equal(store.slice('r', 11, 0, 1, true), null);
});
