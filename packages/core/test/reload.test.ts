// The HUP reload state machine (reload.ts): its transition table driven directly, then
// the whole of it through the Arbiter with fake spawn/kill/clock: readiness-gated
// retirement, rollback, coalescing, bind changes.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { ArbiterConfig } from '../src/config.js';
import { HaltServer } from '../src/errors.js';
import {
  absorbsHalt,
  RELOAD_IDLE,
  type ReloadEvent,
  type ReloadPhase,
  type ReloadState,
  type ReloadWorker,
  reloadDeadline,
  reloadTransition,
} from '../src/master/reload.js';
import type { SidecarSpec } from '../src/master/sidecar.js';
import { FakeChild, type Fakes, FIXTURES, fakeListener, fakes, makeArbiter } from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

const make = makeArbiter;

/** A reload of generation 0 to 1 in `phase`, booted at t=100 with a 10 s boot timeout. */
const at = (phase: ReloadPhase, more: Partial<ReloadState> = {}): ReloadState => ({
  ...RELOAD_IDLE,
  phase,
  seq: 1,
  from: 0,
  target: phase === 'idle' ? 0 : 1,
  bootTimeout: 10,
  deadline: 110,
  ...more,
});
const w = (age: number, generation: number, state: ReloadWorker['state']): ReloadWorker => ({
  age,
  generation,
  state,
});
const step = (
  workers: ReloadWorker[],
  more: Partial<Extract<ReloadEvent, { type: 'step' }>> = {},
): ReloadEvent => ({ type: 'step', now: 101, generation: 1, numWorkers: 2, workers, ...more });
const BUSY: ReloadPhase[] = [
  'loading-config',
  'booting-generation',
  'retiring-old',
  'rolling-back',
];

describe('reloadTransition: the table', () => {
  it('idle: a HUP starts loading the config; every other event changes nothing', () => {
    const t = reloadTransition(RELOAD_IDLE, { type: 'hup', generation: 3 });
    expect(t.state).toMatchObject({ phase: 'loading-config', seq: 1, from: 3, pending: false });
    expect(t.effects).toEqual([{ type: 'apply-config' }]);
    const ignored: ReloadEvent[] = [
      { type: 'config-applied', now: 1, generation: 1, bootTimeout: 5, workers: 1 },
      { type: 'config-refused', err: new Error('x'), generation: 0 },
      { type: 'worker-halted', generation: 0, reason: 'x' },
      step([w(1, 0, 'ready')]),
    ];
    for (const e of ignored) {
      expect(reloadTransition(RELOAD_IDLE, e)).toEqual({ state: RELOAD_IDLE, effects: [] });
    }
  });

  it.each(BUSY)('%s: HUPs are coalesced into one more reload, said once', (phase) => {
    const first = reloadTransition(at(phase), { type: 'hup', generation: 1 });
    expect(first.state).toEqual({ ...at(phase), pending: true });
    expect(first.effects).toEqual([
      { type: 'log', level: 'info', msg: 'Reload in progress: one more reload will follow it' },
    ]);
    const second = reloadTransition(first.state, { type: 'hup', generation: 1 });
    expect(second).toEqual({ state: first.state, effects: [] });
  });

  it('loading-config: the applied config boots with a deadline from the event time', () => {
    const t = reloadTransition(at('loading-config', { target: 0 }), {
      type: 'config-applied',
      now: 50,
      generation: 1,
      bootTimeout: 7,
      workers: 3,
    });
    expect(t.state).toMatchObject({ phase: 'booting-generation', target: 1, deadline: 57 });
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'info',
        msg: 'Reloading: booting generation 1 (3 workers, boot timeout 7s)',
        fields: { generation: 1, workers: 3 },
      },
    ]);
  });

  it('loading-config: a refused config ends the reload at once (and runs a coalesced HUP)', () => {
    const err = new Error('workers must be >= 1\nmore');
    const t = reloadTransition(at('loading-config', { pending: true }), {
      type: 'config-refused',
      err,
      generation: 0,
    });
    expect(t.state).toMatchObject({ phase: 'idle', pending: false, counts: { invalid: 1 } });
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'error',
        msg: 'Reload refused, nothing changed: workers must be >= 1',
        fields: { err },
      },
      {
        type: 'ended',
        outcome: {
          ok: false,
          outcome: 'refused',
          generation: 0,
          seq: 1,
          error: 'the new config is invalid; nothing changed',
        },
      },
      { type: 'request-reload' },
    ]);
  });

  it('booting: a 3/4 exit of the new generation is absorbed, of another one is not', () => {
    const s = at('booting-generation');
    expect(absorbsHalt(s, 1)).toBe(true);
    expect(absorbsHalt(s, 0)).toBe(false);
    for (const phase of ['idle', ...BUSY] as ReloadPhase[]) {
      if (phase !== 'booting-generation') expect(absorbsHalt(at(phase), 1)).toBe(false);
    }
    const t = reloadTransition(s, { type: 'worker-halted', generation: 1, reason: 'exit 4' });
    expect(t).toEqual({
      state: { ...s, failure: 'a worker of the new generation exited: exit 4' },
      effects: [],
    });
    const other = reloadTransition(s, { type: 'worker-halted', generation: 0, reason: 'x' });
    expect(other.state).toBe(s);
  });

  it('booting: one old worker retired per new one ready, oldest first', () => {
    const old = [w(2, 0, 'ready'), w(1, 0, 'ready')];
    const none = reloadTransition(at('booting-generation'), step([...old, w(3, 1, 'booting')]));
    expect(none.effects).toEqual([]);
    const one = reloadTransition(
      at('booting-generation'),
      step([...old, w(3, 1, 'ready'), w(4, 1, 'booting')]),
    );
    expect(one.state.phase).toBe('booting-generation');
    expect(one.effects).toEqual([{ type: 'retire', age: 1 }]);
  });

  it('booting: all new ready -> retiring-old, the rest retired, the config committed', () => {
    const t = reloadTransition(
      at('booting-generation'),
      step([w(1, 0, 'ready'), w(2, 0, 'retiring'), w(3, 1, 'ready'), w(4, 1, 'ready')]),
    );
    expect(t.state.phase).toBe('retiring-old');
    expect(t.effects).toEqual([
      { type: 'retire', age: 1 },
      { type: 'commit-config' },
      {
        type: 'log',
        level: 'info',
        msg: 'Reload: generation 1 is serving (2 workers)',
        fields: { generation: 1 },
      },
    ]);
  });

  it('booting: past the deadline, or after a failure, it rolls back', () => {
    const workers = [w(1, 0, 'ready'), w(2, 1, 'booting'), w(3, 1, 'ready')];
    const late = reloadTransition(at('booting-generation'), step(workers, { now: 110 }));
    expect(late.state).toMatchObject({
      phase: 'rolling-back',
      deadline: 120,
      counts: { failed: 1 },
    });
    expect(late.effects).toEqual([
      {
        type: 'log',
        level: 'error',
        msg:
          'Reload failed: the new generation was not ready within 10s (1/2 ready); ' +
          'generation 1 stopped, generation 0 keeps serving',
        fields: {
          generation: 1,
          reason: 'the new generation was not ready within 10s (1/2 ready)',
        },
      },
      { type: 'restore-config' },
      { type: 'retire', age: 2 },
      { type: 'retire', age: 3 },
    ]);
    const early = reloadTransition(at('booting-generation'), step(workers, { now: 109.9 }));
    expect(early.state.phase).toBe('booting-generation');
    const failed = reloadTransition(
      at('booting-generation', { failure: 'a worker of the new generation exited: x' }),
      step(workers, { now: 101 }),
    );
    expect(failed.state.phase).toBe('rolling-back');
    expect(failed.effects[0]).toMatchObject({
      level: 'error',
      msg: expect.stringMatching(/^Reload failed: a worker of the new generation exited: x;/),
    });
  });

  it('retiring-old: waits for every old worker, then completes', () => {
    const s = at('retiring-old');
    const waiting = reloadTransition(
      s,
      step([w(1, 0, 'retiring'), w(2, 0, 'ready'), w(3, 1, 'ready')]),
    );
    expect(waiting).toEqual({ state: s, effects: [{ type: 'retire', age: 2 }] });
    const done = reloadTransition({ ...s, pending: true }, step([w(3, 1, 'ready')]));
    expect(done.state).toMatchObject({ phase: 'idle', pending: false, counts: { completed: 1 } });
    expect(done.effects).toEqual([
      { type: 'close-dropped-listeners' },
      { type: 'log', level: 'info', msg: 'Reload complete', fields: { generation: 1 } },
      { type: 'ended', outcome: { ok: true, outcome: 'completed', generation: 1, seq: 1 } },
      { type: 'request-reload' },
    ]);
  });

  it('rolling-back: waits for the failed generation, SIGKILLs it after the deadline', () => {
    const s = at('rolling-back');
    const left = [w(1, 0, 'ready'), w(2, 1, 'retiring'), w(3, 1, 'killed')];
    expect(reloadTransition(s, step(left, { now: 109, generation: 0 }))).toEqual({
      state: s,
      effects: [],
    });
    expect(reloadTransition(s, step(left, { now: 110, generation: 0 })).effects).toEqual([
      { type: 'kill', age: 2 },
    ]);
    const gone = reloadTransition(s, step([w(1, 0, 'ready')], { generation: 0 }));
    expect(gone.state.phase).toBe('idle');
    expect(gone.effects).toEqual([
      {
        type: 'ended',
        outcome: {
          ok: false,
          outcome: 'rolled_back',
          generation: 0,
          seq: 1,
          error: 'the new generation failed to boot; rolled back, the old one keeps serving',
        },
      },
    ]);
  });

  it('the loop needs a wake-up only for the boot and the rollback deadlines', () => {
    expect(reloadDeadline(RELOAD_IDLE)).toBeUndefined();
    expect(reloadDeadline(at('loading-config'))).toBeUndefined();
    expect(reloadDeadline(at('booting-generation'))).toBe(110);
    expect(reloadDeadline(at('retiring-old'))).toBeUndefined();
    expect(reloadDeadline(at('rolling-back'))).toBe(110);
  });
});

const ready = (f: Fakes, ...indexes: number[]) => {
  for (const i of indexes) f.children[i]!.emit('message', { type: 'ready' });
};

describe('HUP reload: readiness before retirement', () => {
  it('reads the config afresh, applies it to a new generation, retires old workers one for one as new ones are ready', async () => {
    const onReload = vi.fn();
    const nworkersChanged = vi.fn();
    const reloadConfig = vi.fn(async () => ({
      app: APP,
      workers: 3,
      timeout: 7,
      gracefulTimeout: 0.2,
      onReload,
      nworkersChanged,
    }));
    const { arbiter, f } = make({ workers: 2, reloadConfig });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    expect(reloadConfig).toHaveBeenCalledOnce();
    expect(arbiter.reloader.phase).toBe('booting-generation');
    expect(arbiter.settings.timeout).toBe(7);
    expect(onReload).toHaveBeenCalledWith(arbiter); // the new config's hook
    expect(nworkersChanged).toHaveBeenCalledWith(arbiter, 3, 2);
    expect(arbiter.generation).toBe(1);
    expect(f.children).toHaveLength(5); // 2 old + 3 new
    expect(arbiter.pool.all().map((w) => w.generation)).toEqual([0, 0, 1, 1, 1]);
    // the new workers get the new settings
    const payload = JSON.parse(
      (f.deps.spawn as ReturnType<typeof vi.fn>).mock.calls[4]![2].env.ARB_WORKER,
    );
    expect(payload.settings.timeout).toBe(7);

    await arbiter.pass();
    expect(f.kill).not.toHaveBeenCalled();
    ready(f, 2); // 1 new ready: 2 old + 1 new ≥ 3, nothing to retire yet
    await arbiter.pass();
    expect(f.kill).not.toHaveBeenCalled();
    ready(f, 3); // 2 new ready: one old may go
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([[101, 'SIGTERM']]);
    ready(f, 4);
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    expect(arbiter.reloader.phase).toBe('retiring-old');
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.reloader.state.counts.completed).toBe(1);
    expect(f.children).toHaveLength(5); // manageWorkers never spawned extra ones
  });

  it('without reloadConfig a HUP boots a new generation of the same config', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    ready(f, 0);
    await arbiter.handleSignal('SIGHUP');
    expect(f.children).toHaveLength(2);
    ready(f, 1);
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([[101, 'SIGTERM']]);
  });

  it('a config that no longer validates changes nothing, with one error line', async () => {
    const reloadConfig = vi.fn(async () => ({ app: APP, workers: -1 }));
    const { arbiter, f } = make({ workers: 2, reloadConfig });
    await arbiter.pool.manage();
    const settings = arbiter.settings;
    await arbiter.handleSignal('SIGHUP');
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.settings).toBe(settings);
    expect(arbiter.generation).toBe(0);
    expect(f.children).toHaveLength(2);
    const errors = f.log.at('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/^Reload refused, nothing changed: .*workers/);
  });

  it('a config file that throws on import changes nothing either', async () => {
    const reloadConfig = vi.fn(async (): Promise<ArbiterConfig> => {
      throw new SyntaxError('Unexpected token');
    });
    const { arbiter, f } = make({ workers: 1, reloadConfig });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGHUP');
    expect(arbiter.reloader.phase).toBe('idle');
    expect(f.children).toHaveLength(1);
    expect(f.log.at('error')[0]!.msg).toContain('Unexpected token');
  });
});

describe('HUP reload: a failing generation is rolled back', () => {
  it('a new worker exiting 4 fails the reload instead of halting; the old generation is untouched', async () => {
    const reloadConfig = vi.fn(async () => ({ app: APP, workers: 2, timeout: 9 }));
    const { arbiter, f } = make({ workers: 2, reloadConfig });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    f.children[2]!.die(4);
    await arbiter.pass(); // no HaltServer
    expect(arbiter.reloader.phase).toBe('rolling-back');
    expect(arbiter.settings.timeout).toBe(2); // the old settings are back
    expect(arbiter.generation).toBe(0);
    expect(f.kill.mock.calls).toEqual([[104, 'SIGTERM']]); // only the new generation
    const failed = f.log.at('error').filter((l) => l.msg.startsWith('Reload failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]!.msg).toMatch(/could not load the app.*generation 0 keeps serving/);
    f.children[3]!.die(4); // late exit of the failed generation: still no halt
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.reloader.state.counts.failed).toBe(1);
    expect(f.children).toHaveLength(4); // nothing respawned: the old two still serve
    // after the reload, the usual halt rules apply again
    f.children[0]!.die(3);
    await expect(arbiter.pool.reap()).rejects.toBeInstanceOf(HaltServer);
  });

  it('a new generation not ready within bootTimeout is stopped', async () => {
    const { arbiter, f } = make({ workers: 1, bootTimeout: 5 });
    await arbiter.pool.manage();
    ready(f, 0);
    await arbiter.handleSignal('SIGHUP');
    f.advance(4);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('booting-generation');
    f.advance(1.5);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('rolling-back');
    expect(f.kill.mock.calls).toEqual([[102, 'SIGTERM']]);
    expect(f.log.at('error').at(-1)!.msg).toMatch(/not ready within 5s \(0\/1 ready\)/);
    // it ignores TERM (stuck in its import): SIGKILL after another bootTimeout
    f.advance(5);
    await arbiter.pass();
    expect(f.kill.mock.calls.at(-1)).toEqual([102, 'SIGKILL']);
    f.children[1]!.die(null, 'SIGKILL');
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
  });

  it('the boot timeout defaults to max(timeout, 30)', async () => {
    const { arbiter, f } = make({ workers: 1, timeout: 2 });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGHUP');
    f.clock.t += 29;
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('booting-generation');
    f.clock.t += 1.5;
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('rolling-back');
  });

  it('old workers retired before the failure are replaced by the old config', async () => {
    const reloadConfig = vi.fn(async () => ({ app: APP, workers: 2, timeout: 9 }));
    const { arbiter, f } = make({ workers: 2, reloadConfig });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    ready(f, 2);
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([[101, 'SIGTERM']]);
    f.children[3]!.die(3);
    await arbiter.pass();
    f.clock.t += 1; // the crash backoff's first step
    await arbiter.pass();
    // 102 still serves, 103 (new, ready) is retired, and a generation-0 worker replaces 101
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [103, 'SIGTERM'],
    ]);
    expect(f.children).toHaveLength(5);
    expect(arbiter.pool.all().find((w) => w.pid === 105)!.generation).toBe(0);
    const payload = JSON.parse(
      (f.deps.spawn as ReturnType<typeof vi.fn>).mock.calls[4]![2].env.ARB_WORKER,
    );
    expect(payload.settings.timeout).toBe(2);
  });
});

describe('HUP reload: coalescing', () => {
  it('HUPs during a reload make exactly one more reload after it', async () => {
    const reloadConfig = vi.fn(async () => ({ app: APP, workers: 1 }));
    const { arbiter, f } = make({ workers: 1, reloadConfig });
    await arbiter.pool.manage();
    ready(f, 0);
    await arbiter.handleSignal('SIGHUP');
    await arbiter.handleSignal('SIGHUP');
    await arbiter.handleSignal('SIGHUP');
    expect(reloadConfig).toHaveBeenCalledOnce();
    expect(f.children).toHaveLength(2); // never stacked generations
    ready(f, 1);
    await arbiter.pass(); // the old worker is retired
    f.children[0]!.die(0);
    await arbiter.pass(); // reload 1 completes, queues one HUP
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.signals.size).toBe(1);
    await arbiter.pass(); // reload 2 starts
    expect(reloadConfig).toHaveBeenCalledTimes(2);
    expect(arbiter.generation).toBe(2);
    expect(f.children).toHaveLength(3);
    ready(f, 2);
    await arbiter.pass();
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.signals.size).toBe(0);
  });
});

describe('HUP reload: listeners and sidecar', () => {
  it('binds added addresses before spawning, closes dropped ones after the old workers are gone', async () => {
    const f = fakes();
    const a = fakeListener('127.0.0.1:1001', 21);
    const b = fakeListener('127.0.0.1:1002', 22);
    const c = fakeListener('127.0.0.1:1003', 23);
    f.deps.createListeners = vi.fn(async () => ({ listeners: [a, b], systemd: false }));
    const reloadConfig = vi.fn(async () => ({
      app: APP,
      workers: 1,
      bind: ['127.0.0.1:1001', '127.0.0.1:1003'],
    }));
    const { arbiter } = make(
      { workers: 1, bind: ['127.0.0.1:1001', '127.0.0.1:1002'], reloadConfig },
      f,
    );
    await arbiter.start();
    await arbiter.pool.manage();
    ready(f, 0);
    (f.deps.createListeners as ReturnType<typeof vi.fn>).mockResolvedValueOnce({
      listeners: [c],
      systemd: false,
    });
    await arbiter.handleSignal('SIGHUP');
    const bindCall = (f.deps.createListeners as ReturnType<typeof vi.fn>).mock.calls[1]![0];
    expect(bindCall.bind).toEqual(['127.0.0.1:1003']);
    expect(bindCall.env).toEqual({}); // nothing inherited: bind them
    expect(arbiter.listeners).toEqual([a, c]);
    // the new worker got the new set
    expect((f.deps.handoff as ReturnType<typeof vi.fn>).mock.calls.at(-1)![0]).toEqual([a, c]);
    expect(f.closeListeners).not.toHaveBeenCalled();
    ready(f, 1);
    await arbiter.pass();
    expect(f.closeListeners).not.toHaveBeenCalled(); // the old worker still has b
    f.children[0]!.die(0);
    await arbiter.pass();
    expect(f.closeListeners).toHaveBeenCalledWith([b], { unlink: true });
    expect(arbiter.reloader.phase).toBe('idle');
  });

  it('a rollback closes the addresses it bound and restores the old set', async () => {
    const f = fakes();
    const a = fakeListener('127.0.0.1:1001', 21);
    const c = fakeListener('127.0.0.1:1003', 23);
    f.deps.createListeners = vi.fn(async () => ({ listeners: [a], systemd: false }));
    const reloadConfig = vi.fn(async () => ({
      app: APP,
      workers: 1,
      bind: ['127.0.0.1:1001', '127.0.0.1:1003'],
    }));
    const { arbiter } = make({ workers: 1, bind: ['127.0.0.1:1001'], reloadConfig }, f);
    await arbiter.start();
    await arbiter.pool.manage();
    (f.deps.createListeners as ReturnType<typeof vi.fn>).mockResolvedValueOnce({
      listeners: [c],
      systemd: false,
    });
    await arbiter.handleSignal('SIGHUP');
    f.children[1]!.die(4);
    await arbiter.pass();
    expect(f.closeListeners).toHaveBeenCalledWith([c], { unlink: true });
    expect(arbiter.listeners).toEqual([a]);
  });

  it('the sidecar is handed the new spec once the new generation is ready (restarted only if its identity changed)', async () => {
    const spec = (identity: string): SidecarSpec => ({
      name: 'companion manager',
      identity,
      stopTimeout: 1,
      spawn: vi.fn(() => new FakeChild(900) as unknown as ChildProcess),
    });
    const first = spec('h1');
    const second = spec('h1');
    const reloadConfig = vi.fn(async () => ({ app: APP, workers: 1, sidecar: second }));
    const { arbiter } = make({ workers: 1, sidecar: first, reloadConfig });
    const reload = vi.spyOn(arbiter.sidecar, 'reload');
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGHUP');
    expect(reload).not.toHaveBeenCalled();
    (arbiter.pool.all().at(-1)!.child as unknown as { emit(...a: unknown[]): void }).emit(
      'message',
      { type: 'ready' },
    );
    await arbiter.pass();
    expect(reload).toHaveBeenCalledWith(second);
  });
});
