// The signaling client's state machine (src/signaling.ts) over a fake
// socket and a fake clock, message by message against ../shared/spec/sdk-protocol.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignalingClient, SUBPROTOCOL, reconnectRule } from '../dist/meshedflow.js';
import { FakeClock } from './fake-clock.mjs';

class FakeSocket {
  constructor(url, protocol) { this.url = url; this.protocol = protocol; this.readyState = 0; this.sent = []; this.closed = null;
                               this.onopen = this.onmessage = this.onclose = this.onerror = null; }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code) { this.closed = code; this.readyState = 3; }
  // driven by the test:
  open() { this.readyState = 1; this.onopen?.(); }
  receive(m) { this.onmessage?.({ data: JSON.stringify(m) }); }
  drop(code) { this.readyState = 3; this.onclose?.({ code }); }
  take() { return this.sent.splice(0); }
}

function setup(over = {}) {
  const clock = new FakeClock();
  const sockets = [];
  const counters = { p2pBytes: 0, cdnBytes: 0, uploadedBytes: 0 };
  const client = new SignalingClient({ url: 'wss://edge.test:8445/ws', streamId: 'pilot', rendition: '720p', peerId: 'viewer-1',
                                       socketFactory: (u, p) => { const s = new FakeSocket(u, p); sockets.push(s); return s; },
                                       clock, counters: () => ({ ...counters }), statsIntervalMs: 5000, pingIntervalMs: 10000,
                                       random: () => 0.5, caps: { maxPeers: 4 }, ...over });
  const events = [];
  for (const e of ['state', 'joined', 'peers', 'signal', 'policy', 'error', 'pong', 'closed'])
    client.on(e, (v) => events.push([e, v]));
  return { clock, sockets, client, counters, events, last: () => sockets[sockets.length - 1] };
}
const joined = (over = {}) => ({ type: 'joined', peerId: 'viewer-1', streamId: 'pilot', rendition: '720p', edge: 'edge-a',
                                 session: 'sess-1', heartbeatMs: 5000, policy: { meshEnabled: true, maxPeers: 4 }, ...over });

test('connects with the subprotocol and ?stream=, joins, reports joined, peers and policy', () => {
  const { client, last, events } = setup();
  client.start();
  assert.equal(client.state, 'connecting');
  assert.equal(last().protocol, SUBPROTOCOL);
  assert.equal(new URL(last().url).searchParams.get('stream'), 'pilot');
  last().open();
  assert.deepEqual(last().take(), [{ type: 'join', id: 'join', streamId: 'pilot', rendition: '720p', peerId: 'viewer-1', caps: { maxPeers: 4 } }]);
  assert.equal(client.state, 'joining');
  last().receive(joined());
  assert.equal(client.state, 'joined');
  last().receive({ type: 'peers', peers: [{ peerId: 'viewer-2', rendition: '720p', topology: {} }, { bogus: 1 }] });
  last().receive({ type: 'policy', policy: { meshEnabled: false } });
  assert.deepEqual(events.filter(([e]) => e === 'peers')[0][1], [{ peerId: 'viewer-2', rendition: '720p', topology: {} }]);
  assert.deepEqual(events.filter(([e]) => e === 'policy').map(([, v]) => v), [{ meshEnabled: true, maxPeers: 4 }, { meshEnabled: false }]);
  client.stop();
});

test('switch, need-peers, update, signal and bye are the spec messages', () => {
  const { client, last } = setup();
  client.start(); last().open(); last().receive(joined()); last().take();
  client.switchRendition('1080p');
  client.needPeers(3, ['viewer-9']);
  client.update({ maxPeers: 2 });
  client.signal('viewer-2', 'offer', { type: 'offer', sdp: 'v=0' });
  client.signal('viewer-2', 'candidate', { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host' });
  client.signal('viewer-2', 'bye', null);
  assert.deepEqual(last().take(), [
    { type: 'join', id: 'join', streamId: 'pilot', rendition: '1080p', peerId: 'viewer-1', session: 'sess-1', caps: { maxPeers: 4 } },
    { type: 'need-peers', id: 'np-1', exclude: ['viewer-9'], count: 3 },
    { type: 'update', caps: { maxPeers: 2 } },
    { type: 'signal', to: 'viewer-2', kind: 'offer', data: { type: 'offer', sdp: 'v=0' } },
    { type: 'signal', to: 'viewer-2', kind: 'candidate', data: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host' } },
    { type: 'signal', to: 'viewer-2', kind: 'bye', data: null },
  ]);
  client.stop();
});

test('incoming signals and errors are events', () => {
  const { client, last, events } = setup();
  client.start(); last().open(); last().receive(joined());
  last().receive({ type: 'signal', from: 'viewer-2', kind: 'answer', data: { type: 'answer', sdp: 'x' } });
  last().receive({ type: 'error', code: 'peer-not-found', message: 'gone', to: 'viewer-3' });
  last().onmessage({ data: 'not json' });
  assert.deepEqual(events.filter(([e]) => e === 'signal')[0][1], { from: 'viewer-2', kind: 'answer', data: { type: 'answer', sdp: 'x' } });
  assert.equal(events.filter(([e]) => e === 'error')[0][1].code, 'peer-not-found');
  client.stop();
});

test('stats are cumulative since the last joined and sent only when they change; ping measures the round trip', () => {
  const { client, last, clock, counters, events } = setup();
  counters.cdnBytes = 1000;  // before the join: not reported
  client.start(); last().open(); last().receive(joined()); last().take();
  counters.p2pBytes = 500; counters.cdnBytes = 1200; counters.uploadedBytes = 70;
  clock.advance(5000);
  assert.deepEqual(last().take(), [{ type: 'stats', p2pBytes: 500, cdnBytes: 200, uploadedBytes: 70 }]);
  clock.advance(4999);
  assert.deepEqual(last().take(), []);
  clock.advance(1);  // t = 10 s: the ping, and stats did not change
  const [ping] = last().take();
  assert.equal(ping.type, 'ping');
  clock.advance(42);
  last().receive({ type: 'pong', t: ping.t });
  assert.deepEqual(events.filter(([e]) => e === 'pong')[0][1], { rttMs: 42 });
  client.stop();
});

test('reconnect: afterMs from the edge, then join with the session (takeover)', () => {
  const { client, last, sockets, clock, events } = setup();
  client.start(); last().open(); last().receive(joined());
  last().receive({ type: 'reconnect', afterMs: 1234 });
  last().drop(1001);
  assert.equal(client.state, 'waiting');
  clock.advance(1233);
  assert.equal(sockets.length, 1);
  clock.advance(1);
  assert.equal(sockets.length, 2);
  last().open();
  assert.equal(last().take()[0].session, 'sess-1');
  last().receive(joined({ session: 'sess-2' }));
  assert.equal(client.session, 'sess-2');
  assert.ok(events.some(([e, v]) => e === 'state' && v === 'waiting'));
  client.stop();
});

test('other closes back off with full jitter, growing; forbidden codes stop for good', () => {
  const { client, last, sockets, clock, events } = setup({ backoffInitialMs: 500, random: () => 1 });
  client.start();
  last().drop(1006);                 // never opened: 500 ms * 2^0
  clock.advance(499); assert.equal(sockets.length, 1);
  clock.advance(1); assert.equal(sockets.length, 2);
  last().drop(1006);                 // 1000 ms
  clock.advance(999); assert.equal(sockets.length, 2);
  clock.advance(1); assert.equal(sockets.length, 3);
  last().open(); last().receive(joined());   // joined resets the back-off
  last().drop(4002);
  clock.advance(500); assert.equal(sockets.length, 4);
  last().drop(4001);                 // replaced by a newer connection of this peer: stop
  assert.equal(client.state, 'closed');
  assert.deepEqual(events.filter(([e]) => e === 'closed')[0][1], { code: 4001 });
  clock.advance(120000);
  assert.equal(sockets.length, 4);
  assert.equal(clock.pending(), 0);
  for (const code of [1002, 1003, 1007, 1009, 4001]) assert.equal(reconnectRule(code), 'never');
  for (const code of [1000, 1006, 1008, 1011, 4002, 4003]) assert.equal(reconnectRule(code), 'backoff');
});

test('connectedProposals, when the counters have it, is reported like the byte counters: since the last joined', () => {
  const { client, last, clock, counters } = setup();
  counters.connectedProposals = 2;  // before the join: not reported
  client.start(); last().open(); last().receive(joined()); last().take();
  counters.connectedProposals = 5;
  clock.advance(5000);
  assert.deepEqual(last().take(), [{ type: 'stats', p2pBytes: 0, cdnBytes: 0, uploadedBytes: 0, connectedProposals: 3 }]);
  client.stop();
});

test('stop closes with 1000, sends final stats, leaves no timer', () => {
  const { client, last, clock, counters } = setup();
  client.start(); last().open(); last().receive(joined()); last().take();
  counters.p2pBytes = 9;
  client.stop();
  assert.deepEqual(last().take(), [{ type: 'stats', p2pBytes: 9, cdnBytes: 0, uploadedBytes: 0 }]);
  assert.equal(last().closed, 1000);
  assert.equal(client.state, 'closed');
  assert.equal(clock.pending(), 0);
  assert.equal(client.signal('x', 'bye', null), false);
});
