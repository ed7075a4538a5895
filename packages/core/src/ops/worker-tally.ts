import { isCounted, type WorkerProcess, type WorkerState } from '../master/worker-state.js';
import { STATS_INTERVAL_MS, type StatsMessage } from '../protocol/worker.js';
// Types only: the metrics module (and prom-client) is loaded when --metrics-bind is set.
import type { ExitReason } from './metrics.js';
import { quantileOf } from './quantile.js';

/** A worker's figures over its last stats interval, as `arb ctl status` and `arb top` show them. */
export interface WorkerFigures {
  /** Requests started per second. */
  reqPerSec: number;
  /** Latency quantiles of the responses finished, seconds; undefined without any. */
  p50: number | undefined;
  p99: number | undefined;
  /** The longest event-loop delay of its last report, seconds; undefined before one. */
  lag: number | undefined;
}

/** The last batch of one worker, and when it came (monotonic seconds). */
interface LastBatch {
  at: number;
  requests: number;
  buckets: readonly number[];
}

/**
 * A batch older than this is not "the last interval" any more: the worker has been idle
 * since (an idle worker sends nothing, or only its lag).
 */
const FRESH_SECONDS = (2 * STATS_INTERVAL_MS) / 1000;

/**
 * What the master keeps per live worker for `arb ctl status` and the metrics: the requests
 * it served (from its batched stats) and whether it left on reaching `maxRequests`; the
 * reason of its exit is derived when it is reaped, and then it is forgotten.
 */
export class WorkerTally {
  private readonly requests = new Map<number, number>();
  private readonly maxRequestsRetired = new Set<number>();
  private readonly last = new Map<number, LastBatch>();
  private readonly lags = new Map<number, number>();
  private readonly outgrown = new Set<number>();

  /** Requests the worker of this age served so far. */
  served(age: number): number {
    return this.requests.get(age) ?? 0;
  }

  /** A worker's batch, arrived at `now` (monotonic seconds). */
  stats(worker: WorkerProcess, message: StatsMessage, now: number): void {
    this.requests.set(worker.age, this.served(worker.age) + message.requests);
    if (typeof message.lag === 'number' && Number.isFinite(message.lag))
      this.lags.set(worker.age, Math.max(0, message.lag));
    this.last.set(worker.age, { at: now, requests: message.requests, buckets: message.buckets });
  }

  /** The worker's figures at `now`: over its last interval, zero once that is stale. */
  figures(age: number, now: number): WorkerFigures {
    const last = this.last.get(age);
    const fresh = last !== undefined && now - last.at <= FRESH_SECONDS;
    const perSecond = STATS_INTERVAL_MS / 1000;
    return {
      reqPerSec: fresh ? last.requests / perSecond : 0,
      p50: fresh ? quantileOf(last.buckets, 0.5) : undefined,
      p99: fresh ? quantileOf(last.buckets, 0.99) : undefined,
      lag: this.lags.get(age),
    };
  }

  /** It reached `maxRequests` and is on its way out. */
  retiring(worker: WorkerProcess): void {
    this.maxRequestsRetired.add(worker.age);
  }

  /** It stayed above `--max-memory`, its successor serves, and it is on its way out. */
  outgrew(worker: WorkerProcess): void {
    this.outgrown.add(worker.age);
  }

  /**
   * A worker exit being reaped (`before`: its state before the exit): why it exited, as
   * the metrics label it. `generation` is the one the master keeps.
   */
  exited(
    worker: WorkerProcess,
    before: WorkerState,
    master: { stopping: boolean; generation: number },
  ): ExitReason {
    const reason = this.reasonOf(worker, before, master);
    this.requests.delete(worker.age);
    this.maxRequestsRetired.delete(worker.age);
    this.last.delete(worker.age);
    this.lags.delete(worker.age);
    this.outgrown.delete(worker.age);
    return reason;
  }

  private reasonOf(
    worker: WorkerProcess,
    before: WorkerState,
    master: { stopping: boolean; generation: number },
  ): ExitReason {
    if (worker.aborted) return 'timeout';
    if (this.maxRequestsRetired.has(worker.age)) return 'max_requests';
    if (this.outgrown.has(worker.age)) return 'max_memory';
    if (isCounted(before)) {
      const code = worker.exit?.code;
      return code === 3 || code === 4 ? 'boot_failure' : 'crash';
    }
    if (master.stopping) return 'shutdown';
    if (worker.generation !== master.generation) return 'reload';
    return 'scale_down';
  }
}
