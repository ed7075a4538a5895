import { LATENCY_BUCKETS, type StatsMessage } from '../protocol/worker.js';
import type { CanarySettings } from '../settings.js';

/**
 * The canary's verdict, from the per-worker stats the workers send about once a second
 * (`protocol/worker.ts`): the canary workers' 5xx rate and p99 latency against the old
 * generation's, over the same window.
 *
 * - The window opens when every canary worker is ready and closes `seconds` later; a stats
 *   message counts on the side (canary or old) of the worker that sent it. Both sides see
 *   the same one-interval lag, so the comparison stays fair.
 * - p99 comes from the latency buckets, so it is known only as a range (a bucket's bounds).
 *   The canary fails only when it is certainly slower: the lower bound of its p99 above
 *   `maxP99Ratio` x the upper bound of the old generation's. Bucket resolution, and a fresh
 *   worker's colder first requests, can then never fail a release that is as fast as the
 *   old one; a release 2.5x slower or more across a bucket boundary is caught.
 * - A verdict needs data: with fewer than {@link CANARY_MIN_REQUESTS} finished responses
 *   from the canary, nothing vouches for the release and it is rolled back, saying so (a
 *   release that hangs or crawls starves its own sample: rolling it forward unjudged would
 *   let exactly those through). With fewer from the old generation, only the p99 is left
 *   unjudged (the 5xx rate still has its absolute limit).
 */
export const CANARY_MIN_REQUESTS = 20;

/** What one side of the comparison answered during the window. */
export interface Tally {
  /** Finished responses. */
  responses: number;
  /** Of them, 5xx. */
  errors: number;
  /** Finished responses per latency bucket (`LATENCY_BUCKETS`, then +Inf). */
  buckets: number[];
}

export const emptyTally = (): Tally => ({
  responses: 0,
  errors: 0,
  buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
});

/** The stats of the canary window, split by side; reset when a window opens. */
export class CanaryWindow {
  canary: Tally = emptyTally();
  old: Tally = emptyTally();
  /** The generation under test; -1 while no window is open. */
  private generation = -1;

  /** Opens a window for `generation`'s canary (what was counted before is dropped). */
  open(generation: number): void {
    this.generation = generation;
    this.canary = emptyTally();
    this.old = emptyTally();
  }

  close(): void {
    this.generation = -1;
  }

  /** One worker's stats message; ignored when no window is open. */
  add(workerGeneration: number, m: StatsMessage): void {
    if (this.generation < 0) return;
    const t = workerGeneration === this.generation ? this.canary : this.old;
    for (const [i, n] of m.buckets.entries()) {
      t.buckets[i]! += n;
      t.responses += n;
    }
    t.errors += m.codes['5xx'] ?? 0;
  }
}

/** The p99 as the bounds of the bucket it falls in (seconds; upper Infinity for +Inf). */
export interface P99 {
  lower: number;
  upper: number;
}

/** The bucket the 99th percentile of `buckets` falls in; undefined when there is none. */
export function p99Of(buckets: readonly number[]): P99 | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.ceil(total * 0.99);
  let seen = 0;
  for (const [i, n] of buckets.entries()) {
    seen += n;
    if (seen >= rank) {
      return {
        lower: i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!,
        upper: LATENCY_BUCKETS[i] ?? Infinity,
      };
    }
  }
  return undefined; // unreachable: seen reaches total
}

export interface CanaryVerdict {
  /** false: roll back. */
  ok: boolean;
  /**
   * One phrase naming the figures: a failure's starts `canary ` (the rollback line is
   * `Reload failed: <summary>; ...`).
   */
  summary: string;
  fields: Record<string, unknown>;
}

/** Judges the canary's window against the old generation's (see the rules above). */
export function judgeCanary(
  canary: Tally,
  old: Tally,
  limits: Pick<CanarySettings, 'maxErrorRate' | 'maxP99Ratio' | 'seconds'>,
): CanaryVerdict {
  const rate = (t: Tally) => (t.responses === 0 ? 0 : t.errors / t.responses);
  const cp = p99Of(canary.buckets);
  const op = p99Of(old.buckets);
  const fields = {
    canary: { requests: canary.responses, errors: canary.errors, rate: rate(canary), p99: cp },
    old: { requests: old.responses, errors: old.errors, rate: rate(old), p99: op },
  };
  const over = `over ${canary.responses} requests`;
  if (canary.responses < CANARY_MIN_REQUESTS) {
    return {
      ok: false,
      summary:
        `canary answered ${canary.responses} requests in ${limits.seconds}s, ` +
        `fewer than the ${CANARY_MIN_REQUESTS} needed to judge it`,
      fields,
    };
  }
  const cr = rate(canary);
  const or = rate(old);
  if (cr > limits.maxErrorRate && cr > or) {
    return {
      ok: false,
      summary: `canary 5xx rate ${fix(cr)} > ${limits.maxErrorRate} (old generation ${fix(or)}) ${over}`,
      fields,
    };
  }
  const errors = `5xx rate ${fix(cr)} (old generation ${fix(or)})`;
  if (old.responses < CANARY_MIN_REQUESTS || cp === undefined || op === undefined) {
    return {
      ok: true,
      summary:
        `${errors} ${over}, p99 not judged: the old generation answered ` +
        `${old.responses} requests, fewer than the ${CANARY_MIN_REQUESTS} needed`,
      fields,
    };
  }
  if (cp.lower > limits.maxP99Ratio * op.upper) {
    return {
      ok: false,
      summary:
        `canary p99 latency >= ${secs(cp.lower)} > ${limits.maxP99Ratio} x the old ` +
        `generation's (<= ${secs(op.upper)}) ${over}`,
      fields,
    };
  }
  return {
    ok: true,
    summary: `${errors}, p99 ${range(cp)} (old generation ${range(op)}) ${over}`,
    fields,
  };
}

const fix = (x: number) => x.toFixed(2);
const secs = (x: number) => `${x}s`;
const range = (p: P99) => (p.upper === Infinity ? `> ${secs(p.lower)}` : `<= ${secs(p.upper)}`);
