// USR2: the seed re-exec cases (gunicorn tests/test_arbiter.py 6-9, reference §6.1/§7.7),
// promotion, and the one-step Arbiter.upgrade(), with fake spawn/kill (and one real
// trampoline run for LISTEN_PID).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { handoff, type Listener } from '@arb/sock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Arbiter } from '../src/master/arbiter.js';
import type { ArbiterConfig } from '../src/config.js';
import { reexecPlan } from '../src/master/upgrade.js';
import type { SidecarSpec } from '../src/master/sidecar.js';
import { FakeChild, type Fakes, FIXTURES, fakes, tempDir } from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

function make(config: Partial<ArbiterConfig> = {}, f: Fakes = fakes()) {
  f.deps.handoff = handoff; // the real one: it only reads fd, address, backlog, name
  const arbiter = new Arbiter({ app: APP, timeout: 2, gracefulTimeout: 0.2, ...config }, f.deps);
  return { arbiter, f };
}

const listener = (address: string, fd: number, name?: string): Listener =>
  ({
    kind: 'tcp',
    fd,
    address,
    url: `http://${address}`,
    backlog: 2048,
    origin: 'bound',
    name,
  }) as Listener;

const spawnCalls = (f: Fakes) => (f.deps.spawn as ReturnType<typeof vi.fn>).mock.calls;

type Private = { stepUpgrade(): Promise<void>; maybePromote(): void; manageSidecar(): void };
const priv = (a: Arbiter) => a as unknown as Private;

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
    expect(arbiter.reexecPid).toBe(101);
    expect(preExec).toHaveBeenCalledWith(arbiter);
    const [command, args, options] = spawnCalls(f)[0]!;
    expect(command).toBe(process.execPath);
    expect(args).toEqual([...process.execArgv, ...process.argv.slice(1)]);
    expect(options.cwd).toBe(process.cwd());
    expect(options.env.ARB_FD).toBe('3,4'); // not the master's 14,15
    expect(options.env.ARB_PID).toBe(String(process.pid));
    expect(options.env.ARB_LISTENERS).toBeDefined();
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
    arbiter.reexecPid = 4242;
    await arbiter.handleSignal('SIGUSR2');
    expect(spawnCalls(f)).toHaveLength(0);
    expect(f.log.at('warn').map((l) => l.msg)).toContain('USR2 signal ignored. Child exists.');
  });

  it('USR2 is refused in an unpromoted re-exec child (seed 9)', async () => {
    const { arbiter, f } = make();
    arbiter.masterPid = process.ppid;
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
    const { arbiter, f } = make();
    await arbiter.reexec();
    f.children[0]!.die(1);
    await priv(arbiter).stepUpgrade();
    // the loop reaps it on its next pass
    (arbiter as unknown as { reapReexec(): void }).reapReexec();
    expect(arbiter.reexecPid).toBe(0);
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
    expect(arbiter.masterPid).toBe(777);
    expect(arbiter.procName).toBe('svc.2');
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    await arbiter.manageWorkers();
    priv(arbiter).manageSidecar();
    expect(sidecarSpawn).not.toHaveBeenCalled(); // companions must not run twice
    f.children[0]!.emit('message', { type: 'ready' });
    expect(fs.readFileSync(`${pidfile}.2`, 'utf8').trim()).toBe(String(process.pid));
    expect(sent).toEqual([{ type: 'arb:serving', pid: process.pid }]);
    priv(arbiter).maybePromote();
    expect(arbiter.masterPid).toBe(777); // parent still there
    ppid = 1; // the old master exited
    priv(arbiter).maybePromote();
    expect(arbiter.masterPid).toBe(0);
    expect(arbiter.procName).toBe('svc');
    expect(process.env.ARB_PID).toBeUndefined();
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(process.pid));
    priv(arbiter).manageSidecar();
    expect(sidecarSpawn).toHaveBeenCalledOnce();
    arbiter.pidfile?.unlink();
  });
});

describe('Arbiter.upgrade(): the one-step upgrade', () => {
  it('new master serving → old workers retired → ok, and this master stops', async () => {
    const { arbiter, f } = make({ workers: 2 });
    await arbiter.manageWorkers();
    const result = arbiter.upgrade({ timeout: 10 });
    await priv(arbiter).stepUpgrade(); // spawns the new master
    const newMaster = f.children[2]!;
    expect(arbiter.reexecPid).toBe(newMaster.pid);
    await priv(arbiter).stepUpgrade();
    expect(f.kill).not.toHaveBeenCalled(); // not before it serves
    newMaster.emit('message', { type: 'arb:serving', pid: newMaster.pid });
    await priv(arbiter).stepUpgrade();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    expect(arbiter.numWorkers).toBe(0);
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.reapWorkers();
    await priv(arbiter).stepUpgrade();
    await expect(result).resolves.toEqual({ ok: true, newPid: newMaster.pid });
    expect(arbiter.signals.drain()).toEqual(['SIGTERM']);
  });

  it('a new master that exits before serving: failure, our workers untouched', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.manageWorkers();
    const result = arbiter.upgrade();
    await priv(arbiter).stepUpgrade();
    f.children[1]!.die(4);
    (arbiter as unknown as { reapReexec(): void }).reapReexec();
    await priv(arbiter).stepUpgrade();
    await expect(result).resolves.toMatchObject({ ok: false, error: 'the new master exited' });
    expect(f.kill).not.toHaveBeenCalled();
    expect(arbiter.signals.size).toBe(0);
  });

  it('a new master not serving in time is stopped (TERM)', async () => {
    const { arbiter, f } = make({ workers: 1 });
    await arbiter.manageWorkers();
    const result = arbiter.upgrade({ timeout: 5 });
    await priv(arbiter).stepUpgrade();
    f.clock.t += 6;
    await priv(arbiter).stepUpgrade();
    await expect(result).resolves.toMatchObject({ ok: false, newPid: 102 });
    expect(f.kill.mock.calls).toEqual([[102, 'SIGTERM']]);
  });

  it('is refused in an unpromoted master', async () => {
    const { arbiter } = make();
    arbiter.masterPid = 4242;
    const result = arbiter.upgrade();
    await priv(arbiter).stepUpgrade();
    await expect(result).resolves.toEqual({
      ok: false,
      error: 'USR2 signal ignored. Parent exists.',
    });
  });
});
