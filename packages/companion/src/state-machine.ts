import { backoffDelay } from './backoff.js';
import type { CompanionConfig } from './config.js';

/**
 * Public states. The first five are the reference's (supervisorctl's); FATAL is ours: a
 * companion that kept failing to reach RUNNING after `startRetries` retries. Only `start`
 * (or `restart`, or a changed config on reread) leaves FATAL.
 */
export type CompanionState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'FATAL';

export const STATES: readonly CompanionState[] = [
  'STOPPED',
  'STARTING',
  'RUNNING',
  'BACKOFF',
  'STOPPING',
  'FATAL',
];

/** The supervision state of one companion; a plain value, replaced on every transition. */
export interface Machine {
  readonly state: CompanionState;
  /** Why the process is being stopped; set exactly when state is STOPPING. */
  readonly stopIntent: 'stop' | 'restart' | null;
  /** The user asked for it to stay down. Set by stop, cleared by start and restart. */
  readonly manualStop: boolean;
  /** Consecutive exits before reaching RUNNING (drives FATAL). */
  readonly failedStarts: number;
  /** Unexpected exits since the last stable run (drives the backoff delay). */
  readonly backoffStep: number;
}

export const INITIAL_MACHINE: Machine = {
  state: 'STOPPED',
  stopIntent: null,
  manualStop: false,
  failedStarts: 0,
  backoffStep: 0,
};

export type MachineEvent =
  /** Control command `start`. */
  | { type: 'start' }
  /** Control command `stop`; `cap` bounds the SIGKILL deadline (quick shutdown). */
  | { type: 'stop'; cap?: number }
  /** Control command `restart`. */
  | { type: 'restart' }
  /**
   * Its RSS stayed above `maxMemory`: a restart with the stop signal and `stopTimeout`
   * (the process is not stopped by hand, nor reloaded); only a RUNNING one.
   */
  | { type: 'outgrown' }
  /** The process stayed up for startSecs. */
  | { type: 'promote' }
  /** The process exited; `ranFor` is seconds since its spawn. */
  | { type: 'exit'; code: number | null; signal: string | null; ranFor: number }
  /** The BACKOFF delay is over. */
  | { type: 'retryDue' }
  /** The stop deadline passed. */
  | { type: 'killDue' };

/** What the companion must do to carry out a transition, in order. */
export type Effect =
  /** Start a new process; `counted` when it is a retry or a restart (restarts counter). */
  | { type: 'spawn'; counted: boolean }
  /** Send the stop signal to the process group. */
  | { type: 'signal' }
  /** SIGKILL the group after `seconds`; `tighten`: keep an earlier deadline if one is armed. */
  | { type: 'armKill'; seconds: number; tighten: boolean }
  /** SIGKILL the group now. */
  | { type: 'kill' }
  | { type: 'armRetry'; seconds: number }
  | { type: 'cancelRetry' };

export interface Transition {
  readonly machine: Machine;
  readonly effects: readonly Effect[];
  /** For commands: the reply's `ok` and `message` (reference wording). */
  readonly ok: boolean;
  readonly message: string | null;
}

/** The parts of a config the machine needs. */
export type Policy = Pick<
  CompanionConfig,
  | 'name'
  | 'stopTimeout'
  | 'reloadTimeout'
  | 'autorestart'
  | 'exitCodes'
  | 'startRetries'
  | 'restartDelay'
  | 'maxRestartDelay'
  | 'backoffResetAfter'
>;

function result(
  machine: Machine,
  effects: Effect[],
  ok = true,
  message: string | null = null,
): Transition {
  return { machine, effects, ok, message };
}

/**
 * The whole transition table: every (state, event) pair. Pure: no clocks, no processes.
 * Messages follow the reference (§2.4) so existing scripts see the same text.
 */
export function transition(
  m: Machine,
  ev: MachineEvent,
  p: Policy,
  random: () => number = Math.random,
): Transition {
  const n = p.name;
  const same = (message: string, ok = true) => result(m, [], ok, message);
  switch (ev.type) {
    case 'start':
      switch (m.state) {
        case 'STOPPED':
        case 'BACKOFF':
        case 'FATAL':
          return result(
            { ...m, state: 'STARTING', manualStop: false, failedStarts: 0, backoffStep: 0 },
            [{ type: 'cancelRetry' }, { type: 'spawn', counted: false }],
            true,
            `${n} started`,
          );
        case 'RUNNING':
          return same(`${n} already running`);
        case 'STARTING':
          return same(`${n} already starting`);
        case 'STOPPING':
          return same(`${n} is stopping; retry`, false);
      }
      break;
    case 'stop': {
      const seconds = Math.min(p.stopTimeout, ev.cap ?? Number.POSITIVE_INFINITY);
      switch (m.state) {
        case 'STOPPED':
          return result({ ...m, manualStop: true }, [], true, `${n} already stopped`);
        case 'FATAL':
          return result({ ...m, state: 'STOPPED', manualStop: true }, [], true, `${n} stopped`);
        case 'BACKOFF':
          return result(
            { ...m, state: 'STOPPED', manualStop: true },
            [{ type: 'cancelRetry' }],
            true,
            `${n} stopped`,
          );
        case 'STOPPING':
          // Cancels a restart in flight, and never lets a (longer) reload deadline outlive
          // the stop timeout: the manager's own shutdown budget relies on it.
          return result(
            { ...m, stopIntent: 'stop', manualStop: true },
            [{ type: 'armKill', seconds, tighten: true }],
            true,
            `${n} already stopping`,
          );
        case 'STARTING':
        case 'RUNNING':
          return result(
            { ...m, state: 'STOPPING', stopIntent: 'stop', manualStop: true },
            [{ type: 'signal' }, { type: 'armKill', seconds, tighten: false }],
            true,
            `${n} stopping`,
          );
      }
      break;
    }
    case 'restart':
      switch (m.state) {
        case 'STOPPING':
          return same(`${n} is stopping; retry`, false);
        case 'STARTING':
        case 'RUNNING':
          return result(
            { ...m, state: 'STOPPING', stopIntent: 'restart', manualStop: false },
            [{ type: 'signal' }, { type: 'armKill', seconds: p.reloadTimeout, tighten: false }],
            true,
            `${n} restarting`,
          );
        case 'STOPPED':
        case 'BACKOFF':
        case 'FATAL':
          return result(
            { ...m, state: 'STARTING', manualStop: false, failedStarts: 0, backoffStep: 0 },
            [{ type: 'cancelRetry' }, { type: 'spawn', counted: false }],
            true,
            `${n} started`,
          );
      }
      break;
    case 'outgrown':
      if (m.state !== 'RUNNING') return result(m, []);
      return result({ ...m, state: 'STOPPING', stopIntent: 'restart' }, [
        { type: 'signal' },
        { type: 'armKill', seconds: p.stopTimeout, tighten: false },
      ]);
    case 'promote':
      if (m.state !== 'STARTING') return result(m, []);
      return result({ ...m, state: 'RUNNING', failedStarts: 0 }, []);
    case 'retryDue':
      if (m.state !== 'BACKOFF') return result(m, []);
      return result({ ...m, state: 'STARTING' }, [{ type: 'spawn', counted: true }]);
    case 'killDue':
      if (m.state !== 'STOPPING') return result(m, []);
      return result(m, [{ type: 'kill' }]);
    case 'exit':
      switch (m.state) {
        case 'STOPPING':
          if (m.stopIntent === 'restart') {
            return result({ ...m, state: 'STARTING', stopIntent: null }, [
              { type: 'spawn', counted: true },
            ]);
          }
          return result({ ...m, state: 'STOPPED', stopIntent: null }, []);
        case 'STARTING':
        case 'RUNNING':
          return exitWhileUp(m, ev, p, random);
        default:
          // No process in these states; a stray exit changes nothing.
          return result(m, []);
      }
  }
  return result(m, []);
}

/** The restart policy for a process that exited on its own. */
function exitWhileUp(
  m: Machine,
  ev: { code: number | null; ranFor: number },
  p: Policy,
  random: () => number,
): Transition {
  const expected = ev.code !== null && p.exitCodes.includes(ev.code);
  if (p.autorestart === 'never' || (p.autorestart === 'unexpected' && expected)) {
    return result({ ...m, state: 'STOPPED', failedStarts: 0, backoffStep: 0 }, []);
  }
  const failedStart = m.state === 'STARTING';
  const failedStarts = failedStart ? m.failedStarts + 1 : 0;
  if (failedStart && p.startRetries !== null && failedStarts > p.startRetries) {
    return result({ ...m, state: 'FATAL', failedStarts }, []);
  }
  const stable = ev.ranFor >= p.backoffResetAfter;
  const backoffStep = (stable ? 0 : m.backoffStep) + 1;
  const seconds = backoffDelay(backoffStep, p.restartDelay, p.maxRestartDelay, random);
  return result({ ...m, state: 'BACKOFF', failedStarts, backoffStep }, [
    { type: 'armRetry', seconds },
  ]);
}
