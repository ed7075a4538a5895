// End to end: boot and load failures, orphaned workers, the pidfile, the hooks.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupMasters,
  FIXTURES,
  isAlive,
  loggedWorkerPids,
  request,
  startMaster,
  tempDir,
  waitFor,
} from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');
const HOOKS = path.join(FIXTURES, 'hooks.mjs');

afterEach(cleanupMasters);

describe('a worker that cannot boot or load the app halts the master', () => {
  it('boot failure (a postFork hook throws): exit 3, one line saying why, nothing left', async () => {
    const dir = tempDir();
    const pidfile = path.join(dir, 'arb.pid');
    const started = Date.now();
    const master = await startMaster(
      { app: APP, workers: 2, configModule: HOOKS, env: { ARB_FAIL_POST_FORK: '1' }, pidfile },
      { waitReady: false, dir },
    );
    expect(await master.exited).toBe(3);
    expect(Date.now() - started).toBeLessThan(10_000);
    const reason = master
      .log()
      .split('\n')
      .filter((l) => l.includes('Shutting down: Master'));
    expect(reason).toHaveLength(1);
    expect(reason[0]).toMatch(
      /Reason: Worker \(pid:\d+\) failed to boot: postFork hook threw: postFork says no/,
    );
    for (const pid of loggedWorkerPids(master)) expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
    expect(fs.existsSync(path.join(dir, 's.sock'))).toBe(false);
  });

  it('app load failure (import throws): exit 4', async () => {
    const master = await startMaster(
      { app: path.join(FIXTURES, 'app-throws.mjs'), workers: 2 },
      { waitReady: false },
    );
    expect(await master.exited).toBe(4);
    expect(master.log()).toMatch(
      /Reason: Worker \(pid:\d+\) could not load the app: cannot load app .*this app cannot be loaded/,
    );
    for (const pid of loggedWorkerPids(master)) expect(isAlive(pid)).toBe(false);
  });

  it('app load failure (the export is not an app): exit 4', async () => {
    const master = await startMaster(
      { app: path.join(FIXTURES, 'app-bad-export.mjs') },
      { waitReady: false },
    );
    expect(await master.exited).toBe(4);
    expect(master.log()).toContain('which is not an app');
  });

  it('a failing preload exits 4 before any worker', async () => {
    const master = await startMaster(
      { app: path.join(FIXTURES, 'app-throws.mjs'), preload: true },
      { waitReady: false },
    );
    expect(await master.exited).toBe(4);
    expect(loggedWorkerPids(master)).toEqual([]);
  });
});

describe('pidfile', () => {
  it('holds the master pid while it runs, refuses a second master, and is removed on exit', async () => {
    const dir = tempDir();
    const pidfile = path.join(dir, 'arb.pid');
    const master = await startMaster({ app: APP, pidfile }, { dir });
    expect(fs.readFileSync(pidfile, 'utf8')).toBe(`${master.pid}\n`);
    expect(fs.statSync(pidfile).mode & 0o777).toBe(0o644);
    const second = await startMaster(
      { app: APP, pidfile, bind: ['127.0.0.1:0'] },
      { waitReady: false },
    );
    expect(await second.exited).toBe(1);
    expect(second.log()).toContain(`Already running on PID ${master.pid}`);
    expect(fs.readFileSync(pidfile, 'utf8')).toBe(`${master.pid}\n`);
    process.kill(master.pid, 'SIGTERM');
    expect(await master.exited).toBe(0);
    expect(fs.existsSync(pidfile)).toBe(false);
  });

  it('replaces a stale pidfile', async () => {
    const dir = tempDir();
    const pidfile = path.join(dir, 'arb.pid');
    fs.writeFileSync(pidfile, '999999999\n');
    const master = await startMaster({ app: APP, pidfile }, { dir });
    expect(fs.readFileSync(pidfile, 'utf8')).toBe(`${master.pid}\n`);
  });
});

describe('config module', () => {
  it('a JSON config file is not re-imported by the workers (it carries no hooks)', async () => {
    const master = await startMaster({
      app: APP,
      workers: 1,
      configModule: path.join(FIXTURES, 'arb.config.json'),
    });
    expect((await request(master, '/')).status).toBe(200);
  });

  it('a config module that cannot be imported makes the workers fail to boot: exit 3', async () => {
    const master = await startMaster(
      { app: APP, workers: 1, configModule: path.join(FIXTURES, 'hooks-worker-throws.mjs') },
      { waitReady: false },
    );
    expect(await master.exited).toBe(3);
    expect(master.log()).toMatch(
      /failed to boot: cannot load the config module: .*no config for workers/,
    );
  });
});

describe('hooks, each in its process', () => {
  it('runs master hooks in the master and worker hooks (from the config module) in the workers', async () => {
    const dir = tempDir();
    const hookLog = path.join(dir, 'hooks.log');
    const master = await startMaster(
      {
        app: APP,
        workers: 2,
        configModule: HOOKS,
        env: { ARB_HOOK_LOG: hookLog, ARB_TEST_ENV: 'set' },
      },
      { dir },
    );
    const reply = await request(master, '/');
    expect(reply.json?.env).toBe('set'); // `env` reaches the workers
    const [w1, w2] = loggedWorkerPids(master);
    process.kill(w1!, 'SIGINT'); // quick: workerInt, then workerExit
    await waitFor(() => loggedWorkerPids(master).length === 3, { what: 'replacement' });
    process.kill(master.pid, 'SIGTERM');
    expect(await master.exited).toBe(0);
    const lines = fs.readFileSync(hookLog, 'utf8').trim().split('\n');
    const m = master.pid;
    const at = (line: string) => lines.indexOf(line);
    expect(at(`nworkersChanged:undefined->2 master ${m}`)).toBe(0);
    expect(at(`onStarting master ${m}`)).toBe(1);
    expect(at(`whenReady master ${m}`)).toBe(2);
    expect(at(`preFork:1 master ${m}`)).toBeGreaterThan(2);
    expect(lines).toContain(`postFork:1:master=${m} worker ${w1}`);
    expect(lines).toContain(`postFork:2:master=${m} worker ${w2}`);
    expect(lines).toContain(`postWorkerInit worker ${w1}`);
    expect(at(`workerInt worker ${w1}`)).toBeLessThan(at(`workerExit worker ${w1}`));
    expect(lines).toContain(`childExit:${w1} master ${m}`);
    expect(lines).toContain(`workerExit worker ${w2}`); // graceful path too
    expect(lines.at(-1)).toBe(`onExit master ${m}`);
  });
});
