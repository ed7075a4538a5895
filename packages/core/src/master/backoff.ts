/**
 * Capped exponential backoff: the n-th consecutive failure waits min(base·2^(n−1), cap)
 * seconds. Used for workers that die right after boot and for the sidecar.
 */
export class Backoff {
  failures = 0;
  /** Monotonic seconds before which nothing is (re)spawned; 0 when not backing off. */
  until = 0;

  constructor(
    readonly base: number,
    readonly cap: number,
  ) {}

  /** Counts a failure at `now` and returns the delay it arms. */
  fail(now: number): number {
    this.failures += 1;
    const delay = Math.min(this.base * 2 ** (this.failures - 1), this.cap);
    this.until = now + delay;
    return delay;
  }

  reset(): void {
    this.failures = 0;
    this.until = 0;
  }

  /** Seconds left to wait at `now` (0 when free to go). */
  remaining(now: number): number {
    return Math.max(0, this.until - now);
  }
}
