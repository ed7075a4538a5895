// Reloads and the upgrade under load: failed requests and p99 while arb takes 10 HUPs and
// PM2 takes 10 `pm2 reload`; failed requests across an arb USR2 upgrade.

import { join } from 'node:path';
import { type ArbProcess, startArb } from './arb.js';
import { Pm2 } from './contenders.js';
import { type LoadKind, type LoadResult, wrkStoppable } from './load.js';
import { table } from './report.js';
import {
  APPS_DIR,
  alive,
  descendants,
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
const SERVE = join(APPS_DIR, 'serve.cjs');

export interface ReloadRun {
  who: string;
  load: LoadKind;
  reloads: number;
  /** median seconds one reload took (until the new generation alone served) */
  reloadSeconds: number;
  result: LoadResult;
  leaked: number[];
  note?: string;
}

export interface UpgradeRun {
  load: LoadKind;
  skipped?: string;
  result?: LoadResult;
  oldMaster?: number;
  newMaster?: number;
  seconds?: number;
  leaked: number[];
  note?: string;
}

export interface ReloadResults {
  runs: ReloadRun[];
  upgrade: UpgradeRun[];
}

const WORKERS = 2;

/** Waits until the master's workers are WORKERS pids, none of them from `old`. */
async function newGeneration(a: ArbProcess, old: Set<number>, timeoutMs: number): Promise<boolean> {
  const end = now() + timeoutMs;
  while (now() < end) {
    const w = a.workerPids();
    if (w.length === WORKERS && w.every((p) => !old.has(p))) return true;
    await sleep(20);
  }
  return false;
}

async function arbReloads(load: LoadKind, n: number, connections: number): Promise<ReloadRun> {
  const port = await freePort();
  const tmp = tempDir('reload');
  const a = await startArb([
    '-w',
    String(WORKERS),
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    '--graceful-timeout',
    '10',
    HANDLER,
  ]);
  const w = wrkStoppable({ port, kind: load, seconds: 300, connections });
  await sleep(1000);
  const took: number[] = [];
  let note: string | undefined;
  for (let i = 0; i < n; i++) {
    const old = new Set(a.workerPids());
    const t0 = now();
    a.signal('SIGHUP');
    if (!(await newGeneration(a, old, 20000))) {
      note = `reload ${i + 1} did not complete within 20 s`;
      break;
    }
    took.push((now() - t0) / 1000);
    await sleep(300);
  }
  await sleep(1000);
  w.stop();
  const result = await w.result;
  const leaked = await a.stop();
  rmDir(tmp);
  return {
    who: 'arb (HUP)',
    load,
    reloads: took.length,
    reloadSeconds: median(took),
    result,
    leaked,
    note,
  };
}

async function pm2Reloads(load: LoadKind, n: number, connections: number): Promise<ReloadRun> {
  const port = await freePort();
  const p = new Pm2();
  const stats = tempDir('pm2stats');
  let note: string | undefined;
  const took: number[] = [];
  let result: LoadResult | undefined;
  try {
    await p.cmd(
      ['start', SERVE, '-i', String(WORKERS), '--name', 'bench', '--no-pmx', '--silent'],
      {
        PORT: String(port),
        BENCH_STATS_DIR: stats,
      },
    );
    if (!(await waitServed(port, 20000))) throw new Error('pm2 app does not serve');
    await sleep(500);
    const w = wrkStoppable({ port, kind: load, seconds: 300, connections });
    await sleep(1000);
    for (let i = 0; i < n; i++) {
      const t0 = now();
      try {
        await p.cmd(['reload', 'bench', '--silent']);
      } catch (e) {
        note = `pm2 reload ${i + 1} failed: ${(e as Error).message.split('\n')[0]}`;
        break;
      }
      took.push((now() - t0) / 1000);
      await sleep(300);
    }
    await sleep(1000);
    w.stop();
    result = await w.result;
  } catch (e) {
    note = `${note ?? ''} ${(e as Error).message}`.trim();
  }
  const leaked = await p.kill();
  rmDir(stats);
  if (!result) throw new Error(`pm2 reload run failed (${note ?? 'no result'})`);
  return {
    who: 'PM2 (pm2 reload)',
    load,
    reloads: took.length,
    reloadSeconds: median(took),
    result,
    leaked,
    note,
  };
}

/**
 * USR2 under load. The dance (gunicorn's): USR2 to the master; a new master starts with
 * ARB_PID set and boots its own workers; once it serves, TERM the old master; the new one
 * keeps serving. Skipped cleanly when the master logs that USR2 is not supported.
 */
export async function arbUpgrade(load: LoadKind, connections: number): Promise<UpgradeRun> {
  const port = await freePort();
  const tmp = tempDir('upgrade');
  const a = await startArb([
    '-w',
    String(WORKERS),
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    '--graceful-timeout',
    '10',
    HANDLER,
  ]);
  const oldMaster = a.pid;
  const w = wrkStoppable({ port, kind: load, seconds: 300, connections });
  await sleep(1000);
  const idx = a.lines.length;
  const t0 = now();
  a.signal('SIGUSR2');
  const first = await Promise.race([
    a
      .waitLog((l) => /USR2/.test(l.msg) && /not supported/i.test(l.msg), 5000, idx)
      .then((l) => l ?? new Promise<undefined>(() => {})), // no such line: let the other wait decide
    a.waitLog((l) => l.pid !== oldMaster && /^Serving with/.test(l.msg), 30000, idx),
  ]);
  if (!first || /not supported/i.test(first.msg)) {
    w.stop();
    await w.result;
    const leaked = await a.stop();
    rmDir(tmp);
    return {
      load,
      skipped: first
        ? 'USR2 not supported by this build'
        : 'no new master served within 30 s of USR2 (and no "not supported" log)',
      leaked,
    };
  }
  const newMaster = first.pid;
  // the new master serves: retire the old one gracefully
  a.signal('SIGTERM');
  const oldGone = await a.waitExit(20000);
  await sleep(1000);
  const stillServes = await waitServed(port, 5000);
  const seconds = (now() - t0) / 1000;
  await sleep(1000);
  w.stop();
  const result = await w.result;
  let note: string | undefined;
  if (!oldGone) note = 'the old master did not exit within 20 s of TERM';
  if (!alive(newMaster)) note = `${note ?? ''} the new master died`.trim();
  if (!stillServes) note = `${note ?? ''} nothing served after the old master left`.trim();
  // stop the new master and check that everything either master started is gone
  const tree = [newMaster, ...descendants(newMaster).map((p) => p.pid)];
  if (!oldGone) tree.push(oldMaster, ...descendants(oldMaster).map((p) => p.pid));
  for (const pid of [newMaster, oldMaster]) killQuiet(pid, 'SIGTERM');
  const leaked = await waitGone(tree, 15000);
  for (const pid of leaked) killQuiet(pid, 'SIGKILL');
  await a.stop(5000); // the old master is gone by now: this removes its temp cwd
  rmDir(tmp);
  return { load, result, oldMaster, newMaster, seconds, leaked, note };
}

export async function reloadBench(o: {
  quick: boolean;
  connections: number;
}): Promise<ReloadResults> {
  const n = o.quick ? 3 : 10;
  const runs: ReloadRun[] = [];
  const upgrade: UpgradeRun[] = [];
  for (const load of ['close', 'keepalive'] as LoadKind[]) {
    // the control: the same run without a reload (wrk stopped the same way)
    const control = async () => {
      const r = await arbReloads(load, 0, o.connections);
      return { ...r, who: 'arb, no reload (control)' };
    };
    for (const fn of [control, arbReloads, pm2Reloads]) {
      const r = await fn(load, n, o.connections);
      log(
        `  ${r.who} ${load}: ${r.reloads} reloads, ${r.result.requests} requests, failed ${r.result.failed} ` +
          `${JSON.stringify(r.result.errors)}, p99 ${fmt(r.result.p99, 1)} ms${r.note ? ` (${r.note})` : ''}`,
      );
      runs.push(r);
    }
    const u = await arbUpgrade(load, o.connections);
    log(
      u.skipped
        ? `  arb upgrade ${load}: skipped: ${u.skipped}`
        : `  arb upgrade ${load}: ${u.result!.requests} requests, failed ${u.result!.failed} ${JSON.stringify(u.result!.errors)}${u.note ? ` (${u.note})` : ''}`,
    );
    upgrade.push(u);
  }
  return { runs, upgrade };
}

export function reloadReport(r: ReloadResults): string {
  const t1 = table(
    [
      'run',
      'load',
      'reloads',
      's per reload (median)',
      'requests',
      'failed',
      'errors',
      'p50 ms',
      'p99 ms',
      'max ms',
    ],
    r.runs.map((x) => [
      x.who,
      x.load,
      x.reloads,
      fmt(x.reloadSeconds, 2),
      x.result.requests,
      x.result.failed,
      errText(x.result),
      fmt(x.result.p50, 2),
      fmt(x.result.p99, 1),
      fmt(x.result.max, 0),
    ]),
  );
  const notes = r.runs.filter((x) => x.note || x.leaked.length);
  const t2 = table(
    [
      'upgrade (USR2, then TERM old master)',
      'load',
      'requests',
      'failed',
      'errors',
      'p99 ms',
      'note',
    ],
    r.upgrade.map((u) =>
      u.skipped
        ? ['arb', u.load, '-', '-', '-', '-', `skipped: ${u.skipped}`]
        : [
            'arb',
            u.load,
            u.result!.requests,
            u.result!.failed,
            errText(u.result!),
            fmt(u.result!.p99, 1),
            `${u.oldMaster} -> ${u.newMaster} in ${fmt(u.seconds ?? Number.NaN, 1)} s${u.note ? `; ${u.note}` : ''}${u.leaked.length ? `; leaked ${u.leaked.join(' ')}` : ''}`,
          ],
    ),
  );
  return `${t1}\n${notes.map((x) => `\n- ${x.who} ${x.load}: ${x.note ?? ''}${x.leaked.length ? ` leaked ${x.leaked.join(' ')}` : ''}`).join('')}\n\n${t2}\n`;
}

function errText(r: LoadResult): string {
  const e = r.errors;
  const parts = Object.entries(e)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : '-';
}
