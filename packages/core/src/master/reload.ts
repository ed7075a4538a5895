import type { CanarySettings } from '../settings.js';
import type { WorkerState } from './worker-state.js';

/**
 * HUP reload as a pure state machine; the master carries out its effects (`generation.ts`)
 * and feeds it a `step` event on every loop pass (never from a signal handler, so nothing
 * races):
 *
 *   idle ─hup→ loading-config ─config-applied→ booting-generation ─all new ready→ retiring-old ─old gone→ idle
 *                  │        │                         ↑        │
 *                  │        │ (a canary)       passed │        │ a new worker exits 3/4, or not all ready in bootTimeout
 *                  │        ↓                         │        ↓
 *                  │  booting-canary ─ready→ canary-window ─failed→ rolling-back ─failed generation gone→ idle
 *                  │        │ exits 3/4, not ready     │ exits 3/4          ↑
 *                  │        └──────────────────────────┴────────────────────┘
 *                  │ config-refused
 *                  ↓
 *                 idle
 *
 * - loading-config: the config is read afresh (`apply-config`); if it does not validate,
 *   nothing changed and we are idle again (one error line).
 * - booting-generation: new listeners are bound, the new settings and hooks are in force,
 *   `onReload` ran, and the new generation's workers boot. Each time one of them reports
 *   ready, one old worker is retired (TERM, drained within gracefulTimeout): the number
 *   of workers serving never drops below the target.
 * - booting-canary (the new config has `reload.canary`): only `canary.workers` new workers
 *   boot (`canaryCap`), beside the whole old generation: no old worker is retired.
 * - canary-window: they all serve; `seconds` later the canary is judged from the workers'
 *   stats (`judge-canary`, answered by `canary-judged`, see `canary.ts`). Passed: on to
 *   booting-generation, where the rest boot and old workers go one for one. Failed: one
 *   `Reload failed: canary ...` line naming the figures, and rolling-back.
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
  | 'booting-canary'
  | 'canary-window'
  | 'booting-generation'
  | 'retiring-old'
  | 'rolling-back';

/** How a reload ended; emitted once per reload (the ctl `reload` command answers with it). */
export interface ReloadOutcome {
  ok: boolean;
  /**
   * `completed`: the new generation serves; `rolled_back`: it failed to boot;
   * `canary_failed`: its canary was judged worse than the old generation and rolled back;
   * `refused`: the config was invalid; `aborted`: the master stopped first.
   */
  outcome: 'completed' | 'rolled_back' | 'canary_failed' | 'refused' | 'aborted';
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
  /** This reload's canary (from the new config), if it has one. */
  readonly canary: CanarySettings | undefined;
  /** The canary's failed verdict, when that is why it is rolling back. */
  readonly verdict: string | undefined;
  /**
   * Reloads that ended with the new generation serving / rolled back (a failed canary
   * included) / refused; of the rolled back, those whose canary failed.
   */
  readonly counts: {
    readonly completed: number;
    readonly failed: number;
    readonly invalid: number;
    readonly canaryFailed: number;
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
  canary: undefined,
  verdict: undefined,
  counts: { completed: 0, failed: 0, invalid: 0, canaryFailed: 0 },
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
      /** The new config's canary: only its workers boot first, and are judged. */
      canary?: CanarySettings;
    }
  /** The answer to `judge-canary`: the verdict on the window that just closed. */
  | {
      type: 'canary-judged';
      now: number;
      /** Every worker the master knows (a failed canary's are retired). */
      workers: readonly ReloadWorker[];
      ok: boolean;
      /** The figures, one phrase (a failure's starts `canary `). */
      summary: string;
      fields?: Record<string, unknown>;
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
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
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
  | { type: 'request-reload' }
  /** Every canary worker serves: start counting their stats and the old generation's. */
  | { type: 'open-canary-window' }
  /** The window is over: judge it, answer with canary-judged. */
  | { type: 'judge-canary' };

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
          canary: undefined,
          verdict: undefined,
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
      // no worker to judge beside the old ones: a plain reload
      if (event.canary && workers > 0) {
        const canary = event.canary;
        const n = Math.min(canary.workers, workers);
        return {
          state: {
            ...s,
            phase: 'booting-canary',
            target,
            bootTimeout,
            canary,
            deadline: event.now + bootTimeout,
          },
          effects: [
            log(
              'info',
              `Reloading: booting ${plural(n, 'canary worker')} of generation ${target} beside ` +
                `generation ${s.from} (boot timeout ${bootTimeout}s)`,
              { generation: target, workers, canary: n },
            ),
          ],
        };
      }
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
    case 'canary-judged':
      if (s.phase !== 'canary-window') return same;
      if (!event.ok) {
        const failed = rollback(
          {
            ...s,
            verdict: event.summary,
            counts: { ...s.counts, canaryFailed: s.counts.canaryFailed + 1 },
          },
          event.now,
          event.workers,
          `Reload failed: ${event.summary}; generation ${s.from} keeps serving`,
          { generation: s.target, ...event.fields },
        );
        return failed;
      }
      return {
        state: { ...s, phase: 'booting-generation', deadline: event.now + s.bootTimeout },
        effects: [
          log(
            'info',
            `Canary passed: ${event.summary}; booting the rest of generation ${s.target}`,
            { generation: s.target, ...event.fields },
          ),
        ],
      };
    case 'step':
      switch (s.phase) {
        case 'booting-canary':
          return stepBootingCanary(s, event);
        case 'canary-window':
          return stepCanaryWindow(s, event);
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
  return BOOTING.has(s.phase) && generation === s.target;
}

/** The phases in which the new generation may still fail (and be rolled back). */
const BOOTING: ReadonlySet<ReloadPhase> = new Set([
  'booting-canary',
  'canary-window',
  'booting-generation',
]);

/**
 * When the reload needs the loop: the boot deadline, the end of the canary window, or the
 * rollback's kill deadline.
 */
export function reloadDeadline(s: ReloadState): number | undefined {
  return BOOTING.has(s.phase) || s.phase === 'rolling-back' ? s.deadline : undefined;
}

/**
 * The most workers of the new generation to keep while its canary boots and is judged;
 * undefined: as many as configured.
 */
export function canaryCap(s: ReloadState): number | undefined {
  if (s.canary === undefined) return undefined;
  return s.phase === 'booting-canary' || s.phase === 'canary-window' ? s.canary.workers : undefined;
}

type StepEvent = Extract<ReloadEvent, { type: 'step' }>;

/** The canary boots beside the whole old generation: nothing is retired. */
function stepBootingCanary(s: ReloadState, ev: StepEvent): ReloadTransition {
  const n = Math.min(s.canary!.workers, ev.numWorkers);
  if (s.failure !== undefined) return failedReload(s, ev, `the canary did not boot: ${s.failure}`);
  const ready = ev.workers.filter((w) => w.generation === s.target && w.state === 'ready');
  if (ready.length >= n) {
    const seconds = s.canary!.seconds;
    return {
      state: { ...s, phase: 'canary-window', deadline: ev.now + seconds },
      effects: [
        { type: 'open-canary-window' },
        log(
          'info',
          `Canary: ${plural(n, 'worker')} of generation ${s.target} serving beside generation ` +
            `${s.from} for ${seconds}s`,
          { generation: s.target, canary: n, seconds },
        ),
      ],
    };
  }
  if (ev.now >= s.deadline) {
    return failedReload(
      s,
      ev,
      `the canary was not ready within ${s.bootTimeout}s (${ready.length}/${n} ready)`,
    );
  }
  return { state: s, effects: [] };
}

/** The canary serves; at the end of the window it is judged (`judge-canary`). */
function stepCanaryWindow(s: ReloadState, ev: StepEvent): ReloadTransition {
  if (s.failure !== undefined) return failedReload(s, ev, `the canary failed: ${s.failure}`);
  if (ev.now < s.deadline) return { state: s, effects: [] };
  return { state: s, effects: [{ type: 'judge-canary' }] };
}

function stepBooting(s: ReloadState, ev: StepEvent): ReloadTransition {
  if (s.failure !== undefined) return failedReload(s, ev, s.failure);
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
    const after = failedReload(s, ev, why);
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

/** The new generation failed to boot: one line saying why, and the rollback. */
function failedReload(s: ReloadState, ev: StepEvent, reason: string): ReloadTransition {
  return rollback(
    s,
    ev.now,
    ev.workers,
    `Reload failed: ${reason}; generation ${s.target} stopped, generation ${s.from} keeps serving`,
    { generation: s.target, reason },
  );
}

/** Stops the new generation (of `workers`, those known now) and puts the previous config back. */
function rollback(
  s: ReloadState,
  now: number,
  workers: readonly ReloadWorker[],
  msg: string,
  fields: Record<string, unknown>,
): ReloadTransition {
  return {
    state: {
      ...s,
      phase: 'rolling-back',
      // a worker stuck in its import may ignore TERM (and timeout 0 disables the heartbeat)
      deadline: now + s.bootTimeout,
      counts: { ...s.counts, failed: s.counts.failed + 1 },
    },
    effects: [
      log('error', msg, fields),
      { type: 'restore-config' },
      ...workers.filter((w) => w.generation === s.target && counted(w)).map(retireEffect),
    ],
  };
}

function stepRollingBack(s: ReloadState, ev: StepEvent): ReloadTransition {
  const left = ev.workers.filter((w) => w.generation === s.target);
  if (left.length === 0) {
    return finish(s, {
      ok: false,
      outcome: s.verdict === undefined ? 'rolled_back' : 'canary_failed',
      // the previous generation, in force again
      generation: ev.generation,
      seq: s.seq,
      error:
        s.verdict === undefined
          ? 'the new generation failed to boot; rolled back, the old one keeps serving'
          : `${s.verdict}; rolled back, the old generation keeps serving`,
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

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function log(
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
): ReloadEffect {
  return fields === undefined ? { type: 'log', level, msg } : { type: 'log', level, msg, fields };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
