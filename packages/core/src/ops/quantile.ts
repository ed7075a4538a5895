import { LATENCY_BUCKETS } from '../protocol/worker.js';

/**
 * The `q` quantile (0..1) of a latency histogram given as per-bucket counts (not cumulative,
 * `LATENCY_BUCKETS.length + 1` long), seconds, interpolated linearly within its bucket as
 * Prometheus' `histogram_quantile` does; undefined when the histogram is empty. A quantile
 * in the +Inf bucket is the last finite bound: the histogram knows no more.
 */
export function quantileOf(buckets: readonly number[], q: number): number | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      if (i >= LATENCY_BUCKETS.length) return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!;
      const lower = i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!;
      const upper = LATENCY_BUCKETS[i]!;
      return lower + (upper - lower) * ((rank - below) / n);
    }
    below += n;
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!;
}
