// Scheduling decisions (docs/sdk.md, section "Scheduling"). Pure: the caller
// passes what it knows (peers' buffer maps and measurements, the deadline,
// the time) and gets a decision back; no timers, no I/O.
//
// - A segment the player needs now comes from whoever delivers before its
//   deadline: the best ranked peer that holds it whole when its expected
//   finish is before the deadline, else HTTP.
// - When no peer holds it, a swarm elects its HTTP fetchers by rendezvous
//   hashing over (member, segment): every viewer computes the same
//   `fetchers` members from the same membership, only they go to the CDN at
//   once, and the others wait for a buffer map announcing it until a margin
//   before the deadline, then fetch over HTTP themselves. The CDN serves each
//   segment about once per swarm; playback never waits past the deadline.
// - A viewer that has just joined has no open peer yet, but the edge has
//   proposed some and their data channels are being set up: it waits for
//   them in the same way (their buffer maps announce what they hold) instead
//   of fetching the swarm's recent segments from the CDN again, except for
//   its very first segment, which goes to HTTP at once so that startup never
//   waits on the mesh.
// - cmafMode 'on': when no peer holds the segment whole but one announces
//   verified CMAF chunks of it, it is built from those chunks
//   (src/partial-plan.ts) before any election sends it to the CDN again.
// - Prefetch ahead takes segments from peers only, rarest first when enabled.
// - Range rescue: the byte ranges still missing from a partly received
//   segment, for HTTP `Range` requests.

export interface PeerMeasure {
  peerId: string;
  /** Smoothed delivery rate in bytes per second; null before any sample. */
  bytesPerSecond: number | null;
  /** Smoothed time from request to first byte, ms; null before any sample. */
  latencyMs: number | null;
  /** Requests this peer is serving us now. */
  inFlight: number;
}

/** Rates assumed for a peer never measured (a loopback or LAN peer does far
 * better; a first request teaches the real value). */
export const UNMEASURED_BYTES_PER_SECOND = 1_000_000;
export const UNMEASURED_LATENCY_MS = 100;

/** Expected milliseconds for `peer` to deliver `bytes`, queued behind what it
 * already serves us. */
export function expectedDeliveryMs(peer: PeerMeasure, bytes: number): number {
  const rate = peer.bytesPerSecond ?? UNMEASURED_BYTES_PER_SECOND;
  const latency = peer.latencyMs ?? UNMEASURED_LATENCY_MS;
  return latency + ((1 + peer.inFlight) * bytes * 1000) / rate;
}

/** Peers best first: the fastest expected delivery of `bytes`; ties by peerId
 * so the order is stable. */
export function rankPeers<P extends PeerMeasure>(peers: readonly P[], bytes: number): P[] {
  return [...peers].sort((a, b) => expectedDeliveryMs(a, bytes) - expectedDeliveryMs(b, bytes) ||
                                   (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
}

/** A peer's measurements, smoothed (exponentially weighted, weight `alpha` for
 * the newest sample). */
export class PeerMeter implements PeerMeasure {
  bytesPerSecond: number | null = null;
  latencyMs: number | null = null;
  inFlight = 0;
  constructor(readonly peerId: string, private readonly alpha = 0.3) {}

  sampleLatency(ms: number): void {
    this.latencyMs = this.latencyMs === null ? ms : this.latencyMs + this.alpha * (ms - this.latencyMs);
  }

  /** `bytes` arrived over `ms` (from first byte to last). */
  sampleTransfer(bytes: number, ms: number): void {
    const rate = (bytes * 1000) / Math.max(ms, 1);
    this.bytesPerSecond = this.bytesPerSecond === null ? rate : this.bytesPerSecond + this.alpha * (rate - this.bytesPerSecond);
  }
}

/** 32-bit FNV-1a of a string, for rendezvous hashing. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche so that keys differing in the last character spread.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** The `fetchers` members elected to fetch `key` (a segment) from the CDN:
 * the highest rendezvous scores. Every member computes the same set from
 * the same membership. */
export function electFetchers(members: readonly string[], key: string, fetchers: number): string[] {
  const scored = [...new Set(members)].map((m) => ({ m, score: hash32(`${m}|${key}`) }));
  scored.sort((a, b) => b.score - a.score || (a.m < b.m ? -1 : 1));
  return scored.slice(0, Math.max(1, fetchers)).map((s) => s.m);
}

export type FetchPlan =
  | { kind: 'peer'; peerId: string; timeoutMs: number }
  | { kind: 'wait'; untilMs: number }
  /** Build it from peers' verified chunks (src/partial-plan.ts). */
  | { kind: 'partial' }
  | { kind: 'http' };

export interface FetchInput {
  /** This viewer's peerId. */
  self: string;
  /** Segment key (rendition and sn) for the election. */
  key: string;
  /** Expected size in bytes (from the manifest). */
  size: number;
  nowMs: number;
  /** When the player must have the segment. */
  deadlineMs: number;
  /** Peers connected and usable, with their measurements. */
  peers: readonly PeerMeasure[];
  /** Which of them announce the whole segment, verified. */
  holders: ReadonlySet<string>;
  /** Which of them announce verified chunks of it that may be asked for
   * (cmafMode 'on' only: the caller passes none otherwise). */
  partialHolders?: ReadonlySet<string>;
  /** How many members fetch a segment nobody holds from the CDN. */
  fetchers: number;
  /** Time kept for the HTTP fallback before the deadline. */
  httpReserveMs: number;
  /** False when the mesh is off or the segment cannot be verified. */
  meshUsable: boolean;
  /** Peers being connected (proposed, data channel not open yet). */
  connecting?: number;
  /** The session's first segment (startup never waits on the mesh). */
  startup?: boolean;
}

/** What to do now for a segment the player asked for (see the top). */
export function planFetch(i: FetchInput): FetchPlan {
  if (!i.meshUsable) return { kind: 'http' };
  const holders = rankPeers(i.peers.filter((p) => i.holders.has(p.peerId)), i.size);
  const remaining = i.deadlineMs - i.nowMs;
  if (holders.length > 0 && expectedDeliveryMs(holders[0], i.size) < remaining)
    return { kind: 'peer', peerId: holders[0].peerId, timeoutMs: Math.max(0, remaining - i.httpReserveMs) };
  if (holders.length > 0) return { kind: 'http' };
  if (remaining > 0 && i.peers.some((p) => i.partialHolders?.has(p.peerId))) return { kind: 'partial' };
  if (i.peers.length === 0) {
    if (!i.connecting || i.startup) return { kind: 'http' };
  } else if (electFetchers([i.self, ...i.peers.map((p) => p.peerId)], i.key, i.fetchers).includes(i.self)) {
    return { kind: 'http' };
  }
  const untilMs = i.deadlineMs - i.httpReserveMs;
  return untilMs > i.nowMs ? { kind: 'wait', untilMs } : { kind: 'http' };
}

/** Segments to prefetch from peers, at most `limit`: among `candidates` (sns
 * ahead of the playhead, nearest first) those we lack and some peer holds;
 * rarest first (fewest holders, then nearest) when `rarestFirst`, else
 * nearest first. */
export function choosePrefetch(candidates: readonly number[], have: ReadonlySet<number>,
                               holdersOf: (sn: number) => number, limit: number, rarestFirst: boolean): number[] {
  const wanted = candidates.map((sn, order) => ({ sn, order, holders: have.has(sn) ? 0 : holdersOf(sn) }))
    .filter((c) => c.holders > 0);
  if (rarestFirst) wanted.sort((a, b) => a.holders - b.holders || a.order - b.order);
  return wanted.slice(0, Math.max(0, limit)).map((c) => c.sn);
}

/** Range rescue: the [start, end) byte ranges of a `size`-byte segment not
 * covered by `received` (any order, may overlap). */
export function missingRanges(received: ReadonlyArray<readonly [number, number]>, size: number): Array<[number, number]> {
  const sorted = received.filter(([s, e]) => e > s).map(([s, e]) => [Math.max(0, s), Math.min(size, e)] as [number, number])
    .sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  let at = 0;
  for (const [s, e] of sorted) {
    if (s > at) out.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < size) out.push([at, size]);
  return out;
}

/** The HTTP `Range` header for [start, end) (RFC 9110: inclusive last byte). */
export function rangeHeader([start, end]: readonly [number, number]): string {
  return `bytes=${start}-${end - 1}`;
}
