// A peer link's sending side and decoding (src/peer-link.ts) over a fake
// RTCPeerConnection/RTCDataChannel: control before data, backpressure on
// bufferedAmount with resume on bufferedamountlow, the upload cap, cancel,
// and protocol violations reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerLink, HIGH_WATER_BYTES, LOW_WATER_BYTES, TokenBucket, decodeMessages, encodeMessage } from '../dist/meshedflow.js';

class FakeChannel {
  constructor(label) { this.label = label; this.readyState = 'open'; this.bufferedAmount = 0; this.sent = []; }
  send(frame) { this.sent.push(decodeMessages(frame)[0]); this.bufferedAmount += frame.length; }
  close() { this.readyState = 'closed'; }
  drain() { this.bufferedAmount = 0; this.onbufferedamountlow?.(); }
}
class FakePeerConnection {
  constructor() { this.connectionState = 'new'; }
  createDataChannel(label) { return (this.channel = new FakeChannel(label)); }
  close() { this.connectionState = 'closed'; }
}
globalThis.RTCPeerConnection = FakePeerConnection;

function setup(kbps = 0) {
  const events = { violations: [], messages: [], uploaded: 0, closed: 0 };
  const host = {
    rtcConfiguration: {}, uploadBucket: new TokenBucket(kbps, 20000, performance.now()), candidateFilter: () => true,
    signal: () => {}, onOpen: () => {}, onClose: () => { events.closed++; },
    onMessage: (_link, m) => events.messages.push(m), onViolation: (_link, reason) => events.violations.push(reason),
    countUploaded: (n) => { events.uploaded += n; },
  };
  const link = new PeerLink('peer-1', true, host);
  return { link, channel: link.pc.channel, events };
}
const data = (requestId, offset, n = 16384) => ({ type: 'data', requestId, offset, total: 1e7, bytes: new Uint8Array(n) });

test('the channel is configured for backpressure; control frames overtake queued data', () => {
  const { link, channel } = setup();
  assert.equal(channel.bufferedAmountLowThreshold, LOW_WATER_BYTES);
  assert.equal(channel.binaryType, 'arraybuffer');
  channel.bufferedAmount = HIGH_WATER_BYTES;  // full: nothing goes
  link.send(data(1, 0));
  link.send({ type: 'absent', requestId: 2 });
  assert.equal(channel.sent.length, 0);
  channel.drain();
  assert.deepEqual(channel.sent.map((m) => m.type), ['absent', 'data']);
});

test('data stops at the high-water mark and resumes on bufferedamountlow', () => {
  const { link, channel, events } = setup();
  const frames = Math.ceil(HIGH_WATER_BYTES / 16384) + 10;
  for (let i = 0; i < frames; i++) link.send(data(1, i * 16384));
  const first = channel.sent.length;
  assert.ok(first < frames && channel.bufferedAmount >= HIGH_WATER_BYTES, `${first} of ${frames} sent at once`);
  channel.drain();
  assert.equal(channel.sent.length, frames);
  assert.deepEqual(channel.sent.map((m) => m.offset), [...Array(frames).keys()].map((i) => i * 16384));
  assert.equal(events.uploaded, channel.sent.reduce((n, m) => n + 12 + 6 + m.bytes.length, 0));
});

test('cancel drops only the queued frames of that request', () => {
  const { link, channel } = setup();
  channel.bufferedAmount = HIGH_WATER_BYTES;
  link.send(data(1, 0)); link.send(data(2, 0)); link.send(data(1, 16384));
  link.cancelData(1);
  channel.drain();
  assert.deepEqual(channel.sent.map((m) => m.requestId), [2]);
});

test('the upload cap holds data back until the bucket refills, then sends it', async () => {
  const { link, channel } = setup(1600);  // 200 bytes/ms; the 20000-byte burst goes at once
  link.send(data(1, 0));                  // 16 KiB: within the burst
  link.send(data(1, 16384));              // must wait for tokens
  assert.equal(channel.sent.length, 1);
  while (channel.sent.length < 2) await new Promise((r) => setTimeout(r, 5));
  assert.equal(channel.sent[1].offset, 16384);
  link.close();
});

test('a malformed frame or a text message is a violation; good frames are delivered', () => {
  const { channel, events } = setup();
  channel.onmessage({ data: encodeMessage({ type: 'cancel', requestId: 5 }).buffer });
  channel.onmessage({ data: 'hello' });
  channel.onmessage({ data: new Uint8Array([0, 0, 0, 2, 9, 1]).buffer });
  assert.deepEqual(events.messages, [{ type: 'cancel', requestId: 5 }]);
  assert.equal(events.violations.length, 2);
  assert.match(events.violations[1], /version 9/);
});

test('close() closes once, drops the queue and reports', () => {
  const { link, channel, events } = setup();
  channel.bufferedAmount = HIGH_WATER_BYTES;
  link.send(data(1, 0));
  link.close(); link.close();
  assert.equal(events.closed, 1);
  assert.equal(channel.readyState, 'closed');
  assert.equal(link.pc.connectionState, 'closed');
  channel.bufferedAmount = 0;
  link.send(data(1, 0));
  assert.equal(channel.sent.length, 0);
});
