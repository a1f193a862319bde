// The upload cap (policy `uploadCapKbps`): a token bucket over all of a
// player's peers. Pure: the time is a parameter (milliseconds).

export class TokenBucket {
  private tokens: number;
  private at: number;

  /** `kbps` 0 means no cap. The bucket holds at most `burstBytes`. */
  constructor(private kbps: number, private readonly burstBytes: number, nowMs: number) {
    this.tokens = burstBytes;
    this.at = nowMs;
  }

  setRate(kbps: number): void {
    this.kbps = kbps;
  }

  private refill(nowMs: number): void {
    const bytesPerMs = (this.kbps * 1000) / 8 / 1000;
    this.tokens = Math.min(this.burstBytes, this.tokens + Math.max(0, nowMs - this.at) * bytesPerMs);
    this.at = nowMs;
  }

  /** Takes `bytes` and returns 0 when they may go now; otherwise returns the
   * milliseconds to wait and takes nothing. */
  take(bytes: number, nowMs: number): number {
    if (this.kbps === 0) return 0;
    this.refill(nowMs);
    const need = Math.min(bytes, this.burstBytes);
    if (this.tokens >= need) {
      this.tokens -= need;
      return 0;
    }
    const bytesPerMs = (this.kbps * 1000) / 8 / 1000;
    return Math.ceil((need - this.tokens) / bytesPerMs);
  }
}
