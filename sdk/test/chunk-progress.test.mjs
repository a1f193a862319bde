// CMAF chunk verification as bytes arrive (src/chunk-progress.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ChunkProgress } from '../dist/meshedflow.js';

const digest = (b) => createHash('sha256').update(b).digest('base64url');
const parts = [Buffer.alloc(100, 1), Buffer.alloc(50, 2), Buffer.alloc(70, 3)];
const whole = Buffer.concat(parts);
const chunks = parts.map((p) => ({ size: p.length, sha256: digest(p) }));

test('chunks verify one by one as the prefix grows, in order', async () => {
  const progress = new ChunkProgress(chunks);
  await progress.feed(whole.subarray(0, 99));
  assert.deepEqual([progress.verifiedChunks, progress.verifiedBytes], [0, 0]);
  await progress.feed(whole.subarray(0, 149));
  assert.deepEqual([progress.verifiedChunks, progress.verifiedBytes], [1, 100]);
  // Calls that overlap are serialized and never verify a chunk twice.
  await Promise.all([progress.feed(whole.subarray(0, 150)), progress.feed(whole.subarray(0, 220))]);
  assert.deepEqual([progress.verifiedChunks, progress.verifiedBytes, progress.failed], [3, 220, false]);
});

test('a chunk that does not match stops the progress and says so', async () => {
  const progress = new ChunkProgress(chunks);
  const bad = Buffer.from(whole);
  bad[120] ^= 1;
  await progress.feed(bad);
  assert.deepEqual([progress.verifiedChunks, progress.failed], [1, true]);
  await progress.feed(whole);  // nothing after a failure
  assert.deepEqual([progress.verifiedChunks, progress.failed], [1, true]);
});

test('retry() after a failure checks the failed chunk again from the bytes that replaced the bad ones', async () => {
  const progress = new ChunkProgress(chunks);
  const bad = Buffer.from(whole);
  bad[120] ^= 1;
  await progress.feed(bad.subarray(0, 160));
  assert.deepEqual([progress.verifiedChunks, progress.failed], [1, true]);
  progress.retry();
  await progress.feed(whole.subarray(0, 160));
  assert.deepEqual([progress.verifiedChunks, progress.verifiedBytes, progress.failed], [2, 150, false]);
});
