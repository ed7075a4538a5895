import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  LATENCY_BUCKETS,
  STATS_IDLE_INTERVAL_MS,
  STATS_INTERVAL_MS,
  type StatsMessage,
} from '../protocol/worker.js';

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

/** A lag this much away from the last one sent is sent at once, even by an idle worker. */
export const LAG_CHANGE_SECONDS = 0.02;

export interface WorkerStatsOptions {
  /** The event-loop lag since the previous call, seconds (`LoopLag.take`). */
  lag?: () => number;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
  /** An idle worker's longest silence, ms. */
  idleIntervalMs?: number;
}

const newBuckets = () => new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);

/** The worker side: counts requests and flushes a {@link StatsMessage} every interval. */
export class WorkerRequestStats {
  private requests = 0;
  private codes: Record<string, number> = {};
  private buckets = newBuckets();
  private sum = 0;
  /** Per status class: its buckets, then its latency sum (sent only with two classes or more). */
  private byCode: Record<string, number[]> = {};
  private finished = 0;
  private timer: NodeJS.Timeout | undefined;
  private droppedSent = 0;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private lastLag = 0;

  constructor(
    private readonly send: (m: StatsMessage) => void,
    private readonly intervalMs = STATS_INTERVAL_MS,
    /** Log lines this worker dropped so far (reported as a difference with each message). */
    private readonly logDropped: () => number = () => 0,
    private readonly options: WorkerStatsOptions = {},
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
      const bucket = bucketOf(seconds);
      this.codes[cls] = (this.codes[cls] ?? 0) + 1;
      this.buckets[bucket]! += 1;
      this.sum += seconds;
      let own = this.byCode[cls];
      if (!own) {
        own = [...newBuckets(), 0];
        this.byCode[cls] = own;
      }
      own[bucket]! += 1;
      own[LATENCY_BUCKETS.length + 1]! += seconds;
      this.finished += 1;
    });
  }

  /**
   * Sends what was counted since the last flush, if anything; an idle worker sends its lag
   * alone when it changed or when it was silent for the idle interval.
   */
  flush(): void {
    const dropped = this.logDropped() - this.droppedSent;
    const lag = this.options.lag?.();
    const now = (this.options.now ?? performance.now.bind(performance))();
    const busy = this.requests > 0 || this.finished > 0 || dropped > 0;
    const lagDue =
      lag !== undefined &&
      (Math.abs(lag - this.lastLag) >= LAG_CHANGE_SECONDS ||
        now - this.lastSentAt >= (this.options.idleIntervalMs ?? STATS_IDLE_INTERVAL_MS));
    if (!busy && !lagDue) return;
    const m: StatsMessage = {
      type: 'stats',
      requests: this.requests,
      codes: this.codes,
      buckets: this.buckets,
      sum: this.sum,
    };
    if (Object.keys(this.byCode).length > 1) m.byCode = this.byCode;
    if (lag !== undefined) {
      m.lag = lag;
      this.lastLag = lag;
    }
    if (dropped > 0) m.logDropped = dropped;
    this.droppedSent += dropped;
    this.lastSentAt = now;
    this.requests = 0;
    this.finished = 0;
    this.codes = {};
    this.buckets = newBuckets();
    this.sum = 0;
    this.byCode = {};
    this.send(m);
  }
}
