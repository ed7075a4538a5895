// HUP reload under load, through the real `arb` binary: real processes, sockets, signals.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, request, type Target, tempDir, waitFor } from './harness.js';
import { LoadLoop, writeApp } from './load.js';

const running: ArbProcess[] = [];
const loops: LoadLoop[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop();
  for (const a of running.splice(0)) await a.stop().catch(() => {});
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function count(arb: ArbProcess, msg: string | ((m: string) => boolean)): number {
  const match = typeof msg === 'string' ? (m: string) => m === msg : msg;
  return arb.logs.filter((e) => typeof e.msg === 'string' && match(e.msg)).length;
}

async function start(args: string[] = []) {
  const dir = tempDir();
  dirs.push(dir);
  writeApp(dir, 'v0');
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
  it('10 reloads with the app changing on disk: no failed request, then only the new version answers', async () => {
    const { dir, sock, arb, load } = await start(['app.mjs']);
    const inode = fs.statSync(sock).ino;
    for (let i = 1; i <= 10; i++) {
      writeApp(dir, `v${i}`);
      process.kill(arb.pid, 'SIGHUP');
      await waitFor(
        () => count(arb, 'Reload complete') >= i,
        60_000,
        `reload ${i} to complete (${arb.stderr.slice(-1500)})`,
      );
      await load.progress(10);
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
    await load.progress(20);
    // settle: no third reload starts
    await new Promise((r) => setTimeout(r, 1500));
    expect(count(arb, (m) => m.startsWith('Reloading'))).toBe(2);
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
    process.kill(arb.pid, 'SIGHUP');
    await waitFor(() => count(arb, 'Reload complete') >= 1, 60_000, 'the reload');
    const closing = arb.logs.find(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('Closing listeners dropped'),
    );
    expect(closing?.listeners).toEqual([`unix:${a}`]);
    // the new address serves the new version; the removed one is closed and its file gone
    const res = await waitFor(async () => {
      const r = await request({ socketPath: b });
      return r.body.includes('"v1"') ? r : undefined;
    }, 10_000);
    expect(res.status).toBe(200);
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
