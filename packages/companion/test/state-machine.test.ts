import { describe, expect, it } from 'vitest';
import {
  type CompanionState,
  INITIAL_MACHINE,
  type Machine,
  type MachineEvent,
  type Policy,
  transition,
} from '../src/index.js';

const policy: Policy = {
  name: 'rq',
  stopTimeout: 60,
  reloadTimeout: 30,
  autorestart: 'always',
  exitCodes: [0],
  startRetries: null,
  restartDelay: 5,
  maxRestartDelay: 60,
  backoffResetAfter: 60,
};
const noJitter = () => 0;
const at = (state: CompanionState, extra: Partial<Machine> = {}): Machine => ({
  ...INITIAL_MACHINE,
  state,
  ...(state === 'STOPPING' ? { stopIntent: 'stop', manualStop: true } : {}),
  ...extra,
});
const go = (m: Machine, ev: MachineEvent, p: Partial<Policy> = {}) =>
  transition(m, ev, { ...policy, ...p }, noJitter);
const exit = (code: number | null, ranFor = 0, signal: string | null = null): MachineEvent => ({
  type: 'exit',
  code,
  signal,
  ranFor,
});

describe('start', () => {
  for (const s of ['STOPPED', 'BACKOFF', 'FATAL'] as const) {
    it(`from ${s}: spawns, clears manualStop and the retry`, () => {
      const t = go(at(s, { manualStop: true, failedStarts: 4, backoffStep: 3 }), { type: 'start' });
      expect(t.machine).toMatchObject({
        state: 'STARTING',
        manualStop: false,
        failedStarts: 0,
        backoffStep: 0,
      });
      expect(t.effects).toEqual([{ type: 'cancelRetry' }, { type: 'spawn', counted: false }]);
      expect(t).toMatchObject({ ok: true, message: 'rq started' });
    });
  }
  it('RUNNING and STARTING: no action', () => {
    expect(go(at('RUNNING'), { type: 'start' })).toMatchObject({
      ok: true,
      message: 'rq already running',
      effects: [],
    });
    expect(go(at('STARTING'), { type: 'start' })).toMatchObject({
      ok: true,
      message: 'rq already starting',
      effects: [],
    });
  });
  it('STOPPING is refused', () => {
    expect(go(at('STOPPING'), { type: 'start' })).toMatchObject({
      ok: false,
      message: 'rq is stopping; retry',
    });
  });
});

describe('stop', () => {
  it('RUNNING/STARTING: stop signal, deadline stopTimeout, manualStop', () => {
    for (const s of ['RUNNING', 'STARTING'] as const) {
      const t = go(at(s), { type: 'stop' });
      expect(t.machine).toMatchObject({ state: 'STOPPING', stopIntent: 'stop', manualStop: true });
      expect(t.effects).toEqual([
        { type: 'signal' },
        { type: 'armKill', seconds: 60, tighten: false },
      ]);
      expect(t.message).toBe('rq stopping');
    }
  });
  it('a cap bounds the deadline (quick stop)', () => {
    expect(go(at('RUNNING'), { type: 'stop', cap: 1 }).effects[1]).toEqual({
      type: 'armKill',
      seconds: 1,
      tighten: false,
    });
  });
  it('BACKOFF goes to STOPPED without a signal', () => {
    const t = go(at('BACKOFF'), { type: 'stop' });
    expect(t.machine).toMatchObject({ state: 'STOPPED', manualStop: true });
    expect(t.effects).toEqual([{ type: 'cancelRetry' }]);
    expect(t.message).toBe('rq stopped');
  });
  it('STOPPED sets manualStop only', () => {
    const t = go(at('STOPPED'), { type: 'stop' });
    expect(t.machine).toMatchObject({ state: 'STOPPED', manualStop: true });
    expect(t).toMatchObject({ ok: true, message: 'rq already stopped', effects: [] });
  });
  it('FATAL goes to STOPPED', () => {
    expect(go(at('FATAL'), { type: 'stop' }).machine).toMatchObject({
      state: 'STOPPED',
      manualStop: true,
    });
  });
  it('during a restart: cancels it and tightens the deadline', () => {
    const t = go(at('STOPPING', { stopIntent: 'restart', manualStop: false }), { type: 'stop' });
    expect(t.machine).toMatchObject({ state: 'STOPPING', stopIntent: 'stop', manualStop: true });
    expect(t.effects).toEqual([{ type: 'armKill', seconds: 60, tighten: true }]);
    expect(t.message).toBe('rq already stopping');
    // ...so the exit settles in STOPPED instead of respawning.
    expect(go(t.machine, exit(0)).machine.state).toBe('STOPPED');
    expect(go(t.machine, exit(0)).effects).toEqual([]);
  });
});

describe('outgrown (maxMemory)', () => {
  it('RUNNING: a normal restart with the stop signal and stopTimeout (not reloadTimeout)', () => {
    const t = go(at('RUNNING'), { type: 'outgrown' });
    expect(t.machine).toMatchObject({
      state: 'STOPPING',
      stopIntent: 'restart',
      manualStop: false,
    });
    expect(t.effects).toEqual([
      { type: 'signal' },
      { type: 'armKill', seconds: 60, tighten: false },
    ]);
    const e = go(t.machine, exit(null, 5, 'SIGTERM'));
    expect(e.machine).toMatchObject({ state: 'STARTING', stopIntent: null });
    expect(e.effects).toEqual([{ type: 'spawn', counted: true }]);
  });
  for (const s of ['STOPPED', 'STARTING', 'BACKOFF', 'STOPPING', 'FATAL'] as const) {
    it(`${s}: changes nothing (only a RUNNING process is restarted)`, () => {
      const m = at(s);
      const t = go(m, { type: 'outgrown' });
      expect(t.machine).toBe(m);
      expect(t.effects).toEqual([]);
    });
  }
});

describe('restart', () => {
  it('RUNNING: stop signal with reloadTimeout, respawn on exit, clears manualStop', () => {
    const t = go(at('RUNNING', { manualStop: true }), { type: 'restart' });
    expect(t.machine).toMatchObject({
      state: 'STOPPING',
      stopIntent: 'restart',
      manualStop: false,
    });
    expect(t.effects).toEqual([
      { type: 'signal' },
      { type: 'armKill', seconds: 30, tighten: false },
    ]);
    expect(t.message).toBe('rq restarting');
    const e = go(t.machine, exit(null, 5, 'SIGTERM'));
    expect(e.machine).toMatchObject({ state: 'STARTING', stopIntent: null });
    expect(e.effects).toEqual([{ type: 'spawn', counted: true }]);
  });
  for (const s of ['STOPPED', 'BACKOFF', 'FATAL'] as const) {
    it(`${s}: starts now`, () => {
      const t = go(at(s, { manualStop: true }), { type: 'restart' });
      expect(t.machine).toMatchObject({ state: 'STARTING', manualStop: false });
      expect(t.effects).toEqual([{ type: 'cancelRetry' }, { type: 'spawn', counted: false }]);
      expect(t.message).toBe('rq started');
    });
  }
  it('STOPPING is refused and touches nothing', () => {
    const m = at('STOPPING');
    const t = go(m, { type: 'restart' });
    expect(t).toMatchObject({ ok: false, message: 'rq is stopping; retry', effects: [] });
    expect(t.machine).toBe(m);
  });
});

describe('exits and the restart policy', () => {
  it('manual stop exit goes to STOPPED and stays there', () => {
    const t = go(at('STOPPING'), exit(null, 1, 'SIGTERM'));
    expect(t.machine).toMatchObject({ state: 'STOPPED', manualStop: true });
    expect(t.effects).toEqual([]);
  });
  it('an unexpected exit backs off, exit 0 included (autorestart always)', () => {
    for (const code of [0, 1, null]) {
      const t = go(at('RUNNING'), exit(code, 2));
      expect(t.machine).toMatchObject({ state: 'BACKOFF', backoffStep: 1 });
      expect(t.effects).toEqual([{ type: 'armRetry', seconds: 5 }]);
    }
  });
  it('backoff grows and caps, and resets after a stable run', () => {
    let m = at('RUNNING');
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = go(m, exit(1, 2));
      delays.push((t.effects[0] as { seconds: number }).seconds);
      m = go(t.machine, { type: 'retryDue' }).machine;
      m = go(m, { type: 'promote' }).machine;
    }
    expect(delays).toEqual([5, 10, 20, 40, 60, 60, 60]);
    const stable = go(m, exit(1, 61));
    expect(stable.effects).toEqual([{ type: 'armRetry', seconds: 5 }]);
    expect(stable.machine.backoffStep).toBe(1);
  });
  it('autorestart unexpected: expected codes stop, others back off', () => {
    const p = { autorestart: 'unexpected' as const, exitCodes: [0, 2] };
    expect(go(at('RUNNING'), exit(2, 3), p).machine.state).toBe('STOPPED');
    expect(go(at('STARTING'), exit(0, 0), p).machine.state).toBe('STOPPED');
    expect(go(at('RUNNING'), exit(1, 3), p).machine.state).toBe('BACKOFF');
    expect(go(at('RUNNING'), exit(null, 3, 'SIGSEGV'), p).machine.state).toBe('BACKOFF');
  });
  it('autorestart never: any exit stops (not manually)', () => {
    const t = go(at('RUNNING'), exit(1, 3), { autorestart: 'never' });
    expect(t.machine).toMatchObject({ state: 'STOPPED', manualStop: false });
    expect(t.effects).toEqual([]);
  });
  it('FATAL after startRetries consecutive failed starts; reaching RUNNING resets', () => {
    const p = { startRetries: 2 };
    let m = at('STARTING');
    const states: CompanionState[] = [];
    for (let i = 0; i < 3; i++) {
      m = go(m, exit(1), p).machine;
      states.push(m.state);
      if (m.state === 'BACKOFF') m = go(m, { type: 'retryDue' }, p).machine;
    }
    expect(states).toEqual(['BACKOFF', 'BACKOFF', 'FATAL']);
    expect(m.failedStarts).toBe(3);
    // A crash after RUNNING is not a failed start.
    let r = go(at('STARTING', { failedStarts: 2 }), { type: 'promote' }, p).machine;
    expect(r.failedStarts).toBe(0);
    r = go(r, exit(1, 5), p).machine;
    expect(r.state).toBe('BACKOFF');
  });
  it('without startRetries it retries for ever', () => {
    let m = at('STARTING');
    for (let i = 0; i < 50; i++) {
      m = go(m, exit(1)).machine;
      expect(m.state).toBe('BACKOFF');
      m = go(m, { type: 'retryDue' }).machine;
    }
  });
  it('stray exits in states without a process change nothing', () => {
    for (const s of ['STOPPED', 'BACKOFF', 'FATAL'] as const) {
      const m = at(s);
      expect(go(m, exit(1)).machine).toBe(m);
    }
  });
});

describe('timers', () => {
  it('promote only from STARTING', () => {
    expect(go(at('STARTING'), { type: 'promote' }).machine.state).toBe('RUNNING');
    expect(go(at('BACKOFF'), { type: 'promote' }).machine.state).toBe('BACKOFF');
    expect(go(at('STOPPING'), { type: 'promote' }).machine.state).toBe('STOPPING');
  });
  it('retryDue respawns a BACKOFF (counted), ignored elsewhere', () => {
    const t = go(at('BACKOFF'), { type: 'retryDue' });
    expect(t.machine.state).toBe('STARTING');
    expect(t.effects).toEqual([{ type: 'spawn', counted: true }]);
    expect(go(at('STOPPED'), { type: 'retryDue' }).effects).toEqual([]);
  });
  it('killDue SIGKILLs only while STOPPING', () => {
    expect(go(at('STOPPING'), { type: 'killDue' }).effects).toEqual([{ type: 'kill' }]);
    expect(go(at('RUNNING'), { type: 'killDue' }).effects).toEqual([]);
  });
});
