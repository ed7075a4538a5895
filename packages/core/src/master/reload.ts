import type { WorkerState } from './worker-state.js';

/**
 * HUP reload as a pure state machine; the master carries out its effects (`generation.ts`)
 * and feeds it a `step` event on every loop pass (never from a signal handler, so nothing
 * races):
 *
 *   idle ─hup→ loading-config ─config-applied→ booting-generation ─all new ready→ retiring-old ─old gone→ idle
 *                  │                                  │
 *                  │ config-refused                   │ a new worker exits 3/4, or not all ready in bootTimeout
 *                  ↓                                  ↓
 *                 idle                          rolling-back ─failed generation gone→ idle
 *
 * - loading-config: the config is read afresh (`apply-config`); if it does not validate,
 *   nothing changed and we are idle again (one error line).
 * - booting-generation: new listeners are bound, the new settings and hooks are in force,
 *   `onReload` ran, and the new generation's workers boot. Each time one of them reports
 *   ready, one old worker is retired (TERM, drained within gracefulTimeout): the number
 *   of workers serving never drops below the target.
 * - retiring-old: every new worker is ready, the sidecar got the new spec; we wait until
 *   the old workers are gone, then close the listeners the new config dropped.
 * - rolling-back: the new generation is stopped (TERM), the previous settings, hooks,
 *   listeners and worker count are back, and the pool replaces any old worker retired
 *   meanwhile; once the failed generation is gone we are idle. A worker stuck in its
 *   import may ignore TERM: SIGKILL after another boot timeout.
 *
 * A HUP that arrives while not idle is remembered (once: coalesced) and starts one more
 * reload when this one ends. No clock is read here: time comes in the events. A step that
 * changes the phase is followed at once by another (with what the effects changed): the
 * next phase may be over already, as when every old worker is gone.
 */
export type ReloadPhase =
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

/** The reload machine; a plain value, replaced on every transition. */
export interface ReloadState {
  readonly phase: ReloadPhase;
  /** A HUP arrived while busy: one more reload after this one. */
  readonly pending: boolean;
  /** Reloads begun so far (the number of the current or last one). */
  readonly seq: number;
  /** The generation that served before. */
  readonly from: number;
  /** The generation being booted (or rolled back). */
  readonly target: number;
  /** Seconds the new generation has to be ready (and the failed one to stop). */
  readonly bootTimeout: number;
  /** Monotonic seconds: the boot deadline, or the rollback's kill deadline. */
  readonly deadline: number;
  /** Why the new generation failed (a worker exited 3/4), seen by the next step. */
  readonly failure: string | undefined;
  /** Reloads that ended with the new generation serving / rolled back / refused. */
  readonly counts: {
    readonly completed: number;
    readonly failed: number;
    readonly invalid: number;
  };
}

export const RELOAD_IDLE: ReloadState = {
  phase: 'idle',
  pending: false,
  seq: 0,
  from: 0,
  target: 0,
  bootTimeout: 0,
  deadline: 0,
  failure: undefined,
  counts: { completed: 0, failed: 0, invalid: 0 },
};

/** A worker as the reload sees it. */
export interface ReloadWorker {
  readonly age: number;
  readonly generation: number;
  readonly state: WorkerState;
}

export type ReloadEvent =
  /** HUP; `generation` is the one serving now. */
  | { type: 'hup'; generation: number }
  /** The outcome of `apply-config`: the new config is in force as `generation`. */
  | {
      type: 'config-applied';
      now: number;
      generation: number;
      bootTimeout: number;
      workers: number;
    }
  /** The outcome of `apply-config`: invalid config or unbindable address, nothing changed. */
  | { type: 'config-refused'; err: unknown; generation: number }
  /** A worker exited 3 (boot) or 4 (app load). */
  | { type: 'worker-halted'; generation: number; reason: string }
  /**
   * A loop pass: what the master sees now. `generation` is the one in force, `workers`
   * every worker the master knows in any state, `numWorkers` the count it keeps.
   */
  | {
      type: 'step';
      now: number;
      generation: number;
      numWorkers: number;
      workers: readonly ReloadWorker[];
    };

export type ReloadEffect =
  | { type: 'log'; level: 'info' | 'error'; msg: string; fields?: Record<string, unknown> }
  /** Read the new config and put it in force; answer with config-applied / config-refused. */
  | { type: 'apply-config' }
  /** TERM a worker (drained within gracefulTimeout). */
  | { type: 'retire'; age: number }
  /** SIGKILL a worker of the failed generation that did not stop in time. */
  | { type: 'kill'; age: number }
  /** The new generation serves: no way back; the sidecar gets the new spec. */
  | { type: 'commit-config' }
  /** The old workers are gone: close the listeners the new config dropped. */
  | { type: 'close-dropped-listeners' }
  /** Put the previous config back (settings, hooks, env, listeners, count, generation). */
  | { type: 'restore-config' }
  | { type: 'ended'; outcome: ReloadOutcome }
  /** A coalesced HUP: queue it for the next loop pass. */
  | { type: 'request-reload' };

export interface ReloadTransition {
  readonly state: ReloadState;
  readonly effects: readonly ReloadEffect[];
}

/** Counts towards the workers kept (booting or ready). */
const counted = (w: ReloadWorker) => w.state === 'booting' || w.state === 'ready';

export function reloadTransition(s: ReloadState, event: ReloadEvent): ReloadTransition {
  const same: ReloadTransition = { state: s, effects: [] };
  switch (event.type) {
    case 'hup':
      if (s.phase !== 'idle') {
        if (s.pending) return same;
        return {
          state: { ...s, pending: true },
          effects: [log('info', 'Reload in progress: one more reload will follow it')],
        };
      }
      return {
        state: {
          ...s,
          phase: 'loading-config',
          seq: s.seq + 1,
          failure: undefined,
          from: event.generation,
        },
        effects: [{ type: 'apply-config' }],
      };
    case 'config-refused': {
      if (s.phase !== 'loading-config') return same;
      const message = errorMessage(event.err).split('\n')[0];
      return finish(
        { ...s, counts: { ...s.counts, invalid: s.counts.invalid + 1 } },
        {
          ok: false,
          outcome: 'refused',
          generation: event.generation,
          seq: s.seq,
          error: 'the new config is invalid; nothing changed',
        },
        [log('error', `Reload refused, nothing changed: ${message}`, { err: event.err })],
      );
    }
    case 'config-applied': {
      if (s.phase !== 'loading-config') return same;
      const { generation: target, bootTimeout, workers } = event;
      return {
        state: {
          ...s,
          phase: 'booting-generation',
          target,
          bootTimeout,
          deadline: event.now + bootTimeout,
        },
        effects: [
          log(
            'info',
            `Reloading: booting generation ${target} (${workers} workers, boot timeout ${bootTimeout}s)`,
            { generation: target, workers },
          ),
        ],
      };
    }
    case 'worker-halted':
      if (!absorbsHalt(s, event.generation)) return same;
      return {
        state: {
          ...s,
          failure: s.failure ?? `a worker of the new generation exited: ${event.reason}`,
        },
        effects: [],
      };
    case 'step':
      switch (s.phase) {
        case 'booting-generation':
          return stepBooting(s, event);
        case 'retiring-old':
          return stepRetiring(s, event.workers);
        case 'rolling-back':
          return stepRollingBack(s, event);
        default:
          return same;
      }
  }
}

/**
 * A worker exiting 3/4 fails the reload instead of halting the master when it belongs to
 * the generation being booted.
 */
export function absorbsHalt(s: ReloadState, generation: number): boolean {
  return s.phase === 'booting-generation' && generation === s.target;
}

/** When the reload needs the loop: the boot deadline, or the rollback's kill deadline. */
export function reloadDeadline(s: ReloadState): number | undefined {
  return s.phase === 'booting-generation' || s.phase === 'rolling-back' ? s.deadline : undefined;
}

type StepEvent = Extract<ReloadEvent, { type: 'step' }>;

function stepBooting(s: ReloadState, ev: StepEvent): ReloadTransition {
  if (s.failure !== undefined) return rollback(s, ev, s.failure);
  const ready = ev.workers.filter((w) => w.generation === s.target && w.state === 'ready');
  const n = ev.numWorkers;
  // one-for-one: keep enough old workers that old + new ready ≥ n
  const old = ev.workers
    .filter((w) => w.generation !== s.target && counted(w))
    .sort((a, b) => a.age - b.age);
  const excess = old.length - Math.max(0, n - ready.length);
  const retire = old.slice(0, Math.max(0, excess)).map(retireEffect);
  if (ready.length >= n) {
    return {
      state: { ...s, phase: 'retiring-old' },
      effects: [
        ...retire,
        { type: 'commit-config' },
        log('info', `Reload: generation ${s.target} is serving (${ready.length} workers)`, {
          generation: s.target,
        }),
      ],
    };
  }
  if (ev.now >= s.deadline) {
    const why = `the new generation was not ready within ${s.bootTimeout}s (${ready.length}/${n} ready)`;
    const after = rollback(s, ev, why);
    return { state: after.state, effects: [...retire, ...after.effects] };
  }
  return { state: s, effects: retire };
}

function stepRetiring(s: ReloadState, workers: readonly ReloadWorker[]): ReloadTransition {
  const old = workers.filter((w) => w.generation !== s.target);
  const retire = old.filter(counted).map(retireEffect);
  if (old.length > 0) return { state: s, effects: retire };
  return finish(
    { ...s, counts: { ...s.counts, completed: s.counts.completed + 1 } },
    { ok: true, outcome: 'completed', generation: s.target, seq: s.seq },
    [{ type: 'close-dropped-listeners' }, log('info', 'Reload complete', { generation: s.target })],
  );
}

/** Stops the new generation and puts the previous config back. */
function rollback(s: ReloadState, ev: StepEvent, reason: string): ReloadTransition {
  return {
    state: {
      ...s,
      phase: 'rolling-back',
      // a worker stuck in its import may ignore TERM (and timeout 0 disables the heartbeat)
      deadline: ev.now + s.bootTimeout,
      counts: { ...s.counts, failed: s.counts.failed + 1 },
    },
    effects: [
      log(
        'error',
        `Reload failed: ${reason}; generation ${s.target} stopped, generation ${s.from} keeps serving`,
        { generation: s.target, reason },
      ),
      { type: 'restore-config' },
      ...ev.workers.filter((w) => w.generation === s.target && counted(w)).map(retireEffect),
    ],
  };
}

function stepRollingBack(s: ReloadState, ev: StepEvent): ReloadTransition {
  const left = ev.workers.filter((w) => w.generation === s.target);
  if (left.length === 0) {
    return finish(s, {
      ok: false,
      outcome: 'rolled_back',
      // the previous generation, in force again
      generation: ev.generation,
      seq: s.seq,
      error: 'the new generation failed to boot; rolled back, the old one keeps serving',
    });
  }
  if (ev.now < s.deadline) return { state: s, effects: [] };
  return {
    state: s,
    effects: left.filter((w) => w.state !== 'killed').map((w) => ({ type: 'kill', age: w.age })),
  };
}

/** Back to idle with the outcome; a coalesced HUP is asked for once more. */
function finish(
  s: ReloadState,
  outcome: ReloadOutcome,
  first: ReloadEffect[] = [],
): ReloadTransition {
  return {
    state: { ...s, phase: 'idle', pending: false },
    effects: [
      ...first,
      { type: 'ended', outcome },
      ...(s.pending ? [{ type: 'request-reload' } as const] : []),
    ],
  };
}

function retireEffect(w: ReloadWorker): ReloadEffect {
  return { type: 'retire', age: w.age };
}

function log(level: 'info' | 'error', msg: string, fields?: Record<string, unknown>): ReloadEffect {
  return fields === undefined ? { type: 'log', level, msg } : { type: 'log', level, msg, fields };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
