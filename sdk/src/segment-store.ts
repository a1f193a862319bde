// The verified segments this player holds, per rendition: what it answers
// peers from and announces in buffer maps. Only verified bytes enter
// (docs/origin.md, "Verifying"). Memory is bounded twice: a
// horizon of `horizonSegments` sequence numbers behind the newest one stored
// for that rendition, and `maxBytes` over all renditions (the oldest segments
// go first). Pure: no DOM.
//
// A segment still arriving whose leading CMAF chunks are verified is a
// "partial": announced with its count of verified chunks (cmafMode
// 'advertise-only' and 'on') and, with 'on', served for byte ranges within
// its verified prefix. A partial refers to the receive buffer (not counted in
// maxBytes: there are at most as many as segments in flight) and is replaced
// by the whole segment or dropped.

import type { BufferMapEntry } from './peer-protocol';

export interface StoredSegment {
  sn: number;
  bytes: Uint8Array;
}

interface Partial {
  prefix: Uint8Array;
  size: number;
  verifiedChunks: number;
}

export class SegmentStore {
  private readonly renditions = new Map<string, Map<number, StoredSegment>>();
  private readonly partials = new Map<string, Map<number, Partial>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number, private readonly horizonSegments: number) {}

  get size(): number {
    return this.bytes;
  }

  get(rendition: string, sn: number): StoredSegment | undefined {
    return this.renditions.get(rendition)?.get(sn);
  }

  has(rendition: string, sn: number): boolean {
    return this.renditions.get(rendition)?.has(sn) ?? false;
  }

  /** Records that the first `prefix.length` bytes (exactly `verifiedChunks`
   * chunks) of a `size`-byte segment are verified; false when nothing
   * changed (already whole, or no more chunks than before). */
  setPartial(rendition: string, sn: number, prefix: Uint8Array, size: number, verifiedChunks: number): boolean {
    if (this.has(rendition, sn) || verifiedChunks === 0) return false;
    let map = this.partials.get(rendition);
    if (!map) this.partials.set(rendition, (map = new Map()));
    if ((map.get(sn)?.verifiedChunks ?? 0) >= verifiedChunks) return false;
    map.set(sn, { prefix, size, verifiedChunks });
    return true;
  }

  /** Forgets a partial (the transfer failed); true when there was one. */
  dropPartial(rendition: string, sn: number): boolean {
    const map = this.partials.get(rendition);
    if (!map?.delete(sn)) return false;
    if (map.size === 0) this.partials.delete(rendition);
    return true;
  }

  /** Bytes [start, start + length) of segment `sn` (length 0xFFFFFFFF: to
   * the end) and the segment's size, from a whole segment, or with
   * `fromPartial` from a partial's verified prefix when the range lies in
   * it; null otherwise. */
  slice(rendition: string, sn: number, start: number, length: number, fromPartial: boolean): { bytes: Uint8Array; size: number } | null {
    const whole = this.get(rendition, sn);
    const source = whole ? { prefix: whole.bytes, size: whole.bytes.length } : fromPartial ? this.partials.get(rendition)?.get(sn) : undefined;
    if (!source) return null;
    const end = length === 0xffffffff ? source.size : start + length;
    if (start >= end || end > source.prefix.length) return null;
    return { bytes: source.prefix.subarray(start, end), size: source.size };
  }

  /** Stores a verified segment; returns the renditions whose map changed. */
  put(rendition: string, sn: number, bytes: Uint8Array): Set<string> {
    const changed = new Set<string>([rendition]);
    this.dropPartial(rendition, sn);
    if (bytes.length > this.maxBytes) return new Set();
    let map = this.renditions.get(rendition);
    if (!map) this.renditions.set(rendition, (map = new Map()));
    const old = map.get(sn);
    if (old) this.bytes -= old.bytes.length;
    map.set(sn, { sn, bytes });
    this.bytes += bytes.length;
    const newest = Math.max(...map.keys());
    for (const k of [...map.keys()]) if (k < newest - this.horizonSegments) this.remove(rendition, k);
    while (this.bytes > this.maxBytes) {
      let victim: [string, number] | null = null;
      for (const [r, m] of this.renditions)
        for (const k of m.keys()) if (!(r === rendition && k === sn) && (!victim || k < victim[1])) victim = [r, k];
      if (!victim) break;
      this.remove(victim[0], victim[1]);
      changed.add(victim[0]);
    }
    return changed;
  }

  private remove(rendition: string, sn: number): void {
    const map = this.renditions.get(rendition);
    const s = map?.get(sn);
    if (!map || !s) return;
    map.delete(sn);
    this.bytes -= s.bytes.length;
    if (map.size === 0) this.renditions.delete(rendition);
  }

  /** The buffer map for `rendition`: every stored segment (complete) and,
   * with `withPartials`, every partial with its verified chunk count. */
  entries(rendition: string, withPartials = false): BufferMapEntry[] {
    const out: BufferMapEntry[] = [...(this.renditions.get(rendition)?.keys() ?? [])].map((sn) => ({ sn, complete: true, verifiedChunks: 0 }));
    if (withPartials)
      for (const [sn, p] of this.partials.get(rendition) ?? []) out.push({ sn, complete: false, verifiedChunks: p.verifiedChunks });
    return out.sort((a, b) => a.sn - b.sn);
  }

  renditionNames(): string[] {
    return [...new Set([...this.renditions.keys(), ...this.partials.keys()])];
  }

  clear(): void {
    this.renditions.clear();
    this.partials.clear();
    this.bytes = 0;
  }
}
