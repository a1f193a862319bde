// In-process stand-ins for RTCPeerConnection and RTCDataChannel (Node has
// none): an offer names its connection, the answer connects the two data
// channels; messages cross asynchronously and in order; closing one side
// closes the other. Enough for the core's mesh logic, not a WebRTC model.
const offers = new Map();
let nextId = 1;
/** Set `wire.frames` to an array to record every message a channel
 * delivers, as it is handed to the receiver's onmessage (a test then decodes
 * them with decodeMessages: a frame listed there has been processed). */
export const wire = { frames: null };

class FakeChannel {
  constructor(label) { this.label = label; this.readyState = 'connecting'; this.bufferedAmount = 0; this.other = null; }
  send(frame) {
    if (this.readyState !== 'open') throw new Error('channel not open');
    const copy = frame.slice().buffer;
    setTimeout(() => {
      if (this.other?.readyState !== 'open') return;
      wire.frames?.push(new Uint8Array(copy.slice(0)));
      this.other.onmessage?.({ data: copy });
    }, 0);
  }
  open() { if (this.readyState === 'connecting') { this.readyState = 'open'; this.onopen?.(); } }
  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.onclose?.();
    const other = this.other;
    setTimeout(() => other?.close(), 0);
  }
}

export class FakePeerConnection {
  constructor() { this.id = nextId++; this.connectionState = 'new'; this.signalingState = 'stable'; this.localDescription = null;
                  this.remoteDescription = null; this.channel = null; this.peer = null; }
  createDataChannel(label) { return (this.channel = new FakeChannel(label)); }
  async createOffer() { return { type: 'offer', sdp: `fake-${this.id}` }; }
  async createAnswer() { return { type: 'answer', sdp: `fake-${this.id}` }; }
  async setLocalDescription(d) {
    this.localDescription = d;
    if (d.type === 'offer') { this.signalingState = 'have-local-offer'; offers.set(d.sdp, this); } else this.signalingState = 'stable';
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    if (d.type === 'offer') {
      this.signalingState = 'have-remote-offer';
      this.peer = offers.get(d.sdp);
      this.peer.peer = this;
      return;
    }
    this.signalingState = 'stable';
    const answerer = this.peer;
    const mine = this.channel;
    const theirs = new FakeChannel(mine.label);
    mine.other = theirs;
    theirs.other = mine;
    answerer.channel = theirs;
    setTimeout(() => { answerer.ondatachannel?.({ channel: theirs }); mine.open(); theirs.open(); }, 0);
  }
  async addIceCandidate() {}
  close() { this.connectionState = 'closed'; this.channel?.close(); }
}

/** A fake edge for several cores: joins, peers (everyone else joined),
 * signal relay, need-peers, and pushing a policy. */
export class FakeEdge {
  constructor(policy) { this.policy = policy; this.sockets = new Map(); }
  factory() {
    return () => {
      const edge = this;
      const socket = {
        readyState: 0, peerId: null,
        send(text) { edge.onMessage(socket, JSON.parse(text)); },
        close() { socket.readyState = 3; if (socket.peerId) edge.sockets.delete(socket.peerId); },
        onopen: null, onmessage: null, onclose: null, onerror: null,
      };
      setTimeout(() => { socket.readyState = 1; socket.onopen?.(); }, 0);
      return socket;
    };
  }
  deliver(socket, m) { setTimeout(() => { if (socket.readyState === 1) socket.onmessage?.({ data: JSON.stringify(m) }); }, 0); }
  others(peerId) { return [...this.sockets.keys()].filter((p) => p !== peerId).map((p) => ({ peerId: p, rendition: 'r', topology: {} })); }
  onMessage(socket, m) {
    if (m.type === 'join') {
      socket.peerId = m.peerId;
      this.sockets.set(m.peerId, socket);
      this.deliver(socket, { type: 'joined', peerId: m.peerId, streamId: m.streamId, rendition: m.rendition, edge: 'fake',
                             session: 's', heartbeatMs: 5000, policy: this.policy });
      if (this.policy.meshEnabled) this.deliver(socket, { type: 'peers', peers: this.others(m.peerId) });
    } else if (m.type === 'signal') {
      const to = this.sockets.get(m.to);
      if (to) this.deliver(to, { type: 'signal', from: socket.peerId, kind: m.kind, data: m.data });
    } else if (m.type === 'need-peers') {
      this.deliver(socket, { type: 'peers', ref: m.id, peers: this.others(socket.peerId).filter((p) => !m.exclude.includes(p.peerId)) });
    }
  }
  push(policy) {
    this.policy = policy;
    for (const socket of this.sockets.values()) this.deliver(socket, { type: 'policy', policy });
  }
}
