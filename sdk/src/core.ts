// MeshedFlowLoader: the core one player shares between all its requests
// (docs/sdk.md). One peer identity, one WebSocket to the edge
// (src/signaling.ts), WebRTC links to other viewers of the stream
// (src/peer-link.ts), a store of verified segments (src/segment-store.ts).
// For each fragment hls.js asks for it decides, with src/scheduler.ts, where
// the bytes come from: its store, a peer, or HTTP; hands the player only
// bytes that are verified against the signed manifest
// (docs/origin.md, "The manifest") when they come from a peer, and
// shares only verified bytes. Playback never waits on the mesh: every peer
// path ends at a deadline, and HTTP (with a `Range` rescue for what a peer
// left half done) takes over.

import { createLoaderStats, finishLoad, progress, restartTiming, startLoad } from './loader-stats';
import type { LoaderStats } from './loader-stats';
import { httpGet } from './http-fetch';
import type { HttpRequest, LoadPolicyTimes } from './http-fetch';
import { bytesMatch, EXPIRY_SKEW_SECONDS, findSegment, ManifestKeyring, verifyManifest } from './manifest';
import type { ManifestKey, ManifestSegment, SegmentManifest } from './manifest';
import { TO_END } from './peer-protocol';
import type { PeerMessage } from './peer-protocol';
import { PeerLink } from './peer-link';
import type { LinkHost } from './peer-link';
import { DEFAULT_POLICY, mergePolicy } from './policy';
import type { CmafMode, Policy, PolicySource } from './policy';
import { ChunkProgress } from './chunk-progress';
import { choosePrefetch, electFetchers, missingRanges, planFetch } from './scheduler';
import { planPartialFetch } from './partial-plan';
import type { Refusal } from './partial-plan';
import { SegmentStore } from './segment-store';
import { SignalingClient } from './signaling';
import type { PeerCandidate, SignalingOptions, SocketFactory, SocketLike } from './signaling';
import { TokenBucket } from './token-bucket';

export interface MeshedFlowOptions {
  /** The edge's WebSocket URL, e.g. wss://HOST:8445/ws. */
  signalingUrl: string;
  /** Where the `.mfsig` manifests are fetched: the playlist's path on this
   * base URL. Default: beside the playlist, wherever hls.js loads it from. */
  originBaseUrl?: string;
  streamId: string;
  peerId: string;
  /** Operator JSON with `defaults` and `streams` (docs/sdk.md "Policy"). */
  remoteConfigUrl?: string;
  remoteConfigIntervalMs?: number;
  enableRarestFirst?: boolean;
  cmafMode?: CmafMode;
  /** Public keys from `mf-sign`, JWK with `kid` (or `{kid, spki}`). */
  manifestKeys?: ManifestKey[];
  maxPeers?: number;
  uploadCapKbps?: number;
  rtcConfiguration?: RTCConfiguration;
  /** Which ICE candidates to send and accept (all by default). */
  candidateFilter?: (candidate: RTCIceCandidateInit) => boolean;
  /** The rendition name of a media playlist (joined with, and matched with
   * the manifest's `rendition`). Default: renditionForPlaylist, mf-sign's rule. */
  renditionOf?: (playlistUrl: string) => string | null;
  cacheMaxBytes?: number;
  cacheHorizonSegments?: number;
  /** Segments ahead of the player fetched from peers in the background. */
  prefetchSegments?: number;
  /** Members of a swarm that fetch a segment nobody holds from the CDN. */
  httpFetchers?: number;
  /** Share of a fragment's duration the mesh may use before HTTP must
   * start (kept under half: hls.js's ABR starts its abandon checks there). */
  meshBudgetFraction?: number;
  caps?: SignalingOptions['caps'];
  topology?: SignalingOptions['topology'];
  socketFactory?: SocketFactory;
  /** Test-only switches (the system tests' misbehaving viewers). */
  testHooks?: { corruptUploads?: boolean; leaveAfterUploadBytes?: number;
               /** Starting values in place of the SDK's defaults (the unit tests' long timeouts). */
               policyBase?: Partial<Policy> };
}

/** hls.js's loader callbacks (the subset the core calls). */
export interface LoaderCallbacks {
  onSuccess(response: { url: string; data: ArrayBuffer; code: number }, stats: LoaderStats, context: unknown, networkDetails: unknown): void;
  onError(error: { code: number; text: string }, context: unknown, networkDetails: unknown, stats: LoaderStats): void;
  onTimeout(stats: LoaderStats, context: unknown, networkDetails: unknown): void;
  onAbort?(stats: LoaderStats, context: unknown, networkDetails: unknown): void;
  onProgress?(stats: LoaderStats, context: unknown, data: ArrayBuffer, networkDetails: unknown): void;
}

/** The parts of hls.js's FragmentLoaderContext the core reads. */
export interface LoaderContextLike {
  url: string;
  responseType?: string;
  rangeStart?: number;
  rangeEnd?: number;
  frag?: { sn: number | 'initSegment'; baseurl?: string; relurl?: string; duration?: number; level?: number } | null;
  part?: unknown;
}

export interface LoaderConfigLike {
  loadPolicy?: LoadPolicyTimes;
  timeout?: number;
}

export interface LoadHandle {
  readonly stats: LoaderStats;
  /** hls.js's abort(): stops the load and calls onAbort (unless it finished). */
  abort(): void;
  /** Stops the load silently (a loader's destroy()). */
  destroy(): void;
  getResponseHeader(name: string): string | null;
}

export type SegmentSource = 'p2p' | 'http' | 'cache' | 'p2p+range';

export interface MeshedFlowEvents {
  joined: { edge: string; rendition: string };
  policy: Policy;
  /** A WebRTC connection to this peer is being made (`offerer`: this player offered). */
  'peer-connecting': { peerId: string; offerer: boolean };
  'peer-open': { peerId: string; offerer: boolean };
  'peer-close': { peerId: string };
  'peer-banned': { peerId: string; reason: string };
  segment: { rendition: string; sn: number; source: SegmentSource; verified: boolean; bytes: number; sha256?: string };
  'range-rescue': { rendition: string; sn: number; start: number; end: number };
  error: { message: string };
}

export interface MeshedFlowStats {
  p2pBytes: number;
  httpBytes: number;
  uploadedBytes: number;
  /** Proposals this player offered to that reached an open data channel
   * (reported to the edge, docs/protocol.md `stats`). */
  connectedProposals: number;
  verifiedSegments: number;
  failedSegments: number;
  rangeRescues: number;
  peers: string[];
  banned: string[];
  swarm: { streamId: string; rendition: string | null };
  policy: Policy;
  storedBytes: number;
}

/** How a request to a peer ended: `bytes` is the segment's buffer up to
 * where the bytes received end (all asked for: 'ok'; some: 'partial'). */
type PeerFetch = { kind: 'ok'; bytes: Uint8Array } | { kind: 'partial'; bytes: Uint8Array } | { kind: 'failed' };

/** What a request ended early leaves: the bytes received, if any. */
function cutShort(p: PendingPeerRequest): PeerFetch {
  return p.received > p.start ? { kind: 'partial', bytes: p.buffer.subarray(0, p.received) } : { kind: 'failed' };
}

interface PendingPeerRequest {
  link: PeerLink;
  rendition: string;
  entry: ManifestSegment;
  /** CMAF chunks verified as they arrive (when the manifest lists them). */
  chunks: ChunkProgress | null;
  size: number;
  /** The whole segment's bytes: [0, start) are held already, this request
   * fills [start, end). */
  buffer: Uint8Array;
  start: number;
  end: number;
  /** Where the bytes received end (from `start` up to `end`). */
  received: number;
  startedAt: number;
  firstAt: number;
  stats: LoaderStats | null;
  stallTimer: ReturnType<typeof setTimeout> | undefined;
  deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  finish(result: PeerFetch): void;
}

interface ManifestState {
  rendition: string;
  manifest: SegmentManifest | null;
  fetching: Promise<void> | null;
  fetchedAt: number;
}

const DEFAULT_LOAD_POLICY: LoadPolicyTimes = { maxTimeToFirstByteMs: 10000, maxLoadTimeMs: 120000 };
const NEED_PEERS_INTERVAL_MS = 3000;
/** Bytes per DATA frame: small enough that a request interleaves with control
 * frames and backpressure acts within a segment. */
const DATA_FRAME_BYTES = 16 * 1024;
const MANIFEST_REFETCH_MS = 250;
/** How often a live player at the live edge fetches its manifest to see new
 * segments (followLiveEdge). */
const LIVE_EDGE_POLL_MS = 500;
/** A manifest signed for longer than this is a finished (VOD) playlist:
 * mf-sign signs live ones for three target durations, finished ones for a
 * day (docs/origin.md). */
const LIVE_MANIFEST_MAX_TTL_S = 600;

/** The rendition of a media playlist by default, by mf-sign's rule
 * (docs/origin.md, "Rendition names"): the name of the directory holding the playlist,
 * ':', and the playlist's file name without ".m3u8"
 * (`.../live/720p/index.m3u8` is "720p:index"). Null when the URL has no
 * such name: that playlist's segments go over HTTP, unshared. */
export function renditionForPlaylist(playlistUrl: string): string | null {
  const parts = new URL(playlistUrl).pathname.split('/');
  const file = parts.pop() ?? '';
  const directory = parts.pop() ?? '';
  if (!file.endsWith('.m3u8') || file.length <= 5 || !directory || directory === '.' || directory === '..') return null;
  const rendition = `${directory}:${file.slice(0, -5)}`;
  return /^[A-Za-z0-9._:-]{1,128}$/.test(rendition) ? rendition : null;
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // hls.js may transfer the buffer to its worker: the player always gets its own copy.
  return bytes.slice().buffer as ArrayBuffer;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class MeshedFlowLoader {
  readonly options: MeshedFlowOptions;
  private readonly keyring: ManifestKeyring;
  private readonly store: SegmentStore;
  private readonly signaling: SignalingClient;
  private readonly links = new Map<string, PeerLink>();
  private readonly banned = new Map<string, string>();
  private readonly manifests = new Map<string, ManifestState>();
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Segments being built from peers' pieces (buildFromPieces): woken when a peer leaves. */
  private readonly building = new Set<string>();
  private readonly inflight = new Map<string, Promise<Uint8Array | null>>();
  private readonly pending = new Map<PeerLink, Map<number, PendingPeerRequest>>();
  private readonly listeners = new Map<string, Set<(v: never) => void>>();
  private readonly uploadBucket: TokenBucket;
  private edgePolicy: unknown = null;
  private remoteConfig: unknown = null;
  private policy: Policy;
  private rendition: string | null = null;
  private started = false;
  private destroyed = false;
  private nextRequestId = 1;
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private leftMesh = false;
  private mediaDetached = false;
  /** The media segment last handed to the player. */
  private lastServed: { rendition: string; sn: number } | null = null;
  private readonly totals = { p2pBytes: 0, cdnBytes: 0, uploadedBytes: 0, connectedProposals: 0 };
  /** Media segments handed to the player so far. */
  private segmentsServed = 0;
  private readonly counts = { verified: 0, failed: 0, rescues: 0 };
  private readonly host: LinkHost;

  constructor(options: MeshedFlowOptions) {
    for (const field of ['signalingUrl', 'streamId', 'peerId'] as const)
      if (!options[field]) throw new Error(`MeshedFlowLoader: ${field} is required`);
    this.options = options;
    this.keyring = new ManifestKeyring(options.manifestKeys ?? []);
    this.store = new SegmentStore(options.cacheMaxBytes ?? 64 * 1024 * 1024, options.cacheHorizonSegments ?? 30);
    this.policy = mergePolicy(options.streamId, this.localPolicy(), null, null, this.policyBase());
    this.uploadBucket = new TokenBucket(this.policy.uploadCapKbps, 256 * 1024, performance.now());
    this.signaling = new SignalingClient({
      url: options.signalingUrl, streamId: options.streamId, rendition: 'pending', peerId: options.peerId,
      caps: options.caps, topology: options.topology,
      socketFactory: options.socketFactory ?? ((url, protocol) => new WebSocket(url, protocol) as unknown as SocketLike),
      counters: () => ({ ...this.totals }),
    });
    this.signaling.on('joined', (m) => this.emit('joined', { edge: String(m.edge), rendition: String(m.rendition) }));
    this.signaling.on('policy', (p) => { this.edgePolicy = p; this.applyPolicy(); });
    this.signaling.on('peers', (peers) => this.onPeers(peers));
    this.signaling.on('signal', (s) => void this.onSignal(s.from, s.kind, s.data));
    this.signaling.on('error', (m) => {
      if (m.code === 'peer-not-found' && typeof m.to === 'string') this.links.get(m.to)?.close(false);
      this.emit('error', { message: `edge: ${String(m.code)}: ${String(m.message)}${typeof m.to === 'string' ? ` (to ${m.to})` : ''}` });
    });
    const self = this;
    this.host = {
      get rtcConfiguration() { return self.options.rtcConfiguration ?? { iceServers: [] }; },
      uploadBucket: this.uploadBucket,
      candidateFilter: (c) => (self.options.candidateFilter ? self.options.candidateFilter(c) : true),
      signal: (to, kind, data) => { self.signaling.signal(to, kind, data); },
      onOpen: (link) => self.onLinkOpen(link),
      onClose: (link) => self.onLinkClose(link),
      onMessage: (link, m) => self.onPeerMessage(link, m),
      onViolation: (link, reason) => self.ban(link.peerId, `peer protocol: ${reason}`),
      countUploaded: (n) => { self.totals.uploadedBytes += n; },
    };
  }

  // ---- public API ----

  /** A class implementing hls.js's Loader interface, bound to this core:
   * `new Hls({ fLoader: core.hlsLoader() })`. */
  hlsLoader(): new (hlsConfig?: unknown) => MeshedFlowHlsLoaderInstance {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const core = this;
    return class MeshedFlowHlsLoader implements MeshedFlowHlsLoaderInstance {
      context: LoaderContextLike | null = null;
      stats: LoaderStats = createLoaderStats();
      private request: LoadHandle | null = null;
      constructor(_hlsConfig?: unknown) {}
      load(context: LoaderContextLike, config: LoaderConfigLike, callbacks: LoaderCallbacks): void {
        this.context = context;
        this.request = core.load(context, config, callbacks, this.stats);
      }
      abort(): void { this.request?.abort(); }
      destroy(): void { this.request?.destroy(); this.request = null; this.context = null; }
      getCacheAge(): number | null { return null; }
      getResponseHeader(name: string): string | null { return this.request?.getResponseHeader(name) ?? null; }
    };
  }

  /** Loads one hls.js request. `stats` is the object the caller's loader
   * instance owns (hls.js holds it from the loader's construction); without
   * one the core makes its own, available as the handle's `stats`. */
  load(context: LoaderContextLike, config: LoaderConfigLike, callbacks: LoaderCallbacks, stats: LoaderStats = createLoaderStats()): LoadHandle {
    startLoad(stats, performance.now());
    // `done`: the callbacks were called (success, error, timeout); abort and
    // destroy after that change nothing (hls.js destroys every loader after
    // its success, as its own loaders allow).
    const controller = { aborted: false, done: false, http: null as HttpRequest | null, headers: null as Headers | null,
                         cancel: [] as Array<() => void> };
    const once = <A extends unknown[]>(fn: ((...args: A) => void) | undefined) => (...args: A) => {
      if (controller.done || controller.aborted) return;
      controller.done = true;
      fn?.(...args);
    };
    const guarded: LoaderCallbacks = {
      onSuccess: once(callbacks.onSuccess), onError: once(callbacks.onError), onTimeout: once(callbacks.onTimeout),
      onProgress: callbacks.onProgress ? (...args) => { if (!controller.done && !controller.aborted) callbacks.onProgress!(...args); } : undefined,
    };
    const stop = (notify: boolean) => {
      if (controller.aborted || controller.done) return;
      controller.aborted = true;
      stats.aborted = true;
      controller.http?.abort();
      for (const c of controller.cancel) c();
      if (notify) callbacks.onAbort?.(stats, context, null);
    };
    const handle: LoadHandle = {
      stats,
      abort: () => stop(true),
      destroy: () => stop(false),
      getResponseHeader: (name) => controller.headers?.get(name) ?? null,
    };
    void this.serve(context, config, guarded, stats, controller).catch((error) => {
      if (!controller.aborted) guarded.onError({ code: 0, text: String(error) }, context, null, stats);
    });
    return handle;
  }

  on<K extends keyof MeshedFlowEvents>(event: K, fn: (value: MeshedFlowEvents[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as (v: never) => void);
    return () => set!.delete(fn as (v: never) => void);
  }

  stats(): MeshedFlowStats {
    return {
      p2pBytes: this.totals.p2pBytes, httpBytes: this.totals.cdnBytes, uploadedBytes: this.totals.uploadedBytes,
      connectedProposals: this.totals.connectedProposals,
      verifiedSegments: this.counts.verified, failedSegments: this.counts.failed, rangeRescues: this.counts.rescues,
      peers: [...this.links.values()].filter((l) => l.open).map((l) => l.peerId),
      banned: [...this.banned.keys()],
      swarm: { streamId: this.options.streamId, rendition: this.rendition },
      policy: { ...this.policy },
      storedBytes: this.store.size,
    };
  }

  /** Listens to an hls.js instance: its destruction destroys the core; while
   * its media is detached nothing is fetched ahead (the core still answers
   * peers from what it holds). */
  attach(hls: { on(event: string, fn: () => void): void }): void {
    hls.on('hlsDestroying', () => this.destroy());
    hls.on('hlsMediaDetached', () => { this.mediaDetached = true; });
    hls.on('hlsMediaAttached', () => { this.mediaDetached = false; });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const link of [...this.links.values()]) link.close(true);
    this.signaling.stop();
    this.store.clear();
    for (const set of this.waiters.values()) for (const w of set) w();
    this.waiters.clear();
  }

  // ---- policy ----

  private localPolicy(): PolicySource {
    const o = this.options;
    const p: PolicySource = {};
    if (o.cmafMode) p.cmafMode = o.cmafMode;
    if (o.maxPeers !== undefined) p.maxPeers = o.maxPeers;
    if (o.uploadCapKbps !== undefined) p.uploadCapKbps = o.uploadCapKbps;
    if (this.leftMesh) p.meshEnabled = false;
    return p;
  }

  private policyBase(): Policy {
    const base = this.options.testHooks?.policyBase;
    return base ? { ...DEFAULT_POLICY, ...base } : DEFAULT_POLICY;
  }

  private applyPolicy(): void {
    const before = this.policy;
    this.policy = mergePolicy(this.options.streamId, this.localPolicy(), this.edgePolicy, this.remoteConfig,
                              this.policyBase());
    this.uploadBucket.setRate(this.policy.uploadCapKbps);
    if (JSON.stringify(before) === JSON.stringify(this.policy)) return;
    if (!this.policy.meshEnabled) {
      // The kill switch: all peer traffic stops at once; pending peer
      // requests fall back to HTTP (their promises settle as partial/failed).
      for (const link of [...this.links.values()]) link.close(true);
    } else {
      let open = 0;
      for (const link of [...this.links.values()]) if (++open > this.policy.maxPeers) link.close(true);
    }
    this.emit('policy', { ...this.policy });
  }

  private async fetchRemoteConfig(): Promise<void> {
    const url = this.options.remoteConfigUrl;
    if (!url || this.destroyed) return;
    try {
      const response = await fetch(url, { cache: 'no-store' });
      if (!response.ok) return;  // keep the last good one
      this.remoteConfig = await response.json();
      this.applyPolicy();
    } catch {
      // unreachable or not JSON: keep the last good one
    }
  }

  // ---- signaling and links ----

  private startSession(rendition: string): void {
    this.rendition = rendition;
    if (this.started) {
      this.signaling.switchRendition(rendition);
      return;
    }
    this.started = true;
    this.signaling.rendition = rendition;
    this.signaling.start();
    void this.fetchRemoteConfig();
    if (this.options.remoteConfigUrl)
      this.timers.push(setInterval(() => void this.fetchRemoteConfig(), this.options.remoteConfigIntervalMs ?? 10000));
    this.timers.push(setInterval(() => this.topUpPeers(), NEED_PEERS_INTERVAL_MS));
    this.timers.push(setInterval(() => this.followLiveEdge(), LIVE_EDGE_POLL_MS));
  }

  /** Live: each player's playlist refresh sees a new segment at its own
   * moment, up to a target duration apart, later than the mesh's deadline
   * allows its peers to wait. So a player at the live edge fetches its
   * manifest every LIVE_EDGE_POLL_MS and runs the prefetch ahead as soon as
   * a new segment is signed: the segment's elected fetchers take it from the
   * CDN at once, the others from them, before their players ask. */
  private followLiveEdge(): void {
    const last = this.lastServed;
    const limit = this.options.prefetchSegments ?? 3;
    if (!last || last.rendition !== this.rendition || limit === 0 || !this.policy.meshEnabled || this.destroyed ||
        this.mediaDetached) return;
    const found = [...this.manifests.entries()].find(([, m]) => m.rendition === last.rendition);
    if (!found) return;
    const [playlistUrl, state] = found;
    if (!this.usable(state.manifest) || state.fetching) return;
    const manifest = state.manifest;
    if (manifest.expiresAt - manifest.issuedAt > LIVE_MANIFEST_MAX_TTL_S) return;
    if (manifest.segments.filter((s) => s.sn > last.sn).length >= limit) return;
    state.fetching = this.fetchManifest(playlistUrl, last.rendition, state);
    void state.fetching.then(() => this.prefetchAfter(last.rendition, this.lastServed?.sn ?? last.sn));
  }

  private topUpPeers(): void {
    if (!this.policy.meshEnabled || this.signaling.state !== 'joined') return;
    const wanted = this.policy.maxPeers - this.links.size;
    if (wanted > 0) this.signaling.needPeers(wanted, [...this.links.keys(), ...this.banned.keys()]);
  }

  private onPeers(peers: PeerCandidate[]): void {
    if (!this.policy.meshEnabled || this.destroyed) return;
    for (const p of peers) {
      if (this.links.size >= this.policy.maxPeers) break;
      if (p.peerId === this.options.peerId || this.links.has(p.peerId) || this.banned.has(p.peerId)) continue;
      const link = new PeerLink(p.peerId, true, this.host);
      this.links.set(p.peerId, link);
      this.emit('peer-connecting', { peerId: p.peerId, offerer: true });
      link.offerTimer = setTimeout(() => { if (!link.open) link.close(true); }, this.policy.offerTimeoutMs);
      link.offer().catch(() => link.close(true));
    }
  }

  private async onSignal(from: string, kind: string, data: unknown): Promise<void> {
    let link = this.links.get(from);
    try {
      if (kind === 'offer') {
        if (!this.policy.meshEnabled || this.banned.has(from) || this.destroyed) {
          this.signaling.signal(from, 'bye', null);
          return;
        }
        // Glare: both offered; the higher peerId's offer wins on both sides.
        if (link && link.offerer && link.pc.signalingState !== 'stable' && this.options.peerId > from) return;
        if (link) link.close(false);
        if (this.links.size >= this.policy.maxPeers) {
          this.signaling.signal(from, 'bye', null);
          return;
        }
        link = new PeerLink(from, false, this.host);
        this.links.set(from, link);
        this.emit('peer-connecting', { peerId: from, offerer: false });
        const answering = link;
        link.offerTimer = setTimeout(() => { if (!answering.open) answering.close(true); }, this.policy.offerTimeoutMs);
        await link.acceptOffer(data as RTCSessionDescriptionInit);
      } else if (kind === 'answer') {
        await link?.acceptAnswer(data as RTCSessionDescriptionInit);
      } else if (kind === 'candidate') {
        if (data) await link?.addCandidate(data as RTCIceCandidateInit);
      } else if (kind === 'bye') {
        link?.close(false);
      }
    } catch {
      if (link && this.links.get(from) === link) link.close(true);
    }
  }

  private onLinkOpen(link: PeerLink): void {
    if (!this.policy.meshEnabled) {
      link.close(true);
      return;
    }
    for (const rendition of this.store.renditionNames())
      link.send({ type: 'buffer-map', rendition, entries: this.store.entries(rendition, this.policy.cmafMode !== 'off') });
    // Every link this player offered answered a proposal (onPeers): counted once, on the offering side.
    if (link.offerer) this.totals.connectedProposals++;
    this.emit('peer-open', { peerId: link.peerId, offerer: link.offerer });
  }

  private onLinkClose(link: PeerLink): void {
    if (this.links.get(link.peerId) === link) this.links.delete(link.peerId);
    const pending = this.pending.get(link);
    this.pending.delete(link);
    // What a banned peer sent is worth nothing; what an honest one sent before
    // leaving is kept for a range rescue.
    const keep = !this.banned.has(link.peerId);
    if (pending) for (const p of pending.values()) p.finish(keep ? cutShort(p) : { kind: 'failed' });
    // A segment being built from pieces may now have nobody left to ask (src/partial-plan.ts).
    for (const key of this.building) this.wake(key);
    this.emit('peer-close', { peerId: link.peerId });
  }

  private ban(peerId: string, reason: string): void {
    if (this.banned.has(peerId)) return;
    this.banned.set(peerId, reason);
    this.links.get(peerId)?.close(true);
    this.emit('peer-banned', { peerId, reason });
  }

  private announce(renditions: Iterable<string>): void {
    for (const rendition of renditions) {
      const entries = this.store.entries(rendition, this.policy.cmafMode !== 'off');
      for (const link of this.links.values()) if (link.open) link.send({ type: 'buffer-map', rendition, entries });
    }
  }

  // ---- the peer protocol ----

  private onPeerMessage(link: PeerLink, m: PeerMessage): void {
    if (!this.policy.meshEnabled) return;
    switch (m.type) {
      case 'buffer-map': {
        link.maps.set(m.rendition, new Map(m.entries.map((e) => [e.sn, e])));
        // With cmafMode 'on' more verified chunks are worth a look too (src/partial-plan.ts).
        const partials = this.policy.cmafMode === 'on';
        for (const e of m.entries) if (e.complete || (partials && e.verifiedChunks > 0)) this.wake(`${m.rendition}/${e.sn}`);
        return;
      }
      case 'request':
        return this.serveRequest(link, m);
      case 'cancel':
        return link.cancelData(m.requestId);
      case 'absent': {
        const p = this.pending.get(link)?.get(m.requestId);
        if (p) p.finish(cutShort(p));
        // Its map said it had the segment: forget that entry.
        return;
      }
      case 'data':
        return this.onData(link, m);
    }
  }

  private serveRequest(link: PeerLink, m: Extract<PeerMessage, { type: 'request' }>): void {
    // Whole verified segments; with cmafMode 'on' also the verified prefix of
    // one still arriving (docs/sdk.md, "Integrity").
    const found = this.store.slice(m.rendition, m.sn, m.start, m.length, this.policy.cmafMode === 'on');
    if (!found) {
      link.send({ type: 'absent', requestId: m.requestId });
      return;
    }
    const size = found.size;
    const end = m.start + found.bytes.length;
    const source = found.bytes;
    const hooks = this.options.testHooks;
    for (let at = m.start; at < end; at += DATA_FRAME_BYTES) {
      let bytes = source.subarray(at - m.start, Math.min(end, at + DATA_FRAME_BYTES) - m.start);
      if (hooks?.corruptUploads) {
        bytes = bytes.slice();
        bytes[0] ^= 0xff;
      }
      link.send({ type: 'data', requestId: m.requestId, offset: at, total: size, bytes });
      if (hooks?.leaveAfterUploadBytes !== undefined && at + bytes.length - m.start >= hooks.leaveAfterUploadBytes && at + bytes.length < end) {
        // Test switch: leave the mesh for good in the middle of a segment.
        setTimeout(() => { this.leftMesh = true; this.applyPolicy(); }, 50);
        return;
      }
    }
  }

  private onData(link: PeerLink, m: Extract<PeerMessage, { type: 'data' }>): void {
    const p = this.pending.get(link)?.get(m.requestId);
    if (!p) return;  // cancelled meanwhile
    if (m.total !== p.size || m.offset !== p.received || m.offset + m.bytes.length > p.end) {
      this.ban(link.peerId, `data at ${m.offset}+${m.bytes.length}/${m.total}, expected ${p.received}/${p.size} up to ${p.end}`);
      return;
    }
    const now = performance.now();
    if (p.received === p.start) {
      p.firstAt = now;
      link.meter.sampleLatency(now - p.startedAt);
    }
    p.buffer.set(m.bytes, p.received);
    p.received += m.bytes.length;
    this.totals.p2pBytes += m.bytes.length;
    if (p.chunks) this.checkChunks(p, p.buffer.subarray(0, p.received), () => this.pending.get(link)?.get(m.requestId) === p);
    if (p.stats) progress(p.stats, now, p.received, p.size);
    this.armStall(p);
    if (p.received === p.end) {
      link.meter.sampleTransfer(p.end - p.start, now - p.firstAt);
      p.finish({ kind: 'ok', bytes: p.buffer.subarray(0, p.end) });
    }
  }

  /** Verifies the CMAF chunks complete in `prefix`; announces the progress
   * (cmafMode 'advertise-only' and 'on') while `current()` says the transfer
   * still runs. A chunk from a peer that does not match bans the peer. */
  private checkChunks(p: { rendition: string; entry: ManifestSegment; chunks: ChunkProgress | null; link?: PeerLink },
                      prefix: Uint8Array, current: () => boolean): void {
    const chunks = p.chunks!;
    const before = chunks.verifiedChunks;
    void chunks.feed(prefix).then(() => {
      if (!current()) return;
      if (chunks.failed) {
        if (p.link) this.ban(p.link.peerId, `chunk ${chunks.verifiedChunks} of ${p.rendition}/${p.entry.sn} failed verification`);
        return;
      }
      if (chunks.verifiedChunks > before && chunks.verifiedChunks < chunks.total && this.policy.cmafMode !== 'off' && this.policy.meshEnabled &&
          this.store.setPartial(p.rendition, p.entry.sn, prefix.subarray(0, chunks.verifiedBytes), p.entry.size, chunks.verifiedChunks))
        this.announce([p.rendition]);
    });
  }

  private armStall(p: PendingPeerRequest): void {
    clearTimeout(p.stallTimer);
    p.stallTimer = setTimeout(() => p.finish(cutShort(p)), this.policy.peerRequestTimeoutMs);
  }

  /** Asks `link` for the whole segment; settles with all of it, a prefix
   * (the peer stalled, left, or the deadline came), or nothing. */
  private fetchFromPeer(link: PeerLink, rendition: string, entry: ManifestSegment, timeoutMs: number,
                        stats: LoaderStats | null, cancel: Array<() => void>): Promise<PeerFetch> {
    const piece = { buffer: new Uint8Array(entry.size), chunks: entry.chunks ? new ChunkProgress(entry.chunks) : null,
                    start: 0, end: entry.size, keepPartial: false };
    return this.requestBytes(link, rendition, entry, piece, timeoutMs, stats, cancel);
  }

  /** Asks `link` for bytes [start, end) of a segment into `buffer` (the
   * whole segment, from start to the end, is asked for with length
   * TO_END). `chunks` verifies the CMAF chunks as they arrive. A request
   * that ends early drops this player's partial of the segment unless
   * `keepPartial` (the caller goes on building it). */
  private requestBytes(link: PeerLink, rendition: string, entry: ManifestSegment,
                       piece: { buffer: Uint8Array; chunks: ChunkProgress | null; start: number; end: number; keepPartial: boolean },
                       timeoutMs: number, stats: LoaderStats | null, cancel: Array<() => void>): Promise<PeerFetch> {
    const { sn, size } = entry;
    const { buffer, chunks, start, end } = piece;
    return new Promise<PeerFetch>((resolve) => {
      const requestId = this.nextRequestId++;
      let requests = this.pending.get(link);
      if (!requests) this.pending.set(link, (requests = new Map()));
      const p: PendingPeerRequest = {
        link, rendition, entry, chunks, size, buffer, start, end, received: start, startedAt: performance.now(), firstAt: 0, stats,
        stallTimer: undefined, deadlineTimer: undefined,
        finish: (result) => {
          if (!requests!.has(requestId)) return;
          requests!.delete(requestId);
          link.meter.inFlight--;
          clearTimeout(p.stallTimer);
          clearTimeout(p.deadlineTimer);
          if (result.kind !== 'ok' && !piece.keepPartial && this.store.dropPartial(rendition, entry.sn)) this.announce([rendition]);
          if (result.kind !== 'ok' && link.open) link.send({ type: 'cancel', requestId });
          resolve(result);
        },
      };
      requests.set(requestId, p);
      link.meter.inFlight++;
      cancel.push(() => p.finish({ kind: 'failed' }));
      p.deadlineTimer = setTimeout(() => p.finish(cutShort(p)), timeoutMs);
      this.armStall(p);
      const length = start === 0 && end === size ? TO_END : end - start;
      link.send({ type: 'request', requestId, rendition, sn, start, length });
    });
  }

  /** cmafMode 'on': builds a segment from peers' verified chunks
   * (src/partial-plan.ts) until every chunk is verified, the deadline, or
   * nobody is left to ask; returns the verified prefix (the whole segment
   * when complete). Announces its own verified chunks as they come; a
   * peer whose chunk fails is banned and its bytes are dropped. */
  private async buildFromPieces(rendition: string, entry: ManifestSegment, deadlineMs: number, stats: LoaderStats,
                                controller: { aborted: boolean; cancel: Array<() => void> },
                                refused: Map<string, Refusal>): Promise<Uint8Array> {
    const sizes = entry.chunks!.map((c) => c.size);
    const chunks = new ChunkProgress(entry.chunks!);
    const buffer = new Uint8Array(entry.size);
    const key = `${rendition}/${entry.sn}`;
    this.building.add(key);
    try {
      while (!controller.aborted && !this.destroyed && this.policy.meshEnabled && this.policy.cmafMode === 'on') {
        const links = this.usableLinks();
        const plan = planPartialFetch({
          chunkSizes: sizes, have: chunks.verifiedChunks, nowMs: performance.now(), deadlineMs, refused,
          candidates: links.map((l) => {
            const announced = l.maps.get(rendition)?.get(entry.sn);
            return { peerId: l.peerId, bytesPerSecond: l.meter.bytesPerSecond, latencyMs: l.meter.latencyMs, inFlight: l.meter.inFlight,
                     complete: announced?.complete ?? false, verifiedChunks: announced?.verifiedChunks ?? 0 };
          }),
          connecting: [...this.links.values()].filter((l) => !l.open && !this.banned.has(l.peerId)).length,
        });
        if (plan.kind === 'done') return buffer;
        if (plan.kind === 'wait') {
          await this.waitForHolder(key, plan.untilMs, controller.cancel);
          continue;
        }
        if (plan.kind !== 'peer') break;
        const link = this.links.get(plan.peerId)!;
        const complete = link.maps.get(rendition)?.get(entry.sn)?.complete ?? false;
        const piece = { buffer, chunks, start: plan.start, end: plan.end, keepPartial: true };
        const result = await this.requestBytes(link, rendition, entry, piece, plan.timeoutMs, stats, controller.cancel);
        // The chunks those bytes complete are checked before anything else is asked for.
        await chunks.feed(buffer.subarray(0, result.kind === 'failed' ? plan.start : result.bytes.length));
        if (chunks.failed) {
          this.counts.failed++;
          this.ban(link.peerId, `chunk ${chunks.verifiedChunks} of ${key} failed verification`);
          chunks.retry();
        } else if (result.kind !== 'ok' || chunks.verifiedBytes < plan.end) {
          refused.set(link.peerId, complete ? 'whole' : 'partial');
        }
        // Its own verified chunks are announced (those checked after the request ended included).
        if (this.policy.meshEnabled && chunks.verifiedChunks < chunks.total &&
            this.store.setPartial(rendition, entry.sn, buffer.subarray(0, chunks.verifiedBytes), entry.size, chunks.verifiedChunks))
          this.announce([rendition]);
      }
      return buffer.subarray(0, chunks.verifiedBytes);
    } finally {
      this.building.delete(key);
    }
  }

  /** Peers whose buffer map announces verified chunks of the segment that may
   * be asked for: cmafMode 'on', a manifest listing the chunks, not refused. */
  private partialHolders(rendition: string, entry: ManifestSegment, refused: ReadonlyMap<string, Refusal>): Set<string> {
    const out = new Set<string>();
    if (this.policy.cmafMode !== 'on' || !entry.chunks) return out;
    for (const l of this.usableLinks()) {
      const e = l.maps.get(rendition)?.get(entry.sn);
      if (e && !e.complete && e.verifiedChunks > 0 && !refused.has(l.peerId)) out.add(l.peerId);
    }
    return out;
  }

  private dropPartial(rendition: string, sn: number): void {
    if (this.store.dropPartial(rendition, sn)) this.announce([rendition]);
  }

  private usableLinks(): PeerLink[] {
    return [...this.links.values()].filter((l) => l.open && !this.banned.has(l.peerId));
  }

  private holders(rendition: string, sn: number): PeerLink[] {
    return [...this.links.values()].filter((l) => l.open && !this.banned.has(l.peerId) && l.maps.get(rendition)?.get(sn)?.complete);
  }

  private wake(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    for (const w of set) w();
  }

  private waitForHolder(key: string, untilMs: number, cancel: Array<() => void>): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => { clearTimeout(timer); set!.delete(done); resolve(); };
      const timer = setTimeout(done, Math.max(0, untilMs - performance.now()));
      set.add(done);
      cancel.push(done);
    });
  }

  // ---- manifests ----

  private manifestUrl(playlistUrl: string): string {
    const base = this.options.originBaseUrl;
    if (!base) return `${playlistUrl}.mfsig`;
    const u = new URL(playlistUrl);
    return new URL(`${u.pathname}.mfsig`, base).toString();
  }

  private usable(manifest: SegmentManifest | null): manifest is SegmentManifest {
    return manifest !== null && manifest.expiresAt + EXPIRY_SKEW_SECONDS >= Date.now() / 1000;
  }

  /** The trusted manifest entry for `sn` of `playlistUrl`, fetching the
   * `.mfsig` when the one held does not list it (live playlists move). A
   * live player asks for a new segment as soon as the playlist lists it,
   * which can be before mf-sign has re-signed: the manifest is fetched again
   * every MANIFEST_REFETCH_MS until it lists the segment or `untilMs` (the
   * mesh's deadline) passes; then null (HTTP, unshared). */
  private async manifestEntry(playlistUrl: string, rendition: string, sn: number, uri: string | undefined,
                              untilMs: number, cancel: Array<() => void>): Promise<ManifestSegment | null> {
    if (this.keyring.size === 0) return null;
    let state = this.manifests.get(playlistUrl);
    if (!state) this.manifests.set(playlistUrl, (state = { rendition, manifest: null, fetching: null, fetchedAt: -Infinity }));
    const lookup = () => (this.usable(state!.manifest) ? findSegment(state!.manifest, sn, uri) ?? null : null);
    for (;;) {
      const entry = lookup();
      if (entry || this.destroyed) return entry;
      const now = performance.now();
      if (!state.fetching) {
        const nextFetch = state.fetchedAt + MANIFEST_REFETCH_MS;
        if (nextFetch > now) {
          if (nextFetch >= untilMs) return null;
          let cancelled = false;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, nextFetch - now);
            cancel.push(() => { cancelled = true; clearTimeout(timer); resolve(); });
          });
          if (cancelled) return null;
          continue;
        }
        state.fetching = this.fetchManifest(playlistUrl, rendition, state);
      }
      await state.fetching;
      if (performance.now() >= untilMs) return lookup();
    }
  }

  private async fetchManifest(playlistUrl: string, rendition: string, state: ManifestState): Promise<void> {
    try {
      const response = await fetch(this.manifestUrl(playlistUrl), { cache: 'no-store' });
      if (!response.ok) return;
      const result = await verifyManifest(await response.text(), this.keyring, { stream: this.options.streamId, rendition }, Date.now());
      if (result.ok) state.manifest = result.manifest;
      else this.emit('error', { message: `manifest ${this.manifestUrl(playlistUrl)} untrusted: ${result.reason}` });
    } catch {
      // unreachable: the segments of this playlist go over HTTP, unshared
    } finally {
      state.fetchedAt = performance.now();
      state.fetching = null;
    }
  }

  // ---- serving hls.js ----

  private async serve(context: LoaderContextLike, config: LoaderConfigLike, callbacks: LoaderCallbacks, stats: LoaderStats,
                      controller: { aborted: boolean; http: HttpRequest | null; headers: Headers | null; cancel: Array<() => void> }): Promise<void> {
    const loadPolicy = config.loadPolicy ?? DEFAULT_LOAD_POLICY;
    const frag = context.frag;
    const meshCandidate = !this.destroyed && frag && typeof frag.sn === 'number' && !context.part && !context.rangeEnd && frag.baseurl;
    if (!meshCandidate) {
      await this.viaHttp(context, loadPolicy, callbacks, stats, controller, null);
      return;
    }
    const sn = frag.sn as number;
    const playlistUrl = frag.baseurl!;
    const rendition = (this.options.renditionOf ?? renditionForPlaylist)(playlistUrl);
    if (rendition === null) {
      await this.viaHttp(context, loadPolicy, callbacks, stats, controller, null);
      return;
    }
    if (this.rendition !== rendition) this.startSession(rendition);
    const budgetMs = Math.max(300, (frag.duration ?? 4) * 1000 * (this.options.meshBudgetFraction ?? 0.4));
    const deadline = stats.loading.start + budgetMs;
    const entry = await this.manifestEntry(playlistUrl, rendition, sn, frag.relurl, deadline, controller.cancel);
    if (controller.aborted) return;
    if (!entry) {
      await this.viaHttp(context, loadPolicy, callbacks, stats, controller, null);
      return;
    }
    const key = `${rendition}/${sn}`;
    let partialOf: PeerLink | null = null;
    // Peers that refused or failed a request for pieces of this segment (src/partial-plan.ts).
    const refused = new Map<string, Refusal>();
    for (;;) {
      if (controller.aborted) return;
      const stored = this.store.get(rendition, sn);
      if (stored) {
        restartTiming(stats, performance.now());
        return this.deliver(context, callbacks, stats, rendition, sn, stored.bytes, 'cache', true);
      }
      const prefetching = this.inflight.get(key);
      if (prefetching) {
        await prefetching;
        continue;
      }
      const links = [...this.links.values()].filter((l) => l.open && !this.banned.has(l.peerId));
      const holders = new Set(this.holders(rendition, sn).map((l) => l.peerId));
      const plan = planFetch({
        self: this.options.peerId, key, size: entry.size, nowMs: performance.now(), deadlineMs: deadline,
        peers: links.map((l) => l.meter), holders, partialHolders: this.partialHolders(rendition, entry, refused),
        fetchers: this.options.httpFetchers ?? 1,
        httpReserveMs: 0, meshUsable: this.policy.meshEnabled && partialOf === null,
        connecting: [...this.links.values()].filter((l) => !l.open && !this.banned.has(l.peerId)).length,
        startup: this.segmentsServed === 0,
      });
      if (plan.kind === 'wait') {
        await this.waitForHolder(key, plan.untilMs, controller.cancel);
        if (performance.now() >= plan.untilMs) break;
        continue;
      }
      if (plan.kind === 'http') break;
      if (plan.kind === 'partial') {
        restartTiming(stats, performance.now());
        const built = await this.buildFromPieces(rendition, entry, deadline, stats, controller, refused);
        if (controller.aborted) {
          this.dropPartial(rendition, sn);
          return;
        }
        if (built.length === entry.size) {
          // Every chunk verified; the whole segment's SHA-256 still decides.
          if (await bytesMatch(built, entry)) {
            this.accept(rendition, sn, built);
            this.dropPartial(rendition, sn);
            return this.deliver(context, callbacks, stats, rendition, sn, built, 'p2p', true);
          }
          this.counts.failed++;
          this.dropPartial(rendition, sn);
          break;
        }
        if (built.length > 0) {
          const rescued = await this.rangeRescue(context.url, rendition, sn, entry, built, loadPolicy, stats, controller);
          this.dropPartial(rendition, sn);
          if (controller.aborted) return;
          if (rescued) return this.deliver(context, callbacks, stats, rendition, sn, rescued, 'p2p+range', true);
          break;
        }
        continue;  // nothing verified arrived: plan again (a whole holder, the election, HTTP)
      }
      const link = this.links.get(plan.peerId)!;
      restartTiming(stats, performance.now());
      const result = await this.fetchFromPeer(link, rendition, entry, plan.timeoutMs, stats, controller.cancel);
      if (controller.aborted) return;
      if (result.kind === 'ok') {
        if (await bytesMatch(result.bytes, entry)) {
          this.accept(rendition, sn, result.bytes);
          return this.deliver(context, callbacks, stats, rendition, sn, result.bytes, 'p2p', true);
        }
        this.counts.failed++;
        this.ban(link.peerId, `segment ${key} failed verification`);
        continue;
      }
      if (result.kind === 'partial' && result.bytes.length > 0) {
        const rescued = await this.rangeRescue(context.url, rendition, sn, entry, result.bytes, loadPolicy, stats, controller);
        if (controller.aborted) return;
        if (rescued) return this.deliver(context, callbacks, stats, rendition, sn, rescued, 'p2p+range', true);
        partialOf = link;
        break;
      }
      break;  // nothing from that peer before the deadline
    }
    await this.viaHttp(context, loadPolicy, callbacks, stats, controller, { rendition, sn, entry });
  }

  /** Completes a segment a peer left half done with an HTTP `Range` request
   * for exactly the missing bytes; null when that fails or the result does
   * not verify (the caller fetches the whole segment). */
  private async rangeRescue(url: string, rendition: string, sn: number, entry: ManifestSegment, prefix: Uint8Array,
                            loadPolicy: LoadPolicyTimes, stats: LoaderStats | null,
                            controller: { aborted: boolean; http: HttpRequest | null }): Promise<Uint8Array | null> {
    const [range] = missingRanges([[0, prefix.length]], entry.size);
    if (!range) return null;
    this.counts.rescues++;
    this.emit('range-rescue', { rendition, sn, start: range[0], end: range[1] });
    const request = httpGet(url, loadPolicy, range);
    controller.http = request;
    const r = await request.result;
    controller.http = null;
    this.totals.cdnBytes += request.received();
    if (r.kind !== 'ok' || r.status !== 206 || r.bytes.length !== range[1] - range[0]) return null;
    const whole = new Uint8Array(entry.size);
    whole.set(prefix, 0);
    whole.set(r.bytes, range[0]);
    if (stats) progress(stats, performance.now(), whole.length, whole.length);
    if (!(await bytesMatch(whole, entry))) return null;
    this.accept(rendition, sn, whole);
    return whole;
  }

  private async viaHttp(context: LoaderContextLike, loadPolicy: LoadPolicyTimes, callbacks: LoaderCallbacks, stats: LoaderStats,
                        controller: { aborted: boolean; http: HttpRequest | null; headers: Headers | null },
                        share: { rendition: string; sn: number; entry: ManifestSegment } | null): Promise<void> {
    const range = context.rangeEnd ? ([context.rangeStart ?? 0, context.rangeEnd] as const) : undefined;
    // The HTTP transfer is timed from its own start (see restartTiming).
    restartTiming(stats, performance.now());
    let onData: ((piece: Uint8Array) => void) | undefined;
    let arriving = false;
    if (share?.entry.chunks && !range) {
      // The CMAF chunks of a shared segment are verified (and announced) as they arrive.
      const p = { rendition: share.rendition, entry: share.entry, chunks: new ChunkProgress(share.entry.chunks) };
      const buffer = new Uint8Array(share.entry.size);
      let received = 0;
      arriving = true;
      onData = (piece) => {
        if (received + piece.length > buffer.length) return;  // longer than signed: verification fails at the end
        buffer.set(piece, received);
        received += piece.length;
        this.checkChunks(p, buffer.subarray(0, received), () => arriving);
      };
    }
    const request = httpGet(context.url, loadPolicy, range, stats, onData);
    controller.http = request;
    const r = await request.result;
    controller.http = null;
    arriving = false;
    this.totals.cdnBytes += request.received();
    if (share && r.kind !== 'ok' && this.store.dropPartial(share.rendition, share.sn)) this.announce([share.rendition]);
    if (controller.aborted || r.kind === 'aborted') return;
    if (r.kind === 'timeout') {
      callbacks.onTimeout(stats, context, null);
      return;
    }
    if (r.kind === 'error') {
      callbacks.onError({ code: r.status, text: r.text }, context, null, stats);
      return;
    }
    controller.headers = r.headers;
    let verified = false;
    if (share) {
      verified = await bytesMatch(r.bytes, share.entry);
      // docs/origin.md, "Verifying", step 4: HTTP bytes that fail are played, never shared.
      if (verified) {
        this.accept(share.rendition, share.sn, r.bytes);
      } else {
        this.counts.failed++;
        if (this.store.dropPartial(share.rendition, share.sn)) this.announce([share.rendition]);
      }
    }
    const sn = typeof context.frag?.sn === 'number' ? context.frag.sn : -1;
    this.finish(context, callbacks, stats, share?.rendition ?? '', sn, r.bytes, 'http', verified, r.url, r.status);
  }

  /** Stores verified bytes, announces them to peers, prefetches ahead. */
  private accept(rendition: string, sn: number, bytes: Uint8Array): void {
    this.counts.verified++;
    if (!this.policy.meshEnabled) return;
    this.announce(this.store.put(rendition, sn, bytes));
    this.wake(`${rendition}/${sn}`);
  }

  private deliver(context: LoaderContextLike, callbacks: LoaderCallbacks, stats: LoaderStats, rendition: string, sn: number,
                  bytes: Uint8Array, source: SegmentSource, verified: boolean): void {
    this.finish(context, callbacks, stats, rendition, sn, bytes, source, verified, context.url, 200);
    this.prefetchAfter(rendition, sn);
  }

  private finish(context: LoaderContextLike, callbacks: LoaderCallbacks, stats: LoaderStats, rendition: string, sn: number,
                 bytes: Uint8Array, source: SegmentSource, verified: boolean, url: string, code: number): void {
    finishLoad(stats, performance.now(), bytes.length);
    if (sn >= 0) {
      this.segmentsServed++;
      if (rendition) this.lastServed = { rendition, sn };
    }
    const data = copyToArrayBuffer(bytes);
    if (sn >= 0 && this.listeners.get('segment')?.size) {
      const copy = bytes.slice();
      void sha256Hex(copy).then((sha256) => this.emit('segment', { rendition, sn, source, verified, bytes: copy.length, sha256 }));
    }
    callbacks.onProgress?.(stats, context, data, null);
    callbacks.onSuccess({ url, data, code }, stats, context, null);
  }

  /** Background work ahead of the player, within `prefetchSegments` after
   * `sn` (from the manifest): segments that peers hold are fetched from
   * them, rarest first when enabled; a segment nobody holds is fetched over
   * HTTP only by this swarm's elected fetchers for it (src/scheduler.ts),
   * who then announce it: the others get it from them. */
  private prefetchAfter(rendition: string, sn: number): void {
    const limit = this.options.prefetchSegments ?? 3;
    if (!this.policy.meshEnabled || limit === 0 || this.destroyed || this.mediaDetached) return;
    const state = [...this.manifests.values()].find((m) => m.rendition === rendition);
    if (!state || !this.usable(state.manifest)) return;
    const manifest = state.manifest;
    const playlistUrl = [...this.manifests.entries()].find(([, m]) => m === state)![0];
    const ahead = manifest.segments.filter((s) => s.sn > sn).slice(0, limit).map((s) => s.sn);
    const busy = (s: number) => this.store.has(rendition, s) || this.inflight.has(`${rendition}/${s}`);
    const have = new Set(ahead.filter(busy));
    const fromPeers = choosePrefetch(ahead, have, (s) => this.holders(rendition, s).length, limit,
                                     this.options.enableRarestFirst ?? false);
    const open = [...this.links.values()].filter((l) => l.open && !this.banned.has(l.peerId)).map((l) => l.peerId);
    const members = [this.options.peerId, ...open];
    const fromHttp = open.length === 0 ? [] : ahead.filter((s) => !have.has(s) && !fromPeers.includes(s) &&
      electFetchers(members, `${rendition}/${s}`, this.options.httpFetchers ?? 1).includes(this.options.peerId));
    for (const s of [...fromPeers, ...fromHttp]) {
      const entry = manifest.segments.find((e) => e.sn === s)!;
      const key = `${rendition}/${s}`;
      const job = (fromPeers.includes(s) ? this.prefetchFromPeer(playlistUrl, rendition, entry) : this.prefetchOverHttp(playlistUrl, rendition, entry))
        .catch(() => null)
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, job);
    }
  }

  private async prefetchFromPeer(playlistUrl: string, rendition: string, entry: ManifestSegment): Promise<Uint8Array | null> {
    const [best] = this.holders(rendition, entry.sn).sort((a, b) => a.meter.inFlight - b.meter.inFlight);
    if (!best) return null;
    const r = await this.fetchFromPeer(best, rendition, entry, 4 * this.policy.peerRequestTimeoutMs, null, []);
    if (r.kind === 'partial' && r.bytes.length > 0)
      return this.rangeRescue(new URL(entry.uri, playlistUrl).toString(), rendition, entry.sn, entry, r.bytes, DEFAULT_LOAD_POLICY,
                              null, { aborted: false, http: null });
    if (r.kind !== 'ok') return null;
    if (!(await bytesMatch(r.bytes, entry))) {
      this.counts.failed++;
      this.ban(best.peerId, `segment ${rendition}/${entry.sn} failed verification`);
      return null;
    }
    this.accept(rendition, entry.sn, r.bytes);
    return r.bytes;
  }

  private async prefetchOverHttp(playlistUrl: string, rendition: string, entry: ManifestSegment): Promise<Uint8Array | null> {
    const request = httpGet(new URL(entry.uri, playlistUrl).toString(), DEFAULT_LOAD_POLICY);
    const r = await request.result;
    this.totals.cdnBytes += request.received();
    if (r.kind !== 'ok') return null;
    if (!(await bytesMatch(r.bytes, entry))) {
      this.counts.failed++;
      return null;
    }
    this.accept(rendition, entry.sn, r.bytes);
    return r.bytes;
  }

  private emit<K extends keyof MeshedFlowEvents>(event: K, value: MeshedFlowEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        (fn as (v: MeshedFlowEvents[K]) => void)(value);
      } catch {
        // a listener's bug never breaks loading
      }
    }
  }
}

/** What `core.hlsLoader()`'s class implements: hls.js's Loader interface. */
export interface MeshedFlowHlsLoaderInstance {
  context: LoaderContextLike | null;
  stats: LoaderStats;
  load(context: LoaderContextLike, config: LoaderConfigLike, callbacks: LoaderCallbacks): void;
  abort(): void;
  destroy(): void;
  getCacheAge(): number | null;
  getResponseHeader(name: string): string | null;
}
