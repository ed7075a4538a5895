// The HUP reload state machine (reload.ts) driven through the Arbiter with fake
// spawn/kill/clock: readiness-gated retirement, rollback, coalescing, bind changes.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { ArbiterConfig } from '../src/config.js';
import { HaltServer } from '../src/errors.js';
import type { SidecarSpec } from '../src/master/sidecar.js';
import { FakeChild, type Fakes, FIXTURES, fakeListener, fakes, makeArbiter } from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

const make = makeArbiter;

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
    expect(arbiter.reloader.state).toBe('booting-generation');
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
    expect(arbiter.reloader.state).toBe('retiring-old');
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('idle');
    expect(arbiter.reloader.counts.completed).toBe(1);
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
    expect(arbiter.reloader.state).toBe('idle');
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
    expect(arbiter.reloader.state).toBe('idle');
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
    expect(arbiter.reloader.state).toBe('rolling-back');
    expect(arbiter.settings.timeout).toBe(2); // the old settings are back
    expect(arbiter.generation).toBe(0);
    expect(f.kill.mock.calls).toEqual([[104, 'SIGTERM']]); // only the new generation
    const failed = f.log.at('error').filter((l) => l.msg.startsWith('Reload failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]!.msg).toMatch(/could not load the app.*generation 0 keeps serving/);
    f.children[3]!.die(4); // late exit of the failed generation: still no halt
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('idle');
    expect(arbiter.reloader.counts.failed).toBe(1);
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
    expect(arbiter.reloader.state).toBe('booting-generation');
    f.advance(1.5);
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('rolling-back');
    expect(f.kill.mock.calls).toEqual([[102, 'SIGTERM']]);
    expect(f.log.at('error').at(-1)!.msg).toMatch(/not ready within 5s \(0\/1 ready\)/);
    // it ignores TERM (stuck in its import): SIGKILL after another bootTimeout
    f.advance(5);
    await arbiter.pass();
    expect(f.kill.mock.calls.at(-1)).toEqual([102, 'SIGKILL']);
    f.children[1]!.die(null, 'SIGKILL');
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('idle');
  });

  it('the boot timeout defaults to max(timeout, 30)', async () => {
    const { arbiter, f } = make({ workers: 1, timeout: 2 });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGHUP');
    f.clock.t += 29;
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('booting-generation');
    f.clock.t += 1.5;
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('rolling-back');
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
    expect(arbiter.reloader.state).toBe('idle');
    expect(arbiter.signals.size).toBe(1);
    await arbiter.pass(); // reload 2 starts
    expect(reloadConfig).toHaveBeenCalledTimes(2);
    expect(arbiter.generation).toBe(2);
    expect(f.children).toHaveLength(3);
    ready(f, 2);
    await arbiter.pass();
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.state).toBe('idle');
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
    expect(arbiter.reloader.state).toBe('idle');
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
