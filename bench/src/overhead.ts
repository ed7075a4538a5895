// Overhead: idle supervisor CPU and RSS with 8 workers (arb master, node:cluster primary,
// PM2 daemon), launch to first served request, time to bring up 32 workers.
import { arb, bare, type Contender, clusterRR, pm2, single } from './contenders.js';
import { table } from './report.js';
import {
  cpuSeconds,
  fmt,
  freePort,
  log,
  now,
  rmDir,
  rssMB,
  sleep,
  tempDir,
  waitServed,
} from './util.js';

export interface IdleResult {
  contender: string;
  cpuPercent: number;
  rssMB: number;
  workersRssMB: number;
  seconds: number;
}

export interface TimedResult {
  contender: string;
  ms: number;
  leaked: number;
}

export interface OverheadResults {
  idle: IdleResult[];
  firstRequest: TimedResult[];
  up32: TimedResult[];
}

async function idle(c: Contender, seconds: number): Promise<IdleResult> {
  const port = await freePort();
  const stats = tempDir('idle');
  const r = await c.start({ workers: 8, port, statsDir: stats });
  try {
    // Settle first: 8 workers booting on a small machine keep the supervisor busy for a few
    // seconds (IPC, logs); idle means after that.
    await sleep(5000);
    const sup = r.supervisorPid()!;
    const c0 = cpuSeconds(sup);
    const t0 = now();
    await sleep(seconds * 1000);
    const cpu = cpuSeconds(sup) - c0;
    const el = (now() - t0) / 1000;
    const workers = r.servers().reduce((acc, pid) => {
      try {
        return acc + rssMB(pid);
      } catch {
        return acc;
      }
    }, 0);
    return {
      contender: c.name,
      cpuPercent: (100 * cpu) / el,
      rssMB: rssMB(sup),
      workersRssMB: workers,
      seconds: el,
    };
  } finally {
    await r.stop();
    rmDir(stats);
  }
}

async function firstRequest(c: Contender): Promise<TimedResult> {
  const port = await freePort();
  const stats = tempDir('first');
  const t0 = now();
  const starting = c.start({ workers: 2, port, statsDir: stats });
  const served = await waitServed(port, 60000, () => true, 2);
  const ms = served ? now() - t0 : Number.NaN;
  const r = await starting;
  const leaked = await r.stop();
  rmDir(stats);
  return { contender: c.name, ms, leaked: leaked.length };
}

async function up(c: Contender, workers: number): Promise<TimedResult> {
  const port = await freePort();
  const stats = tempDir('up');
  const t0 = now();
  const r = await c.start({ workers, port, statsDir: stats });
  const ms = now() - t0;
  const leaked = await r.stop();
  rmDir(stats);
  return { contender: c.name, ms, leaked: leaked.length };
}

export async function overheadBench(o: { quick: boolean }): Promise<OverheadResults> {
  const seconds = o.quick ? 3 : 20;
  const idleR: IdleResult[] = [];
  for (const c of [arb, clusterRR, pm2]) {
    const r = await idle(c, seconds);
    log(`  idle ${c.name}: ${fmt(r.cpuPercent, 2)}% CPU, ${fmt(r.rssMB, 1)} MB`);
    idleR.push(r);
  }
  const firstR: TimedResult[] = [];
  for (const c of [arb, clusterRR, pm2, bare, single]) {
    const r = await firstRequest(c);
    log(`  launch -> first request ${c.name}: ${fmt(r.ms)} ms`);
    firstR.push(r);
  }
  const upR: TimedResult[] = [];
  for (const c of [arb, clusterRR, pm2]) {
    const r = await up(c, 32);
    log(`  32 workers up ${c.name}: ${fmt(r.ms)} ms`);
    upR.push(r);
  }
  return { idle: idleR, firstRequest: firstR, up32: upR };
}

export function overheadReport(r: OverheadResults): string {
  const label: Record<string, string> = {
    arb: 'arb master',
    'cluster-rr': 'node:cluster primary',
    pm2: 'PM2 daemon (God)',
  };
  const t1 = table(
    ['idle, 8 workers', 'CPU % (over window)', 'RSS MB', 'window s', '8 workers RSS MB (sum)'],
    r.idle.map((x) => [
      label[x.contender] ?? x.contender,
      fmt(x.cpuPercent, 2),
      fmt(x.rssMB, 1),
      fmt(x.seconds, 1),
      fmt(x.workersRssMB, 0),
    ]),
  );
  const t2 = table(
    ['launch -> first served request (2 workers)', 'ms', 'left behind after stop'],
    r.firstRequest.map((x) => [x.contender, fmt(x.ms), x.leaked]),
  );
  const t3 = table(
    ['launch -> 32 workers listening', 'ms', 'left behind after stop'],
    r.up32.map((x) => [x.contender, fmt(x.ms), x.leaked]),
  );
  return `${t1}\n\n${t2}\n\n${t3}\n`;
}
