// A rolling update across two "hosts" behind haproxy: two arb instances on two ports,
// haproxy health-checking their /readyz (every 200 ms, fall 1 rise 1), each instance
// replaced in turn (TERM with --shutdown-delay, the new one started on the same ports, on
// once haproxy sees it UP) under wrk through haproxy. Failed requests and p99 of the roll.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Backend, findHaproxy, Haproxy } from '@arb/testkit';
import { type ArbProcess, startArb } from './arb.js';
import { type LoadKind, type LoadResult, wrkStoppable } from './load.js';
import { table } from './report.js';
import {
  APPS_DIR,
  alive,
  fmt,
  freePort,
  killQuiet,
  log,
  now,
  rmDir,
  sleep,
  tempDir,
} from './util.js';

const HANDLER = join(APPS_DIR, 'handler.cjs');
/** Seconds an old instance keeps accepting after TERM (haproxy needs one 200 ms check). */
const DELAY = 1;

export interface RollRun {
  load: LoadKind;
  /** seconds from the first TERM until the second new instance was UP in haproxy */
  rollSeconds: number;
  result: LoadResult;
  /** requests each new instance served (from the app's per-process counts) */
  servedByNew: Record<string, number>;
  leaked: number[];
}

export interface RollResults {
  runs: RollRun[];
  skipped?: string;
}

function served(statsDir: string): number {
  let n = 0;
  for (const f of readdirSync(statsDir)) n += Number(readFileSync(join(statsDir, f), 'utf8')) || 0;
  return n;
}

async function roll(load: LoadKind, connections: number): Promise<RollRun> {
  const dir = tempDir('roll');
  const backends: Backend[] = [];
  for (const name of ['a', 'b'])
    backends.push({ name, port: await freePort(), healthPort: await freePort() });
  const stats = new Map<string, string>();
  const start = async (b: Backend, name: string) => {
    const s = tempDir(`roll-${name}`);
    stats.set(name, s);
    return startArb(
      [
        '-w',
        '2',
        '-b',
        `127.0.0.1:${b.port}`,
        '--health-bind',
        `127.0.0.1:${b.healthPort}`,
        '--shutdown-delay',
        String(DELAY),
        '--graceful-timeout',
        '10',
        HANDLER,
      ],
      { BENCH_STATS_DIR: s },
    );
  };
  const instances = new Map<string, ArbProcess>();
  const leaked: number[] = [];
  let proxy: Haproxy | undefined;
  try {
    for (const b of backends) instances.set(b.name, await start(b, `${b.name}1`));
    const port = await freePort();
    proxy = new Haproxy(dir, port, backends);
    for (const b of backends) await proxy.waitStatus(b.name, 'UP', 20_000);
    const w = wrkStoppable({ port, kind: load, seconds: 600, connections });
    await sleep(1000);
    const t0 = now();
    for (const b of backends) {
      const old = instances.get(b.name)!;
      old.signal('SIGTERM');
      await proxy.waitStatus(b.name, 'DOWN', 20_000);
      leaked.push(...(await old.stop()));
      instances.set(b.name, await start(b, `${b.name}2`));
      await proxy.waitStatus(b.name, 'UP', 20_000);
      // as an operator's script would: let the new one take its share before the next TERM
      await sleep(1000);
    }
    const rollSeconds = (now() - t0) / 1000;
    await sleep(1000);
    w.stop();
    const result = await w.result;
    return {
      load,
      rollSeconds,
      result,
      servedByNew: { a2: served(stats.get('a2')!), b2: served(stats.get('b2')!) },
      leaked,
    };
  } finally {
    for (const a of instances.values()) leaked.push(...(await a.stop()));
    await proxy?.stop();
    for (const s of stats.values()) rmDir(s);
    rmDir(dir);
  }
}

export async function rollBench(o: { connections: number }): Promise<RollResults> {
  if (!findHaproxy())
    return { runs: [], skipped: 'haproxy is not installed (apt-get install -y haproxy)' };
  const runs: RollRun[] = [];
  for (const load of ['close', 'keepalive'] as LoadKind[]) {
    const r = await roll(load, o.connections);
    log(
      `  roll ${load}: ${r.result.requests} requests, failed ${r.result.failed} ${JSON.stringify(r.result.errors)}, ` +
        `p99 ${fmt(r.result.p99, 1)} ms, roll ${fmt(r.rollSeconds, 1)} s, new served ${JSON.stringify(r.servedByNew)}`,
    );
    runs.push(r);
  }
  return { runs };
}

export function rollReport(r: RollResults): string {
  if (r.skipped) return `Skipped: ${r.skipped}.\n`;
  return `${table(
    [
      'load (through haproxy)',
      'roll s',
      'requests',
      'failed',
      'p50 ms',
      'p99 ms',
      'max ms',
      'served by a2 / b2',
      'leaked',
    ],
    r.runs.map((x) => [
      x.load,
      fmt(x.rollSeconds, 1),
      x.result.requests,
      x.result.failed,
      fmt(x.result.p50, 2),
      fmt(x.result.p99, 1),
      fmt(x.result.max, 0),
      `${x.servedByNew.a2} / ${x.servedByNew.b2}`,
      x.leaked.length ? x.leaked.join(' ') : '-',
    ]),
  )}\n`;
}
