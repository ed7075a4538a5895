import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { alive, tempDir, waitFor } from '@arb/testkit';
import { managerEntry, request, type StatusEntry } from '../src/index.js';

export { alive, waitFor };
/** True while a process exists and is not a zombie. */
export const running = alive;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const dirs: string[] = [];

/** A fresh temp dir with a short path (unix socket paths are limited to 107 bytes). */
export function tmp(): string {
  const d = tempDir('arbc-');
  dirs.push(d);
  return d;
}

export function removeTmpDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Process group id from /proc. */
export function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]);
}

/** Command line (argv joined by spaces) from /proc; shows the process title. */
export function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
}

/** Pids every test must see gone; checked and killed in afterEach. */
const tracked = new Set<number>();
export function track(...pids: number[]): void {
  for (const p of pids) tracked.add(p);
}

/** Managers (pids) whose companions must all be gone after each test. */
const managers = new Set<number>([process.pid]);

/**
 * Live processes started by the manager `managerPid`: companions and their children all
 * carry ARB_COMPANION_MANAGER_PID=<pid> in their environment.
 */
export function companionsOf(managerPid: number): number[] {
  const needle = `\0ARB_COMPANION_MANAGER_PID=${managerPid}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(needle) && running(pid)) {
        found.push(pid);
      }
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/**
 * For afterEach/afterAll: runs `first` (stopping what the file started), then reaps the
 * tracked processes, then removes the temp dirs; each step runs even when the one before
 * threw, and the first failure is thrown at the end.
 */
export async function cleanup(first: () => Promise<void> = async () => {}): Promise<void> {
  try {
    await first();
  } finally {
    try {
      await reapTracked();
    } finally {
      removeTmpDirs();
    }
  }
}

/** Kill whatever tracked process is left, then assert all are gone (and no orphans). */
export async function reapTracked(): Promise<void> {
  const orphans = [...managers].flatMap(companionsOf);
  const pids = [...new Set([...tracked, ...orphans])];
  tracked.clear();
  const leftovers = pids.filter(running);
  for (const p of leftovers) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
  await waitFor(() => pids.every((p) => !running(p)), 5000, 'tracked processes to exit');
  if (leftovers.length > 0) throw new Error(`processes left running: ${leftovers.join(', ')}`);
}

export const NODE = process.execPath;

/** argv of a node one-liner. */
export function nodeCmd(code: string): string[] {
  return [NODE, '-e', code];
}

/** Read whitespace separated pids a companion wrote into a file. */
export function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface ManagerProcess {
  child: ChildProcess;
  pid: number;
  ready: Promise<{ type: string; pid: number; socket: string | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): string;
}

/** Spawn the built manager entry with an IPC channel (so readiness can be awaited). */
export function spawnManager(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): ManagerProcess {
  const child = spawn(NODE, [managerEntry(), ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  track(child.pid!);
  managers.add(child.pid!);
  const ready = new Promise<{ type: string; pid: number; socket: string | null }>(
    (resolve, reject) => {
      child.on('message', (m: { type: string; pid: number; socket: string | null }) => {
        if (m.type === 'ready') resolve(m);
      });
      child.on('exit', (code) =>
        reject(new Error(`manager exited (${code}) before ready:\n${out}`)),
      );
    },
  );
  ready.catch(() => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, pid: child.pid!, ready, exited, logs: () => out };
}

/** The manager's status over its socket (which must answer ok). */
export async function status(
  sock: string,
): Promise<{ companions: StatusEntry[]; manager: { pid: number; guard_pid: number | null } }> {
  const r = await request(sock, { cmd: 'status' });
  if (r.ok !== true) throw new Error(`status failed: ${JSON.stringify(r)}`);
  return r as never;
}

/** Waits until the manager reports `n` companions, all RUNNING. */
export async function allRunning(sock: string, n: number): Promise<StatusEntry[]> {
  return waitFor(
    async () => {
      const s = await status(sock);
      return s.companions.length === n && s.companions.every((c) => c.state === 'RUNNING')
        ? s.companions
        : null;
    },
    10_000,
    `${n} companions RUNNING`,
  );
}

/** Node code that ignores SIGTERM and stays up. */
export const ignoreTerm = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";

/** A command companion that ignores SIGTERM and has a child that does too; pids in `file`. */
export function stubbornWithChild(file: string): string[] {
  // Handlers first: the pid in the file means "ready to ignore SIGTERM".
  const child = `${ignoreTerm} require('fs').appendFileSync(${JSON.stringify(file)}, process.pid + '\\n');`;
  return nodeCmd(
    `${ignoreTerm} require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: 'ignore' }); require('fs').appendFileSync(${JSON.stringify(file)}, process.pid + '\\n');`,
  );
}
