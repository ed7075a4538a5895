// Deadlines the manager and its companions keep, measured on the wall clock. The bounds
// hold only on a machine not loaded by other test files: the `timing` project
// (vitest.config.ts) runs this file after all the others, alone.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { managerEntry, targetRunnerEntry } from '../src/index.js';
import {
  allRunning,
  cleanup,
  ignoreTerm,
  NODE,
  readPids,
  running,
  spawnManager,
  status,
  stubbornWithChild,
  tmp,
  track,
  waitFor,
} from './helpers.js';

afterEach(() => cleanup());

describe('manager deadlines', () => {
  it('QUIT stops quickly: SIGKILL after at most 1 s, not stopTimeout', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const config = {
      socket: join(dir, 'c.sock'),
      workers: [
        { name: 'stubborn', startSecs: 0.1, stopTimeout: 30, command: stubbornWithChild(pids) },
      ],
    };
    const m = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await m.ready;
    const both = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    track(...both);
    const t0 = performance.now();
    m.child.kill('SIGQUIT');
    expect((await m.exited).code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
    for (const p of both) expect(running(p)).toBe(false);
  });

  it('kill -9 of the manager leaves no companion (target or command, with children) after 2 s', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const tpids = join(dir, 'tpids');
    const grandchild = `require('fs').appendFileSync(${JSON.stringify(tpids)}, process.pid + '\\n'); setInterval(() => {}, 1000)`;
    writeFileSync(
      join(dir, 'jobs.mjs'),
      `import { appendFileSync } from 'node:fs';
       import { spawn } from 'node:child_process';
       export function run() {
         appendFileSync(${JSON.stringify(tpids)}, process.pid + '\\n');
         spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'ignore' });
         setInterval(() => {}, 1000);
       }\n`,
    );
    const config = {
      socket: join(dir, 'c.sock'),
      defaults: { startSecs: 0.1, stopTimeout: 30 },
      workers: [
        { name: 'jobs', target: join(dir, 'jobs.mjs:run') },
        { name: 'stubborn', command: stubbornWithChild(pids) },
      ],
    };
    const m = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await m.ready;
    const cmdPids = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    const targetPids = await waitFor(() => (readPids(tpids).length === 2 ? readPids(tpids) : null));
    const guard = (await status(join(dir, 'c.sock'))).manager.guard_pid!;
    const all = [...cmdPids, ...targetPids];
    track(...all, guard);
    expect(all.every(running)).toBe(true);
    m.child.kill('SIGKILL');
    const t0 = performance.now();
    await m.exited;
    await waitFor(() => all.every((p) => !running(p)), 5000, 'companions to die');
    expect(performance.now() - t0).toBeLessThan(2000);
    await waitFor(() => !running(guard), 3000, 'guard to exit');
  });

  it('stops everything and exits within about 1 s when its parent dies', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const config = {
      workers: [
        { name: 'stubborn', startSecs: 0.1, stopTimeout: 30, command: stubbornWithChild(pids) },
      ],
    };
    // An intermediate parent that starts the manager, reports its pid, and waits.
    const parent = spawn(
      NODE,
      [
        '-e',
        `const c = require('child_process').spawn(process.execPath, [${JSON.stringify(managerEntry())}], { stdio: 'ignore', env: { ...process.env, ARB_COMPANION_CONFIG_JSON: ${JSON.stringify(JSON.stringify(config))} } });
         require('fs').writeFileSync(${JSON.stringify(join(dir, 'mgr'))}, String(c.pid)); setInterval(() => {}, 1000);`,
      ],
      { stdio: 'ignore' },
    );
    track(parent.pid!);
    const mgr = await waitFor(() => readPids(join(dir, 'mgr'))[0]);
    track(mgr);
    const both = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    track(...both);
    parent.kill('SIGKILL');
    const t0 = performance.now();
    await waitFor(
      () => !running(mgr) && both.every((p) => !running(p)),
      5000,
      'manager and companions to exit',
    );
    expect(performance.now() - t0).toBeLessThan(1800);
  });

  it('promotes to RUNNING on time (exact timers, no 1 s tick)', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const config = {
      socket: sock,
      workers: [{ name: 's', startSecs: 0.3, command: ['sleep', '60'] }],
    };
    const m = spawnManager(
      [],
      { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config), ARB_LOG_LEVEL: 'info' },
      dir,
    );
    await m.ready;
    const [s] = await allRunning(sock, 1);
    track(s!.pid!, (await status(sock)).manager.guard_pid!);
    const times = m
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: number; msg: string });
    const started = times.find((l) => l.msg.startsWith('companion s started'))!.time;
    const runningAt = times.find((l) => l.msg.startsWith('companion s running'))!.time;
    expect(runningAt - started).toBeGreaterThanOrEqual(295);
    expect(runningAt - started).toBeLessThan(900);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('a target companion whose manager vanished stops its whole group by itself', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const grandchild = `${ignoreTerm} require('fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');`;
    writeFileSync(
      join(dir, 'jobs.mjs'),
      `import { appendFileSync } from 'node:fs';
       import { spawn } from 'node:child_process';
       export function run() {
         appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');
         spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'ignore' });
         ${ignoreTerm}
       }\n`,
    );
    // A stand-in manager (no guard) that starts the runner the way the manager does.
    const fake = spawn(
      NODE,
      [
        '-e',
        `require('child_process').spawn(process.execPath, [${JSON.stringify(targetRunnerEntry())}], {
           detached: true, stdio: 'ignore',
           env: { ...process.env, ARB_COMPANION_TARGET: ${JSON.stringify(`${join(dir, 'jobs.mjs')}:run`)}, ARB_COMPANION_NAME: 'jobs', ARB_COMPANION_MANAGER_PID: String(process.pid) },
         }); setInterval(() => {}, 1000);`,
      ],
      { stdio: 'ignore' },
    );
    track(fake.pid!);
    const both = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    track(...both);
    fake.kill('SIGKILL');
    const t0 = performance.now();
    await waitFor(() => both.every((p) => !running(p)), 5000, 'runner and its child to exit');
    expect(performance.now() - t0).toBeLessThan(2500);
  });
});
