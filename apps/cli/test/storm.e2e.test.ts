// Issue 13 item 3: an upper bound on workers, paced spawns, and spawn failures (EMFILE,
// EAGAIN) that back off with one log line per interval while signals stay answered.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { arb, ctlJson } from './ctl-helpers.js';
import { ArbProcess, cleanup, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const cgroups: string[] = [];
afterEach(async () => {
  await cleanup(running, dirs);
  for (const cg of cgroups.splice(0)) fs.rmdirSync(cg);
});

function appDir(): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'ok.mjs'), 'export default (q, s) => s.end("ok")\n');
  return d;
}

const msgs = (a: ArbProcess) => a.logs.map((e) => String(e.msg));

/**
 * Starts arb with 2 workers under `wrap`, lets `squeeze` take resources away from the
 * running master, asks for 100 more workers, sends TERM once spawning has failed for a
 * while, and returns how long the master took to handle it and what it logged.
 */
async function storm(wrap: string[], squeeze: (pid: number) => void = () => {}) {
  const cwd = appDir();
  const a = new ArbProcess(
    ['-w', '2', '-t', '0', '--graceful-timeout', '2', '-b', '127.0.0.1:0', 'ok.mjs'],
    { cwd, wrap },
  );
  running.push(a);
  await a.ready();
  squeeze(a.pid);
  const add = await ctlJson(['workers', 'add', '100'], cwd);
  expect(add.body.ok).toBe(true);
  await a.log(
    (e) => /^Cannot (spawn a worker|create the worker heartbeat file)/.test(String(e.msg)),
    'a spawn failure',
    30_000,
  );
  // let the storm go on: a master that spawns in one long pass, or logs each failure, shows it now
  await new Promise((r) => setTimeout(r, 2000));
  const sentAt = Date.now();
  a.child.kill('SIGTERM');
  const handled = await a.log((e) => e.msg === 'Handling signal: term', 'TERM handled', 30_000);
  const handledMs = (handled.time as number) - sentAt;
  // one TERM only: a second one could land after the master let go of its handlers
  const code = await Promise.race([
    a.exited(),
    new Promise<string>((r) => setTimeout(() => r('still running 20 s after TERM'), 20_000)),
  ]);
  await a.stop();
  return { a, handledMs, code };
}

function checkStorm(r: Awaited<ReturnType<typeof storm>>) {
  const lines = msgs(r.a);
  const failures = lines.filter((m) => /^Cannot (spawn|create the worker heartbeat)/.test(m));
  process.stderr.write(
    `storm: TERM handled in ${r.handledMs} ms, ${failures.length} spawn failure lines, ` +
      `${r.a.stderr.length} bytes of log\n`,
  );
  expect(r.code).toBe(0);
  expect(r.handledMs).toBeLessThan(1000);
  expect(lines.filter((m) => m.includes('pid: undefined'))).toEqual([]);
  // one line per backoff interval (0.1, 0.2, 0.4 ... s): a handful over a few seconds
  expect(failures.length).toBeLessThanOrEqual(8);
  expect(r.a.stderr.length).toBeLessThan(64 * 1024);
}

describe('maxWorkers: an upper bound on workers', () => {
  it('-w above the cap is refused with one line naming the value and the cap', async () => {
    const cwd = appDir();
    const r = await arb(['-w', '300', '-b', '127.0.0.1:0', 'ok.mjs'], cwd);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'arb: config: workers: 300 is above maxWorkers (256); raise --max-workers to run more',
    ]);
    const raised = await arb(['-w', '3', '--max-workers', '2', '--check-config', 'ok.mjs'], cwd);
    expect(raised.code).toBe(1);
    expect(raised.stderr).toContain('workers: 3 is above maxWorkers (2)');
  });

  it('arb ctl workers add beyond the cap is refused and changes nothing', async () => {
    const cwd = appDir();
    const a = new ArbProcess(
      ['-w', '1', '--max-workers', '3', '-b', '127.0.0.1:0', '--ctl-socket', 'arb.ctl', 'ok.mjs'],
      { cwd },
    );
    running.push(a);
    await a.ready();
    const add = await ctlJson(['workers', 'add', '10000'], cwd);
    expect(add.body).toEqual({
      ok: false,
      error: 'workers: 10001 is above maxWorkers (3); raise --max-workers to run more',
    });
    expect(add.code).toBe(1);
    // a refusal, not an error of the master
    expect(a.logs.some((e) => e.level === 50)).toBe(false);
    const ok = await ctlJson(['workers', 'add', '2'], cwd);
    expect(ok.body).toMatchObject({ ok: true, total: 3 });
    const status = await ctlJson(['status'], cwd);
    expect((status.body.master as { workers_target: number }).workers_target).toBe(3);
  });
});

describe('spawn storms', () => {
  it('out of file descriptors (EMFILE): TERM handled within 1 s, one log line per interval', async () => {
    // the master gets a dozen descriptors more than it uses once serving: each worker
    // takes two (its heartbeat file, its IPC channel)
    const squeeze = (pid: number) => {
      const used = fs.readdirSync(`/proc/${pid}/fd`).length;
      const r = spawnSync('prlimit', [`--pid=${pid}`, `--nofile=${used + 12}`]);
      expect(r.status, String(r.stderr)).toBe(0);
    };
    checkStorm(await storm([], squeeze));
  });

  it('in a pids-limited cgroup (EAGAIN): TERM handled within 1 s, one log line per interval', async (ctx) => {
    const root = cgroupRoot();
    if (typeof root !== 'string') {
      process.stderr.write(`skipped: ${root.reason}\n`);
      ctx.skip();
      return;
    }
    const cg = path.join(root, `arbtest-${process.pid}-${Date.now()}`);
    fs.mkdirSync(cg);
    cgroups.push(cg);
    // node runs ~10 threads per process, each one a pid: set once serving, this leaves room
    // for a handful more workers
    const squeeze = () => {
      const current = Number(fs.readFileSync(path.join(cg, 'pids.current'), 'utf8'));
      fs.writeFileSync(path.join(cg, 'pids.max'), String(current + 40));
    };
    const r = await storm(
      ['sh', '-c', `echo $$ > ${path.join(cg, 'cgroup.procs')}; exec "$@"`, 'sh'],
      squeeze,
    );
    checkStorm(r);
    await waitFor(
      () => fs.readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').trim() === '',
      10_000,
    );
  });
});

/** A writable cgroup with the pids controller (v2, or v1's pids hierarchy), or why not. */
function cgroupRoot(): string | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: 'not root: cannot create a pids cgroup' };
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/pids']) {
    const v2 = path.join(root, 'cgroup.controllers');
    if (root === '/sys/fs/cgroup' && !fs.existsSync(v2)) continue;
    if (root === '/sys/fs/cgroup' && !fs.readFileSync(v2, 'utf8').includes('pids')) continue;
    try {
      fs.accessSync(root, fs.constants.W_OK);
      if (fs.existsSync(path.join(root, 'cgroup.procs'))) return root;
    } catch {
      // not writable: try the next one
    }
  }
  return { reason: 'no writable cgroup with the pids controller (v2 or v1)' };
}
