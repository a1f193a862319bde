// CMAF chunk verification while a segment arrives (the manifest's `chunks`,
// docs/origin.md, "Verifying", step 2): fed the growing
// prefix of a segment, it verifies each chunk as soon as all its bytes are
// in, in order. Pure: no DOM; WebCrypto's digest only.

import { bytesMatch } from './manifest';
import type { ManifestChunk } from './manifest';

export class ChunkProgress {
  /** Leading chunks verified so far. */
  verifiedChunks = 0;
  /** Bytes those chunks cover. */
  verifiedBytes = 0;
  /** A complete chunk did not match: the bytes are not what the origin signed. */
  failed = false;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly chunks: readonly ManifestChunk[]) {}

  get total(): number {
    return this.chunks.length;
  }

  /** Forgets a failure: the next feed checks the chunk that failed again,
   * from bytes that replaced the bad ones (another peer's). */
  retry(): void {
    this.failed = false;
  }

  /** `prefix` holds the first bytes of the segment (it may grow between
   * calls; earlier bytes never change). Resolves when every chunk complete
   * in it is checked; calls are serialized. */
  feed(prefix: Uint8Array): Promise<void> {
    this.running = this.running.then(async () => {
      while (!this.failed && this.verifiedChunks < this.chunks.length) {
        const chunk = this.chunks[this.verifiedChunks];
        const end = this.verifiedBytes + chunk.size;
        if (end > prefix.length) return;
        if (!(await bytesMatch(prefix.subarray(this.verifiedBytes, end), chunk))) {
          this.failed = true;
          return;
        }
        this.verifiedChunks++;
        this.verifiedBytes = end;
      }
    });
    return this.running;
  }
}
