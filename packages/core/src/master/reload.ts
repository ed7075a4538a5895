import type { Logger } from '../logger.js';
import { isCounted, type WorkerProcess } from './worker-state.js';

/**
 * HUP reload as a state machine, stepped by the one master loop (never by a signal
 * handler, so nothing races):
 *
 *   idle ─HUP→ loading-config ─ok→ booting-generation ─all new ready→ retiring-old ─old gone→ idle
 *                  │                     │
 *                  │ invalid config      │ a new worker exits 3/4, or not all ready in bootTimeout
 *                  ↓                     ↓
 *                 idle              rolling-back ─failed generation gone→ idle
 *
 * - loading-config: the config is read afresh (`reloadConfig`); if it does not validate,
 *   nothing changed and we are idle again (one error line).
 * - booting-generation: new listeners are bound, the new settings and hooks are in force,
 *   `onReload` ran, and the new generation's workers boot. Each time one of them reports
 *   ready, one old worker is retired (TERM, drained within gracefulTimeout): the number
 *   of workers serving never drops below the target.
 * - retiring-old: every new worker is ready, the sidecar got the new spec; we wait until
 *   the old workers are gone, then close the listeners the new config dropped.
 * - rolling-back: the new generation is stopped (TERM), the previous settings, hooks,
 *   listeners and worker count are back, and `manageWorkers` replaces any old worker
 *   retired meanwhile; once the failed generation is gone we are idle.
 *
 * A HUP that arrives while not idle is remembered (once: coalesced) and starts one more
 * reload when this one ends.
 */
export type ReloadState =
  | 'idle'
  | 'loading-config'
  | 'booting-generation'
  | 'retiring-old'
  | 'rolling-back';

/** How a reload ended; emitted once per reload (the ctl `reload` command answers with it). */
export interface ReloadOutcome {
  ok: boolean;
  /** `completed`: the new generation serves; `rolled_back`; `refused`: the config was invalid. */
  outcome: 'completed' | 'rolled_back' | 'refused' | 'aborted';
  generation: number;
  /** The reload's number (1, 2, ...): a HUP coalesced into a later reload gets that one's. */
  seq: number;
  error?: string;
}

/** What the reload needs from the master (the Arbiter gives it). */
export interface ReloadHost {
  readonly log: Logger;
  now(): number;
  /** The generation the pool keeps workers of. */
  generation(): number;
  numWorkers(): number;
  /** Every worker the master knows, in any state. */
  allWorkers(): WorkerProcess[];
  /**
   * Reads the new config and puts it in force (settings, hooks, env, new listeners bound,
   * `onReload`, worker count, a new generation number). Returns the boot timeout in
   * seconds. Throws when the config is invalid or a new address cannot be bound; nothing
   * has changed then.
   */
  applyNewConfig(): Promise<number>;
  /** The new generation is ready: hand the sidecar its new spec. */
  commitConfig(): void;
  /** Closes the listeners the new config dropped (the old workers are gone). */
  closeDroppedListeners(): void;
  /** Puts the previous config back (settings, hooks, env, listeners, count, generation). */
  restoreOldConfig(): Promise<void>;
  /** Retires a worker gracefully (TERM). */
  retire(worker: WorkerProcess): Promise<void>;
  /** SIGKILLs a worker of a failed generation that did not stop in time. */
  killNow(worker: WorkerProcess): Promise<void>;
  /** Asks for another HUP (a coalesced one) on the next loop pass. */
  requestReload(): void;
  /** A reload ended. */
  ended(outcome: ReloadOutcome): void;
}

export class Reload {
  state: ReloadState = 'idle';
  /** A HUP arrived while busy: one more reload after this one. */
  pending = false;
  /** Reloads that ended with the new generation serving / rolled back / refused. */
  readonly counts = { completed: 0, failed: 0, invalid: 0 };
  /** The generation being booted (or rolled back). */
  target = 0;
  /** The generation that served before. */
  from = 0;
  /** Reloads begun so far (the number of the current or last one). */
  seq = 0;
  private deadline = 0;
  private bootTimeout = 0;
  private failure: string | undefined;

  constructor(private readonly host: ReloadHost) {}

  get active(): boolean {
    return this.state !== 'idle';
  }

  /** HUP. Loads the new config and starts the new generation, or queues one more reload. */
  async begin(): Promise<void> {
    if (this.active) {
      if (!this.pending) this.host.log.info('Reload in progress: one more reload will follow it');
      this.pending = true;
      return;
    }
    this.state = 'loading-config';
    this.seq += 1;
    this.failure = undefined;
    this.from = this.host.generation();
    try {
      this.bootTimeout = await this.host.applyNewConfig();
    } catch (err) {
      this.counts.invalid += 1;
      this.host.log.error(
        { err },
        `Reload refused, nothing changed: ${(err as Error).message.split('\n')[0]}`,
      );
      this.finish({
        ok: false,
        outcome: 'refused',
        generation: this.host.generation(),
        seq: this.seq,
        error: 'the new config is invalid; nothing changed',
      });
      return;
    }
    this.target = this.host.generation();
    this.deadline = this.host.now() + this.bootTimeout;
    this.state = 'booting-generation';
    this.host.log.info(
      { generation: this.target, workers: this.host.numWorkers() },
      `Reloading: booting generation ${this.target} (${this.host.numWorkers()} workers, ` +
        `boot timeout ${this.bootTimeout}s)`,
    );
  }

  /**
   * A worker exited with a halting status (3 boot error, 4 app load error). Returns true
   * when the reload takes it (a new-generation worker while booting): it fails the reload
   * instead of halting the master.
   */
  absorbHalt(worker: WorkerProcess, reason: string): boolean {
    if (this.state !== 'booting-generation' || worker.generation !== this.target) return false;
    this.failure ??= `a worker of the new generation exited: ${reason}`;
    return true;
  }

  /** One pass of the master loop (after reaping and signals, before manageWorkers). */
  async step(): Promise<void> {
    switch (this.state) {
      case 'booting-generation':
        return this.stepBooting();
      case 'retiring-old':
        return this.stepRetiring();
      case 'rolling-back':
        return this.stepRollingBack();
      default:
        return;
    }
  }

  /** When the reload needs the loop: the boot deadline, or the rollback's kill deadline. */
  nextDeadline(): number | undefined {
    return this.state === 'booting-generation' || this.state === 'rolling-back'
      ? this.deadline
      : undefined;
  }

  private async stepBooting(): Promise<void> {
    if (this.failure !== undefined) return this.rollback(this.failure);
    const workers = this.host.allWorkers();
    const ready = workers.filter((w) => w.generation === this.target && w.state === 'ready');
    const n = this.host.numWorkers();
    // one-for-one: keep enough old workers that old + new ready ≥ n
    const old = workers
      .filter((w) => w.generation !== this.target && isCounted(w.state))
      .sort((a, b) => a.age - b.age);
    let excess = old.length - Math.max(0, n - ready.length);
    for (const w of old) {
      if (excess-- <= 0) break;
      await this.host.retire(w);
    }
    if (ready.length >= n) {
      this.state = 'retiring-old';
      this.host.commitConfig();
      this.host.log.info(
        { generation: this.target },
        `Reload: generation ${this.target} is serving (${ready.length} workers)`,
      );
      return this.stepRetiring();
    }
    if (this.host.now() >= this.deadline) {
      return this.rollback(
        `the new generation was not ready within ${this.bootTimeout}s (${ready.length}/${n} ready)`,
      );
    }
  }

  private async stepRetiring(): Promise<void> {
    const old = this.host.allWorkers().filter((w) => w.generation !== this.target);
    for (const w of old) if (isCounted(w.state)) await this.host.retire(w);
    if (old.length > 0) return;
    this.host.closeDroppedListeners();
    this.counts.completed += 1;
    this.host.log.info({ generation: this.target }, 'Reload complete');
    this.finish({ ok: true, outcome: 'completed', generation: this.target, seq: this.seq });
  }

  private async rollback(reason: string): Promise<void> {
    this.counts.failed += 1;
    this.host.log.error(
      { generation: this.target, reason },
      `Reload failed: ${reason}; generation ${this.target} stopped, ` +
        `generation ${this.from} keeps serving`,
    );
    await this.host.restoreOldConfig();
    for (const w of this.host.allWorkers()) {
      if (w.generation === this.target && isCounted(w.state)) await this.host.retire(w);
    }
    this.state = 'rolling-back';
    // a worker stuck in its import may ignore TERM (and timeout 0 disables the heartbeat)
    this.deadline = this.host.now() + this.bootTimeout;
    return this.stepRollingBack();
  }

  private async stepRollingBack(): Promise<void> {
    const left = this.host.allWorkers().filter((w) => w.generation === this.target);
    if (left.length === 0) {
      return this.finish({
        ok: false,
        outcome: 'rolled_back',
        generation: this.host.generation(),
        seq: this.seq,
        error: 'the new generation failed to boot; rolled back, the old one keeps serving',
      });
    }
    if (this.host.now() < this.deadline) return;
    for (const w of left) if (w.state !== 'killed') await this.host.killNow(w);
  }

  private finish(outcome: ReloadOutcome): void {
    this.state = 'idle';
    this.host.ended(outcome);
    if (this.pending) {
      this.pending = false;
      this.host.requestReload();
    }
  }
}
