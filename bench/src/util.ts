// Small helpers shared by the benchmark and the chaos suite: time, /proc, ports, HTTP probes.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(BENCH_DIR, '..');
export const APPS_DIR = join(BENCH_DIR, 'src', 'apps');
export const ARB_BIN = join(REPO_DIR, 'apps', 'cli', 'dist', 'bin.js');
/** The `arb` command users run (package.json "bin"): a launcher that execs node with the master's flags. */
export const ARB_LAUNCHER = join(REPO_DIR, 'apps', 'cli', 'bin', 'arb');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `arb-bench-${prefix}-`));
}

export function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => res(port));
    });
  });
}

// ---- /proc ---------------------------------------------------------------------------

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  cmd: string;
}

function readStat(pid: number): { ppid: number; state: string; utime: number; stime: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return {
    state: rest[0]!,
    ppid: Number(rest[1]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
  };
}

export function procTable(): Map<number, ProcInfo> {
  const out = new Map<number, ProcInfo>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const st = readStat(pid);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.set(pid, { pid, ppid: st.ppid, state: st.state, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** All descendants of `root` (not `root` itself). */
export function descendants(root: number, table = procTable()): ProcInfo[] {
  const kids = new Map<number, ProcInfo[]>();
  for (const p of table.values()) {
    const list = kids.get(p.ppid) ?? [];
    list.push(p);
    kids.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    for (const k of kids.get(pid) ?? []) {
      out.push(k);
      stack.push(k.pid);
    }
  }
  return out;
}

export function children(pid: number, table = procTable()): ProcInfo[] {
  return [...table.values()].filter((p) => p.ppid === pid);
}

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    return readStat(pid).state !== 'Z';
  } catch {
    return false;
  }
}

const CLK_TCK = 100;
/** CPU seconds (user + system) used so far by `pid`. */
export function cpuSeconds(pid: number): number {
  const st = readStat(pid);
  return (st.utime + st.stime) / CLK_TCK;
}

export function rssMB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Waits until none of `pids` is alive; returns those still alive after `ms`. */
export async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const end = now() + ms;
  let left = pids.filter(alive);
  while (left.length && now() < end) {
    await sleep(20);
    left = left.filter(alive);
  }
  return left;
}

export function killQuiet(pid: number, sig: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ---- HTTP ----------------------------------------------------------------------------

export interface Probe {
  ok: boolean;
  status: number;
  pid: number;
  error?: string;
}

/** One GET on a fresh connection (Connection: close). */
export function probe(port: number, path = '/', timeoutMs = 2000): Promise<Probe> {
  return new Promise((res) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } },
      (r) => {
        r.resume();
        r.on('end', () =>
          res({
            ok: r.statusCode === 200,
            status: r.statusCode ?? 0,
            pid: Number(r.headers['x-pid']),
          }),
        );
        r.on('error', (e) => res({ ok: false, status: 0, pid: 0, error: e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => res({ ok: false, status: 0, pid: 0, error: e.message }));
  });
}

/** Polls until a request succeeds (optionally served by a pid accepted by `want`). */
export async function waitServed(
  port: number,
  timeoutMs: number,
  want: (pid: number) => boolean = () => true,
  everyMs = 5,
): Promise<Probe | undefined> {
  const end = now() + timeoutMs;
  while (now() < end) {
    const p = await probe(port, '/', 1000);
    if (p.ok && want(p.pid)) return p;
    await sleep(everyMs);
  }
  return undefined;
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '-';
  return n.toFixed(digits);
}

export function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

// ---- leftovers -----------------------------------------------------------------------

/**
 * Processes this harness may have started that are still alive: anything running the bench
 * apps, a PM2 daemon with a bench PM2_HOME, an arb process serving the bench handler, the
 * chaos companions.
 */
export function benchLeftovers(): ProcInfo[] {
  const mine = process.pid;
  return [...procTable().values()].filter(
    (p) =>
      p.pid !== mine &&
      p.state !== 'Z' &&
      (p.cmd.includes(APPS_DIR) ||
        p.cmd.includes('arb-bench-') ||
        /^arb: (master|worker) \[handler\]/.test(p.cmd) ||
        /^arb companion (sleeper|sleeper2|crasher)/.test(p.cmd)),
  );
}

/** Prints and kills leftovers; returns how many there were. */
export function sweepLeftovers(): number {
  const left = benchLeftovers();
  for (const p of left) {
    log(`  !! left behind: ${p.pid} ${p.cmd.slice(0, 80)} (killed now)`);
    killQuiet(p.pid, 'SIGKILL');
  }
  return left.length;
}

let aborting = false;
/** On Ctrl-C or TERM of the harness: kill everything it started, then exit. */
export function installAbortCleanup(): void {
  const onSig = (sig: NodeJS.Signals) => {
    if (aborting) return;
    aborting = true;
    log(`\n${sig}: stopping every contender this run started`);
    sweepLeftovers();
    process.exit(130);
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
}
