// Partial segments (cmafMode 'on', docs/sdk.md, section "Scheduling",
// "Partial segments"): which peer to ask for which bytes of a segment that no
// peer holds whole yet, while its CMAF chunks are verified one by one. Pure:
// the caller passes what its peers announce, what it holds and the time; no
// timers, no I/O.
//
// The segment is built from its start: the player holds `have` leading
// chunks, verified against the manifest's `chunks`, and every request starts
// at the end of them (a chunk boundary), so each chunk comes from one peer
// and a chunk that fails names its sender.
// - A peer announcing the segment whole gives the rest, [have, size).
// - Else the peer announcing the most verified chunks beyond `have` gives
//   exactly those: [have, end of its last verified chunk). Its next buffer
//   maps announce more, and the caller plans again (a follow-up request).
// - A peer that refused or failed a request for this segment is not asked
//   again while it only announces a partial; announcing it whole, it is
//   asked once more.
// - At the deadline, or at once when no peer is left to announce more, the
//   missing tail [have, size) goes to HTTP with a `Range` request; with
//   nothing verified yet, the whole segment does.

import { rankPeers } from './scheduler';
import type { PeerMeasure } from './scheduler';

/** A usable peer and what its buffer map announces for the segment. */
export interface PartialCandidate extends PeerMeasure {
  complete: boolean;
  verifiedChunks: number;
}

/** Why a peer is not asked again for this segment: it refused or failed a
 * request while announcing a partial ('partial') or the whole ('whole'). */
export type Refusal = 'partial' | 'whole';

export interface PartialInput {
  /** The manifest's chunk sizes, in order (they add up to the segment's size). */
  chunkSizes: readonly number[];
  /** Leading chunks this player holds, verified. */
  have: number;
  nowMs: number;
  /** When the mesh must hand over to HTTP. */
  deadlineMs: number;
  /** Usable peers (connected, not banned) with their announcements. */
  candidates: readonly PartialCandidate[];
  refused: ReadonlyMap<string, Refusal>;
  /** Peers being connected (their buffer maps may announce more). */
  connecting?: number;
}

export type PartialPlan =
  /** Ask `peerId` for bytes [start, end). */
  | { kind: 'peer'; peerId: string; start: number; end: number; timeoutMs: number }
  /** Wait for a buffer map announcing more, until `untilMs`. */
  | { kind: 'wait'; untilMs: number }
  /** HTTP `Range` for the tail [start, end). */
  | { kind: 'rescue'; start: number; end: number }
  /** Nothing verified and nobody to ask: back to the whole-segment plan. */
  | { kind: 'none' }
  /** Every chunk is verified. */
  | { kind: 'done' };

/** Byte offset where chunk `index` starts (the segment's size past the last). */
export function chunkOffset(chunkSizes: readonly number[], index: number): number {
  let at = 0;
  for (let i = 0; i < Math.min(index, chunkSizes.length); i++) at += chunkSizes[i];
  return at;
}

/** What to do next for a segment being built from peers' verified chunks. */
export function planPartialFetch(i: PartialInput): PartialPlan {
  const total = i.chunkSizes.length;
  if (i.have >= total) return { kind: 'done' };
  const size = chunkOffset(i.chunkSizes, total);
  const start = chunkOffset(i.chunkSizes, i.have);
  const timeoutMs = i.deadlineMs - i.nowMs;
  const tail = (): PartialPlan => (i.have > 0 ? { kind: 'rescue', start, end: size } : { kind: 'none' });
  if (timeoutMs <= 0) return tail();
  const whole = i.candidates.filter((c) => c.complete && i.refused.get(c.peerId) !== 'whole');
  if (whole.length > 0) return { kind: 'peer', peerId: rankPeers(whole, size - start)[0].peerId, start, end: size, timeoutMs };
  const partial = i.candidates.filter((c) => !c.complete && !i.refused.has(c.peerId) && c.verifiedChunks > i.have);
  if (partial.length > 0) {
    const most = Math.min(total, Math.max(...partial.map((c) => c.verifiedChunks)));
    const end = chunkOffset(i.chunkSizes, most);
    const [best] = rankPeers(partial.filter((c) => Math.min(total, c.verifiedChunks) === most), end - start);
    return { kind: 'peer', peerId: best.peerId, start, end, timeoutMs };
  }
  if (i.have === 0) return { kind: 'none' };
  if (i.candidates.length === 0 && !i.connecting) return tail();
  return { kind: 'wait', untilMs: i.deadlineMs };
}
