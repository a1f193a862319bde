// A clock the tests advance by hand (the Clock interface of src/signaling.ts).
export class FakeClock {
  constructor(start = 1_000_000) { this.t = start; this.timers = new Map(); this.next = 1; }
  now() { return this.t; }
  setTimeout(fn, ms) { const id = this.next++; this.timers.set(id, { at: this.t + Math.max(0, ms), fn }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  /** Runs every timer due within `ms`, in time order, moving the clock. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let best = null;
      for (const [id, timer] of this.timers) if (timer.at <= end && (!best || timer.at < best[1].at)) best = [id, timer];
      if (!best) break;
      this.timers.delete(best[0]);
      this.t = best[1].at;
      best[1].fn();
    }
    this.t = end;
  }
  pending() { return this.timers.size; }
}
