// The signaling client: one WebSocket to the edge per player session,
// speaking the SDK protocol (docs/protocol.md).
// A state machine over an injected socket factory and clock, so that it is
// tested without a network or real time:
//
//   idle -> connecting -> joining -> joined
//                 ^                    |  close (allowed code)
//                 +---- waiting <------+
//   any -> closed (stop(), or a close code that forbids reconnecting)
//
// On every (re)connection it sends `join`, with the `session` of the last
// `joined` so the identity is taken over (docs/protocol.md section 5). `stats` are
// cumulative since the last `joined` and sent only when they changed.

export interface SocketLike {
  readonly readyState: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev?: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev?: unknown) => void) | null;
}

export type SocketFactory = (url: string, protocol: string) => SocketLike;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export const SUBPROTOCOL = 'meshedflow.v1';
const OPEN = 1;

export type SignalingState = 'idle' | 'connecting' | 'joining' | 'joined' | 'waiting' | 'closed';

export interface PeerCandidate {
  peerId: string;
  rendition: string;
  topology: Record<string, unknown>;
}

export interface Counters {
  p2pBytes: number;
  cdnBytes: number;
  uploadedBytes: number;
  /** The edge's extension (docs/protocol.md, `stats`): proposals this player
   * offered to that reached an open data channel. Sent when present. */
  connectedProposals?: number;
}

export interface SignalingOptions {
  url: string;
  streamId: string;
  rendition: string;
  peerId: string;
  caps?: { maxPeers?: number; uploadKbps?: number; acceptingPeers?: boolean };
  topology?: { region?: string; country?: string; asn?: number; network?: string };
  socketFactory: SocketFactory;
  clock?: Clock;
  /** Cumulative counters since the player started; stats report the growth since the last `joined`. */
  counters?: () => Counters;
  statsIntervalMs?: number;
  pingIntervalMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
}

export interface SignalingEvents {
  state: SignalingState;
  joined: Record<string, unknown>;
  peers: PeerCandidate[];
  signal: { from: string; kind: string; data: unknown };
  policy: unknown;
  error: Record<string, unknown>;
  pong: { rttMs: number };
  closed: { code: number };
}

/** docs/protocol.md section 7: what a close code allows. */
export function reconnectRule(code: number): 'after-reconnect' | 'backoff' | 'never' {
  switch (code) {
    case 1001: return 'after-reconnect';
    case 1002: case 1003: case 1007: case 1009: case 4001: return 'never';
    default: return 'backoff';  // 1000 from the edge, 1006, 1008, 1011, 4002, 4003
  }
}

type Listener<T> = (value: T) => void;

export class SignalingClient {
  state: SignalingState = 'idle';
  session: string | null = null;
  policy: unknown = null;
  rendition: string;
  heartbeatMs: number | null = null;
  private ws: SocketLike | null = null;
  private readonly clock: Clock;
  private readonly listeners = new Map<keyof SignalingEvents, Set<Listener<never>>>();
  private timers = new Set<unknown>();
  private reconnectAfterMs: number | null = null;
  private attempts = 0;
  private baseline: Counters = { p2pBytes: 0, cdnBytes: 0, uploadedBytes: 0 };
  private lastStats: string | null = null;
  private nextId = 1;

  constructor(private readonly options: SignalingOptions) {
    this.clock = options.clock ?? realClock;
    this.rendition = options.rendition;
  }

  on<K extends keyof SignalingEvents>(event: K, fn: Listener<SignalingEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set!.delete(fn as Listener<never>);
  }

  private emit<K extends keyof SignalingEvents>(event: K, value: SignalingEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) (fn as Listener<SignalingEvents[K]>)(value);
  }

  private setState(state: SignalingState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.connect();
    this.every(this.options.statsIntervalMs ?? 5000, () => this.sendStats());
    this.every(this.options.pingIntervalMs ?? 10000, () => this.send({ type: 'ping', t: this.clock.now() }));
  }

  /** Closes the WebSocket (1000) and every timer; nothing reconnects. */
  stop(): void {
    if (this.state === 'closed') return;
    this.sendStats();
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    const ws = this.ws;
    this.ws = null;
    this.setState('closed');
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000, 'bye');
    }
  }

  /** The player switched rendition: a new `join` moves this identity to that swarm. */
  switchRendition(rendition: string): void {
    if (rendition === this.rendition) return;
    this.rendition = rendition;
    if (this.state === 'joined' || this.state === 'joining') this.sendJoin();
  }

  needPeers(count?: number, exclude: string[] = []): boolean {
    const m: Record<string, unknown> = { type: 'need-peers', id: `np-${this.nextId++}`, exclude: exclude.slice(0, 64) };
    if (count !== undefined) m.count = Math.max(1, Math.min(64, count));
    return this.state === 'joined' && this.send(m);
  }

  update(caps?: SignalingOptions['caps'], topology?: SignalingOptions['topology']): boolean {
    if (caps) this.options.caps = caps;
    if (topology) this.options.topology = topology;
    const m: Record<string, unknown> = { type: 'update' };
    if (caps) m.caps = caps;
    if (topology) m.topology = topology;
    return this.state === 'joined' && this.send(m);
  }

  signal(to: string, kind: 'offer' | 'answer' | 'candidate' | 'bye', data: unknown): boolean {
    return this.state === 'joined' && this.send({ type: 'signal', to, kind, data });
  }

  /** Sends the counters' growth since the last `joined` when it changed. */
  sendStats(): boolean {
    if (this.state !== 'joined' || !this.options.counters) return false;
    const now = this.options.counters();
    const stats: Record<string, number> = {
      p2pBytes: Math.max(0, now.p2pBytes - this.baseline.p2pBytes),
      cdnBytes: Math.max(0, now.cdnBytes - this.baseline.cdnBytes),
      uploadedBytes: Math.max(0, now.uploadedBytes - this.baseline.uploadedBytes),
    };
    if (now.connectedProposals !== undefined)
      stats.connectedProposals = Math.max(0, now.connectedProposals - (this.baseline.connectedProposals ?? 0));
    const text = JSON.stringify(stats);
    if (text === this.lastStats) return false;
    this.lastStats = text;
    return this.send({ type: 'stats', ...stats });
  }

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      this.timers.delete(handle);
      if (this.state === 'closed') return;
      fn();
      handle = this.clock.setTimeout(tick, ms);
      this.timers.add(handle);
    };
    let handle = this.clock.setTimeout(tick, ms);
    this.timers.add(handle);
  }

  private send(m: Record<string, unknown>): boolean {
    if (!this.ws || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(m));
    return true;
  }

  private sendJoin(): void {
    const join: Record<string, unknown> = { type: 'join', id: 'join', streamId: this.options.streamId,
                                            rendition: this.rendition, peerId: this.options.peerId };
    if (this.session) join.session = this.session;
    if (this.options.caps) join.caps = this.options.caps;
    if (this.options.topology) join.topology = this.options.topology;
    if (this.send(join) && this.state !== 'joined') this.setState('joining');
  }

  private connect(): void {
    const url = new URL(this.options.url);
    if (!url.searchParams.has('stream')) url.searchParams.set('stream', this.options.streamId);
    this.reconnectAfterMs = null;
    this.setState('connecting');
    const ws = this.options.socketFactory(url.toString(), SUBPROTOCOL);
    this.ws = ws;
    ws.onopen = () => { if (this.ws === ws) this.sendJoin(); };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let m: unknown;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;  // the edge only sends JSON; ignore anything else
      }
      if (typeof m === 'object' && m !== null) this.onMessage(m as Record<string, unknown>);
    };
    ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev.code); };
    ws.onerror = () => {};
  }

  private onClose(code: number): void {
    this.ws = null;
    if (this.state === 'closed') return;
    const rule = reconnectRule(code);
    if (rule === 'never') {
      for (const t of this.timers) this.clock.clearTimeout(t);
      this.timers.clear();
      this.setState('closed');
      this.emit('closed', { code });
      return;
    }
    let delayMs: number;
    if (rule === 'after-reconnect' && this.reconnectAfterMs !== null) {
      delayMs = this.reconnectAfterMs;  // already spread by the edge
    } else {
      const ceiling = Math.min(this.options.backoffMaxMs ?? 30000, (this.options.backoffInitialMs ?? 500) * 2 ** this.attempts);
      delayMs = (this.options.random ?? Math.random)() * ceiling;  // full jitter
    }
    this.attempts++;
    this.setState('waiting');
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      if (this.state === 'waiting') this.connect();
    }, delayMs);
    this.timers.add(handle);
  }

  private onMessage(m: Record<string, unknown>): void {
    switch (m.type) {
      case 'joined':
        this.attempts = 0;
        if (typeof m.session === 'string') this.session = m.session;
        if (typeof m.heartbeatMs === 'number') this.heartbeatMs = m.heartbeatMs;
        this.policy = m.policy;
        if (this.options.counters) this.baseline = { ...this.options.counters() };
        this.lastStats = null;
        this.setState('joined');
        this.emit('joined', m);
        this.emit('policy', m.policy);
        return;
      case 'peers':
        if (Array.isArray(m.peers))
          this.emit('peers', m.peers.filter((p): p is PeerCandidate => typeof p?.peerId === 'string'));
        return;
      case 'signal':
        if (typeof m.from === 'string' && typeof m.kind === 'string') this.emit('signal', { from: m.from, kind: m.kind, data: m.data });
        return;
      case 'policy':
        this.policy = m.policy;
        this.emit('policy', m.policy);
        return;
      case 'pong':
        if (typeof m.t === 'number') this.emit('pong', { rttMs: this.clock.now() - m.t });
        return;
      case 'reconnect':
        if (typeof m.afterMs === 'number' && m.afterMs >= 0) this.reconnectAfterMs = m.afterMs;
        return;
      case 'error':
        this.emit('error', m);
        return;
      default:
        return;  // `left`, and whatever a newer edge adds
    }
  }
}
