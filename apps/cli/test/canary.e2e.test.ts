// Canary reloads through the real `arb` binary under continuous load: a release answering
// 500 on one path and a slow one are rolled back after their canary window, a good one
// rolls forward with no failed request; TERM during the window stops everything.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, type Target, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const loads: PathLoad[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const a of running) fs.writeFileSync(`/tmp/h14c-dump-${a.pid}.log`, a.stderr);
  const failed: unknown[] = [];
  for (const r of await Promise.allSettled([
    ...loads.splice(0).map((l) => l.stop()),
    ...running.splice(0).map((a) => a.stop()),
  ])) {
    if (r.status === 'rejected') failed.push(r.reason);
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (failed.length > 0) throw new AggregateError(failed, 'cleanup failed');
});

/**
 * The release under test: `good` answers every path; `fails-checkout` answers 500 on
 * /checkout (a bug on one path); `slow` takes 400 ms on every path (p99 is then at least
 * 0.25 s, the lower bound of its bucket: more than 2 x any loaded old generation's).
 */
type Release = 'good' | 'fails-checkout' | 'slow';

function writeRelease(dir: string, version: string, release: Release): void {
  const file = path.join(dir, 'app.mjs');
  const source = `const version = ${JSON.stringify(version)};
export default (req, res) => {
  const bad = ${release === 'fails-checkout'} && req.url === '/checkout';
  setTimeout(() => {
    res.statusCode = bad ? 500 : 200;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version, pid: process.pid }));
  }, ${release === 'slow' ? 400 : 2});
};
`;
  // write + rename: a worker never imports a half-written file
  fs.writeFileSync(`${file}.tmp`, source);
  fs.renameSync(`${file}.tmp`, file);
}

interface Answer {
  status: number;
  version: string;
  pid: number;
  path: string;
  sentAt: number;
}

/**
 * Loops sending `/` and `/checkout` in turn, half on new connections, half on keep-alive
 * ones; every answer is recorded with its status, and anything else (a reset, a refused
 * connection, a timeout) is a failure.
 */
class PathLoad {
  readonly answers: Answer[] = [];
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly agents: http.Agent[] = [];

  /** `keepAlive`: every other loop keeps its connection (the canary gets new ones only). */
  constructor(target: Target, loops: number, keepAlive = true) {
    for (let i = 0; i < loops; i++) {
      const agent =
        !keepAlive || i % 2 === 0 ? false : new http.Agent({ keepAlive: true, maxSockets: 1 });
      if (agent) this.agents.push(agent);
      this.loops.push(this.loop(target, agent, i));
    }
  }

  /** Answers to requests sent within [from, to) (Date.now()). */
  between(from: number, to = Number.POSITIVE_INFINITY): Answer[] {
    return this.answers.filter((a) => a.sentAt >= from && a.sentAt < to);
  }

  async progress(n: number): Promise<void> {
    const target = this.answers.length + n;
    await waitFor(
      () => this.answers.length >= target,
      30_000,
      `${n} more answers (failures: ${this.failures.slice(0, 3)})`,
    );
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await Promise.all(this.loops);
    for (const a of this.agents) a.destroy();
  }

  private async loop(target: Target, agent: http.Agent | false, i: number): Promise<void> {
    for (let n = i; this.running; n++) {
      const p = n % 2 === 0 ? '/' : '/checkout';
      const sentAt = Date.now();
      try {
        const { status, body } = await get(target, p, agent);
        const { version, pid } = JSON.parse(body) as { version: string; pid: number };
        this.answers.push({ status, version, pid, path: p, sentAt });
      } catch (err) {
        this.failures.push(
          `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`,
        );
        await new Promise((r) => setTimeout(r, 20)); // never a tight loop
      }
    }
  }
}

function get(
  target: Target,
  p: string,
  agent: http.Agent | false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path: p, agent, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const msgOf = (e: Record<string, unknown>) => (typeof e.msg === 'string' ? e.msg : '');

/** arb with 2 workers of `v0` and a canary of 1 worker judged after `seconds`, under load. */
async function start(seconds: number, loops = 6, keepAlive = true) {
  const dir = tempDir();
  dirs.push(dir);
  writeRelease(dir, 'v0', 'good');
  const arb = new ArbProcess(
    [
      '-w',
      '2',
      '-b',
      '127.0.0.1:0',
      '--graceful-timeout',
      '10',
      '--canary-seconds',
      String(seconds),
      'app.mjs',
    ],
    { cwd: dir },
  );
  running.push(arb);
  const target = await arb.tcpTarget();
  const load = new PathLoad(target, loops, keepAlive);
  loads.push(load);
  await load.progress(40);
  return { dir, arb, load };
}

/** The canary's window as the master logged it: its pid, when it opened, when it ended. */
async function canaryWindow(arb: ArbProcess, end: (m: string) => boolean, from: number) {
  const opened = await arb.log(
    (e) => arb.logs.indexOf(e) >= from && msgOf(e).startsWith('Canary: 1 worker'),
    'the canary window',
    60_000,
  );
  const ended = await arb.log(
    (e) => arb.logs.indexOf(e) >= from && end(msgOf(e)),
    'the verdict',
    60_000,
  );
  return { opened: Number(opened.time), ended: Number(ended.time), line: msgOf(ended) };
}

async function stopAll(arb: ArbProcess, load: PathLoad) {
  await load.stop();
  for (const a of load.answers) arb.pids.add(a.pid);
  expect(await arb.stop()).toBe(0);
}

describe('canary reload under load', () => {
  it('a release answering 500 on one path is rolled back: the 500s come from the canary alone, a share of one worker in three, and stop with it', async () => {
    const { dir, arb, load } = await start(2);
    writeRelease(dir, 'v1', 'fails-checkout');
    const from = arb.logs.length;
    process.kill(arb.pid, 'SIGHUP');
    const w = await canaryWindow(arb, (m) => m.startsWith('Reload failed: '), from);
    expect(w.line).toMatch(
      /^Reload failed: canary 5xx rate (0\.\d\d|1\.00) > 0\.01 \(old generation 0\.00\) over \d+ requests; generation 0 keeps serving$/,
    );
    await arb.log(
      (e) => arb.logs.indexOf(e) >= from && msgOf(e).startsWith('Worker (pid:'),
      'the canary retired',
      30_000,
    );
    const window = load.between(w.opened, w.ended);
    const errors = window.filter((a) => a.status !== 200);
    const canaryPids = new Set(window.filter((a) => a.version === 'v1').map((a) => a.pid));
    // every 500 is the canary's, on the broken path
    expect(errors.length).toBeGreaterThan(0);
    expect(canaryPids.size).toBe(1);
    for (const e of errors)
      expect(e).toMatchObject({ status: 500, version: 'v1', path: '/checkout' });
    // the two old workers kept answering beside it, /checkout included
    const oldPids = new Set(window.filter((a) => a.version === 'v0').map((a) => a.pid));
    expect(oldPids.size).toBe(2);
    expect(window.some((a) => a.version === 'v0' && a.path === '/checkout')).toBe(true);
    // the canary's share is that of one worker among three, not the whole traffic: the
    // 500s are about a sixth of the requests (half the paths, a third of the workers)
    const share = errors.length / window.length;
    process.stderr.write(
      `canary window: ${window.length} requests, ${errors.length} answered 500 (${share.toFixed(3)})\n`,
    );
    expect(share).toBeLessThan(0.34);
    // after the rollback (the canary's exit was reaped above): the old code alone, no 500
    const after = Date.now();
    await load.progress(100);
    const later = load.between(after);
    expect(later.every((a) => a.status === 200 && a.version === 'v0')).toBe(true);
    expect(load.failures).toEqual([]);
    expect(arb.child.exitCode).toBeNull();
    await stopAll(arb, load);
  }, 120_000);

  it('a good release rolls forward after its window with no failed request; then only the new code answers', async () => {
    const { dir, arb, load } = await start(2);
    writeRelease(dir, 'v2', 'good');
    const from = arb.logs.length;
    process.kill(arb.pid, 'SIGHUP');
    const w = await canaryWindow(arb, (m) => m.startsWith('Canary passed: '), from);
    expect(w.line).toMatch(
      /^Canary passed: 5xx rate 0\.00 \(old generation 0\.00\), p99 <= [\d.]+s \(old generation <= [\d.]+s\) over \d+ requests; booting the rest of generation 1$/,
    );
    expect(w.ended - w.opened).toBeGreaterThanOrEqual(2000);
    await arb.log(
      (e) => arb.logs.indexOf(e) >= from && msgOf(e) === 'Reload complete',
      'Reload complete',
      60_000,
    );
    const after = Date.now();
    await load.progress(100);
    expect(new Set(load.between(after).map((a) => a.version))).toEqual(new Set(['v2']));
    expect(load.answers.every((a) => a.status === 200)).toBe(true);
    expect(load.failures).toEqual([]);
    expect(arb.logs.some((e) => msgOf(e).startsWith('Reload failed'))).toBe(false);
    await stopAll(arb, load);
  }, 120_000);

  it('a slow release is rolled back on its p99 latency, naming both figures', async () => {
    // a slow canary starves its own sample: new connections only, and a longer window
    const { dir, arb, load } = await start(4, 12, false);
    writeRelease(dir, 'v3', 'slow');
    const from = arb.logs.length;
    process.kill(arb.pid, 'SIGHUP');
    const w = await canaryWindow(arb, (m) => m.startsWith('Reload failed: '), from);
    expect(w.line).toMatch(
      /^Reload failed: canary p99 latency >= 0\.25s > 2 x the old generation's \(<= [\d.]+s\) over \d+ requests; generation 0 keeps serving$/,
    );
    await arb.log(
      (e) => arb.logs.indexOf(e) >= from && msgOf(e).startsWith('Worker (pid:'),
      'the canary retired',
      30_000,
    );
    const after = Date.now();
    await load.progress(100);
    expect(new Set(load.between(after).map((a) => a.version))).toEqual(new Set(['v0']));
    expect(load.answers.every((a) => a.status === 200)).toBe(true);
    expect(load.failures).toEqual([]);
    await stopAll(arb, load);
  }, 120_000);

  it('TERM during the canary window: the master stops at once with every worker, canary and old', async () => {
    const { dir, arb, load } = await start(60, 2);
    writeRelease(dir, 'v4', 'good');
    const from = arb.logs.length;
    process.kill(arb.pid, 'SIGHUP');
    await arb.log(
      (e) => arb.logs.indexOf(e) >= from && msgOf(e).startsWith('Canary: 1 worker'),
      'the canary window',
      60_000,
    );
    await load.stop();
    for (const a of load.answers) arb.pids.add(a.pid);
    const t = Date.now();
    expect(await arb.stop()).toBe(0); // also: no process of arb's is left
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(arb.logs.some((e) => msgOf(e).startsWith('Canary passed'))).toBe(false);
  }, 120_000);
});
