// USR2 upgrade under load, through the real `arb` binary: the manual dance (USR2, WINCH,
// TERM) with the pidfiles checked at each step, and the one-step `arb upgrade`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { retryOnPortInUse } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, BIN, request, type Target, tempDir, waitFor } from './harness.js';
import { LoadLoop, writeApp } from './load.js';
import {
  bootedPids,
  fewestServing,
  indexOf,
  LatencyProbe,
  SLOW_BOOT_MS,
  writeOrderingConfig,
} from './ordering.js';

const running: ArbProcess[] = [];
const loops: { stop(): Promise<void> }[] = [];
const dirs: string[] = [];
/** New masters started by an upgrade (not children of the test): stopped after each test. */
const masters = new Set<number>();

afterEach(async () => {
  // every step is tried even when one fails; the failures are reported after the cleanup
  const failed: unknown[] = [];
  const settle = async (steps: Promise<unknown>[]) => {
    for (const r of await Promise.allSettled(steps)) {
      if (r.status === 'rejected') failed.push(r.reason);
    }
  };
  try {
    await settle(loops.splice(0).map((l) => l.stop()));
    // the new masters first: their workers are in the old master's logs, which its stop checks
    await settle([...masters].map((pid) => stopMaster(pid)));
    masters.clear();
    await settle(running.splice(0).map((a) => a.stop()));
  } finally {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
  if (failed.length > 0) throw new AggregateError(failed, 'cleanup failed');
});

/** TERM, then KILL if it is still there after a while (a cleanup: it is not our child). */
async function stopMaster(pid: number): Promise<void> {
  if (isAlive(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(() => !isAlive(pid), 20_000, `master ${pid} to stop`).catch((err: Error) => {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    throw err;
  });
}

/** Alive and not a zombie (a promoted master's old parent may be reaped late). */
function isAlive(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

/** The children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** `slow`: the app takes SLOW_BOOT_MS to import, and every worker says when it listens. */
async function start({ slow = false } = {}) {
  const dir = tempDir();
  dirs.push(dir);
  writeApp(dir, 'v1', slow ? SLOW_BOOT_MS : 0);
  if (slow) writeOrderingConfig(dir);
  const sock = path.join(dir, 's.sock');
  const pidfile = path.join(dir, 'arb.pid');
  const arb = new ArbProcess(
    [
      '-w',
      '2',
      '-b',
      '127.0.0.1:0',
      '-b',
      `unix:${sock}`,
      '-p',
      pidfile,
      '--graceful-timeout',
      '10',
      'app.mjs',
    ],
    { cwd: dir },
  );
  running.push(arb);
  const tcp = await arb.tcpTarget();
  const targets: Target[] = [tcp, { socketPath: sock }];
  const load = new LoadLoop(targets, { fresh: 3, keepAlive: 2 });
  loops.push(load);
  await load.progress(20);
  return { dir, sock, pidfile, arb, load };
}

function runUpgrade(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'upgrade', ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `arb upgrade`: the CLI drives the dance (USR2, wait for FILE.2, WINCH + TERM). */
async function upgradeByPidfile(dir: string, pidfile: string): Promise<number> {
  const result = await runUpgrade(['--pid', pidfile, '--timeout', '60'], dir);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const newPid = readPid(pidfile)!;
  expect(result.stdout).toContain(`master ${newPid} promoted`);
  return newPid;
}

/** `arb ctl upgrade`: the master drives it (Arbiter.upgrade) and answers once it handed over. */
async function upgradeByCtl(dir: string): Promise<number> {
  const result = await ctlJson(['upgrade'], dir);
  expect(result.stderr).toBe('');
  expect(result.body).toMatchObject({ ok: true, new_pid: expect.any(Number) });
  return result.body.new_pid as number;
}

/** Stops the promoted master and checks that nothing of either generation survives. */
async function stopAll(arb: ArbProcess, load: LoadLoop, newPid: number) {
  await load.stop();
  for (const a of load.answers) arb.pids.add(a.pid);
  process.kill(newPid, 'SIGTERM');
  await waitFor(() => !isAlive(newPid), 30_000, `new master ${newPid} to stop`);
  masters.delete(newPid);
  await arb.stop(); // checks every pid seen (both masters' logs, responses) is gone
}

describe('USR2 upgrade under load', () => {
  it('the manual dance: USR2, WINCH, TERM; pidfiles right at every step, promotion, same socket inode, no failed request', async () => {
    const { dir, sock, pidfile, arb, load } = await start();
    const oldPid = arb.pid;
    const inode = fs.statSync(sock).ino;
    expect(readPid(pidfile)).toBe(oldPid);
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);

    writeApp(dir, 'v2');
    process.kill(oldPid, 'SIGUSR2');
    const newPid = await waitFor(
      () => {
        const p = readPid(`${pidfile}.2`);
        return p !== undefined && p !== oldPid ? p : undefined;
      },
      60_000,
      `${pidfile}.2 (${arb.stderr.slice(-1500)})`,
    );
    masters.add(newPid);
    // .2 appears once the new master serves; the old one still owns the plain pidfile
    expect(childrenOf(oldPid)).toContain(newPid);
    expect(readPid(pidfile)).toBe(oldPid);
    const both = Date.now();
    await waitFor(
      async () => {
        await load.progress(10);
        const v = load.versionsSince(both);
        return v.has('v1') && v.has('v2');
      },
      30_000,
      'both generations to answer',
    );

    process.kill(oldPid, 'SIGWINCH');
    // the old master's workers drain and exit; it keeps only the new master as a child
    await waitFor(
      () => childrenOf(oldPid).every((c) => c === newPid),
      30_000,
      'the old workers to go',
    );
    expect(isAlive(oldPid)).toBe(true);
    expect(readPid(pidfile)).toBe(oldPid);
    expect(readPid(`${pidfile}.2`)).toBe(newPid);
    const onlyNew = Date.now();
    await load.progress(30);
    expect(load.versionsSince(onlyNew)).toEqual(new Set(['v2']));

    process.kill(oldPid, 'SIGTERM');
    expect(await arb.exited()).toBe(0);
    await waitFor(
      () => readPid(pidfile) === newPid && !fs.existsSync(`${pidfile}.2`),
      10_000,
      'promotion (pidfile renamed)',
    );
    await arb.log(
      (e) => e.pid === newPid && e.msg === 'Master has been promoted.',
      'the promotion line',
    );
    expect(fs.statSync(sock).ino).toBe(inode); // the old master did not unlink it
    const afterTerm = Date.now();
    await load.progress(30);
    expect(load.versionsSince(afterTerm)).toEqual(new Set(['v2']));
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    await stopAll(arb, load, newPid);
    expect(fs.existsSync(pidfile)).toBe(false);
    expect(fs.existsSync(sock)).toBe(false); // the promoted master owns the file now
  }, 240_000);

  it.each([
    ['arb upgrade --pid FILE', upgradeByPidfile],
    ['arb ctl upgrade', upgradeByCtl],
  ])(
    'one step with an app slow to boot (%s): the old workers retire only once the new master serves, no request waits, success reported',
    async (_how, upgrade) => {
      const { dir, sock, pidfile, arb, load } = await start({ slow: true });
      const oldPid = arb.pid;
      const inode = fs.statSync(sock).ino;
      const probe = new LatencyProbe([await arb.tcpTarget(), { socketPath: sock }]);
      loops.push(probe);
      const oldWorkers = bootedPids(arb.logs, oldPid);
      expect(oldWorkers).toHaveLength(2);
      writeApp(dir, 'v2', SLOW_BOOT_MS);
      const from = arb.logs.length;
      const upgradeAt = Date.now();
      const newPid = await upgrade(dir, pidfile);
      masters.add(newPid);
      expect(newPid).not.toBe(oldPid);
      expect(await arb.exited()).toBe(0);
      await arb.log(
        (e) => e.pid === newPid && String(e.msg).startsWith('Serving with'),
        'the new master serving',
      );
      const doneAt = Date.now();
      await probe.stop();
      expect(probe.failures).toEqual([]);
      // the old workers stop accepting only after the new master said it serves ...
      const logs = arb.logs;
      const serving = indexOf(
        logs,
        (e) => e.pid === newPid && String(e.msg).startsWith('Serving with'),
        from,
      );
      for (const pid of oldWorkers) {
        const exiting = indexOf(
          logs,
          (e) => e.pid === pid && String(e.msg).startsWith('Worker exiting'),
          from,
        );
        expect(exiting, `old worker ${pid} exiting`).toBeGreaterThan(serving);
      }
      // ... so 2 workers listened at every moment, and no request waited for a boot
      const fewest = fewestServing(logs, from);
      expect(fewest.count, `at ${fewest.at}`).toBeGreaterThanOrEqual(2);
      expect(probe.countBetween(upgradeAt, doneAt)).toBeGreaterThan(0);
      expect(probe.slowest(upgradeAt, doneAt).ms).toBeLessThan(SLOW_BOOT_MS / 2);
      await waitFor(() => readPid(pidfile) === newPid, 10_000, 'promotion (pidfile renamed)');
      expect(isAlive(newPid)).toBe(true);
      expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
      expect(fs.statSync(sock).ino).toBe(inode);
      const after = Date.now();
      await load.progress(40);
      expect(load.versionsSince(after)).toEqual(new Set(['v2']));
      await load.stop();
      expect(load.failures).toEqual([]);
      expect(load.retried).toBe(0); // not even a reset a client would have to retry
      await stopAll(arb, load, newPid);
    },
    240_000,
  );

  it('companions never run twice during an upgrade, and their socket survives the old master', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeApp(dir, 'v1');
    const marker = `arb-upgrade-companion-${process.pid}-${Date.now()}`;
    // each run of the companion appends its start, and its stop on TERM, to this file: the
    // runs' own record, in the order they happened (appends to one file do not reorder)
    const runsFile = path.join(dir, 'runs.jsonl');
    const COMPANION = `const fs = require('node:fs');
const note = (event) =>
  fs.appendFileSync(process.argv[1], JSON.stringify({ event, pid: process.pid, t: Date.now() }) + '\\n');
note('start');
process.on('SIGTERM', () => { note('stop'); process.exit(0); });
setInterval(() => {}, 1000);`;
    fs.writeFileSync(
      path.join(dir, 'arb.config.json'),
      JSON.stringify({
        app: './app.mjs',
        workers: 1,
        bind: '127.0.0.1:0',
        pidfile: './arb.pid',
        companions: {
          socket: './c.sock',
          defaults: { startSecs: 0.2, stopTimeout: 2 },
          workers: [
            {
              name: 'solo',
              command: [process.execPath, '-e', COMPANION, runsFile, marker],
            },
          ],
        },
      }),
    );
    const socket = path.join(dir, 'c.sock');
    const copies = () =>
      fs.readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return (
            fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker) && isAlive(Number(p))
          );
        } catch {
          return false;
        }
      });
    const companion = async () =>
      waitFor(
        async () => {
          const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
            const c = spawn(
              process.execPath,
              [BIN, 'companion', 'status', '--json', '--socket', socket],
              { stdio: ['ignore', 'pipe', 'ignore'] },
            );
            let out = '';
            c.stdout.on('data', (d) => {
              out += d;
            });
            c.once('exit', (code) => resolve({ code, out }));
          });
          const body = r.code === 0 ? JSON.parse(r.out) : undefined;
          return body?.companions?.[0]?.state === 'RUNNING' ? body : undefined;
        },
        20_000,
        'the companion RUNNING',
      );
    const arb = new ArbProcess([], { cwd: dir });
    running.push(arb);
    await arb.ready();
    const before = await companion();
    arb.pids.add(before.manager.pid);
    arb.pids.add(before.companions[0].pid);

    const result = await runUpgrade(['--pid', path.join(dir, 'arb.pid'), '--timeout', '60'], dir);
    expect(result.code).toBe(0);
    const newPid = readPid(path.join(dir, 'arb.pid'))!;
    masters.add(newPid);
    expect(await arb.exited()).toBe(0);
    const after = await companion(); // the promoted master's manager answers on the same path
    expect(after.manager.pid).not.toBe(before.manager.pid);
    expect(alive(before.companions[0].pid)).toBe(false);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);

    process.kill(newPid, 'SIGTERM');
    await waitFor(() => !isAlive(newPid), 30_000, `new master ${newPid} to stop`);
    masters.delete(newPid);
    await waitFor(() => copies().length === 0, 5000, 'the companion to stop with the new master');
    // two runs, one before and one after the upgrade, the second started after the first
    // stopped: in the file's order and by their clocks
    const runs = fs
      .readFileSync(runsFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: 'start' | 'stop'; pid: number; t: number });
    expect(runs.map((r) => r.event)).toEqual(['start', 'stop', 'start', 'stop']);
    expect(runs.map((r) => r.pid)).toEqual([
      before.companions[0].pid,
      before.companions[0].pid,
      after.companions[0].pid,
      after.companions[0].pid,
    ]);
    expect(runs[2]!.t).toBeGreaterThanOrEqual(runs[1]!.t);
    expect(fs.existsSync(socket)).toBe(false);
  }, 120_000);

  it('one step with a broken release: exit 1, the old master keeps serving, the new one is gone', async () => {
    const { dir, pidfile, arb, load } = await start();
    const oldPid = arb.pid;
    writeApp(dir, 'broken');
    const result = await runUpgrade(['--pid', pidfile, '--timeout', '30'], dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/keeps serving/);
    expect(isAlive(oldPid)).toBe(true);
    expect(readPid(pidfile)).toBe(oldPid);
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    // the old master saw its new master exit, so USR2 works again
    await arb.log(
      (e) => e.pid === oldPid && typeof e.msg === 'string' && /^New master .* exited/.test(e.msg),
      'the old master reaping the new one',
    );
    await waitFor(() => childrenOf(oldPid).length === 2, 20_000, 'only the two workers left');
    const after = Date.now();
    await load.progress(40);
    expect(load.versionsSince(after)).toEqual(new Set(['v1']));
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    for (const a of load.answers) arb.pids.add(a.pid);
    expect(await arb.stop()).toBe(0);
  }, 180_000);

  it('USR2 is refused while a new master exists, and in the unpromoted new master; rollback (WINCH, HUP old, TERM new)', async () => {
    const { pidfile, arb, load } = await start();
    const oldPid = arb.pid;
    process.kill(oldPid, 'SIGUSR2');
    const newPid = await waitFor(() => readPid(`${pidfile}.2`), 60_000, `${pidfile}.2`);
    masters.add(newPid);
    process.kill(oldPid, 'SIGUSR2');
    await arb.log(
      (e) => e.pid === oldPid && e.msg === 'USR2 signal ignored. Child exists.',
      'refusal in the old master',
    );
    process.kill(newPid, 'SIGUSR2');
    await arb.log(
      (e) => e.pid === newPid && e.msg === 'USR2 signal ignored. Parent exists.',
      'refusal in the new master',
    );
    expect(childrenOf(oldPid).filter((c) => c !== newPid)).toHaveLength(2);
    // the dance goes as far as WINCH ...
    process.kill(oldPid, 'SIGWINCH');
    await waitFor(() => childrenOf(oldPid).every((c) => c === newPid), 30_000, 'old workers gone');
    // ... then the rollback as documented: HUP the old master, TERM the new one
    process.kill(oldPid, 'SIGHUP');
    await arb.log(
      (e) => e.pid === oldPid && e.msg === 'Reload complete',
      'the old master reloaded',
    );
    expect(childrenOf(oldPid).filter((c) => c !== newPid)).toHaveLength(2);
    process.kill(newPid, 'SIGTERM');
    await waitFor(() => !isAlive(newPid), 30_000, 'the new master to stop');
    masters.delete(newPid);
    expect(readPid(pidfile)).toBe(oldPid);
    expect(fs.existsSync(`${pidfile}.2`)).toBe(false);
    await load.progress(30);
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    for (const a of load.answers) arb.pids.add(a.pid);
    expect(await arb.stop()).toBe(0);
  }, 180_000);

  it.skipIf(!fs.existsSync('/usr/bin/systemd-socket-activate'))(
    'under systemd socket activation: the new master gets LISTEN_FDS with its own LISTEN_PID',
    async () => {
      const dir = tempDir();
      dirs.push(dir);
      writeApp(dir, 'v1');
      const sock = path.join(dir, 'sd.sock');
      const pidfile = path.join(dir, 'arb.pid');
      const { ARB_CMD_ARGS: _a, PORT: _p, WEB_CONCURRENCY: _w, ...env } = process.env;
      const logs: Record<string, unknown>[] = [];
      // The activator cannot be told to pick a port: retry when the free one was taken meanwhile.
      const { child, port, exited } = await retryOnPortInUse(async (port) => {
        fs.rmSync(sock, { force: true });
        const child = spawn(
          '/usr/bin/systemd-socket-activate',
          [
            `--listen=127.0.0.1:${port}`,
            `--listen=${sock}`,
            '--fdname=web:admin',
            process.execPath,
            BIN,
            '-w',
            '2',
            '-p',
            pidfile,
            '--graceful-timeout',
            '10',
            'app.mjs',
          ],
          { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let buf = '';
        let text = '';
        child.stderr!.setEncoding('utf8');
        child.stderr!.on('data', (d: string) => {
          buf += d;
          text += d;
          for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
            try {
              logs.push(JSON.parse(buf.slice(0, i)));
            } catch {
              // not a log line
            }
            buf = buf.slice(i + 1);
          }
        });
        const exited = new Promise((r) => child.once('exit', r));
        const listening = await Promise.race([
          waitFor(() => /Listening on/.test(text), 10_000, 'systemd-socket-activate to listen'),
          exited.then(() => false),
        ]);
        if (!listening) throw new Error(`systemd-socket-activate: ${text}`);
        return { child, port, exited };
      });
      try {
        const tcp = { host: '127.0.0.1', port };
        // the first connection makes systemd-socket-activate start arb
        await waitFor(async () => (await request(tcp)).status === 200, 30_000, 'first request');
        const oldPid = await waitFor(() => readPid(pidfile), 10_000, 'the pidfile');
        const inode = fs.statSync(sock).ino;
        const load = new LoadLoop([tcp, { socketPath: sock }], { fresh: 2, keepAlive: 2 });
        loops.push(load);
        await load.progress(20);
        writeApp(dir, 'v2');
        const result = await runUpgrade(['--pid', pidfile, '--timeout', '60'], dir);
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        const newPid = readPid(pidfile)!;
        masters.add(newPid);
        expect(newPid).not.toBe(oldPid);
        // it adopted systemd's two sockets (with LISTEN_PID = its pid; else it would have
        // bound the default 127.0.0.1:8000), by their names
        const listening = logs.find((e) => e.pid === newPid && Array.isArray(e.listeners));
        expect(listening?.listeners).toEqual([`127.0.0.1:${port}`, `unix:${sock}`]);
        await exited;
        const after = Date.now();
        await load.progress(40);
        expect(load.versionsSince(after)).toEqual(new Set(['v2']));
        expect(fs.statSync(sock).ino).toBe(inode);
        await load.stop();
        expect(load.failures).toEqual([]);
        expect(load.retried).toBe(0); // not even a reset a client would have to retry
        const pids = new Set(load.answers.map((a) => a.pid));
        process.kill(newPid, 'SIGTERM');
        await waitFor(() => !isAlive(newPid), 30_000, 'the new master to stop');
        masters.delete(newPid);
        await waitFor(() => [...pids].every((p) => !isAlive(p)), 10_000, 'no worker left');
        expect(fs.existsSync(sock)).toBe(true); // systemd's file: never unlinked by arb
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
    180_000,
  );
});
