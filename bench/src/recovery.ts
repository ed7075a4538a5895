// Recovery: kill -9 of a worker until its replacement serves (arb, node:cluster, PM2), and a
// blocked event loop until arb kills the worker, against `timeout`.

import http from 'node:http';
import { join } from 'node:path';
import { startArb } from './arb.js';
import { type Contender, clusterRR, pm2 } from './contenders.js';
import { table } from './report.js';
import {
  APPS_DIR,
  alive,
  fmt,
  freePort,
  killQuiet,
  log,
  median,
  now,
  rmDir,
  sleep,
  tempDir,
  waitGone,
  waitServed,
} from './util.js';

const HANDLER = join(APPS_DIR, 'handler.cjs');

export interface KillTrial {
  /** ms from kill -9 to the first response from a process that was not there before */
  serving: number;
  /** arb only, from its logs: kill -> spawn of the replacement, spawn -> worker ready */
  spawn?: number;
  boot?: number;
}

export interface KillResult {
  contender: string;
  trials: KillTrial[];
  failures: number;
}

export interface HangTrial {
  timeout: number;
  /** ms from the blocking request to "WORKER TIMEOUT" in the log, to the process gone, to a new worker serving */
  detected: number;
  killed: number;
  serving: number;
}

export interface RecoveryResults {
  kill: KillResult[];
  /** arb's boot of its first workers (spawn -> ready, ms), median */
  initialBoot: number;
  hang: HangTrial[];
}

/**
 * Picks the oldest server and waits until it has lived STABLE_MS: arb (like a crash-loop
 * guard should) counts a worker dying within 5 s of its spawn as a crash and delays the
 * next spawn; a kill -9 in production hits a worker that has been up for a while.
 */
const STABLE_MS = 5500;
async function stableVictim(servers: () => number[], seen: Map<number, number>): Promise<number> {
  for (;;) {
    const t = now();
    const list = servers();
    for (const p of list) if (!seen.has(p)) seen.set(p, t);
    const oldest = list.sort((a, b) => seen.get(a)! - seen.get(b)!)[0];
    if (oldest !== undefined && t - seen.get(oldest)! >= STABLE_MS) return oldest;
    await sleep(100);
  }
}

async function arbKillTrials(n: number): Promise<{ r: KillResult; initialBoot: number }> {
  const port = await freePort();
  const tmp = tempDir('recovery');
  const a = await startArb([
    '-w',
    '2',
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    '--log-level',
    'debug',
    HANDLER,
  ]);
  const boots: number[] = [];
  for (const pid of a.workerPids()) {
    const b = await a.waitMsg(new RegExp(`^Booting worker with pid: ${pid}$`), 2000);
    const r = await a.waitLog((l) => l.pid === pid && l.msg === 'Worker ready', 2000);
    if (b && r) boots.push(r.time - b.time);
  }
  const trials: KillTrial[] = [];
  let failures = 0;
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const victim = await stableVictim(() => a.workerPids(), seen);
    const before = new Set(a.workerPids());
    const idx = a.lines.length;
    const t0 = now();
    const tEpoch = Date.now();
    killQuiet(victim, 'SIGKILL');
    const served = await waitServed(port, 10000, (pid) => !before.has(pid), 2);
    if (!served) {
      failures++;
      continue;
    }
    const serving = now() - t0;
    const spawnLine = await a.waitMsg(/^Booting worker with pid/, 1000, idx);
    const newPid = spawnLine ? Number(/pid: (\d+)/.exec(spawnLine.msg)?.[1]) : Number.NaN;
    const readyLine = await a.waitLog(
      (l) => l.pid === newPid && l.msg === 'Worker ready',
      1000,
      idx,
    );
    trials.push({
      serving,
      spawn: spawnLine ? spawnLine.time - tEpoch : undefined,
      boot: spawnLine && readyLine ? readyLine.time - spawnLine.time : undefined,
    });
  }
  await a.stop();
  rmDir(tmp);
  return { r: { contender: 'arb', trials, failures }, initialBoot: median(boots) };
}

async function genericKillTrials(c: Contender, n: number): Promise<KillResult> {
  const port = await freePort();
  const stats = tempDir('recstats');
  const running = await c.start({ workers: 2, port, statsDir: stats });
  const trials: KillTrial[] = [];
  let failures = 0;
  try {
    const seen = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const victim = await stableVictim(() => running.servers(), seen);
      const before = new Set(running.servers());
      const t0 = now();
      killQuiet(victim, 'SIGKILL');
      const served = await waitServed(port, 10000, (pid) => !before.has(pid), 2);
      if (!served) failures++;
      else trials.push({ serving: now() - t0 });
    }
  } finally {
    await running.stop();
    rmDir(stats);
  }
  return { contender: c.name, trials, failures };
}

function fireAndForget(port: number, path: string): void {
  const req = http.get({ host: '127.0.0.1', port, path, agent: false });
  req.on('error', () => {});
  req.setTimeout(30000, () => req.destroy());
}

async function hangTrials(n: number, timeout: number): Promise<HangTrial[]> {
  const port = await freePort();
  const tmp = tempDir('hang');
  const a = await startArb([
    '-w',
    '1',
    '-t',
    String(timeout),
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    HANDLER,
  ]);
  const out: HangTrial[] = [];
  for (let i = 0; i < n; i++) {
    await sleep(1000);
    const [victim] = a.workerPids();
    if (!victim) break;
    const idx = a.lines.length;
    const t0 = now();
    fireAndForget(port, '/block');
    const det = await a.waitMsg(/WORKER TIMEOUT/, (timeout + 10) * 1000, idx);
    const left = await waitGone([victim], (timeout + 10) * 1000 - (now() - t0));
    const killed = left.length === 0 ? now() - t0 : Number.NaN;
    const served = await waitServed(port, 10000, (pid) => pid !== victim, 5);
    out.push({
      timeout,
      detected: det ? det.at - t0 : Number.NaN,
      killed,
      serving: served ? now() - t0 : Number.NaN,
    });
    if (alive(victim)) killQuiet(victim, 'SIGKILL');
  }
  await a.stop();
  rmDir(tmp);
  return out;
}

export async function recoveryBench(o: { quick: boolean }): Promise<RecoveryResults> {
  const n = o.quick ? 2 : 4;
  const { r: arbR, initialBoot } = await arbKillTrials(n);
  log(`  arb kill -9: serving ${arbR.trials.map((t) => fmt(t.serving)).join(', ')} ms`);
  const kill = [arbR];
  for (const c of [clusterRR, pm2]) {
    const r = await genericKillTrials(c, n);
    log(`  ${c.name} kill -9: serving ${r.trials.map((t) => fmt(t.serving)).join(', ')} ms`);
    kill.push(r);
  }
  const hang = await hangTrials(o.quick ? 1 : 3, 2);
  log(
    `  arb hung worker (timeout 2 s): killed after ${hang.map((h) => fmt(h.killed)).join(', ')} ms`,
  );
  return { kill, initialBoot, hang };
}

export function recoveryReport(r: RecoveryResults): string {
  const t1 = table(
    ['contender', 'kill -9 -> replacement serving, ms (median)', 'max', 'trials', 'never replaced'],
    r.kill.map((k) => [
      k.contender,
      fmt(median(k.trials.map((t) => t.serving))),
      fmt(Math.max(...k.trials.map((t) => t.serving))),
      k.trials.length,
      k.failures,
    ]),
  );
  const arb = r.kill.find((k) => k.contender === 'arb');
  const spawn = median(
    (arb?.trials ?? []).map((t) => t.spawn ?? Number.NaN).filter(Number.isFinite),
  );
  const boot = median((arb?.trials ?? []).map((t) => t.boot ?? Number.NaN).filter(Number.isFinite));
  const serving = median((arb?.trials ?? []).map((t) => t.serving));
  const t2 = table(
    ['arb breakdown (median ms)', 'value'],
    [
      ['kill -9 -> replacement spawned (master log)', fmt(spawn)],
      ['replacement spawn -> ready (boot: node start + app load + listen)', fmt(boot)],
      ['kill -9 -> replacement serving', fmt(serving)],
      ['serving minus boot (bar: < 300)', fmt(serving - boot)],
      ['first workers at launch: spawn -> ready', fmt(r.initialBoot)],
    ],
  );
  const t3 = table(
    [
      'hung worker (GET /block), timeout s',
      'WORKER TIMEOUT logged, ms',
      'process gone, ms',
      'new worker serving, ms',
      'bar (timeout + 1 s)',
    ],
    r.hang.map((h) => [
      h.timeout,
      fmt(h.detected),
      fmt(h.killed),
      fmt(h.serving),
      Number.isFinite(h.killed) && h.killed <= (h.timeout + 1) * 1000 ? 'met' : 'MISSED',
    ]),
  );
  return `Each kill hits a worker that has been up at least ${STABLE_MS / 1000} s (2 workers, probes on fresh connections every 2 ms; "serving" = first response from a pid that was not there before the kill).\n\n${t1}\n\n${t2}\n\n${t3}\n`;
}
