// The peer protocol codec (src/peer-protocol.ts): round trips, and refusal
// of every kind of malformed input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMessage, decodeMessages, PeerProtocolError, MAX_FRAME_BYTES, MAX_DATA_PAYLOAD, TO_END } from '../dist/meshedflow.js';

const messages = [
  { type: 'buffer-map', rendition: '720p', entries: [{ sn: 7, complete: true, verifiedChunks: 0 },
                                                     { sn: 8, complete: false, verifiedChunks: 3 },
                                                     { sn: 0xffffffff, complete: true, verifiedChunks: 65535 }] },
  { type: 'buffer-map', rendition: 'a', entries: [] },
  { type: 'request', requestId: 1, rendition: 'audio:en', sn: 42, start: 0, length: TO_END },
  { type: 'request', requestId: 0xffffffff, rendition: '1080p', sn: 3, start: 1000, length: 500 },
  { type: 'data', requestId: 9, offset: 100, total: 300, bytes: new Uint8Array([1, 2, 3]) },
  { type: 'data', requestId: 9, offset: 0, total: MAX_DATA_PAYLOAD, bytes: new Uint8Array(MAX_DATA_PAYLOAD).fill(7) },
  { type: 'data', requestId: 1, offset: 5, total: 5, bytes: new Uint8Array(0) },
  { type: 'cancel', requestId: 77 },
  { type: 'absent', requestId: 78 },
];

test('every message survives encode then decode', () => {
  for (const m of messages) assert.deepEqual(decodeMessages(encodeMessage(m)), [m]);
});

test('several frames in one message decode in order', () => {
  const parts = messages.map(encodeMessage);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  assert.deepEqual(decodeMessages(all), messages);
});

test('the frame header is explicit: length, version 1, type', () => {
  const f = encodeMessage({ type: 'cancel', requestId: 0x01020304 });
  assert.deepEqual([...f], [0, 0, 0, 6, 1, 4, 1, 2, 3, 4]);
});

// One frame of `type` around `body`, with the right length field.
const f = (type, body) => [0, 0, (body.length + 2) >> 8, (body.length + 2) & 255, 1, type, ...body];
const refuse = (bytes, pattern) => assert.throws(() => decodeMessages(Uint8Array.from(bytes)), (e) => e instanceof PeerProtocolError && pattern.test(e.message));

test('malformed input is refused, never guessed', () => {
  refuse([], /empty/);
  refuse([0, 0, 0, 6, 1], /truncated frame header/);
  refuse([0, 0, 0, 6, 1, 4, 0, 0, 0], /truncated frame/);
  refuse([0, 0, 0, 6, 2, 4, 0, 0, 0, 1], /version 2/);
  refuse([0, 0, 0, 6, 1, 9, 0, 0, 0, 1], /unknown frame type 9/);
  refuse([0, 0, 0, 1, 1, 4], /frame length 1/);
  refuse([0, 0, 0, 7, 1, 4, 0, 0, 0, 1, 0], /cancel body of 5/);          // trailing byte inside the frame
  refuse([0, 0, 0, 6, 1, 4, 0, 0, 0, 1, 0], /truncated frame header/);     // trailing byte after it
  refuse([0, 0x10, 0, 0, 1, 3], new RegExp(`exceeds ${MAX_FRAME_BYTES}`));
  // buffer map: count disagrees with the length; bad flags; duplicate sn; bad rendition
  refuse(f(1, [1, 0x61, 0, 2, 0, 0, 0, 1, 1, 0, 0]), /buffer map body of 11 bytes, expected 18/);
  refuse(f(1, [1, 0x61, 0, 1, 0, 0, 0, 1, 2, 0, 0]), /flags 2/);
  refuse(f(1, [1, 0x61, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0]), /twice/);
  refuse(f(1, [1, 0x20, 0, 1, 0, 0, 0, 1, 1, 0, 0]), /bad rendition/);
  refuse(f(1, [1, 0xff, 0, 1, 0, 0, 0, 1, 1, 0, 0]), /not UTF-8/);
  refuse(f(1, [5, 0x61, 0x62]), /truncated rendition/);
  refuse(f(1, [0, 0, 0]), /bad rendition/);
  // request one byte short / one byte long
  refuse(f(2, [0, 0, 0, 1, 1, 0x61, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]), /request body/);
  refuse(f(2, [0, 0, 0, 1, 1, 0x61, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]), /request body/);
  // data beyond the total; data header cut
  refuse(f(3, [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9]), /beyond the segment total/);
  refuse(f(3, [0, 0, 0, 1, 0, 0, 0, 2]), /truncated data/);
});

test('random bytes never crash the decoder with anything but PeerProtocolError', () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 5000; i++) {
    const base = encodeMessage(messages[i % messages.length]).slice();
    const flips = 1 + Math.floor(rand() * 4);
    for (let f = 0; f < flips; f++) base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
    const cut = base.subarray(0, Math.floor(rand() * (base.length + 1)));
    try { decodeMessages(cut); } catch (e) { assert.ok(e instanceof PeerProtocolError, String(e)); }
  }
});

test('the encoder refuses what the protocol cannot carry', () => {
  assert.throws(() => encodeMessage({ type: 'request', requestId: -1, rendition: 'a', sn: 1, start: 0, length: 1 }), PeerProtocolError);
  assert.throws(() => encodeMessage({ type: 'request', requestId: 1, rendition: 'a b', sn: 1, start: 0, length: 1 }), PeerProtocolError);
  assert.throws(() => encodeMessage({ type: 'data', requestId: 1, offset: 0, total: 1, bytes: new Uint8Array(2) }), PeerProtocolError);
  assert.throws(() => encodeMessage({ type: 'data', requestId: 1, offset: 0, total: 1e6, bytes: new Uint8Array(MAX_DATA_PAYLOAD + 1) }), PeerProtocolError);
});
