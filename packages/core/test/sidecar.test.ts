// The companion-manager cases of the seed (gunicorn fork tests/test_arbiter.py 12-33),
// as cases of core's sidecar slot.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { monotonic } from '../src/clock.js';
import { Arbiter } from '../src/master/arbiter.js';
import { SIDECAR_STABLE_SECONDS, SidecarSlot, type SidecarSpec } from '../src/master/sidecar.js';
import { FakeChild, FIXTURES, fakes, recordingLog } from './helpers.js';

function spec(over: Partial<SidecarSpec> = {}): SidecarSpec & { spawned: FakeChild[] } {
  const spawned: FakeChild[] = [];
  let pid = 4242;
  return {
    name: 'companion manager',
    identity: 'hash-a',
    stopTimeout: 10,
    spawn: vi.fn(() => {
      const c = new FakeChild(pid++);
      spawned.push(c);
      return c as unknown as ChildProcess;
    }),
    spawned,
    ...over,
  };
}

function slot(s: SidecarSpec | undefined) {
  const clock = { t: 1000 };
  const kill = vi.fn();
  const log = recordingLog();
  const onExit = vi.fn();
  const sidecar = new SidecarSlot(s, {
    now: () => clock.t,
    kill,
    log: log.log,
    context: () => ({ masterPid: process.pid, procName: 'app', log: log.log }),
    onExit,
  });
  return { sidecar, clock, kill, log, onExit };
}

describe('sidecar: keeping it running', () => {
  it('spawns it when configured', () => {
    const s = spec();
    const { sidecar } = slot(s);
    sidecar.manage();
    expect(s.spawn).toHaveBeenCalledTimes(1);
    expect(sidecar.pid).toBe(4242);
  });

  it('does nothing without one', () => {
    const { sidecar } = slot(undefined);
    sidecar.manage();
    expect(sidecar.running).toBe(false);
  });

  it('does nothing while it runs', () => {
    const s = spec();
    const { sidecar } = slot(s);
    sidecar.manage();
    sidecar.manage();
    expect(s.spawn).toHaveBeenCalledTimes(1);
  });

  it('its exit clears the pid', () => {
    const s = spec();
    const { sidecar, onExit } = slot(s);
    sidecar.manage();
    s.spawned[0]!.die(0);
    expect(sidecar.pid).toBe(0);
    expect(onExit).toHaveBeenCalled();
  });

  it('an unexpected exit backs off, with one error line and no info line', () => {
    const s = spec();
    const { sidecar, clock, log } = slot(s);
    sidecar.manage();
    const infoBefore = log.at('info').length;
    s.spawned[0]!.die(1);
    expect(sidecar.pid).toBe(0);
    expect(sidecar.backoff.failures).toBe(1);
    expect(sidecar.backoff.until).toBe(clock.t + 1);
    expect(log.at('error')).toHaveLength(1);
    expect(log.at('error')[0]!.msg).toBe(
      'companion manager (pid:4242) exited unexpectedly (code 1); respawning in 1s',
    );
    expect(log.at('info')).toHaveLength(infoBefore);
  });

  it('a deliberate exit is logged at info, without backoff', () => {
    const s = spec();
    const { sidecar, log } = slot(s);
    sidecar.manage();
    sidecar.stop('SIGTERM');
    s.spawned[0]!.die(0);
    expect(sidecar.pid).toBe(0);
    expect(sidecar.stopping).toBe(false);
    expect(sidecar.backoff.until).toBe(0);
    expect(log.at('info').map((l) => l.msg)).toContain('companion manager (pid:4242) exited');
    expect(log.at('error')).toHaveLength(0);
  });

  it('waits out the backoff, which grows min(2^(n-1), 30) s', () => {
    const s = spec();
    const { sidecar, clock } = slot(s);
    sidecar.manage();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      s.spawned.at(-1)!.die(1);
      delays.push(sidecar.backoff.remaining(clock.t));
      clock.t += delays.at(-1)! - 0.01;
      sidecar.manage();
      expect(s.spawn).toHaveBeenCalledTimes(i + 1); // still waiting
      clock.t += 0.01;
      sidecar.manage();
      expect(s.spawn).toHaveBeenCalledTimes(i + 2);
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 30, 30]);
  });

  it('a stable run resets the backoff', () => {
    const s = spec();
    const { sidecar, clock } = slot(s);
    sidecar.manage();
    s.spawned[0]!.die(1);
    clock.t += 1;
    sidecar.manage();
    s.spawned[1]!.die(1);
    expect(sidecar.backoff.failures).toBe(2);
    clock.t += 2;
    sidecar.manage();
    clock.t += SIDECAR_STABLE_SECONDS;
    sidecar.manage();
    expect(sidecar.backoff.failures).toBe(0);
    s.spawned[2]!.die(1);
    expect(sidecar.backoff.remaining(clock.t)).toBe(1);
  });

  it('a spawn that throws counts as a failure and does not break the loop', () => {
    const s = spec({
      spawn: () => {
        throw new Error('EAGAIN');
      },
    });
    const { sidecar, log } = slot(s);
    sidecar.manage();
    expect(sidecar.running).toBe(false);
    expect(sidecar.backoff.failures).toBe(1);
    expect(log.at('error').length).toBeGreaterThan(0);
  });
});

describe('sidecar: stopping it', () => {
  it('marks the exit expected and clears the backoff', () => {
    const s = spec();
    const { sidecar, clock } = slot(s);
    sidecar.manage();
    sidecar.backoff.failures = 3;
    sidecar.backoff.until = clock.t + 60;
    sidecar.stop('SIGTERM');
    expect(sidecar.stopping).toBe(true);
    expect(sidecar.backoff.failures).toBe(0);
    expect(sidecar.backoff.until).toBe(0);
  });

  it('signals the running sidecar', () => {
    const s = spec();
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    sidecar.stop('SIGTERM');
    expect(kill).toHaveBeenCalledExactlyOnceWith(4242, 'SIGTERM');
  });

  it('does nothing when none runs', () => {
    const { sidecar, kill } = slot(spec());
    sidecar.stop('SIGTERM');
    expect(kill).not.toHaveBeenCalled();
  });

  it('clears the pid when the process is already gone (ESRCH)', () => {
    const s = spec();
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    kill.mockImplementation(() => {
      throw Object.assign(new Error('no such process'), { code: 'ESRCH' });
    });
    sidecar.stop('SIGTERM');
    expect(sidecar.pid).toBe(0);
  });
});

describe('sidecar: reload', () => {
  it('restarts a running sidecar whose identity changed: SIGTERM now, respawn after the reap', () => {
    const s = spec();
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    sidecar.reload({ ...s, identity: 'hash-b' });
    expect(kill).toHaveBeenCalledExactlyOnceWith(4242, 'SIGTERM');
    expect(s.spawn).toHaveBeenCalledTimes(1); // not yet: the old one still runs
    s.spawned[0]!.die(0);
    sidecar.manage();
    expect(s.spawn).toHaveBeenCalledTimes(2);
    expect(sidecar.spawnedIdentity).toBe('hash-b');
  });

  it('starts one now when none runs', () => {
    const s = spec();
    const { sidecar, kill } = slot(undefined);
    sidecar.reload(s);
    expect(kill).not.toHaveBeenCalled();
    expect(s.spawn).toHaveBeenCalledTimes(1);
  });

  it('leaves it alone when the identity is unchanged', () => {
    const s = spec();
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    sidecar.reload({ ...s });
    expect(kill).not.toHaveBeenCalled();
    expect(s.spawn).toHaveBeenCalledTimes(1);
  });

  it('a changed field of the same sidecar (new identity) stops it with SIGTERM', () => {
    const s = spec({ identity: 'rq:startsecs=1' });
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    sidecar.reload({ ...s, identity: 'rq:startsecs=9' });
    expect(kill).toHaveBeenCalledWith(4242, 'SIGTERM');
  });

  it('a reload that removes the sidecar stops it for good', () => {
    const s = spec();
    const { sidecar, kill } = slot(s);
    sidecar.manage();
    sidecar.reload(undefined);
    expect(kill).toHaveBeenCalledWith(4242, 'SIGTERM');
    s.spawned[0]!.die(0);
    sidecar.manage();
    expect(s.spawn).toHaveBeenCalledTimes(1);
  });
});

describe('sidecar inside the arbiter', () => {
  const APP = path.join(FIXTURES, 'app-pid.mjs');

  function arbiterWith(s: SidecarSpec, over: Record<string, unknown> = {}) {
    const f = fakes();
    const arbiter = new Arbiter({ app: APP, sidecar: s, gracefulTimeout: 0.2, ...over }, f.deps);
    return { arbiter, f };
  }

  it('stop gives it SIGTERM, then SIGKILL when it outlives its timeout', async () => {
    const s = spec({ stopTimeout: 0.3 });
    const { arbiter, f } = arbiterWith(s);
    arbiter.sidecar.manage();
    const timer = setInterval(() => {
      f.clock.t += 0.05;
    }, 5);
    await arbiter.stop(true);
    clearInterval(timer);
    const sent = f.kill.mock.calls.filter((c) => c[0] === 4242).map((c) => c[1]);
    expect(sent).toEqual(['SIGTERM', 'SIGKILL']);
  });

  /** Runs a graceful stop on the real monotonic clock; returns when SIGKILL reached the sidecar. */
  async function killDelay(gracefulTimeout: number, stopTimeout: number): Promise<number> {
    const s = spec({ stopTimeout });
    const f = fakes();
    f.deps.now = monotonic;
    const arbiter = new Arbiter({ app: APP, sidecar: s, gracefulTimeout }, f.deps);
    arbiter.sidecar.manage();
    let killedAt = 0;
    f.kill.mockImplementation((_pid: number, sig: string) => {
      if (sig === 'SIGKILL' && !killedAt) {
        killedAt = monotonic();
        s.spawned[0]!.die(null, 'SIGKILL');
      }
    });
    const start = monotonic();
    await arbiter.stop(true);
    return killedAt - start;
  }

  it('a graceful stop waits max(gracefulTimeout, its stop timeout) before SIGKILL', async () => {
    const delay = await killDelay(0.2, 0.6);
    expect(delay).toBeGreaterThanOrEqual(0.6);
    expect(delay).toBeLessThan(1.2);
  });

  it('the stop budget is gracefulTimeout when the sidecar needs less', async () => {
    const delay = await killDelay(0.5, 0);
    expect(delay).toBeGreaterThanOrEqual(0.5);
    expect(delay).toBeLessThan(1.1);
    expect(new Arbiter({ app: APP }, fakes().deps).sidecar.stopTimeout()).toBe(0);
  });

  it('a quick stop reaches the sidecar at once with its quick signal', async () => {
    const s = spec({ stopTimeout: 60 });
    const { arbiter, f } = arbiterWith(s, { gracefulTimeout: 30 });
    arbiter.sidecar.manage();
    f.kill.mockImplementation((_pid: number, sig: string) => {
      if (sig === 'SIGINT') setTimeout(() => s.spawned[0]!.die(0), 5);
    });
    const started = Date.now();
    await arbiter.stop(false);
    expect(f.kill.mock.calls[0]).toEqual([4242, 'SIGINT']);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(arbiter.sidecar.running).toBe(false);
  });

  it('worker reaping is unaffected by a running sidecar', async () => {
    const childExit = vi.fn();
    const s = spec();
    const { arbiter, f } = arbiterWith(s, { childExit });
    arbiter.sidecar.manage();
    const w = (await arbiter.pool.spawn())!;
    f.children[0]!.die(0);
    await arbiter.pool.reap();
    expect(f.heartbeats[0]!.close).toHaveBeenCalled();
    expect(childExit).toHaveBeenCalledWith(arbiter, w);
    expect(arbiter.sidecar.pid).toBe(4242);
  });

  it('a sidecar exit with 3 or 4 never halts the master', async () => {
    const s = spec();
    const { arbiter } = arbiterWith(s);
    arbiter.sidecar.manage();
    s.spawned[0]!.die(3);
    await arbiter.pool.reap();
    expect(arbiter.sidecar.backoff.failures).toBe(1);
  });

  it('spawning workers is unaffected by a sidecar', async () => {
    const s = spec();
    const { arbiter } = arbiterWith(s);
    const w = await arbiter.pool.spawn();
    expect(w?.pid).toBe(101);
    expect(arbiter.pool.get(1)).toBe(w);
    expect(s.spawn).not.toHaveBeenCalled();
  });

  it('the sidecar gets the master pid and name', () => {
    const s = spec();
    const { arbiter } = arbiterWith(s, { procName: 'shop' });
    arbiter.sidecar.manage();
    expect(s.spawn).toHaveBeenCalledWith(
      expect.objectContaining({ masterPid: process.pid, procName: 'shop' }),
    );
  });
});
