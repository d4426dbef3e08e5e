/** Small coordination primitives for the scan pipeline. */

/**
 * A weighted semaphore. After {@link close}, waiters and later callers get `false` instead of a permit, so a
 * cancelled pipeline unblocks without anyone having to track who was waiting.
 */
export class Gate {
  private readonly waiters: Array<{ n: number; resolve: (granted: boolean) => void }> = [];
  private closed = false;

  constructor(private available: number) {}

  acquire(n = 1): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.waiters.length === 0 && this.available >= n) {
      this.available -= n;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  release(n = 1): void {
    this.available += n;
    while (!this.closed && this.waiters.length > 0 && this.available >= this.waiters[0].n) {
      const waiter = this.waiters.shift()!;
      this.available -= waiter.n;
      waiter.resolve(true);
    }
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(false);
  }
}

/** "Something changed": waiters re-check their own condition after each notify. */
export class Changes {
  private waiters: Array<() => void> = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Completions per second over a sliding window, so the ETA follows the current pace, not the average. */
export class RateMeter {
  private readonly samples: Array<{ t: number; count: number }> = [];

  constructor(private readonly windowMs = 10_000) {}

  sample(t: number, count: number): number {
    this.samples.push({ t, count });
    while (this.samples.length > 2 && t - this.samples[1].t >= this.windowMs) this.samples.shift();
    const first = this.samples[0];
    const seconds = (t - first.t) / 1000;
    return seconds > 0 ? (count - first.count) / seconds : 0;
  }
}
