import { performance } from 'node:perf_hooks';

/** Monotonic seconds: immune to wall-clock jumps; use for every deadline and duration. */
export function monoNow(): number {
  return performance.now() / 1000;
}

/** Wall-clock epoch seconds, only for reporting (`next_retry_at`, `started_at`). */
export function wallNow(): number {
  return Date.now() / 1000;
}
