// The verified segments this player holds, per rendition: what it answers
// peers from and announces in buffer maps. Only verified bytes enter
// (../shared/spec/segment-manifest.md section 3). Memory is bounded twice: a
// horizon of `horizonSegments` sequence numbers behind the newest one stored
// for that rendition, and `maxBytes` over all renditions (the oldest segments
// go first). Pure: no DOM.

import type { BufferMapEntry } from './peer-protocol';

export interface StoredSegment {
  sn: number;
  bytes: Uint8Array;
}

export class SegmentStore {
  private readonly renditions = new Map<string, Map<number, StoredSegment>>();
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

  /** Stores a verified segment; returns the renditions whose map changed. */
  put(rendition: string, sn: number, bytes: Uint8Array): Set<string> {
    const changed = new Set<string>([rendition]);
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

  /** The buffer map for `rendition`: every stored segment, complete. */
  entries(rendition: string): BufferMapEntry[] {
    const map = this.renditions.get(rendition);
    return map ? [...map.keys()].sort((a, b) => a - b).map((sn) => ({ sn, complete: true, verifiedChunks: 0 })) : [];
  }

  renditionNames(): string[] {
    return [...this.renditions.keys()];
  }

  clear(): void {
    this.renditions.clear();
    this.bytes = 0;
  }
}
