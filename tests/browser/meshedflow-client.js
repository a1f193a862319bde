// MeshedFlow reference client: the SDK signaling protocol version 1
// (../../../shared/spec/sdk-protocol.md, explained in docs/protocol.md) in
// one plain ES module for browsers, with no dependency and no build step.
// It is the example for SDK authors and what the browser tests run.
//
//   import { MeshedFlowClient } from './meshedflow-client.js';
//   const client = new MeshedFlowClient({ url: 'wss://edge.example.com:8445/ws', streamId: 'live-42',
//                                         rendition: '720p', peerId: 'p-7f3a' });
//   client.addEventListener('channel-open', (e) => e.detail.channel.send('hello'));
//   client.addEventListener('data', (e) => console.log(e.detail.peerId, e.detail.data));
//   client.start();
//
// What it does:
// - one WebSocket (subprotocol meshedflow.v1, `?stream=` so an ingress keeps
//   the stream's viewers together), `join`, and a new `join` with the stored
//   `session` after every reconnect, so the identity is resumed;
// - for every candidate of `peers`: an RTCPeerConnection with one data
//   channel, offered through `signal` (offer, answer, trickled candidates,
//   bye); incoming offers are answered;
// - glare (both sides offered at once): the offer of the higher peerId wins;
//   the lower side drops its own connection and answers (both sides decide
//   the same way, with no extra message);
// - an offer not connected within the policy's offerTimeoutMs is abandoned
//   (`bye`);
// - reconnects on the close codes that allow it (docs/protocol.md section 7, table in
//   docs/protocol.md) after `afterMs` of a `reconnect`, or with a jittered
//   exponential back-off;
// - `ping` for the round trip time, and cumulative `stats` since the last
//   `joined`: p2pBytes (received over data channels), cdnBytes (what the
//   player reports with addCdnBytes), uploadedBytes (sent over data
//   channels) and connectedProposals (this edge's extension: proposals this
//   client offered to that reached an open data channel).
//
// Events (CustomEvent, details in parentheses): joined (message), peers
// (peers), channel-open (peerId, channel), channel-close (peerId), data
// (peerId, data), pong (rttMs), error (message from the edge), peer-error
// (peerId, error: a WebRTC step failed; the connection is dropped),
// reconnecting (code, delayMs), closed (code: no reconnect follows).

const SUBPROTOCOL = 'meshedflow.v1';

// Spec section 7: what a close code allows. 'after-reconnect' waits for the
// `reconnect` message's afterMs; 'backoff' uses the jittered back-off; 'never'
// stops (the client broke the protocol, or a newer connection is us).
function reconnectPolicy(code) {
  switch (code) {
    case 1001: return 'after-reconnect';
    case 1002: case 1003: case 1007: case 1009: case 4001: return 'never';
    default: return 'backoff';  // 1000 from the edge, 1006 (network), 1008, 1011, 4002, 4003
  }
}

export class MeshedFlowClient extends EventTarget {
  constructor(options) {
    super();
    this.options = {
      rtcConfiguration: { iceServers: [] },
      caps: undefined,
      topology: undefined,
      statsIntervalMs: 5000,
      pingIntervalMs: 10000,
      backoffInitialMs: 500,
      backoffMaxMs: 30000,
      // Which ICE candidates (RTCIceCandidateInit) to send and accept: all
      // by default. The tests keep them on loopback by the address field of
      // c.candidate ("candidate:F 1 udp PRIO ADDRESS PORT typ host ...").
      candidateFilter: () => true,
      ...options,
    };
    for (const field of ['url', 'streamId', 'rendition', 'peerId'])
      if (!this.options[field]) throw new Error(`MeshedFlowClient: ${field} is required`);
    this.peerId = this.options.peerId;
    this.session = null;       // the identity's secret, from `joined`
    this.policy = null;
    this.ws = null;
    this.joined = false;
    this.stopped = true;
    this.connections = new Map();  // peerId -> Link
    this.nextId = 1;
    this.pending = new Map();      // request id -> resolve (need-peers)
    this.attempts = 0;             // failed connections since the last `joined`
    this.reconnectAfterMs = null;  // from `reconnect`
    this.timers = [];
    this.totals = { p2pBytes: 0, cdnBytes: 0, uploadedBytes: 0, connectedProposals: 0 };
    this.baseline = { ...this.totals };  // totals at the last `joined`
    this.lastStats = null;
  }

  // ---- public API ----

  start() {
    this.stopped = false;
    this.connect();
    this.timers.push(setInterval(() => this.sendStats(), this.options.statsIntervalMs));
    this.timers.push(setInterval(() => this.send({ type: 'ping', t: Date.now() }), this.options.pingIntervalMs));
  }

  // Says `bye` to every peer, closes the connections and the WebSocket (1000).
  stop() {
    this.stopped = true;
    for (const t of this.timers) { clearInterval(t); clearTimeout(t); }
    this.timers = [];
    for (const peerId of [...this.connections.keys()]) this.dropPeer(peerId, true);
    if (this.ws) this.ws.close(1000, 'bye');
  }

  // Asks for fresh candidates; resolves with the `peers` list. New candidates
  // are offered a connection, as for the `peers` after `joined`.
  needPeers(count, exclude = []) {
    const id = `np-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const message = { type: 'need-peers', id, exclude };
      if (count !== undefined) message.count = count;
      if (!this.send(message)) {
        this.pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  }

  // Bytes the player got from the CDN (for the offload ratio).
  addCdnBytes(n) { this.totals.cdnBytes += n; }

  // Sends the counters now if they changed since the last report.
  sendStats() {
    if (!this.joined) return false;
    const stats = {};
    for (const key of Object.keys(this.totals)) stats[key] = this.totals[key] - this.baseline[key];
    const text = JSON.stringify(stats);
    if (text === this.lastStats) return false;
    this.lastStats = text;
    return this.send({ type: 'stats', ...stats });
  }

  // Sends on the data channel to `peerId`; false when it is not open.
  sendTo(peerId, data) {
    const link = this.connections.get(peerId);
    if (!link || !link.channel || link.channel.readyState !== 'open') return false;
    link.channel.send(data);
    this.totals.uploadedBytes += typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength;
    return true;
  }

  openPeers() {
    return [...this.connections.entries()].filter(([, l]) => l.channel?.readyState === 'open').map(([id]) => id);
  }

  // ---- signaling connection ----

  connect() {
    const url = new URL(this.options.url);
    if (!url.searchParams.has('stream')) url.searchParams.set('stream', this.options.streamId);
    const ws = new WebSocket(url, SUBPROTOCOL);
    this.ws = ws;
    this.reconnectAfterMs = null;
    ws.onopen = () => {
      const join = { type: 'join', id: 'join', streamId: this.options.streamId, rendition: this.options.rendition,
                     peerId: this.peerId };
      if (this.session) join.session = this.session;  // resume the identity
      if (this.options.caps) join.caps = this.options.caps;
      if (this.options.topology) join.topology = this.options.topology;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    ws.onclose = (event) => this.onClose(event.code);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  onClose(code) {
    this.joined = false;
    this.ws = null;
    for (const { reject } of this.pending.values()) reject(new Error(`closed with ${code}`));
    this.pending.clear();
    if (this.stopped) return;
    const policy = reconnectPolicy(code);
    if (policy === 'never') {
      this.stopped = true;
      this.emit('closed', { code });
      return;
    }
    let delayMs;
    if (policy === 'after-reconnect' && this.reconnectAfterMs !== null) {
      delayMs = this.reconnectAfterMs;  // already spread by the edge
    } else {
      // Full jitter: uniform in [0, min(max, initial * 2^attempts)].
      const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** this.attempts);
      delayMs = Math.random() * ceiling;
    }
    this.attempts++;
    this.emit('reconnecting', { code, delayMs });
    this.timers.push(setTimeout(() => { if (!this.stopped) this.connect(); }, delayMs));
  }

  onMessage(m) {
    switch (m.type) {
      case 'joined':
        this.joined = true;
        this.attempts = 0;
        this.session = m.session;
        this.policy = m.policy;
        this.baseline = { ...this.totals };  // stats are cumulative since this join
        this.lastStats = null;
        this.emit('joined', { message: m });
        return;
      case 'peers': {
        const waiter = m.ref !== undefined ? this.pending.get(m.ref) : undefined;
        if (waiter) { this.pending.delete(m.ref); waiter.resolve(m.peers); }
        this.emit('peers', { peers: m.peers });
        for (const p of m.peers) if (!this.connections.has(p.peerId)) this.offerTo(p.peerId);
        return;
      }
      case 'signal': return this.onSignal(m.from, m.kind, m.data);
      case 'pong': return this.emit('pong', { rttMs: Date.now() - m.t });
      case 'policy': this.policy = m.policy; return;
      case 'reconnect': this.reconnectAfterMs = m.afterMs; return;  // a 1001 close follows
      case 'error': {
        const waiter = m.ref !== undefined ? this.pending.get(m.ref) : undefined;
        if (waiter) { this.pending.delete(m.ref); waiter.reject(new Error(`${m.code}: ${m.message}`)); }
        // A signal to a peer that is gone: forget that connection.
        if (m.code === 'peer-not-found' && m.to) this.dropPeer(m.to, false);
        this.emit('error', { message: m });
        return;
      }
      default: return;  // `left`, and anything a newer edge adds
    }
  }

  // ---- peer connections ----

  newLink(peerId, offerer) {
    const pc = new RTCPeerConnection(this.options.rtcConfiguration);
    const link = { pc, channel: null, offerer, queued: [], timer: null };
    this.connections.set(peerId, link);
    pc.onicecandidate = (event) => {
      if (!event.candidate) return;  // gathering done: nothing to send
      const candidate = event.candidate.toJSON();
      if (this.options.candidateFilter(candidate)) this.send({ type: 'signal', to: peerId, kind: 'candidate', data: candidate });
    };
    pc.onconnectionstatechange = () => {
      if (this.connections.get(peerId) === link && ['failed', 'closed'].includes(pc.connectionState))
        this.dropPeer(peerId, false);
    };
    return link;
  }

  attachChannel(peerId, link, channel) {
    link.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.onopen = () => {
      if (link.timer) clearTimeout(link.timer);
      // A proposal of ours turned into a connection (counted once, by the offerer).
      if (link.offerer) this.totals.connectedProposals++;
      this.emit('channel-open', { peerId, channel });
    };
    channel.onmessage = (event) => {
      const data = event.data;
      this.totals.p2pBytes += typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength;
      this.emit('data', { peerId, data });
    };
    channel.onclose = () => {
      if (this.connections.get(peerId) === link) this.dropPeer(peerId, false);
    };
  }

  async offerTo(peerId) {
    const link = this.newLink(peerId, true);
    this.attachChannel(peerId, link, link.pc.createDataChannel('meshedflow'));
    const timeoutMs = this.policy?.offerTimeoutMs ?? 10000;
    link.timer = setTimeout(() => { if (this.connections.get(peerId) === link) this.dropPeer(peerId, true); }, timeoutMs);
    try {
      await link.pc.setLocalDescription(await link.pc.createOffer());
      if (this.connections.get(peerId) !== link) return;  // dropped meanwhile (glare)
      const { type, sdp } = link.pc.localDescription;
      this.send({ type: 'signal', to: peerId, kind: 'offer', data: { type, sdp } });
    } catch (error) {
      this.emit('peer-error', { peerId, error: String(error) });
      this.dropPeer(peerId, true);
    }
  }

  async onSignal(from, kind, data) {
    let link = this.connections.get(from);
    try {
      if (kind === 'offer') {
        if (link && link.offerer && link.pc.signalingState !== 'stable') {
          // Glare: the higher peerId's offer wins on both sides.
          if (this.peerId > from) return;  // ours wins: the other side answers it
        }
        if (link) this.dropPeer(from, false);  // a new offer replaces whatever we had
        link = this.newLink(from, false);
        link.pc.ondatachannel = (event) => this.attachChannel(from, link, event.channel);
        await link.pc.setRemoteDescription(data);
        await this.flushCandidates(link);
        await link.pc.setLocalDescription(await link.pc.createAnswer());
        const { type, sdp } = link.pc.localDescription;
        this.send({ type: 'signal', to: from, kind: 'answer', data: { type, sdp } });
      } else if (kind === 'answer') {
        if (!link || link.pc.signalingState !== 'have-local-offer') return;  // stale
        await link.pc.setRemoteDescription(data);
        await this.flushCandidates(link);
      } else if (kind === 'candidate') {
        if (!link || !this.options.candidateFilter(data)) return;
        if (link.pc.remoteDescription) await link.pc.addIceCandidate(data);
        else link.queued.push(data);
      } else if (kind === 'bye') {
        if (link) this.dropPeer(from, false);
      }
    } catch (error) {
      this.emit('peer-error', { peerId: from, error: String(error) });
      if (this.connections.get(from) === link) this.dropPeer(from, true);
    }
  }

  async flushCandidates(link) {
    const queued = link.queued.splice(0);
    for (const c of queued) await link.pc.addIceCandidate(c);
  }

  dropPeer(peerId, sayBye) {
    const link = this.connections.get(peerId);
    if (!link) return;
    this.connections.delete(peerId);
    if (link.timer) clearTimeout(link.timer);
    const wasOpen = link.channel?.readyState === 'open';
    link.pc.close();
    if (sayBye) this.send({ type: 'signal', to: peerId, kind: 'bye', data: null });
    if (wasOpen) this.emit('channel-close', { peerId });
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
