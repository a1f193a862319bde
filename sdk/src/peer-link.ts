// One WebRTC connection to another viewer: an RTCPeerConnection with one
// reliable, ordered data channel carrying the peer protocol
// (src/peer-protocol.ts). Signaling (offer, answer, trickled candidates) goes
// through the core's SignalingClient; this class owns the connection and the
// sending side: control frames first, data frames under the player's upload
// cap (a shared TokenBucket) and under backpressure, sending only while the
// channel's bufferedAmount is below HIGH_WATER_BYTES and resuming on
// `bufferedamountlow` (threshold LOW_WATER_BYTES).

import { decodeMessages, encodeMessage, PeerProtocolError } from './peer-protocol';
import type { PeerMessage } from './peer-protocol';
import { PeerMeter } from './scheduler';
import type { BufferMapEntry } from './peer-protocol';
import type { TokenBucket } from './token-bucket';

export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;
export const CHANNEL_LABEL = 'meshedflow-p2p';

export interface LinkHost {
  rtcConfiguration: RTCConfiguration;
  uploadBucket: TokenBucket;
  candidateFilter(candidate: RTCIceCandidateInit): boolean;
  signal(to: string, kind: 'offer' | 'answer' | 'candidate' | 'bye', data: unknown): void;
  onOpen(link: PeerLink): void;
  onClose(link: PeerLink): void;
  onMessage(link: PeerLink, message: PeerMessage): void;
  /** The peer broke the peer protocol: the core drops it. */
  onViolation(link: PeerLink, reason: string): void;
  countUploaded(bytes: number): void;
}

export class PeerLink {
  readonly pc: RTCPeerConnection;
  channel: RTCDataChannel | null = null;
  readonly meter: PeerMeter;
  /** What the peer announced, per rendition: sn -> entry. */
  readonly maps = new Map<string, Map<number, BufferMapEntry>>();
  private queuedCandidates: RTCIceCandidateInit[] = [];
  private control: Uint8Array[] = [];
  private data: Array<{ requestId: number; frame: Uint8Array }> = [];
  private resumeTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  offerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly peerId: string, readonly offerer: boolean, private readonly host: LinkHost) {
    this.meter = new PeerMeter(peerId);
    this.pc = new RTCPeerConnection(host.rtcConfiguration);
    this.pc.onicecandidate = (event) => {
      if (!event.candidate) return;
      const candidate = event.candidate.toJSON();
      if (host.candidateFilter(candidate)) host.signal(peerId, 'candidate', candidate);
    };
    this.pc.onconnectionstatechange = () => {
      if (['failed', 'closed'].includes(this.pc.connectionState)) this.close();
    };
    if (offerer) {
      this.attach(this.pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
    } else {
      this.pc.ondatachannel = (event) => { if (event.channel.label === CHANNEL_LABEL) this.attach(event.channel); };
    }
  }

  get open(): boolean {
    return !this.closed && this.channel?.readyState === 'open';
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async offer(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.closed || !this.pc.localDescription) return;
    const { type, sdp } = this.pc.localDescription;
    this.host.signal(this.peerId, 'offer', { type, sdp });
  }

  async acceptOffer(description: RTCSessionDescriptionInit): Promise<void> {
    await this.pc.setRemoteDescription(description);
    await this.flushCandidates();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (this.closed || !this.pc.localDescription) return;
    const { type, sdp } = this.pc.localDescription;
    this.host.signal(this.peerId, 'answer', { type, sdp });
  }

  async acceptAnswer(description: RTCSessionDescriptionInit): Promise<void> {
    if (this.pc.signalingState !== 'have-local-offer') return;  // stale
    await this.pc.setRemoteDescription(description);
    await this.flushCandidates();
  }

  async addCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    if (!this.host.candidateFilter(candidate)) return;
    if (this.pc.remoteDescription) await this.pc.addIceCandidate(candidate);
    else this.queuedCandidates.push(candidate);
  }

  private async flushCandidates(): Promise<void> {
    for (const c of this.queuedCandidates.splice(0)) await this.pc.addIceCandidate(c);
  }

  private attach(channel: RTCDataChannel): void {
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER_BYTES;
    channel.onopen = () => {
      clearTimeout(this.offerTimer);
      if (!this.closed) this.host.onOpen(this);
    };
    channel.onclose = () => this.close();
    channel.onbufferedamountlow = () => this.pump();
    channel.onmessage = (event) => {
      if (this.closed) return;
      if (!(event.data instanceof ArrayBuffer)) {
        this.host.onViolation(this, 'text message on the peer channel');
        return;
      }
      let messages: PeerMessage[];
      try {
        messages = decodeMessages(new Uint8Array(event.data));
      } catch (error) {
        this.host.onViolation(this, error instanceof PeerProtocolError ? error.message : String(error));
        return;
      }
      for (const m of messages) {
        if (this.closed) return;
        this.host.onMessage(this, m);
      }
    };
  }

  /** Queues a frame: control frames go out before data frames; data frames
   * (`m.type === 'data'`) count against the upload cap. */
  send(m: PeerMessage): void {
    if (this.closed) return;
    if (m.type === 'data') this.data.push({ requestId: m.requestId, frame: encodeMessage(m) });
    else this.control.push(encodeMessage(m));
    this.pump();
  }

  /** Drops the queued data frames answering `requestId` (the peer cancelled). */
  cancelData(requestId: number): void {
    this.data = this.data.filter((d) => d.requestId !== requestId);
  }

  private pump(): void {
    const channel = this.channel;
    if (!channel || channel.readyState !== 'open' || this.closed) return;
    while (this.control.length > 0 && channel.bufferedAmount < HIGH_WATER_BYTES) channel.send(this.control.shift()! as Uint8Array<ArrayBuffer>);
    while (this.data.length > 0 && channel.bufferedAmount < HIGH_WATER_BYTES) {
      const { frame } = this.data[0];
      const waitMs = this.host.uploadBucket.take(frame.length, performance.now());
      if (waitMs > 0) {
        if (this.resumeTimer === undefined)
          this.resumeTimer = setTimeout(() => { this.resumeTimer = undefined; this.pump(); }, waitMs);
        return;
      }
      this.data.shift();
      channel.send(frame as Uint8Array<ArrayBuffer>);
      this.host.countUploaded(frame.length);
    }
    // Otherwise `bufferedamountlow` calls pump() again.
  }

  /** Closes the connection; says `bye` through signaling when `sayBye`. */
  close(sayBye = false): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.offerTimer);
    clearTimeout(this.resumeTimer);
    this.control = [];
    this.data = [];
    if (this.channel) {
      this.channel.onmessage = null;
      this.channel.onclose = null;
      this.channel.onbufferedamountlow = null;
      this.channel.close();
    }
    this.pc.onicecandidate = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
    if (sayBye) this.host.signal(this.peerId, 'bye', null);
    this.host.onClose(this);
  }
}
