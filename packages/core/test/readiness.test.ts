// Which sd_notify message when (ops/readiness.ts), driven through its transition table;
// the systemd e2e suite (apps/cli/test/systemd.e2e.test.ts) checks the datagrams themselves.
import { describe, expect, it } from 'vitest';
import type { Lineage } from '../src/master/lineage.js';
import type { ReloadOutcome } from '../src/master/reload.js';
import {
  READINESS_START,
  type Readiness,
  type ReadinessEvent,
  readinessTransition,
} from '../src/ops/readiness.js';

const SOLE: Lineage = { role: 'sole' };
const AWAITING: Lineage = { role: 'awaiting-promotion', parentPid: 10 };
const PARENT: Lineage = { role: 'parent', childPid: 20, childServing: true };
const completed: ReloadOutcome = { ok: true, outcome: 'completed', generation: 1, seq: 1 };
const rolledBack: ReloadOutcome = { ok: false, outcome: 'rolled_back', generation: 0, seq: 1 };

/** Runs the events in order; returns the last state and every effect. */
function run(events: ReadinessEvent[], from: Readiness = READINESS_START) {
  let state = from;
  const effects: unknown[] = [];
  for (const e of events) {
    const t = readinessTransition(state, e);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
}

describe('readinessTransition', () => {
  it('READY=1 once the first generation serves, with the watchdog', () => {
    const t = run([{ type: 'serving', lineage: SOLE, workers: 2 }]);
    expect(t.state).toEqual({ phase: 'serving', readySent: true });
    expect(t.effects).toEqual([
      { type: 'ready', status: 'Serving with 2 workers' },
      { type: 'watchdog-on', force: false },
    ]);
  });

  it('a reload: RELOADING=1, then READY=1 saying how it ended; a HUP during it says nothing', () => {
    const serving: Readiness = { phase: 'serving', readySent: true };
    const t = run(
      [
        { type: 'reload-requested', lineage: SOLE },
        { type: 'reload-requested', lineage: SOLE },
        { type: 'reload-ended', lineage: SOLE, outcome: completed, workers: 2 },
        { type: 'reload-requested', lineage: SOLE },
        { type: 'reload-ended', lineage: SOLE, outcome: rolledBack, workers: 3 },
      ],
      serving,
    );
    expect(t.effects).toEqual([
      { type: 'reloading' },
      { type: 'ready', status: 'Serving with 2 workers (reloaded)' },
      { type: 'reloading' },
      { type: 'ready', status: 'Serving with 3 workers (reload rolled back)' },
    ]);
    expect(t.state).toEqual(serving);
  });

  it('an unpromoted master says nothing until its promotion: MAINPID, READY, forced watchdog', () => {
    const quiet = run([
      { type: 'serving', lineage: AWAITING, workers: 2 },
      { type: 'reload-requested', lineage: AWAITING },
      { type: 'reload-ended', lineage: AWAITING, outcome: completed, workers: 2 },
    ]);
    expect(quiet.effects).toEqual([]);
    expect(quiet.state.readySent).toBe(false);
    const promoted = run([{ type: 'promoted', pid: 42, workers: 2 }], quiet.state);
    expect(promoted.effects).toEqual([
      { type: 'main-pid', pid: 42, status: 'Serving with 2 workers (upgraded)', ready: true },
      { type: 'watchdog-on', force: true },
    ]);
    expect(promoted.state).toEqual({ phase: 'serving', readySent: true });
  });

  it('stopping: STOPPING=1, or MAINPID of the new master, or nothing while unpromoted; once', () => {
    const serving: Readiness = { phase: 'serving', readySent: true };
    const off = { type: 'watchdog-off' };
    expect(run([{ type: 'stopping', lineage: SOLE }], serving).effects).toEqual([
      off,
      { type: 'stopping' },
    ]);
    expect(run([{ type: 'stopping', lineage: PARENT }], serving).effects).toEqual([
      off,
      { type: 'main-pid', pid: 20, status: 'Handing over to the new master 20', ready: false },
    ]);
    expect(run([{ type: 'stopping', lineage: AWAITING }], serving).effects).toEqual([off]);
    const twice = run(
      [
        { type: 'stopping', lineage: SOLE },
        { type: 'stopping', lineage: SOLE },
      ],
      serving,
    );
    expect(twice.effects).toEqual([off, { type: 'stopping' }]);
  });

  it('once stopping nothing but the watchdog going off is said (a late serving or reload end)', () => {
    const stopping: Readiness = { phase: 'stopping', readySent: false };
    const t = run(
      [
        { type: 'serving', lineage: SOLE, workers: 2 },
        { type: 'reload-requested', lineage: SOLE },
        { type: 'reload-ended', lineage: SOLE, outcome: completed, workers: 2 },
        { type: 'closed' },
      ],
      stopping,
    );
    expect(t.effects).toEqual([{ type: 'watchdog-off' }]);
    expect(t.state).toEqual(stopping);
  });

  it('a HUP before the first generation serves: READY=1 when it serves, READY=1 again at the end', () => {
    const t = run([
      { type: 'reload-requested', lineage: SOLE },
      { type: 'serving', lineage: SOLE, workers: 1 },
      { type: 'reload-requested', lineage: SOLE },
      { type: 'reload-ended', lineage: SOLE, outcome: completed, workers: 1 },
    ]);
    expect(t.effects).toEqual([
      { type: 'reloading' },
      { type: 'ready', status: 'Serving with 1 workers' },
      { type: 'watchdog-on', force: false },
      { type: 'ready', status: 'Serving with 1 workers (reloaded)' },
    ]);
  });
});
