// A rolling update across two "hosts" behind haproxy: two arb instances on two ports,
// haproxy health-checking their /readyz (every 200 ms, fall 1 rise 1), each instance
// replaced in turn (TERM with --shutdown-delay, the new one started on the same ports, on
// once haproxy sees it UP) under wrk through haproxy. Failed requests and p99 of the roll.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
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

function haproxyBin(): string | undefined {
  for (const p of ['haproxy', '/usr/sbin/haproxy']) {
    try {
      execFileSync(p, ['-v'], { stdio: 'ignore' });
      return p;
    } catch {}
  }
  return undefined;
}

interface Backend {
  name: string;
  port: number;
  healthPort: number;
}

/** haproxy's view of the backend servers (`show stat` on its stats socket): name -> status. */
function statuses(socket: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
    });
    s.on('error', reject);
    s.on('end', () => {
      const [header, ...rows] = out.trim().split('\n');
      const cols = header!.replace(/^# /, '').split(',');
      const m = new Map<string, string>();
      for (const row of rows) {
        const f = row.split(',');
        if (f[cols.indexOf('pxname')] === 'be') {
          m.set(f[cols.indexOf('svname')]!, f[cols.indexOf('status')]!);
        }
      }
      resolve(m);
    });
    s.end('show stat\n');
  });
}

async function waitStatus(socket: string, server: string, status: string, ms = 20000) {
  const end = now() + ms;
  while (now() < end) {
    try {
      if ((await statuses(socket)).get(server)?.startsWith(status)) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`haproxy did not see ${server} ${status} within ${ms} ms`);
}

function startHaproxy(bin: string, dir: string, port: number, backends: Backend[]): ChildProcess {
  const socket = join(dir, 'haproxy.sock');
  const cfg = [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout check 1s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'backend be',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...backends.map(
      (b) =>
        `  server ${b.name} 127.0.0.1:${b.port} check port ${b.healthPort} inter 200ms fall 1 rise 1`,
    ),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), cfg);
  return spawn(bin, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
}

function served(statsDir: string): number {
  let n = 0;
  for (const f of readdirSync(statsDir)) n += Number(readFileSync(join(statsDir, f), 'utf8')) || 0;
  return n;
}

async function roll(bin: string, load: LoadKind, connections: number): Promise<RollRun> {
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
  let proxy: ChildProcess | undefined;
  const socket = join(dir, 'haproxy.sock');
  try {
    for (const b of backends) instances.set(b.name, await start(b, `${b.name}1`));
    const port = await freePort();
    proxy = startHaproxy(bin, dir, port, backends);
    for (const b of backends) await waitStatus(socket, b.name, 'UP');
    const w = wrkStoppable({ port, kind: load, seconds: 600, connections });
    await sleep(1000);
    const t0 = now();
    for (const b of backends) {
      const old = instances.get(b.name)!;
      old.signal('SIGTERM');
      await waitStatus(socket, b.name, 'DOWN');
      leaked.push(...(await old.stop()));
      instances.set(b.name, await start(b, `${b.name}2`));
      await waitStatus(socket, b.name, 'UP');
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
    if (proxy?.pid && alive(proxy.pid)) {
      proxy.kill('SIGTERM');
      const end = now() + 5000;
      while (alive(proxy.pid) && now() < end) await sleep(50);
      if (alive(proxy.pid)) killQuiet(proxy.pid, 'SIGKILL');
    }
    for (const s of stats.values()) rmDir(s);
    rmDir(dir);
  }
}

export async function rollBench(o: { connections: number }): Promise<RollResults> {
  const bin = haproxyBin();
  if (!bin) return { runs: [], skipped: 'haproxy is not installed (apt-get install -y haproxy)' };
  const runs: RollRun[] = [];
  for (const load of ['close', 'keepalive'] as LoadKind[]) {
    const r = await roll(bin, load, o.connections);
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
