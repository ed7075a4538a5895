import type { IncomingMessage, ServerResponse } from 'node:http';
import { LATENCY_BUCKETS, STATS_INTERVAL_MS, type StatsMessage } from '../protocol/worker.js';

/**
 * Request counts and latencies, counted in each worker and sent to the master in one IPC
 * message per interval (never one per request). The master adds them up for `/metrics`
 * and for `arb ctl status`.
 */

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
  private droppedSent = 0;

  constructor(
    private readonly send: (m: StatsMessage) => void,
    private readonly intervalMs = STATS_INTERVAL_MS,
    /** Log lines this worker dropped so far (reported as a difference with each message). */
    private readonly logDropped: () => number = () => 0,
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
    const dropped = this.logDropped() - this.droppedSent;
    if (this.requests === 0 && this.finished === 0 && dropped === 0) return;
    const m: StatsMessage = {
      type: 'stats',
      requests: this.requests,
      codes: this.codes,
      buckets: this.buckets,
      sum: this.sum,
    };
    if (dropped > 0) m.logDropped = dropped;
    this.droppedSent += dropped;
    this.requests = 0;
    this.finished = 0;
    this.codes = {};
    this.buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    this.sum = 0;
    this.send(m);
  }
}
