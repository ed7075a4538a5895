// The contenders: how each one is started on the same app and worker count, how we know it
// serves, and how it is stopped and checked gone.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startArb } from './arb.js';
import {
  APPS_DIR,
  alive,
  descendants,
  killQuiet,
  now,
  rmDir,
  sleep,
  tempDir,
  waitGone,
  waitServed,
} from './util.js';

const run = promisify(execFile);

export interface StartOptions {
  workers: number;
  port: number;
  /** where the app writes per-process request counts (balance) */
  statsDir: string;
}

export interface Running {
  /** the pids that serve requests */
  servers(): number[];
  /** every pid the contender runs (supervisors included) */
  allPids(): number[];
  /** the supervisor's pid (arb master, cluster primary, PM2 daemon); undefined for single */
  supervisorPid(): number | undefined;
  /** stops it; returns pids still alive afterwards (then SIGKILLed) */
  stop(): Promise<number[]>;
}

export interface Contender {
  name: string;
  start(o: StartOptions): Promise<Running>;
}

const HANDLER = join(APPS_DIR, 'handler.cjs');
const SERVE = join(APPS_DIR, 'serve.cjs');

function readyCount(dir: string): number {
  return readdirSync(dir).filter((f) => f.startsWith('ready-')).length;
}

async function waitReadyFiles(dir: string, n: number, timeoutMs: number, what: string) {
  const end = now() + timeoutMs;
  while (readyCount(dir) < n) {
    if (now() > end) throw new Error(`${what}: only ${readyCount(dir)}/${n} servers listening`);
    await sleep(10);
  }
}

/** A plain child process contender (single, cluster, bare). */
async function startChild(
  name: string,
  script: string,
  o: StartOptions,
  n: number,
  env: Record<string, string> = {},
): Promise<Running> {
  const child: ChildProcess = spawn(process.execPath, [script], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      ...env,
      PORT: String(o.port),
      WORKERS: String(o.workers),
      BENCH_STATS_DIR: o.statsDir,
    },
  });
  const pid = child.pid!;
  try {
    await waitReadyFiles(o.statsDir, n, 20000, name);
  } catch (e) {
    killQuiet(pid, 'SIGKILL');
    for (const p of descendants(pid)) killQuiet(p.pid, 'SIGKILL');
    throw e;
  }
  return {
    servers: () => (n === 1 ? [pid] : descendants(pid).map((p) => p.pid)),
    allPids: () => [pid, ...descendants(pid).map((p) => p.pid)],
    supervisorPid: () => (n === 1 ? undefined : pid),
    async stop() {
      const tree = [pid, ...descendants(pid).map((p) => p.pid)];
      killQuiet(pid, 'SIGTERM');
      const left = await waitGone(tree, 5000);
      for (const p of left) killQuiet(p, 'SIGKILL');
      return left;
    },
  };
}

export const single: Contender = {
  name: 'single',
  start: (o) => startChild('single', SERVE, o, 1),
};

export const clusterRR: Contender = {
  name: 'cluster-rr',
  start: (o) =>
    startChild('cluster-rr', join(APPS_DIR, 'cluster.cjs'), o, o.workers, {
      NODE_CLUSTER_SCHED_POLICY: 'rr',
    }),
};

export const clusterNone: Contender = {
  name: 'cluster-none',
  start: (o) =>
    startChild('cluster-none', join(APPS_DIR, 'cluster.cjs'), o, o.workers, {
      NODE_CLUSTER_SCHED_POLICY: 'none',
    }),
};

export const bare: Contender = {
  name: 'bare',
  start: (o) => startChild('bare', join(APPS_DIR, 'bare.cjs'), o, o.workers),
};

export const arb: Contender = {
  name: 'arb',
  async start(o) {
    const tmp = tempDir('arb');
    const a = await startArb(
      [
        '-w',
        String(o.workers),
        '-b',
        `127.0.0.1:${o.port}`,
        '--worker-tmp-dir',
        tmp,
        '--log-level',
        'info',
        HANDLER,
      ],
      { BENCH_STATS_DIR: o.statsDir },
    );
    return {
      servers: () => a.workerPids(),
      allPids: () => [a.pid, ...descendants(a.pid).map((p) => p.pid)],
      supervisorPid: () => a.pid,
      async stop() {
        const leaked = await a.stop();
        rmDir(tmp);
        return leaked;
      },
    };
  },
};

// ---- PM2 ------------------------------------------------------------------------------

const require = createRequire(import.meta.url);

export function pm2Bin(): string | undefined {
  try {
    return join(require.resolve('pm2/package.json'), '..', 'bin', 'pm2');
  } catch {
    return undefined;
  }
}

export class Pm2 {
  readonly home = tempDir('pm2home');
  readonly bin = pm2Bin();

  async cmd(args: string[], env: Record<string, string> = {}, timeoutMs = 60000) {
    if (!this.bin) throw new Error('pm2 is not installed: run `pnpm install` in the repo');
    return run(process.execPath, [this.bin, ...args], {
      env: { ...process.env, ...env, PM2_HOME: this.home, PM2_DISABLE_VERSION_CHECK: 'true' },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  daemonPid(): number | undefined {
    const f = join(this.home, 'pm2.pid');
    if (!existsSync(f)) return undefined;
    const pid = Number(readFileSync(f, 'utf8').trim());
    return alive(pid) ? pid : undefined;
  }

  async jlist(): Promise<Array<{ pid: number; pm2_env: { status: string } }>> {
    const { stdout } = await this.cmd(['jlist']);
    return JSON.parse(stdout.slice(stdout.indexOf('[')));
  }

  /** pm2 kill, then checks the daemon and its apps are gone; returns leaked pids. */
  async kill(): Promise<number[]> {
    const d = this.daemonPid();
    const tree = d ? [d, ...descendants(d).map((p) => p.pid)] : [];
    try {
      await this.cmd(['kill'], {}, 30000);
    } catch {
      // fall through to the check
    }
    const left = await waitGone(tree, 5000);
    for (const p of left) killQuiet(p, 'SIGKILL');
    rmDir(this.home);
    return left;
  }
}

export const pm2: Contender = {
  name: 'pm2',
  async start(o) {
    const p = new Pm2();
    try {
      await p.cmd(
        ['start', SERVE, '-i', String(o.workers), '--name', 'bench', '--no-pmx', '--silent'],
        { PORT: String(o.port), BENCH_STATS_DIR: o.statsDir },
      );
      await waitReadyFiles(o.statsDir, o.workers, 30000, 'pm2');
    } catch (e) {
      await p.kill();
      throw e;
    }
    const daemon = p.daemonPid()!;
    return {
      servers: () => descendants(daemon).map((x) => x.pid),
      allPids: () => [daemon, ...descendants(daemon).map((x) => x.pid)],
      supervisorPid: () => daemon,
      stop: () => p.kill(),
    };
  },
};

export const ALL: Contender[] = [arb, clusterRR, clusterNone, pm2, bare, single];

export function byName(names: string[]): Contender[] {
  return names.map((n) => {
    const c = ALL.find((x) => x.name === n);
    if (!c) throw new Error(`unknown contender ${n} (known: ${ALL.map((x) => x.name).join(', ')})`);
    return c;
  });
}

/** Smoke check used by the harness: a served request on the port. */
export async function checkServes(port: number): Promise<void> {
  const p = await waitServed(port, 5000);
  if (!p) throw new Error(`nothing serves on 127.0.0.1:${port}`);
}
