// The throughput matrix: contenders alternated A B C ... A B C ... over several rounds, so
// the machine's drift and noise land on every contender alike; medians over rounds.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Contender } from './contenders.js';
import { type LoadKind, type LoadResult, wrk } from './load.js';
import { freePort, log, median, rmDir, sleep, tempDir, waitServed } from './util.js';

export type AppName = 'hello' | 'cpu';
export const APP_PATH: Record<AppName, string> = { hello: '/', cpu: '/cpu' };

export interface Cell {
  app: AppName;
  load: LoadKind;
}

export interface Group {
  workers: number;
  cells: Cell[];
  /** contenders left out of this group (e.g. `single` runs once) */
  skip?: string[];
}

export interface MatrixOptions {
  contenders: Contender[];
  groups: Group[];
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
}

export interface Sample extends LoadResult {
  round: number;
  /** requests per server process during the measurement, highest first */
  perWorker: number[];
}

export interface CellResult {
  workers: number;
  contender: string;
  app: AppName;
  load: LoadKind;
  samples: Sample[];
  rps: number;
  p50: number;
  p99: number;
  failed: number;
  /** median over rounds of each rank's share, in %, highest first */
  share: number[];
}

function snapshot(dir: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const f of readdirSync(dir)) {
    if (!/^\d+$/.test(f)) continue;
    try {
      m.set(Number(f), Number(readFileSync(join(dir, f), 'utf8')) || 0);
    } catch {}
  }
  return m;
}

function delta(before: Map<number, number>, after: Map<number, number>): number[] {
  const out: number[] = [];
  for (const [pid, n] of after) out.push(n - (before.get(pid) ?? 0));
  return out.filter((n) => n > 0).sort((a, b) => b - a);
}

export async function runMatrix(o: MatrixOptions): Promise<CellResult[]> {
  const samples = new Map<string, Sample[]>();
  const key = (w: number, c: string, cell: Cell) => `${w}|${c}|${cell.app}|${cell.load}`;
  for (let round = 1; round <= o.rounds; round++) {
    for (const g of o.groups) {
      for (const c of o.contenders) {
        if (g.skip?.includes(c.name)) continue;
        const port = await freePort();
        const statsDir = tempDir('stats');
        let running: Awaited<ReturnType<Contender['start']>>;
        try {
          running = await c.start({ workers: g.workers, port, statsDir });
        } catch (e) {
          log(
            `  !! round ${round} w=${g.workers} ${c.name} did not start: ${(e as Error).message}`,
          );
          rmDir(statsDir);
          continue;
        }
        try {
          if (!(await waitServed(port, 5000))) throw new Error(`${c.name} does not serve`);
          const warmed = new Set<AppName>();
          for (const cell of g.cells) {
            const path = APP_PATH[cell.app];
            // warm the JIT once per app and process start (the first cell of each app)
            if (o.warmup > 0 && !warmed.has(cell.app)) {
              warmed.add(cell.app);
              await wrk({
                port,
                path,
                kind: cell.load,
                seconds: o.warmup,
                connections: o.connections,
              });
            }
            await sleep(200);
            const before = snapshot(statsDir);
            const r = await wrk({
              port,
              path,
              kind: cell.load,
              seconds: o.seconds,
              connections: o.connections,
            });
            await sleep(350);
            const perWorker = delta(before, snapshot(statsDir));
            const k = key(g.workers, c.name, cell);
            const list = samples.get(k) ?? [];
            list.push({ ...r, round, perWorker });
            samples.set(k, list);
            log(
              `  round ${round} w=${g.workers} ${c.name.padEnd(12)} ${cell.app.padEnd(5)} ${cell.load.padEnd(9)} ` +
                `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms` +
                `  failed ${r.failed}  per-worker ${perWorker.join('/')}`,
            );
          }
        } finally {
          const leaked = await running.stop();
          rmDir(statsDir);
          if (leaked.length)
            log(`  !! ${c.name} left processes behind after stop: ${leaked.join(' ')}`);
        }
      }
    }
  }
  const out: CellResult[] = [];
  for (const g of o.groups) {
    for (const cell of g.cells) {
      for (const c of o.contenders) {
        const list = samples.get(key(g.workers, c.name, cell));
        if (!list) continue;
        const ranks = Math.max(...list.map((s) => s.perWorker.length));
        const share: number[] = [];
        for (let i = 0; i < ranks; i++) {
          share.push(
            median(
              list.map((s) => {
                const tot = s.perWorker.reduce((a, b) => a + b, 0) || 1;
                return (100 * (s.perWorker[i] ?? 0)) / tot;
              }),
            ),
          );
        }
        out.push({
          workers: g.workers,
          contender: c.name,
          app: cell.app,
          load: cell.load,
          samples: list,
          rps: median(list.map((s) => s.rps)),
          p50: median(list.map((s) => s.p50)),
          p99: median(list.map((s) => s.p99)),
          failed: list.reduce((a, s) => a + s.failed, 0),
          share,
        });
      }
    }
  }
  return out;
}
