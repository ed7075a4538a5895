// The seed cases of gunicorn's tests/test_arbiter.py (fork with companions) that are not
// about re-exec, plus upstream's extra arbiter cases (reference §6.1, §6.2), against an
// Arbiter with injected spawn/kill/clock/log.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HaltServer } from '../src/errors.js';
import { MASTER_SIGNALS } from '../src/master/wakeup.js';
import { SPAWN_WINDOW_SECONDS, SPAWNS_PER_WINDOW } from '../src/master/workers.js';
import { FIXTURES, fakeListener, fakes, makeArbiter, tempDir } from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

const make = makeArbiter;
const listener = (address: string) => fakeListener(address);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
/** A temp dir removed after the test, whatever its outcome. */
function scratch(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

describe('stop: closing and unlinking the listeners (seed cases 1-5)', () => {
  it('a plain stop closes the listeners and unlinks', async () => {
    const { arbiter, f } = make();
    const listeners = [listener('127.0.0.1:1'), listener('127.0.0.1:2')];
    arbiter.listeners = listeners;
    await arbiter.stop();
    expect(f.closeListeners).toHaveBeenCalledWith(listeners, { unlink: true });
    expect(arbiter.listeners).toEqual([]);
  });

  it('does not unlink while a re-exec child master exists', async () => {
    const { arbiter, f } = make();
    arbiter.lineage = { role: 'parent', childPid: process.pid, childServing: false };
    await arbiter.stop();
    expect(f.closeListeners).toHaveBeenCalledWith([], { unlink: false });
  });

  it('does not unlink in a re-exec child whose parent master lives', async () => {
    const { arbiter, f } = make();
    arbiter.lineage = { role: 'awaiting-promotion', parentPid: process.ppid };
    await arbiter.stop();
    expect(f.closeListeners).toHaveBeenCalledWith([], { unlink: false });
  });

  it('does not unlink systemd listeners', async () => {
    const { arbiter, f } = make();
    arbiter.systemd = true;
    await arbiter.stop();
    expect(f.closeListeners).toHaveBeenCalledWith([], { unlink: false });
  });

  it('does not unlink with reusePort', async () => {
    const { arbiter, f } = make({ reusePort: true });
    await arbiter.stop();
    expect(f.closeListeners).toHaveBeenCalledWith([], { unlink: false });
  });
});

describe('spawning and reaping workers', () => {
  it('spawns a worker with the listeners at fd 3.., the heartbeat after them, and IPC', async () => {
    const f = fakes();
    f.deps.handoff = vi.fn(() => ({
      stdio: [11, 12],
      env: { ARB_FD: '3,4', ARB_LISTENERS: 'x', ARB_BACKLOG: '2048' },
    }));
    const { arbiter } = make({ maxRequests: 10, maxRequestsJitter: 4 }, f);
    const w = await arbiter.pool.spawn();
    expect(w?.pid).toBe(101);
    expect(arbiter.pool.get(1)).toBe(w);
    const [cmd, args, opts] = (f.deps.spawn as ReturnType<typeof vi.fn>).mock.calls[0]!;
    expect(cmd).toBe(process.execPath);
    expect(args.at(-1)).toBe('/nonexistent/worker-main.js');
    expect(opts.stdio).toEqual(['inherit', 'inherit', 'inherit', 11, 12, 99, 'ipc']);
    expect(opts.env.ARB_FD).toBe('3,4');
    const payload = JSON.parse(opts.env.ARB_WORKER);
    expect(payload).toMatchObject({
      age: 1,
      masterPid: process.pid,
      heartbeatFd: 5,
      maxRequests: 12,
    });
    expect(payload.settings.app).toBe(APP);
  });

  it('ages increase and are never reused', async () => {
    const { arbiter } = make();
    const a = await arbiter.pool.spawn();
    const b = await arbiter.pool.spawn();
    expect([a?.age, b?.age]).toEqual([1, 2]);
  });

  it('runs preFork in the master before each spawn', async () => {
    const preFork = vi.fn();
    const { arbiter, f } = make({ preFork });
    await arbiter.pool.spawn();
    expect(preFork).toHaveBeenCalledWith(arbiter, expect.objectContaining({ age: 1 }));
    expect(preFork.mock.invocationCallOrder[0]).toBeLessThan(
      (f.deps.spawn as ReturnType<typeof vi.fn>).mock.invocationCallOrder[0]!,
    );
  });

  it('reaping a worker closes its heartbeat and calls childExit (seed 11)', async () => {
    const childExit = vi.fn();
    const { arbiter, f } = make({ childExit });
    const w = (await arbiter.pool.spawn())!;
    f.children[0]!.die(0);
    await arbiter.pool.reap();
    expect(f.heartbeats[0]!.close).toHaveBeenCalled();
    expect(childExit).toHaveBeenCalledWith(arbiter, w);
    expect(arbiter.pool.size).toBe(0);
    expect(w.state).toBe('exited');
  });

  it('a worker found gone when signalled is removed and workerExit runs in the master (seed 10)', async () => {
    const workerExit = vi.fn();
    const { arbiter, f } = make({ workerExit });
    const w = (await arbiter.pool.spawn())!;
    f.kill.mockImplementation(() => {
      throw Object.assign(new Error('gone'), { code: 'ESRCH' });
    });
    await arbiter.pool.kill(w, 'SIGTERM');
    expect(workerExit).toHaveBeenCalledWith(arbiter, w);
    expect(f.heartbeats[0]!.close).toHaveBeenCalled();
    expect(arbiter.pool.size).toBe(0);
  });

  it('kill_worker sends the signal', async () => {
    const { arbiter, f } = make();
    const w = (await arbiter.pool.spawn())!;
    await arbiter.pool.kill(w, 'SIGUSR1');
    expect(f.kill).toHaveBeenCalledWith(101, 'SIGUSR1');
  });
});

describe('exit classification while reaping (upstream TestReapWorkers)', () => {
  async function reapOne(code: number | null, signal: NodeJS.Signals | null = null) {
    const childExit = vi.fn();
    const { arbiter, f } = make({ childExit });
    await arbiter.pool.spawn();
    f.children[0]!.die(code, signal);
    let halted: HaltServer | undefined;
    try {
      await arbiter.pool.reap();
    } catch (err) {
      halted = err as HaltServer;
    }
    return { arbiter, f, halted, childExit };
  }

  it('a normal exit: child_exit once, removed, no error', async () => {
    const { arbiter, f, halted, childExit } = await reapOne(0);
    expect(halted).toBeUndefined();
    expect(childExit).toHaveBeenCalledTimes(1);
    expect(arbiter.pool.size).toBe(0);
    expect(f.log.at('error')).toHaveLength(0);
  });

  it('an error code is logged as an error', async () => {
    const { f, halted } = await reapOne(1);
    expect(halted).toBeUndefined();
    expect(f.log.at('error').map((l) => l.msg)).toEqual(['Worker (pid:101) exited with code 1']);
  });

  it('exit 3 halts with status 3 and says why', async () => {
    const { arbiter, f } = make();
    await arbiter.pool.spawn();
    f.children[0]!.emit('message', {
      type: 'fatal',
      code: 3,
      message: 'postFork hook threw: nope',
    });
    f.children[0]!.die(3);
    const err = await arbiter.pool.reap().catch((e) => e);
    expect(err).toBeInstanceOf(HaltServer);
    expect(err.status).toBe(3);
    expect(err.reason).toBe('Worker (pid:101) failed to boot: postFork hook threw: nope');
    expect(arbiter.pool.size).toBe(0);
  });

  it('exit 4 halts with status 4', async () => {
    const { halted } = await reapOne(4);
    expect(halted).toBeInstanceOf(HaltServer);
    expect(halted?.status).toBe(4);
    expect(halted?.reason).toContain('could not load the app');
  });

  it('death by SIGTERM is logged at info, naming the signal', async () => {
    const { f } = await reapOne(null, 'SIGTERM');
    expect(f.log.at('info').some((l) => l.msg === 'Worker (pid:101) was sent SIGTERM!')).toBe(true);
    expect(f.log.at('error')).toHaveLength(0);
  });

  it('death by an unexpected SIGKILL is an error with an out-of-memory hint', async () => {
    const { f } = await reapOne(null, 'SIGKILL');
    expect(f.log.at('error').map((l) => l.msg)).toEqual([
      'Worker (pid:101) was sent SIGKILL! Perhaps out of memory?',
    ]);
  });

  it('death by another signal is a warning', async () => {
    const { f } = await reapOne(null, 'SIGSEGV');
    expect(f.log.at('warn').some((l) => l.msg === 'Worker (pid:101) was sent SIGSEGV!')).toBe(true);
  });

  it('the late exit of a worker already removed is only a debug line: no halt, no childExit', async () => {
    const childExit = vi.fn();
    const { arbiter, f } = make({ childExit });
    const w = (await arbiter.pool.spawn())!;
    await arbiter.pool.spawn();
    f.kill.mockImplementationOnce(() => {
      throw Object.assign(new Error('gone'), { code: 'ESRCH' });
    });
    await arbiter.pool.kill(w, 'SIGTERM'); // removed as already gone
    f.children[0]!.die(3); // its late exit event: nothing to reap twice, no halt
    f.children[1]!.die(0);
    await arbiter.pool.reap();
    expect(childExit).toHaveBeenCalledTimes(1);
    expect(childExit.mock.calls[0]![1].pid).toBe(102);
    expect(f.log.at('error')).toHaveLength(0);
  });
});

describe('keeping the count', () => {
  it('spawns the missing workers, and retires the oldest excess ones gracefully', async () => {
    const { arbiter, f } = make({ workers: 3 });
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(3);
    await arbiter.setNumWorkers(1);
    await arbiter.pool.manage();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    expect(arbiter.pool.live().map((w) => w.pid)).toEqual([103]);
    // retiring workers are not signalled again, and not replaced
    await arbiter.pool.manage();
    expect(f.kill).toHaveBeenCalledTimes(2);
    expect(f.children).toHaveLength(3);
  });

  it('TTIN adds a worker and TTOU removes the oldest, with nworkersChanged', async () => {
    const nworkersChanged = vi.fn();
    const { arbiter, f } = make({ workers: 2, nworkersChanged });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGTTIN');
    expect(arbiter.numWorkers).toBe(3);
    expect(f.children).toHaveLength(3);
    expect(nworkersChanged).toHaveBeenLastCalledWith(arbiter, 3, 2);
    await arbiter.handleSignal('SIGTTOU');
    expect(nworkersChanged).toHaveBeenLastCalledWith(arbiter, 2, 3);
    expect(f.kill).toHaveBeenCalledWith(101, 'SIGTERM');
  });

  it('TTOU never goes below one worker', async () => {
    const { arbiter } = make({ workers: 1 });
    await arbiter.handleSignal('SIGTTOU');
    expect(arbiter.numWorkers).toBe(1);
  });

  it('a worker that exits is replaced on the next pass', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    f.clock.t += 60; // an old worker: no crash-loop backoff
    f.children[0]!.die(null, 'SIGKILL');
    await arbiter.pool.reap();
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(3);
  });

  it('a serving worker killed from outside right after boot is replaced at once, every time', async () => {
    // kill -9 (or the OOM killer) is not a crash loop: backing off would leave no worker.
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    for (let i = 0; i < 5; i++) {
      const child = f.children.at(-1)!;
      child.emit('message', { type: 'ready' });
      child.die(null, 'SIGKILL');
      await arbiter.pool.reap();
      await arbiter.pool.manage();
      expect(f.children).toHaveLength(i + 2);
    }
    expect(arbiter.pool.backoffOf(0).remaining(f.clock.t)).toBe(0);
  });

  it('a booting worker killed from outside is replaced at once too', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
      const before = f.children.length;
      f.children.at(-1)!.die(null, sig);
      await arbiter.pool.reap();
      await arbiter.pool.manage();
      expect(f.children).toHaveLength(before + 1);
    }
    expect(arbiter.pool.backoffOf(0).remaining(f.clock.t)).toBe(0);
  });

  it('a worker that crashes (SIGSEGV) right after boot counts toward the backoff', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    f.children.at(-1)!.die(null, 'SIGSEGV');
    await arbiter.pool.reap();
    expect(arbiter.pool.backoffOf(0).remaining(f.clock.t)).toBeGreaterThan(0);
  });

  it('a worker that keeps dying right after boot is replaced with capped exponential backoff', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      f.children.at(-1)!.die(1);
      await arbiter.pool.reap();
      const before = f.children.length;
      await arbiter.pool.manage();
      expect(f.children).toHaveLength(before); // not at once
      delays.push(arbiter.pool.backoffOf(0).remaining(f.clock.t));
      f.clock.t += delays.at(-1)!;
      await arbiter.pool.manage();
      expect(f.children).toHaveLength(before + 1);
    }
    expect(delays.map((d) => Math.round(d * 10) / 10)).toEqual([
      0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10,
    ]);
    // a worker that reached ready resets it, and its death is replaced at once
    const before = f.children.length;
    f.children.at(-1)!.emit('message', { type: 'ready' });
    f.children.at(-1)!.die(1);
    await arbiter.pool.reap();
    await arbiter.pool.manage();
    expect(arbiter.pool.backoffOf(0).failures).toBe(0);
    expect(f.children).toHaveLength(before + 1);
  });

  it('a worker that served and then exited on its own is replaced at once, every time', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    for (let i = 0; i < 5; i++) {
      const child = f.children.at(-1)!;
      child.emit('message', { type: 'ready' });
      child.die(i % 2);
      await arbiter.pool.reap();
      await arbiter.pool.manage();
      expect(f.children).toHaveLength(i + 2);
    }
  });

  it('a boot failure backs off its own slot only', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    const [first, second] = arbiter.pool.live();
    expect([first!.slot, second!.slot]).toEqual([0, 1]);
    f.children[0]!.emit('message', { type: 'ready' });
    f.children[1]!.die(1); // slot 1 failed to boot
    await arbiter.pool.reap();
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(2);
    expect(arbiter.pool.backoffOf(1).remaining(f.clock.t)).toBeGreaterThan(0);
    f.children[0]!.die(1); // slot 0 served: replaced at once while slot 1 waits
    await arbiter.pool.reap();
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(3);
    expect(arbiter.pool.live().map((w) => w.slot)).toEqual([0]);
    f.clock.t += arbiter.pool.backoffOf(1).remaining(f.clock.t);
    await arbiter.pool.manage();
    expect(arbiter.pool.live().map((w) => w.slot)).toEqual([0, 1]);
  });

  it('spawns are paced: at most SPAWNS_PER_WINDOW per window, the rest on the next ones', async () => {
    const { arbiter, f } = make({ workers: 20 });
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(SPAWNS_PER_WINDOW);
    const next = arbiter.pool.nextDeadline();
    expect(next).toBeCloseTo(f.clock.t + SPAWN_WINDOW_SECONDS, 5);
    f.clock.t = next!;
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(2 * SPAWNS_PER_WINDOW);
  });

  it('workers above maxWorkers are refused: TTIN is ignored, setNumWorkers throws', async () => {
    const { arbiter } = make({ workers: 2, maxWorkers: 2 });
    await arbiter.handleSignal('SIGTTIN');
    expect(arbiter.numWorkers).toBe(2);
    await expect(arbiter.setNumWorkers(5)).rejects.toThrow(
      'workers: 5 is above maxWorkers (2); raise --max-workers to run more',
    );
    expect(arbiter.numWorkers).toBe(2);
  });

  it('a worker that says it is retiring (max requests) is replaced before it exits', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    f.children[0]!.emit('message', { type: 'retiring' });
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(2);
    expect(f.kill).not.toHaveBeenCalled();
  });

  it('resolves `serving` once the first generation is ready', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    let serving: boolean | undefined;
    void arbiter.serving.then((v) => {
      serving = v;
    });
    f.children[0]!.emit('message', { type: 'ready' });
    await Promise.resolve();
    expect(serving).toBeUndefined();
    f.children[1]!.emit('message', { type: 'ready' });
    expect(await arbiter.serving).toBe(true);
    expect(arbiter.pool.get(1)?.booted).toBe(true);
  });
});

describe('heartbeat: murder_workers', () => {
  it('a silent worker gets SIGABRT first, then SIGKILL on a later pass', async () => {
    const { arbiter, f } = make({ timeout: 2 });
    const w = (await arbiter.pool.spawn())!;
    f.clock.t += 1.5;
    await arbiter.pool.murder();
    expect(f.kill).not.toHaveBeenCalled();
    f.clock.t += 1;
    await arbiter.pool.murder();
    expect(f.kill).toHaveBeenLastCalledWith(101, 'SIGABRT');
    expect(w.aborted).toBe(true);
    expect(f.log.at('error').map((l) => l.msg)).toContain('WORKER TIMEOUT (pid:101)');
    f.clock.t += 0.5;
    await arbiter.pool.murder();
    expect(f.kill).toHaveBeenLastCalledWith(101, 'SIGKILL');
    expect(w.state).toBe('killed');
    // its SIGKILL death is not blamed on memory
    f.children[0]!.die(null, 'SIGKILL');
    await arbiter.pool.reap();
    expect(f.log.at('error').map((l) => l.msg)).toContain('Worker (pid:101) was sent SIGKILL!');
  });

  it('a worker that stamps its heartbeat is left alone', async () => {
    const { arbiter, f } = make({ timeout: 2 });
    await arbiter.pool.spawn();
    for (let i = 0; i < 10; i++) {
      f.clock.t += 1;
      f.heartbeats[0]!.last = f.clock.t;
      await arbiter.pool.murder();
    }
    expect(f.kill).not.toHaveBeenCalled();
  });

  it('timeout 0 disables it', async () => {
    const { arbiter, f } = make({ timeout: 0 });
    await arbiter.pool.spawn();
    f.clock.t += 1e6;
    await arbiter.pool.murder();
    expect(f.kill).not.toHaveBeenCalled();
  });
});

describe('signals in the master', () => {
  it('TERM ends the loop with a graceful halt, INT and QUIT with a quick one', async () => {
    const { arbiter } = make();
    await expect(arbiter.handleSignal('SIGTERM')).rejects.toMatchObject({
      status: 0,
      graceful: true,
    });
    await expect(arbiter.handleSignal('SIGINT')).rejects.toMatchObject({
      status: 0,
      graceful: false,
    });
    await expect(arbiter.handleSignal('SIGQUIT')).rejects.toMatchObject({
      status: 0,
      graceful: false,
    });
  });

  it('USR1 reopens the log files and forwards USR1 to every worker', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGUSR1');
    expect(f.log.reopen).toHaveBeenCalled();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGUSR1'],
      [102, 'SIGUSR1'],
    ]);
  });

  it('WINCH stops the workers gracefully and keeps none', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGWINCH');
    expect(arbiter.numWorkers).toBe(0);
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    await arbiter.pool.manage();
    expect(f.children).toHaveLength(2);
  });

  it('WINCH is ignored on a terminal', async () => {
    const f = fakes();
    f.deps.isTerminal = () => true;
    const { arbiter } = make({ workers: 2 }, f);
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGWINCH');
    expect(arbiter.numWorkers).toBe(2);
    expect(f.kill).not.toHaveBeenCalled();
  });

  it('HUP runs onReload, starts a new generation and retires the old one once it is ready', async () => {
    const onReload = vi.fn();
    const { arbiter, f } = make({ workers: 2, onReload });
    await arbiter.pool.manage();
    await arbiter.handleSignal('SIGHUP');
    expect(onReload).toHaveBeenCalledWith(arbiter);
    expect(f.children).toHaveLength(4);
    expect(f.kill).not.toHaveBeenCalled(); // nothing retired before the new ones are ready
    f.children[2]!.emit('message', { type: 'ready' });
    f.children[3]!.emit('message', { type: 'ready' });
    await arbiter.reloader.step();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
  });
});

describe('signal listeners', () => {
  it('start() listens to every master signal, a signal only queues, and the halt removes them', async () => {
    const f = fakes();
    f.deps.installSignals = true;
    const { arbiter } = make({}, f);
    const before = MASTER_SIGNALS.map((sig) => process.listenerCount(sig));
    await arbiter.start();
    expect(MASTER_SIGNALS.map((sig) => process.listenerCount(sig))).toEqual(
      before.map((n) => n + 1),
    );
    process.emit('SIGTTIN');
    process.emit('SIGHUP');
    expect(arbiter.signals.drain()).toEqual(['SIGTTIN', 'SIGHUP']);
    expect(f.children).toHaveLength(0); // nothing else happened in the listener
    await arbiter.halt();
    expect(MASTER_SIGNALS.map((sig) => process.listenerCount(sig))).toEqual(before);
  });
});

describe('stop', () => {
  it('graceful: TERM to the workers, SIGKILL to those left after gracefulTimeout', async () => {
    const { arbiter, f } = make({ workers: 2, gracefulTimeout: 0.3 });
    await arbiter.pool.manage();
    f.kill.mockImplementation((pid: number, sig: string) => {
      if (pid === 101 && sig === 'SIGTERM') setTimeout(() => f.children[0]!.die(0), 10);
      if (sig === 'SIGKILL') setTimeout(() => f.children[1]!.die(null, 'SIGKILL'), 10);
    });
    const started = Date.now();
    const timer = setInterval(() => {
      f.clock.t += 0.05;
    }, 5);
    await arbiter.stop(true);
    clearInterval(timer);
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
      [102, 'SIGKILL'],
    ]);
    expect(arbiter.pool.size).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('quick: QUIT to the workers', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    f.kill.mockImplementation(() => setTimeout(() => f.children[0]!.die(0), 5));
    await arbiter.stop(false);
    expect(f.kill.mock.calls[0]).toEqual([101, 'SIGQUIT']);
  });

  it('an INT queued during a graceful stop makes it quick', async () => {
    const { arbiter, f } = make({ workers: 1, gracefulTimeout: 30 });
    await arbiter.pool.manage();
    f.kill.mockImplementation((_pid: number, sig: string) => {
      if (sig === 'SIGQUIT') setTimeout(() => f.children[0]!.die(0), 5);
    });
    setTimeout(() => arbiter.signal('SIGINT'), 50);
    await arbiter.stop(true);
    expect(f.kill.mock.calls.map((c) => c[1])).toEqual(['SIGTERM', 'SIGQUIT']);
    expect(f.log.at('info').map((l) => l.msg)).toContain('Quick shutdown requested');
  });

  it('halt: stop, one line, pidfile removed, onExit, the status', async () => {
    const dir = scratch();
    const onExit = vi.fn();
    const { arbiter, f } = make({ pidfile: path.join(dir, 'pid'), onExit });
    await arbiter.start();
    expect(fs.readFileSync(path.join(dir, 'pid'), 'utf8')).toBe(`${process.pid}\n`);
    const status = await arbiter.halt('Worker (pid:5) failed to boot: x', 3);
    expect(status).toBe(3);
    expect(fs.existsSync(path.join(dir, 'pid'))).toBe(false);
    expect(onExit).toHaveBeenCalledWith(arbiter);
    expect(f.log.at('error').map((l) => l.msg)).toEqual([
      'Shutting down: Master. Reason: Worker (pid:5) failed to boot: x',
    ]);
  });
});

describe('start order', () => {
  it('worker count, preload, pidfile, onStarting, listeners, whenReady', async () => {
    const order: string[] = [];
    const dir = scratch();
    const pidfile = path.join(dir, 'pid');
    const f = fakes();
    f.deps.createListeners = vi.fn(async () => {
      order.push('listeners');
      return { listeners: [], systemd: false };
    });
    const { arbiter } = make(
      {
        pidfile,
        nworkersChanged: (_s: unknown, n: number, old: number | undefined) =>
          order.push(`nworkersChanged ${old}->${n}`),
        onStarting: () => order.push(`onStarting pidfile=${fs.existsSync(pidfile)}`),
        whenReady: () => order.push('whenReady'),
      },
      f,
    );
    await arbiter.start();
    expect(order).toEqual([
      'nworkersChanged undefined->1',
      'onStarting pidfile=true',
      'listeners',
      'whenReady',
    ]);
    expect(f.children).toHaveLength(0); // workers come after start()
    arbiter.pidfile?.unlink();
  });

  it('a startup failure returns 1 and leaves no pidfile', async () => {
    const dir = scratch();
    const pidfile = path.join(dir, 'pid');
    const { arbiter, f } = make({
      pidfile,
      whenReady: () => {
        throw new Error('not today');
      },
    });
    expect(await arbiter.run()).toBe(1);
    expect(fs.existsSync(pidfile)).toBe(false);
    expect(f.log.at('error').map((l) => l.msg)).toEqual(['Error: not today']);
  });
});

describe('env and preload (seed 34)', () => {
  const keys = ['ARB_SEED_SOME_PATH', 'ARB_SEED_OTHER_PATH'];
  afterEach(() => {
    for (const k of keys) delete process.env[k];
    delete (globalThis as Record<string, unknown>).__arbPreloadEnv;
  });

  it('env settings are set before the app is preloaded in the master', async () => {
    const { arbiter } = make({
      app: path.join(FIXTURES, 'app-env-check.mjs'),
      preload: true,
      env: { ARB_SEED_SOME_PATH: '/tmp/something', ARB_SEED_OTHER_PATH: '/tmp/something/else' },
    });
    await arbiter.start();
    expect((globalThis as Record<string, unknown>).__arbPreloadEnv).toEqual({
      some: '/tmp/something',
      other: '/tmp/something/else',
    });
    await arbiter.halt();
  });

  it('a preload that fails returns 4', async () => {
    const { arbiter } = make({ app: path.join(FIXTURES, 'app-throws.mjs'), preload: true });
    expect(await arbiter.run()).toBe(4);
  });
});
