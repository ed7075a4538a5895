import type { ProcStats } from '@arb/sock';
import type { Logger } from '../logger.js';
import { type ArbiterSettings, effectiveBootTimeout } from '../settings.js';
import {
  MEMORY_IDLE,
  type MemoryEvent,
  type MemoryState,
  memoryDeadline,
  memoryTransition,
  type RssSample,
  sampleDue,
} from './memory-limit.js';
import type { WorkerProcess } from './worker-state.js';

/** What the watch needs of its master: the Arbiter itself. */
export interface MemoryHost {
  readonly deps: { now(): number; procStats(pid: number): ProcStats | undefined };
  readonly log: Logger;
  readonly settings: ArbiterSettings;
  readonly reloader: { readonly active: boolean };
  readonly pool: {
    all(): WorkerProcess[];
    get(age: number): WorkerProcess | undefined;
    spawnSuccessor(old: WorkerProcess): Promise<WorkerProcess | undefined>;
    retire(worker: WorkerProcess): Promise<void>;
    killNow(worker: WorkerProcess): Promise<void>;
  };
  /** The metrics count the old worker's exit as `max_memory`. */
  readonly control: { workerOutgrown(worker: WorkerProcess): void };
}

/**
 * `--max-memory` on the master: samples the ready workers' RSS from `/proc` on its own
 * cadence (only when the limit is set) and carries out what the policy (`memory-limit.ts`)
 * decides: a successor spawned, the old worker retired once it serves.
 */
export class MemoryWatch {
  private state: MemoryState = MEMORY_IDLE;

  constructor(private readonly host: MemoryHost) {}

  /** One pass of the master loop (after the reload's step, before the pool's manage). */
  async pass(): Promise<void> {
    const { deps, settings, reloader } = this.host;
    await this.apply({
      type: 'step',
      now: deps.now(),
      reloading: reloader.active,
      workers: this.host.pool.all(),
    });
    const now = deps.now();
    const limitMb = settings.maxMemory;
    if (limitMb === undefined || !sampleDue(this.state, now, limitMb)) return;
    const samples: RssSample[] = [];
    for (const w of this.host.pool.all()) {
      if (w.state !== 'ready' || w.pid === undefined) continue;
      const stats = deps.procStats(w.pid);
      if (stats) samples.push({ age: w.age, pid: w.pid, rssBytes: stats.rssBytes });
    }
    await this.apply({
      type: 'sample',
      now,
      limitMb,
      bootTimeout: effectiveBootTimeout(settings),
      reloading: reloader.active,
      samples,
    });
  }

  /** A reload begins: a replacement in flight is given up (the reload replaces the worker). */
  async reloading(): Promise<void> {
    await this.apply({
      type: 'step',
      now: this.host.deps.now(),
      reloading: true,
      workers: this.host.pool.all(),
    });
  }

  nextDeadline(): number | undefined {
    return memoryDeadline(this.state, this.host.settings.maxMemory);
  }

  private async apply(event: MemoryEvent): Promise<void> {
    const { state, effects } = memoryTransition(this.state, event);
    this.state = state;
    const { pool, log } = this.host;
    for (const e of effects) {
      if (e.type === 'log') {
        log[e.level](e.fields, e.msg);
      } else if (e.type === 'spawn-successor') {
        const old = pool.get(e.old);
        const successor = old ? await pool.spawnSuccessor(old) : undefined;
        await this.apply({
          type: 'successor-spawned',
          now: this.host.deps.now(),
          old: e.old,
          successor,
        });
      } else {
        const w = pool.get(e.age);
        if (!w) continue;
        if (e.type === 'kill') await pool.killNow(w);
        else {
          if (e.why === 'max_memory') this.host.control.workerOutgrown(w);
          await pool.retire(w);
        }
      }
    }
  }
}
