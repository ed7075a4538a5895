import type { Lineage } from '../master/lineage.js';
import type { ReloadOutcome } from '../master/reload.js';

/**
 * Which sd_notify message the master sends when, as a pure state machine (`control.ts`
 * sends them through `notify.ts`):
 *
 *   starting ─serving→ serving ─reload-requested→ reloading ─reload-ended→ serving
 *                         │ promoted (MAINPID + READY)                       │
 *       any ─stopping→ stopping (STOPPING=1, or MAINPID of the new master we hand over to)
 *
 * - Only the main process speaks: an unpromoted re-exec'd master (awaiting promotion) says
 *   nothing until it is promoted; then it names itself MAINPID and is READY.
 * - A HUP during a reload is coalesced into one more reload: no second RELOADING=1.
 * - The watchdog pings start with the first READY=1 and stop when the master stops.
 */
export type ReadinessPhase = 'starting' | 'serving' | 'reloading' | 'stopping';

export interface Readiness {
  readonly phase: ReadinessPhase;
  /** READY=1 was sent (`arb ctl status`). */
  readonly readySent: boolean;
}

export const READINESS_START: Readiness = { phase: 'starting', readySent: false };

export type ReadinessEvent =
  /** The first generation of workers all serve; `workers` booting or ready. */
  | { type: 'serving'; lineage: Lineage; workers: number }
  /** HUP, before the reload begins. */
  | { type: 'reload-requested'; lineage: Lineage }
  /** A reload ended (the reload machine's outcome). */
  | { type: 'reload-ended'; lineage: Lineage; outcome: ReloadOutcome; workers: number }
  /** A re-exec'd master was promoted: it is the main process now. */
  | { type: 'promoted'; pid: number; workers: number }
  /** The master halts. */
  | { type: 'stopping'; lineage: Lineage }
  /** The master's operator interfaces are closed. */
  | { type: 'closed' };

export type ReadinessEffect =
  | { type: 'ready'; status: string }
  | { type: 'reloading' }
  | { type: 'main-pid'; pid: number; status: string; ready: boolean }
  | { type: 'stopping' }
  /** `force`: ping even when WATCHDOG_PID names another process (the master we replaced). */
  | { type: 'watchdog-on'; force: boolean }
  | { type: 'watchdog-off' };

export interface ReadinessTransition {
  readonly state: Readiness;
  readonly effects: readonly ReadinessEffect[];
}

const serving = (workers: number) => `Serving with ${workers} workers`;

export function readinessTransition(s: Readiness, event: ReadinessEvent): ReadinessTransition {
  const same: ReadinessTransition = { state: s, effects: [] };
  if (s.phase === 'stopping') {
    return event.type === 'closed' ? { state: s, effects: [{ type: 'watchdog-off' }] } : same;
  }
  switch (event.type) {
    case 'serving':
      if (event.lineage.role === 'awaiting-promotion') return same;
      return {
        // a HUP before the first generation served: still reloading
        state: { phase: s.phase === 'starting' ? 'serving' : s.phase, readySent: true },
        effects: [
          { type: 'ready', status: serving(event.workers) },
          { type: 'watchdog-on', force: false },
        ],
      };
    case 'reload-requested':
      if (s.phase === 'reloading') return same; // coalesced
      return {
        state: { ...s, phase: 'reloading' },
        effects: event.lineage.role === 'awaiting-promotion' ? [] : [{ type: 'reloading' }],
      };
    case 'reload-ended': {
      const next: Readiness = { ...s, phase: 'serving' };
      if (event.lineage.role === 'awaiting-promotion') return { state: next, effects: [] };
      const { ok, outcome } = event.outcome;
      const how = ok ? 'reloaded' : `reload ${outcome.replace('_', ' ')}`;
      return {
        state: next,
        effects: [{ type: 'ready', status: `${serving(event.workers)} (${how})` }],
      };
    }
    case 'promoted':
      return {
        state: { phase: s.phase === 'starting' ? 'serving' : s.phase, readySent: true },
        effects: [
          {
            type: 'main-pid',
            pid: event.pid,
            status: `${serving(event.workers)} (upgraded)`,
            ready: true,
          },
          // WATCHDOG_PID still names the master we replaced
          { type: 'watchdog-on', force: true },
        ],
      };
    case 'stopping': {
      const l = event.lineage;
      const stopping: Readiness = { ...s, phase: 'stopping' };
      const off: ReadinessEffect = { type: 'watchdog-off' };
      // not the main process: not ours to tell
      if (l.role === 'awaiting-promotion') return { state: stopping, effects: [off] };
      if (l.role === 'parent') {
        // a new master of ours lives (an upgrade): the service goes on with it
        const status = `Handing over to the new master ${l.childPid}`;
        return {
          state: stopping,
          effects: [off, { type: 'main-pid', pid: l.childPid, status, ready: false }],
        };
      }
      return { state: stopping, effects: [off, { type: 'stopping' }] };
    }
    case 'closed':
      return { state: { ...s, phase: 'stopping' }, effects: [{ type: 'watchdog-off' }] };
  }
}
