// USR2: the seed re-exec cases (gunicorn tests/test_arbiter.py 6-9, reference §6.1/§7.7),
// promotion, and the one-step Arbiter.upgrade(), with fake spawn/kill (and one real
// trampoline run for LISTEN_PID).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { handoff } from '@arb/sock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ArbiterConfig } from '../src/config.js';
import { newMasterPid, parentMasterPid } from '../src/master/lineage.js';
import type { SidecarSpec } from '../src/master/sidecar.js';
import { reexecPlan } from '../src/master/upgrade.js';
import { FakeChild, type Fakes, fakeListener, fakes, makeArbiter, tempDir } from './helpers.js';

function make(config: Partial<ArbiterConfig> = {}, f: Fakes = fakes()) {
  f.deps.handoff = handoff; // the real one: it only reads fd, address, backlog, name
  return makeArbiter(config, f);
}
const listener = fakeListener;

const spawnCalls = (f: Fakes) => (f.deps.spawn as ReturnType<typeof vi.fn>).mock.calls;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.ARB_RETEST_SETTING;
  delete process.env.ARB_PID;
});

describe('re-exec (seed cases 6-9)', () => {
  it('passes arb sockets: ARB_FD holds the child slot numbers, ARB_PID our pid (seed 7)', async () => {
    const { arbiter, f } = make({ env: { ARB_RETEST_SETTING: 'x' } });
    arbiter.listeners = [listener('127.0.0.1:4001', 14), listener('127.0.0.1:4002', 15)];
    const preExec = vi.fn();
    arbiter.hooks = { ...arbiter.hooks, preExec };
    const result = await arbiter.reexec();
    expect(result.pid).toBe(101);
    expect(newMasterPid(arbiter.lineage)).toBe(101);
    expect(preExec).toHaveBeenCalledWith(arbiter);
    const [command, args, options] = spawnCalls(f)[0]!;
    expect(command).toBe(process.execPath);
    expect(args).toEqual([...process.execArgv, ...process.argv.slice(1)]);
    expect(options.cwd).toBe(process.cwd());
    expect(options.env.ARB_FD).toBe('3,4'); // not the master's 14,15
    expect(options.env.ARB_PID).toBe(String(process.pid));
    expect(options.env.ARB_LISTENERS).toBe('127.0.0.1:4001,127.0.0.1:4002');
    expect(options.env.LISTEN_FDS).toBeUndefined();
    // the original environment: `env` settings are re-applied by the new master itself
    expect(options.env.ARB_RETEST_SETTING).toBeUndefined();
    expect(options.stdio).toEqual(['inherit', 'inherit', 'inherit', 14, 15, 'ipc']);
  });

  it('passes systemd sockets: LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID = the new pid (seed 6)', async () => {
    const { arbiter, f } = make();
    arbiter.systemd = true;
    arbiter.listeners = [listener('127.0.0.1:4001', 14, 'web'), listener('[::1]:4001', 15, 'web6')];
    await arbiter.reexec();
    const [command, args, options] = spawnCalls(f)[0]!;
    expect(command).toBe('/bin/sh');
    expect(args.slice(3)).toEqual([
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ]);
    expect(options.env.ARB_PID).toBe(String(process.pid));
    expect(options.env.LISTEN_FDS).toBe('2');
    expect(options.env.LISTEN_FDNAMES).toBe('web:web6');
    expect(options.env.ARB_FD).toBeUndefined();
    expect(options.stdio).toEqual(['inherit', 'inherit', 'inherit', 14, 15, 'ipc']);
  });

  it('the trampoline really gives the new master LISTEN_PID = its own pid, as our child', async () => {
    const plan = reexecPlan({
      listeners: [],
      systemd: true,
      masterPid: process.pid,
      envOrig: { PATH: process.env.PATH, LISTEN_PID: '1', ARB_FD: '9' },
      startCwd: process.cwd(),
      execPath: process.execPath,
      execArgv: [],
      argv: [
        'node',
        '-e',
        'console.log(JSON.stringify({pid:process.pid,ppid:process.ppid,env:process.env}))',
      ],
      handoff,
    });
    const child = spawn(plan.command, plan.args, {
      ...plan.options,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const seen = JSON.parse(out);
    expect(Number(seen.env.LISTEN_PID)).toBe(seen.pid);
    expect(seen.ppid).toBe(process.pid);
    expect(seen.env.ARB_PID).toBe(String(process.pid));
    expect(seen.env.LISTEN_FDS).toBe('0');
    expect(seen.env.ARB_FD).toBeUndefined(); // our own inheritance is not passed on
  });

  it('USR2 is refused while a re-exec child exists (seed 8)', async () => {
    const { arbiter, f } = make();
    arbiter.lineage = { role: 'parent', childPid: 4242, childServing: false };
    await arbiter.handleSignal('SIGUSR2');
    expect(spawnCalls(f)).toHaveLength(0);
    expect(f.log.at('warn').map((l) => l.msg)).toContain('USR2 signal ignored. Child exists.');
  });

  it('USR2 is refused in an unpromoted re-exec child (seed 9)', async () => {
    const { arbiter, f } = make();
    arbiter.lineage = { role: 'awaiting-promotion', parentPid: process.ppid };
    await arbiter.handleSignal('SIGUSR2');
    expect(spawnCalls(f)).toHaveLength(0);
    expect(f.log.at('warn').map((l) => l.msg)).toContain('USR2 signal ignored. Parent exists.');
  });

  it('USR2 is refused during a reload', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.handleSignal('SIGHUP');
    const before = spawnCalls(f).length;
    await arbiter.handleSignal('SIGUSR2');
    expect(spawnCalls(f)).toHaveLength(before);
  });

  it('when the new master exits, USR2 works again', async () => {
    const { arbiter, f } = make({ workers: 0 });
    await arbiter.reexec();
    f.children[0]!.die(1);
    await arbiter.pass();
    // the loop reaps it on its next pass
    await arbiter.pass();
    expect(newMasterPid(arbiter.lineage)).toBe(0);
    await arbiter.reexec();
    expect(spawnCalls(f)).toHaveLength(2);
  });
});

describe('the re-exec child: .2 pidfile, promotion, no sidecar before promotion', () => {
  it('writes <pidfile>.2 only once serving, tells the parent, and is promoted when re-parented', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const pidfile = path.join(dir, 'arb.pid');
    const f = fakes();
    const sent: unknown[] = [];
    let ppid = 777;
    f.deps.ppid = () => ppid;
    f.deps.sendToParent = (m) => sent.push(m);
    const sidecarSpawn = vi.fn(() => new FakeChild(900) as unknown as ChildProcess);
    const sidecar: SidecarSpec = {
      name: 'companion manager',
      identity: 'h',
      stopTimeout: 1,
      spawn: sidecarSpawn,
    };
    const { arbiter } = make({ workers: 1, pidfile, sidecar, procName: 'svc' }, f);
    process.env.ARB_PID = '777'; // as the old master set it; promotion deletes it
    await arbiter.start();
    expect(parentMasterPid(arbiter.lineage)).toBe(777);
    expect(arbiter.procName).toBe('svc.2');
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    await arbiter.pool.manage();
    await arbiter.pass();
    expect(sidecarSpawn).not.toHaveBeenCalled(); // companions must not run twice
    f.children[0]!.emit('message', { type: 'ready' });
    expect(fs.readFileSync(`${pidfile}.2`, 'utf8').trim()).toBe(String(process.pid));
    expect(sent).toEqual([{ type: 'arb:serving', pid: process.pid }]);
    await arbiter.pass();
    expect(parentMasterPid(arbiter.lineage)).toBe(777); // parent still there
    ppid = 1; // the old master exited
    await arbiter.pass();
    expect(parentMasterPid(arbiter.lineage)).toBe(0);
    expect(arbiter.procName).toBe('svc');
    expect(process.env.ARB_PID).toBeUndefined();
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(process.pid));
    await arbiter.pass();
    expect(sidecarSpawn).toHaveBeenCalledOnce();
    arbiter.pidfile?.unlink();
  });
});

describe('Arbiter.upgrade(): the one-step upgrade', () => {
  it('new master serving → old workers retired → ok, and this master stops', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.pool.manage();
    const result = arbiter.upgrade({ timeout: 10 });
    await arbiter.pass(); // spawns the new master
    const newMaster = f.children[2]!;
    expect(newMasterPid(arbiter.lineage)).toBe(newMaster.pid);
    await arbiter.pass();
    expect(f.kill).not.toHaveBeenCalled(); // not before it serves
    newMaster.emit('message', { type: 'arb:serving', pid: newMaster.pid });
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    expect(arbiter.numWorkers).toBe(0);
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.pool.reap();
    await arbiter.pass();
    await expect(result).resolves.toEqual({ ok: true, newPid: newMaster.pid });
    expect(arbiter.signals.drain()).toEqual(['SIGTERM']);
  });

  it('a new master that exits before serving: failure, our workers untouched', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    const result = arbiter.upgrade();
    await arbiter.pass();
    f.children[1]!.die(4);
    await arbiter.pass();
    await arbiter.pass();
    await expect(result).resolves.toMatchObject({ ok: false, error: 'the new master exited' });
    expect(f.kill).not.toHaveBeenCalled();
    expect(arbiter.signals.size).toBe(0);
  });

  it('a new master not serving in time is stopped (TERM)', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.pool.manage();
    const result = arbiter.upgrade({ timeout: 5 });
    await arbiter.pass();
    f.advance(6);
    await arbiter.pass();
    await expect(result).resolves.toMatchObject({ ok: false, newPid: 102 });
    expect(f.kill.mock.calls).toEqual([[102, 'SIGTERM']]);
  });

  it('is refused in an unpromoted master', async () => {
    const { arbiter } = make();
    arbiter.lineage = { role: 'awaiting-promotion', parentPid: 4242 };
    const result = arbiter.upgrade();
    await arbiter.pass();
    await expect(result).resolves.toEqual({
      ok: false,
      error: 'USR2 signal ignored. Parent exists.',
    });
  });
});
