import { isCounted, type WorkerProcess, type WorkerState } from '../master/worker-state.js';
import type { StatsMessage } from '../protocol/worker.js';
// Types only: the metrics module (and prom-client) is loaded when --metrics-bind is set.
import type { ExitReason } from './metrics.js';

/**
 * What the master keeps per live worker for `arb ctl status` and the metrics: the requests
 * it served (from its batched stats) and whether it left on reaching `maxRequests`; the
 * reason of its exit is derived when it is reaped, and then it is forgotten.
 */
export class WorkerTally {
  private readonly requests = new Map<number, number>();
  private readonly maxRequestsRetired = new Set<number>();
  private readonly outgrown = new Set<number>();

  /** Requests the worker of this age served so far. */
  served(age: number): number {
    return this.requests.get(age) ?? 0;
  }

  stats(worker: WorkerProcess, message: StatsMessage): void {
    this.requests.set(worker.age, this.served(worker.age) + message.requests);
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
