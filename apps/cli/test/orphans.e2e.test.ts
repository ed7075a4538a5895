// PID 1 duties through the real `arb`: as PID 1 of a new PID namespace (`unshare -fp`) it reaps
// every orphan (an app that leaves `sleep 0.3 &` behind on each request, a companion that
// orphans a grandchild) while libuv keeps its own children (a SIGKILLed worker is still
// replaced); outside a namespace `--subreaper` adopts and reaps the orphans, `--no-subreaper`
// leaves them to whoever is above.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArbProcess,
  alive,
  cleanup,
  namespaceUnavailable,
  request,
  type Target,
  tempDir,
  waitFor,
} from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

const noNamespace = namespaceUnavailable();
if (noNamespace) console.log(`skipped: arb as PID 1: ${noNamespace}`);

interface Proc {
  pid: number;
  ppid: number;
  state: string;
}

/** Every process on the machine, from /proc/<pid>/stat. */
function processes(): Map<number, Proc> {
  const all = new Map<number, Proc>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      all.set(Number(entry), { pid: Number(entry), state: rest[0]!, ppid: Number(rest[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/** `root` and every process below it. */
function tree(root: number, all = processes()): Proc[] {
  const out: Proc[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    const p = all.get(pid);
    if (!p) continue;
    out.push(p);
    for (const q of all.values()) if (q.ppid === pid) queue.push(q.pid);
  }
  return out;
}

/** The pid of `pid` inside its own PID namespace (the last of `NSpid`). */
function nsPid(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^NSpid:\s+(.*)$/m.exec(status)![1]!.trim().split(/\s+/).at(-1));
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** Processes carrying `MARK=<mark>` in their environment (a zombie has none left to read). */
function marked(mark: string): Proc[] {
  const needle = `\0ORPHAN_MARK=${mark}\0`;
  return [...processes().values()].filter((p) => {
    try {
      return `\0${fs.readFileSync(`/proc/${p.pid}/environ`, 'latin1')}`.includes(needle);
    } catch {
      return false;
    }
  });
}

/** An app that, on each request, leaves an orphan behind: `sh` exits, its `sleep` lives on. */
const APP = `import { exec } from 'node:child_process';
export default (req, res) => {
  exec("sh -c 'sleep 0.3 &'", { env: { ...process.env, ORPHAN_MARK: process.env.MARK } });
  res.end(JSON.stringify({ pid: process.pid }));
};
`;

function project(config: Record<string, unknown>): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), APP);
  fs.writeFileSync(
    path.join(d, 'arb.config.json'),
    JSON.stringify({ app: './app.mjs', bind: '127.0.0.1:0', ...config }),
  );
  return d;
}

/**
 * Makes this test process a child subreaper (prctl through koffi, as arb does) and reaps the
 * given pids by pid once they exited; `reap` is true when none of them is left.
 */
function testSubreaper(): { reap(pids: number[]): boolean; off(): void } {
  const require = createRequire(createRequire(import.meta.url).resolve('@arb/core'));
  const koffi = require('koffi') as {
    load(name: string): { func(signature: string): (...args: unknown[]) => number };
  };
  const libc = koffi.load('libc.so.6');
  const prctl = libc.func(
    'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
  );
  const waitpid = libc.func('int waitpid(int pid, void *status, int options)');
  const PR_SET_CHILD_SUBREAPER = 36;
  const WNOHANG = 1;
  expect(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)).toBe(0);
  const status = Buffer.alloc(4);
  const left = new Set<number>();
  return {
    reap(pids) {
      for (const pid of pids) left.add(pid);
      for (const pid of [...left]) {
        const r = waitpid(pid, status, WNOHANG);
        if (r === pid || (r === -1 && !fs.existsSync(`/proc/${pid}`))) left.delete(pid);
      }
      return left.size === 0;
    },
    off() {
      prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function orphanRequests(target: Target, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await request(target)).status).toBe(200);
}

const reapedLines = (a: ArbProcess) =>
  a.logs.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('Reaped orphan'));

describe.skipIf(noNamespace !== undefined)('arb as PID 1 of a PID namespace', () => {
  it('reaps every orphan, keeps its own children, and stops everything on TERM', async () => {
    const mark = `pid1-${process.pid}-${Date.now()}`;
    const cwd = project({
      companions: {
        socket: './c.sock',
        defaults: { startSecs: 0.2, stopTimeout: 5 },
        // the subshell exits at once: its `sleep 0.2` is orphaned, re-parented to PID 1
        workers: [{ name: 'orphaner', command: ['sh', '-c', '(sleep 0.2 &); exec sleep 1000'] }],
      },
    });
    const a = new ArbProcess(['--log-level', 'debug', '--workers', '2'], {
      cwd,
      env: { MARK: mark },
      // --kill-child: should unshare be killed, the whole namespace goes with it
      wrap: ['unshare', '-fp', '--mount-proc', '--kill-child'],
    });
    // not for `cleanup`: the pids in these logs are the namespace's (1 is the host's init)
    const seen = new Set<number>();
    try {
      await pid1Case(a, seen);
    } finally {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
      await a.exited();
      await waitFor(() => [...seen].every((p) => !alive(p)), 5000, 'every process gone');
    }
  });
});

/** The PID 1 case: `a` runs under unshare; `seen` collects every host pid of its tree. */
async function pid1Case(a: ArbProcess, seen: Set<number>): Promise<void> {
  const target = await a.tcpTarget();
  // the namespace's PID 1 is unshare's child
  const master = await waitFor(
    () => [...processes().values()].find((p) => p.ppid === a.pid)?.pid,
    5000,
    'the master under unshare',
  );
  expect(a.logs.find((e) => e.msg === `Starting arb (node ${process.version})`)?.pid).toBe(1);
  const remember = () => {
    for (const p of tree(master)) seen.add(p.pid);
  };
  // the companion ran and orphaned its grandchild
  await waitFor(
    () => tree(master).some((p) => cmdline(p.pid) === 'sleep 1000'),
    20_000,
    'the companion',
  );
  remember();

  await orphanRequests(target, 12);
  remember();
  await sleep(800); // every `sleep 0.3` (and the companion's `sleep 0.2`) has exited
  const zombies = tree(master).filter((p) => p.state === 'Z');
  expect(zombies.map((p) => `${p.pid} ${cmdline(p.pid)}`)).toEqual([]);
  // they were orphans of PID 1 and the master reaped them: 12 sleeps, the companion's one
  await waitFor(() => reapedLines(a).length >= 13, 5000, '13 reaped orphans');
  expect(reapedLines(a).every((e) => e.code === 0 && e.signal === null)).toBe(true);

  // a SIGKILLed worker is still reported by libuv (never reaped as an orphan) and replaced
  const workers = () =>
    tree(master).filter((p) => p.ppid === master && cmdline(p.pid).startsWith('arb: worker'));
  const before = workers().map((p) => p.pid);
  expect(before).toHaveLength(2);
  const killedNs = nsPid(before[0]!);
  process.kill(before[0]!, 'SIGKILL');
  await a.log(
    (e) => typeof e.msg === 'string' && /^Worker \(pid:\d+\) was sent SIGKILL/.test(e.msg),
    'the worker SIGKILL reported',
  );
  await waitFor(
    () => {
      const now = workers().map((p) => p.pid);
      return now.length === 2 && !now.includes(before[0]!);
    },
    10_000,
    'a replacement worker',
  );
  remember();
  await orphanRequests(target, 4);
  expect(reapedLines(a).some((e) => e.orphan === killedNs)).toBe(false);

  // TERM to PID 1: a clean stop, and nothing of the namespace is left
  process.kill(master, 'SIGTERM');
  expect(await a.exited()).toBe(0);
  remember();
  await waitFor(() => [...seen].every((p) => !alive(p)), 5000, 'every process gone');
  expect(fs.existsSync(`/proc/${master}`)).toBe(false);
}

describe('arb as a child subreaper (not PID 1)', () => {
  it('--subreaper: the orphans are re-parented to the master and reaped', async () => {
    const mark = `sub-${process.pid}-${Date.now()}`;
    const a = new ArbProcess(['--subreaper', '--log-level', 'debug'], {
      cwd: project({}),
      env: { MARK: mark },
    });
    running.push(a);
    const target = await a.tcpTarget();
    await orphanRequests(target, 10);
    // the live orphans are the master's children now (their `sh` exited), none is elsewhere
    const outside = await waitFor(
      () => {
        const sleeps = marked(mark).filter((p) => cmdline(p.pid) === 'sleep 0.3');
        if (!sleeps.some((p) => p.ppid === a.pid)) return undefined;
        const ours = new Set(tree(a.pid).map((p) => p.pid));
        // still alive after the tree was read: it was alive, so in the tree, when it was read
        return sleeps.filter((p) => !ours.has(p.pid) && alive(p.pid));
      },
      5000,
      'an orphan adopted by the master',
    );
    expect(outside).toEqual([]);
    await sleep(800);
    expect(tree(a.pid).filter((p) => p.state === 'Z')).toEqual([]);
    expect(marked(mark).filter((p) => cmdline(p.pid) === 'sleep 0.3')).toEqual([]);
    await waitFor(() => reapedLines(a).length >= 10, 5000, '10 reaped orphans');
    expect(await a.stop()).toBe(0);
  });

  it('--no-subreaper: the orphans are not re-parented to the master', async () => {
    // this test process is the subreaper above arb: the orphans come to it (proving they went
    // past the master) and it reaps them, so no zombie is left to the machine's init
    const adopter = testSubreaper();
    const mark = `nosub-${process.pid}-${Date.now()}`;
    const adopted = new Set<number>();
    try {
      const a = new ArbProcess(['--no-subreaper', '--log-level', 'debug'], {
        cwd: project({}),
        env: { MARK: mark },
      });
      running.push(a);
      const target = await a.tcpTarget();
      await orphanRequests(target, 3);
      const elsewhere = await waitFor(
        () => marked(mark).find((p) => cmdline(p.pid) === 'sleep 0.3' && p.ppid === process.pid),
        5000,
        'an orphan adopted by the test process, past the master',
      );
      adopted.add(elsewhere.pid);
      expect(marked(mark).filter((p) => p.ppid === a.pid)).toEqual([]);
      for (const p of marked(mark)) if (p.ppid === process.pid) adopted.add(p.pid);
      await sleep(800);
      expect(reapedLines(a)).toEqual([]);
      expect(await a.stop()).toBe(0);
    } finally {
      // the orphans are children of this process now: reap exactly those pids, nothing of libuv's
      for (const p of processes().values()) {
        if (p.ppid === process.pid && cmdline(p.pid) === '') adopted.add(p.pid);
      }
      await waitFor(() => adopter.reap([...adopted]), 5000, 'the adopted orphans reaped');
      adopter.off();
    }
  });
});
