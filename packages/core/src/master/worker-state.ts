import type { ChildProcess } from 'node:child_process';
import type { WorkerInfo } from '../hooks.js';
import type { Heartbeat } from '../protocol/heartbeat.js';
import type { AppFailure } from '../protocol/worker.js';

/**
 * A worker's life as the master sees it:
 *
 *   booting ─ready→ ready ─retire→ retiring ─exit→ exited
 *      │               │               │
 *      └──── abort (heartbeat timeout) ┴→ aborting ─kill→ killed ─exit→ exited
 *
 * `exit` is possible from every state. Only `booting` and `ready` workers count towards
 * the number of workers the master keeps; the others are on their way out.
 */
export type WorkerState = 'booting' | 'ready' | 'retiring' | 'aborting' | 'killed' | 'exited';
export type WorkerEvent = 'ready' | 'retire' | 'abort' | 'kill' | 'exit';

const TRANSITIONS: Readonly<Record<WorkerState, Partial<Record<WorkerEvent, WorkerState>>>> = {
  booting: {
    ready: 'ready',
    retire: 'retiring',
    abort: 'aborting',
    kill: 'killed',
    exit: 'exited',
  },
  ready: { retire: 'retiring', abort: 'aborting', kill: 'killed', exit: 'exited' },
  retiring: { abort: 'aborting', kill: 'killed', exit: 'exited' },
  aborting: { kill: 'killed', exit: 'exited' },
  killed: { exit: 'exited' },
  exited: {},
};

/** The state after `event`; an event that does not apply (ready while retiring) changes nothing. */
export function nextState(state: WorkerState, event: WorkerEvent): WorkerState {
  return TRANSITIONS[state][event] ?? state;
}

/** Counts towards the number of workers kept. */
export function isCounted(state: WorkerState): boolean {
  return state === 'booting' || state === 'ready';
}

/** How a worker process ended. */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The master's record of one worker. */
export class WorkerProcess implements WorkerInfo {
  state: WorkerState = 'booting';
  pid: number | undefined;
  child: ChildProcess | undefined;
  readyAt: number | undefined;
  abortedAt: number | undefined;
  exit: WorkerExit | undefined;
  /** The reason the worker gave (IPC) before exiting with 3 or 4. */
  fatal: string | undefined;
  /** With exit 4: the app's error, as the worker reported it. */
  fatalApp: AppFailure | undefined;
  /** The config generation it was spawned for (0 at start, +1 per HUP reload). */
  generation = 0;
  /** Its place among the workers kept (0..workers-1): boot failures back off per slot. */
  slot = 0;
  /**
   * The age of the worker it replaces (`--max-memory`): while that one still serves, this
   * one is not counted among the workers kept, and a boot failure (exit 3/4) does not halt
   * the master: the old worker keeps serving.
   */
  successorOf: number | undefined;

  constructor(
    readonly age: number,
    /** Monotonic seconds. */
    readonly spawnedAt: number,
    readonly heartbeat: Heartbeat | undefined,
    /** Requests before it recycles itself (0: never). */
    readonly maxRequests: number,
  ) {}

  get booted(): boolean {
    return this.readyAt !== undefined;
  }

  get aborted(): boolean {
    return this.abortedAt !== undefined;
  }

  /** Applies an event; returns whether the state changed. */
  on(event: WorkerEvent): boolean {
    const next = nextState(this.state, event);
    const changed = next !== this.state;
    this.state = next;
    return changed;
  }

  toJSON(): WorkerInfo & { state: WorkerState; generation: number } {
    return {
      age: this.age,
      pid: this.pid,
      booted: this.booted,
      aborted: this.aborted,
      state: this.state,
      generation: this.generation,
    };
  }
}
