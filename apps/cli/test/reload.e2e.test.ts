// HUP reload under load, through the real `arb` binary: real processes, sockets, signals.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, request, type Target, tempDir, waitFor } from './harness.js';
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
    await settle(running.splice(0).map((a) => a.stop()));
  } finally {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
  if (failed.length > 0) throw new AggregateError(failed, 'cleanup failed');
});

function count(arb: ArbProcess, msg: string | ((m: string) => boolean)): number {
  const match = typeof msg === 'string' ? (m: string) => m === msg : msg;
  return arb.logs.filter((e) => typeof e.msg === 'string' && match(e.msg)).length;
}

/** `slow`: the app takes SLOW_BOOT_MS to import, and every worker says when it listens. */
async function start(args: string[] = [], { slow = false } = {}) {
  const dir = tempDir();
  dirs.push(dir);
  writeApp(dir, 'v0', slow ? SLOW_BOOT_MS : 0);
  if (slow) writeOrderingConfig(dir);
  const sock = path.join(dir, 's.sock');
  const arb = new ArbProcess(
    [
      '-w',
      '2',
      '-b',
      '127.0.0.1:0',
      '-b',
      `unix:${sock}`,
      '--timeout',
      '20',
      '--graceful-timeout',
      '10',
      ...args,
    ],
    { cwd: dir },
  );
  running.push(arb);
  const tcp = await arb.tcpTarget();
  const targets: Target[] = [tcp, { socketPath: sock }];
  const load = new LoadLoop(targets, { fresh: 3, keepAlive: 2 });
  loops.push(load);
  await load.progress(20);
  return { dir, sock, arb, load };
}

async function finish(arb: ArbProcess, load: LoadLoop) {
  await load.stop();
  for (const a of load.answers) arb.pids.add(a.pid);
  expect(await arb.stop()).toBe(0);
}

describe('HUP reload under load', () => {
  it('10 reloads of an app slow to boot: never fewer than 2 workers listening, no request waits for a boot, no failed request, then only the new version answers', async () => {
    const { dir, sock, arb, load } = await start(['app.mjs'], { slow: true });
    const inode = fs.statSync(sock).ino;
    const probe = new LatencyProbe([await arb.tcpTarget(), { socketPath: sock }]);
    loops.push(probe);
    const swaps: { from: number; to: number; hupAt: number; doneAt: number }[] = [];
    for (let i = 1; i <= 10; i++) {
      writeApp(dir, `v${i}`, SLOW_BOOT_MS);
      const from = arb.logs.length;
      const hupAt = Date.now();
      process.kill(arb.pid, 'SIGHUP');
      await waitFor(
        () => count(arb, 'Reload complete') >= i,
        60_000,
        `reload ${i} to complete (${arb.stderr.slice(-1500)})`,
      );
      const doneAt = Date.now();
      const to = indexOf(arb.logs, (e) => e.msg === 'Reload complete', from) + 1;
      swaps.push({ from, to, hupAt, doneAt });
      await load.progress(10);
    }
    await probe.stop();
    expect(probe.failures).toEqual([]);
    for (const [i, s] of swaps.entries()) {
      // one for one: an old worker stops accepting only after a new one listens
      const fewest = fewestServing(arb.logs, s.from, s.to);
      expect(fewest.count, `reload ${i + 1}, at ${fewest.at}`).toBeGreaterThanOrEqual(2);
      // so no request sent during the swap waited for a worker to boot
      expect(probe.countBetween(s.hupAt, s.doneAt)).toBeGreaterThan(0);
      const slowest = probe.slowest(s.hupAt, s.doneAt);
      expect(slowest.ms, `reload ${i + 1}`).toBeLessThan(SLOW_BOOT_MS / 2);
    }
    const since = Date.now();
    await load.progress(60);
    expect(load.versionsSince(since)).toEqual(new Set(['v10']));
    expect(count(arb, (m) => m.startsWith('Reload failed'))).toBe(0);
    expect(fs.statSync(sock).ino).toBe(inode); // the listeners were never closed
    expect(arb.child.exitCode).toBeNull();
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    expect(load.count).toBeGreaterThan(100);
    await finish(arb, load);
  }, 240_000);

  it('a broken release (the app throws at import): no failed request, the old version keeps serving, the master stays up', async () => {
    const { dir, arb, load } = await start(['app.mjs']);
    writeApp(dir, 'broken');
    process.kill(arb.pid, 'SIGHUP');
    const line = await arb.log(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('Reload failed'),
      'Reload failed',
      60_000,
    );
    expect(line.level).toBe(50);
    const since = Date.now();
    await load.progress(60);
    expect(load.versionsSince(since)).toEqual(new Set(['v0']));
    expect(arb.child.exitCode).toBeNull();
    expect(count(arb, (m) => m.startsWith('Reload failed'))).toBe(1);
    // and a fixed release goes through afterwards
    writeApp(dir, 'v2');
    process.kill(arb.pid, 'SIGHUP');
    await waitFor(() => count(arb, 'Reload complete') >= 1, 60_000, 'the next reload');
    const after = Date.now();
    await load.progress(40);
    expect(load.versionsSince(after)).toEqual(new Set(['v2']));
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    await finish(arb, load);
  }, 180_000);

  it('a config file that no longer validates changes nothing; HUPs during a reload are coalesced', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeApp(dir, 'v0');
    const sock = path.join(dir, 's.sock');
    const config = path.join(dir, 'arb.config.json');
    const writeConfig = (o: unknown) => fs.writeFileSync(config, JSON.stringify(o));
    const good = {
      app: 'app.mjs',
      workers: 2,
      bind: ['127.0.0.1:0', `unix:${sock}`],
      gracefulTimeout: 10,
    };
    writeConfig(good);
    const arb = new ArbProcess(['-c', config], { cwd: dir });
    running.push(arb);
    const tcp = await arb.tcpTarget();
    const load = new LoadLoop([tcp, { socketPath: sock }], { fresh: 2, keepAlive: 1 });
    loops.push(load);
    await load.progress(20);

    writeConfig({ ...good, workers: 'many' });
    process.kill(arb.pid, 'SIGHUP');
    const refused = await arb.log(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('Reload refused'),
      'Reload refused',
      30_000,
    );
    expect(String(refused.msg)).toContain('workers');
    await load.progress(20);

    // three HUPs in a row: one reload now, one more after it, never more (a slow import
    // keeps the first reload busy while the other two arrive)
    writeConfig({ ...good, workers: 3 });
    writeApp(dir, 'v1', 2000);
    process.kill(arb.pid, 'SIGHUP');
    await arb.log((e) => typeof e.msg === 'string' && e.msg.startsWith('Reloading'), 'Reloading');
    process.kill(arb.pid, 'SIGHUP');
    process.kill(arb.pid, 'SIGHUP');
    await waitFor(() => count(arb, 'Reload complete') >= 2, 90_000, 'two reloads');
    // no third reload starts: one more would be queued (as a HUP) when the second ends, so a
    // signal sent now is handled after it; its line is the barrier
    process.kill(arb.pid, 'SIGUSR1');
    await arb.log((e) => e.msg === 'Reopened log files', 'the USR1 barrier');
    expect(count(arb, (m) => m.startsWith('Reloading'))).toBe(2);
    await load.progress(20);
    expect(count(arb, (m) => m.startsWith('Reload in progress'))).toBe(1);
    const since = Date.now();
    await load.progress(40);
    expect(load.versionsSince(since)).toEqual(new Set(['v1']));
    // the new worker count applies: 3 distinct workers answer
    const pids = new Set(load.answers.filter((a) => a.sentAt >= since).map((a) => a.pid));
    await waitFor(
      async () => {
        await load.progress(10);
        for (const a of load.answers.filter((x) => x.sentAt >= since)) pids.add(a.pid);
        return pids.size >= 3;
      },
      30_000,
      '3 workers',
    );
    expect(pids.size).toBe(3);
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    await finish(arb, load);
  }, 240_000);

  it('a changed bind: the new address is bound before the new workers, the removed one closed after the old workers are gone', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeApp(dir, 'v0');
    const a = path.join(dir, 'a.sock');
    const b = path.join(dir, 'b.sock');
    const config = path.join(dir, 'arb.config.json');
    const base = { app: 'app.mjs', workers: 2, gracefulTimeout: 10 };
    fs.writeFileSync(config, JSON.stringify({ ...base, bind: ['127.0.0.1:0', `unix:${a}`] }));
    const arb = new ArbProcess(['-c', config], { cwd: dir });
    running.push(arb);
    const tcp = await arb.tcpTarget();
    expect(await arb.listening()).toHaveLength(2);
    const load = new LoadLoop([tcp], { fresh: 2, keepAlive: 1 });
    loops.push(load);
    await load.progress(20);

    fs.writeFileSync(config, JSON.stringify({ ...base, bind: ['127.0.0.1:0', `unix:${b}`] }));
    writeApp(dir, 'v1');
    const hup = arb.logs.length;
    const oldWorkers = bootedPids(arb.logs, arb.pid, 0, hup);
    expect(oldWorkers).toHaveLength(2);
    process.kill(arb.pid, 'SIGHUP');
    await waitFor(() => count(arb, 'Reload complete') >= 1, 60_000, 'the reload');
    const logs = arb.logs;
    const isMaster = (e: Record<string, unknown>) => e.pid === arb.pid;
    // the new address is bound before the first new worker boots ...
    const bound = indexOf(logs, (e) => isMaster(e) && Array.isArray(e.listeners), hup);
    expect(logs[bound]?.listeners).toEqual([
      expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      `unix:${b}`,
    ]);
    const firstNew = indexOf(
      logs,
      (e) => isMaster(e) && String(e.msg).startsWith('Booting worker'),
      hup,
    );
    expect(bound).toBeGreaterThan(-1);
    expect(firstNew).toBeGreaterThan(bound);
    // ... so every new worker got it: each answers there
    const newWorkers = bootedPids(logs, arb.pid, hup);
    expect(newWorkers).toHaveLength(2);
    const onB = await arb.distinctPids({ socketPath: b }, 2);
    expect([...onB].sort()).toEqual([...newWorkers].sort());
    // the removed address is closed only after every old worker's exit was reaped
    const closing = indexOf(
      logs,
      (e) => String(e.msg).startsWith('Closing listeners dropped'),
      hup,
    );
    expect(logs[closing]?.listeners).toEqual([`unix:${a}`]);
    for (const pid of oldWorkers) {
      const reaped = indexOf(
        logs,
        (e) => isMaster(e) && String(e.msg).startsWith(`Worker (pid:${pid})`),
        hup,
      );
      expect(reaped, `the exit of old worker ${pid}`).toBeGreaterThan(-1);
      expect(reaped, `the exit of old worker ${pid}`).toBeLessThan(closing);
    }
    // the new address serves the new version; the removed one is closed and its file gone
    const res = await request({ socketPath: b });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).version).toBe('v1');
    expect(fs.existsSync(a)).toBe(false);
    const since = Date.now();
    await load.progress(30); // TCP was kept: never closed
    expect(load.versionsSince(since)).toEqual(new Set(['v1']));
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0); // not even a reset a client would have to retry
    await finish(arb, load);
    expect(fs.existsSync(b)).toBe(false);
  }, 180_000);
});
