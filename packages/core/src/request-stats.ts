import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Request counts and latencies, counted in each worker and sent to the master in one IPC
 * message per interval (never one per request). The master adds them up for `/metrics`
 * and for `arb ctl status`.
 */

/** Upper bounds (seconds) of the latency histogram buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** How often a worker sends its counts (only when it counted something). */
export const STATS_INTERVAL_MS = 1000;

/** Worker → master: what was counted since the previous message. */
export interface StatsMessage {
  type: 'stats';
  /** Requests started. */
  requests: number;
  /** Responses finished, by status class (`2xx`, `5xx`, ...). */
  codes: Record<string, number>;
  /** Finished responses per latency bucket (not cumulative), `LATENCY_BUCKETS.length + 1` long. */
  buckets: number[];
  /** Sum of the latencies of the finished responses, seconds. */
  sum: number;
}

export function isStatsMessage(m: unknown): m is StatsMessage {
  const s = m as Partial<StatsMessage> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    s.type === 'stats' &&
    typeof s.requests === 'number' &&
    typeof s.sum === 'number' &&
    Array.isArray(s.buckets) &&
    s.buckets.length === LATENCY_BUCKETS.length + 1 &&
    typeof s.codes === 'object' &&
    s.codes !== null
  );
}

/** Index of the bucket a latency falls in. */
export function bucketOf(seconds: number): number {
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) return i;
  return LATENCY_BUCKETS.length;
}

/** The worker side: counts requests and flushes a {@link StatsMessage} every interval. */
export class WorkerRequestStats {
  private requests = 0;
  private codes: Record<string, number> = {};
  private buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  private sum = 0;
  private finished = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (m: StatsMessage) => void,
    private readonly intervalMs = STATS_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Counts one request now and its status and latency when the response ends. */
  track(_req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const cls = `${Math.floor(res.statusCode / 100)}xx`;
      this.codes[cls] = (this.codes[cls] ?? 0) + 1;
      this.buckets[bucketOf(seconds)]! += 1;
      this.sum += seconds;
      this.finished += 1;
    });
  }

  /** Sends what was counted since the last flush, if anything. */
  flush(): void {
    if (this.requests === 0 && this.finished === 0) return;
    const m: StatsMessage = {
      type: 'stats',
      requests: this.requests,
      codes: this.codes,
      buckets: this.buckets,
      sum: this.sum,
    };
    this.requests = 0;
    this.finished = 0;
    this.codes = {};
    this.buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    this.sum = 0;
    this.send(m);
  }
}
