// The upload cap's token bucket (src/token-bucket.ts) with a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../dist/meshedflow.js';
import { FakeClock } from './fake-clock.mjs';

test('a cap lets the burst go, then the rate: 800 kbit/s = 100 bytes/ms', () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(800, 10000, clock.now());
  assert.equal(bucket.take(10000, clock.now()), 0);
  assert.equal(bucket.take(5000, clock.now()), 50);
  clock.advance(49);
  assert.equal(bucket.take(5000, clock.now()), 1);
  clock.advance(1);
  assert.equal(bucket.take(5000, clock.now()), 0);
  // Over a simulated second at most burst + rate go out.
  let sent = 0;
  for (let i = 0; i < 1000; i++) { clock.advance(1); while (bucket.take(1000, clock.now()) === 0) sent += 1000; }
  assert.ok(sent <= 100000 + 10000 && sent >= 99000, `sent ${sent}`);
});

test('0 means no cap; the rate can change', () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(0, 1000, clock.now());
  for (let i = 0; i < 100; i++) assert.equal(bucket.take(1e6, clock.now()), 0);
  bucket.setRate(8);  // 1 byte/ms
  assert.equal(bucket.take(1000, clock.now()), 0);  // still full from the start
  assert.equal(bucket.take(500, clock.now()), 500);
});
