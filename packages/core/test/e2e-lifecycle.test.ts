// End to end: a real master (test/fixtures/run-arbiter.mjs on dist/), real workers, real
// signals, HTTP over TCP and a unix socket.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupMasters,
  distinctPids,
  FIXTURES,
  isAlive,
  loggedWorkerPids,
  type Master,
  request,
  startMaster,
  tempDir,
  waitFor,
} from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

afterEach(cleanupMasters);

/** The pids of the live workers, as the master logged them, minus those dead. */
function liveWorkerPids(master: Master): number[] {
  return loggedWorkerPids(master).filter(isAlive);
}

describe('serving', () => {
  it('N workers serve over TCP and a unix socket, N distinct pids answer', async () => {
    const master = await startMaster({ app: APP, workers: 3 });
    const tcp = await distinctPids(master, 3, 'tcp');
    const unix = await distinctPids(master, 3, 'unix');
    const workers = loggedWorkerPids(master);
    expect(workers).toHaveLength(3);
    expect([...tcp].sort()).toEqual([...workers].sort());
    expect([...unix].sort()).toEqual([...workers].sort());
    expect(workers).not.toContain(master.pid);
  });

  it('process titles name the master and the workers', async () => {
    const master = await startMaster({ app: APP, workers: 1, procName: 'shop' });
    const [worker] = loggedWorkerPids(master);
    const title = (pid: number) =>
      fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '');
    await waitFor(() => title(master.pid).startsWith('arb: master [shop]'), {
      what: 'master title',
    });
    await waitFor(() => title(worker!).startsWith('arb: worker [shop]'), { what: 'worker title' });
  });
});

describe('user and group', () => {
  const root = process.getuid?.() === 0;
  if (!root) console.log('skipped: switching workers to another uid/gid needs root');
  it.skipIf(!root)(
    "workers switch to the configured uid/gid (and drop root's groups); the master does not",
    async () => {
      // The worker imports the app after dropping to nobody: give it a copy it can read
      // even when the checkout sits in a 0700 directory.
      const dir = tempDir();
      try {
        fs.chmodSync(dir, 0o755);
        const app = path.join(dir, 'app-pid.mjs');
        fs.copyFileSync(APP, app);
        fs.chmodSync(app, 0o644);
        const master = await startMaster({ app, workers: 1, user: 65534, group: 65534 });
        const reply = await request(master, '/', { via: 'unix' });
        expect(reply.json).toMatchObject({ uid: 65534, gid: 65534, groups: [65534] });
        const status = fs.readFileSync(`/proc/${master.pid}/status`, 'utf8');
        expect(status).toMatch(/^Uid:\s+0\s/m);
      } finally {
        await cleanupMasters();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('replacing and scaling workers', () => {
  it('kill -9 of a worker: a new one serves', async () => {
    const master = await startMaster({ app: APP, workers: 2 });
    const [victim] = loggedWorkerPids(master);
    process.kill(victim!, 'SIGKILL');
    const replacement = await waitFor(() => loggedWorkerPids(master)[2], {
      what: 'a replacement worker',
    });
    const pids = await distinctPids(master, 2);
    expect(pids.has(replacement)).toBe(true);
    expect(pids.has(victim!)).toBe(false);
    expect(master.log()).toContain(
      `Worker (pid:${victim}) was sent SIGKILL! Perhaps out of memory?`,
    );
  });

  it('a request listener that throws answers 500 and the worker keeps serving', async () => {
    const master = await startMaster({ app: APP, workers: 1 });
    const reply = await request(master, '/throw');
    expect(reply.status).toBe(500);
    expect(master.log()).toContain('Error handling request');
    expect((await request(master, '/')).json?.pid).toBe(loggedWorkerPids(master)[0]);
  });

  it('a worker that crashes is replaced at once', async () => {
    const master = await startMaster({ app: APP, workers: 1 });
    await request(master, '/crash').catch(() => {});
    await waitFor(() => loggedWorkerPids(master).length === 2, { what: 'a replacement' });
    expect(master.log()).toMatch(/exited with code 7/);
    expect((await request(master, '/')).status).toBe(200);
  });

  it('workers that keep dying right after boot are respawned with backoff, not in a hot loop', async () => {
    const master = await startMaster(
      { app: path.join(FIXTURES, 'app-dies.mjs'), workers: 1 },
      { waitReady: false },
    );
    // the master's own log lines, with their times: four deaths after the first one
    type Line = { time: number; msg: string };
    const lines = () =>
      master
        .log()
        .split('\n')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Line];
          } catch {
            return []; // not a log line, or one still being written
          }
        });
    const dying = (l: Line) => l.msg.includes('keeps failing to boot');
    await waitFor(() => lines().filter(dying).length >= 4, {
      what: 'four backoff lines',
      timeoutMs: 15_000,
    });
    const all = lines();
    const at = all.flatMap((l, i) => (dying(l) ? [i] : [])).slice(0, 4);
    const delays = at.map((i) => Number(/next spawn in (\d+\.\d)s/.exec(all[i]!.msg)?.[1]));
    expect(delays).toEqual([0.2, 0.4, 0.8, 1.6]);
    // each death came at least the announced delay after the one before (pino times are
    // wall-clock ms), with exactly one worker spawned in between: no hot loop
    for (let k = 1; k < at.length; k++) {
      const [from, to] = [at[k - 1]!, at[k]!];
      expect(all[to]!.time - all[from]!.time).toBeGreaterThanOrEqual(delays[k - 1]! * 1000 - 5);
      const spawned = all.slice(from + 1, to).filter((l) => l.msg.startsWith('Booting worker'));
      expect(spawned).toHaveLength(1);
    }
    expect(isAlive(master.pid)).toBe(true);
  });

  it('TTIN adds a worker, TTOU retires the oldest gracefully', async () => {
    const master = await startMaster({ app: APP, workers: 2 });
    const [oldest] = loggedWorkerPids(master);
    process.kill(master.pid, 'SIGTTIN');
    await waitFor(() => liveWorkerPids(master).length === 3, { what: '3 workers' });
    await distinctPids(master, 3);
    process.kill(master.pid, 'SIGTTOU');
    await waitFor(() => !isAlive(oldest!), { what: 'the oldest worker retired' });
    expect(master.log()).toContain(`Worker (pid:${oldest}) exited`);
    expect(liveWorkerPids(master)).toHaveLength(2);
    const pids = await distinctPids(master, 2);
    expect(pids.has(oldest!)).toBe(false);
  });

  it('HUP starts a new generation and retires the old one', async () => {
    const master = await startMaster({ app: APP, workers: 2 });
    const old = loggedWorkerPids(master);
    process.kill(master.pid, 'SIGHUP');
    await waitFor(() => old.every((p) => !isAlive(p)), { what: 'the old generation retired' });
    const fresh = await waitFor(() =>
      loggedWorkerPids(master).length === 4 ? loggedWorkerPids(master).slice(2) : undefined,
    );
    const pids = await distinctPids(master, 2);
    expect([...pids].sort()).toEqual([...fresh].sort());
  });

  it('WINCH stops the workers gracefully and keeps the master', async () => {
    const master = await startMaster({ app: APP, workers: 2 });
    const workers = loggedWorkerPids(master);
    process.kill(master.pid, 'SIGWINCH');
    await waitFor(() => workers.every((p) => !isAlive(p)), { what: 'workers stopped' });
    expect(isAlive(master.pid)).toBe(true);
    expect(loggedWorkerPids(master)).toHaveLength(2);
    process.kill(master.pid, 'SIGTERM');
    expect(await master.exited).toBe(0);
  });
});

describe('stopping', () => {
  it('TERM lets a slow in-flight request finish, then exits 0 and removes the socket and pidfile', async () => {
    const master = await startMaster({ app: APP, workers: 2, gracefulTimeout: 5 });
    const slow = request(master, '/slow?ms=1500');
    await waitFor(() => master.log().includes('slow request started'), {
      what: 'the slow request in flight',
    });
    process.kill(master.pid, 'SIGTERM');
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(await master.exited).toBe(0);
    expect(fs.existsSync(master.sock!)).toBe(false);
    expect(master.log()).toContain('Shutting down: Master');
  });

  it('TERM closes idle keep-alive connections at once instead of waiting gracefulTimeout', async () => {
    const master = await startMaster({ app: APP, workers: 1, gracefulTimeout: 20, keepAlive: 30 });
    const socket = net.connect(master.port!, '127.0.0.1');
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d) => {
      received += d;
    });
    const closed = new Promise((r) => socket.once('close', r));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => received.includes('"pid"'), { what: 'the first response' });
    expect(received).toMatch(/keep-alive/i);
    const started = Date.now();
    process.kill(master.pid, 'SIGTERM');
    await closed;
    expect(await master.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('INT stops at once, in-flight requests included', async () => {
    const master = await startMaster({ app: APP, workers: 2, gracefulTimeout: 10 });
    const slow = request(master, '/slow?ms=8000').then(
      () => 'answered',
      () => 'cut',
    );
    await waitFor(() => master.log().includes('slow request started'), {
      what: 'the slow request in flight',
    });
    const started = Date.now();
    process.kill(master.pid, 'SIGINT');
    expect(await master.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await slow).toBe('cut');
  });
});

describe('heartbeat timeout', () => {
  it('SIGABRT runs workerAbort in the worker, which exits 1 and is replaced', async () => {
    const dir = tempDir();
    const hookLog = path.join(dir, 'hooks.log');
    const master = await startMaster(
      {
        app: APP,
        workers: 1,
        configModule: path.join(FIXTURES, 'hooks.mjs'),
        env: { ARB_HOOK_LOG: hookLog },
      },
      { dir },
    );
    const [worker] = loggedWorkerPids(master);
    process.kill(worker!, 'SIGABRT');
    await waitFor(() => loggedWorkerPids(master).length === 2, { what: 'a replacement' });
    expect(fs.readFileSync(hookLog, 'utf8')).toContain(`workerAbort worker ${worker}`);
    expect(master.log()).toContain(`Worker (pid:${worker}) exited with code 1`);
  });
});

describe('max requests', () => {
  it('recycles workers with zero failed requests', async () => {
    const master = await startMaster({
      app: APP,
      workers: 2,
      maxRequests: 5,
      maxRequestsJitter: 3,
    });
    const statuses: number[] = [];
    const pids = new Set<number>();
    for (let round = 0; round < 15; round++) {
      const replies = await Promise.all(Array.from({ length: 4 }, () => request(master, '/')));
      for (const r of replies) {
        statuses.push(r.status);
        if (r.json) pids.add(r.json.pid);
      }
    }
    expect(statuses).toHaveLength(60);
    expect(statuses.every((s) => s === 200)).toBe(true);
    // 60 requests at most 8 per worker: many generations served
    expect(pids.size).toBeGreaterThanOrEqual(60 / 8);
    expect(master.log()).toContain('Autorestarting worker after current request.');
    expect(master.log()).not.toMatch(/exited with code [^0]/);
  });
});
