// The health and metrics endpoints across a USR2 upgrade, through the real `arb`: the old
// master hands their listening sockets to the new one, so a probe polled every 50 ms is
// never refused and /readyz stays 200 from the first serving worker to the end, whichever
// way the upgrade is driven (`arb upgrade --pid`, `arb ctl upgrade`, USR2/WINCH/QUIT).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { arb, ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const pollers: Poller[] = [];
/** New masters started by an upgrade (not children of the test). */
const masters = new Set<number>();

afterEach(async () => {
  const failed: unknown[] = [];
  const settle = async (steps: Promise<unknown>[]) => {
    for (const r of await Promise.allSettled(steps)) {
      if (r.status === 'rejected') failed.push(r.reason);
    }
  };
  try {
    await settle(pollers.splice(0).map((p) => p.stop()));
    await settle([...masters].map((pid) => stopMaster(pid)));
    masters.clear();
    await settle(running.splice(0).map((a) => a.stop()));
  } finally {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
  if (failed.length > 0) throw new AggregateError(failed, 'cleanup failed');
});

/** Alive and not a zombie. */
function isAlive(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function stopMaster(pid: number): Promise<void> {
  if (isAlive(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(() => !isAlive(pid), 20_000, `master ${pid} to stop`).catch((err: Error) => {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    throw err;
  });
}

function readPid(file: string): number | undefined {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

interface Answer {
  /** The HTTP status, or the error code (`ECONNREFUSED`, `ECONNRESET`, ...). */
  status: number | string;
  pid?: number;
  body: string;
}

/** One request on a fresh connection, as kubelet and haproxy probe. */
function probe(url: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        const pid = Number(res.headers['x-arb-master-pid']);
        resolve({ status: res.statusCode ?? 0, pid: pid > 0 ? pid : undefined, body });
      });
      res.on('error', (err: NodeJS.ErrnoException) =>
        resolve({ status: err.code ?? err.message, body: '' }),
      );
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: err.code ?? err.message, body: '' }),
    );
  });
}

/** Polls one URL every 50 ms and keeps every answer. */
class Poller {
  readonly answers: Answer[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(readonly url: string) {
    this.done = (async () => {
      while (this.running) {
        this.answers.push(await probe(url));
        await sleep(50);
      }
    })();
    pollers.push(this);
  }

  pids(): Set<number> {
    return new Set(this.answers.flatMap((a) => (a.pid === undefined ? [] : [a.pid])));
  }

  /** Answers that are not a 200 (with the status and body, for the failure message). */
  bad(): string[] {
    return this.answers
      .filter((a) => a.status !== 200)
      .map((a) => `${this.url}: ${a.status} ${a.body.trim()}`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

interface Setup {
  dir: string;
  a: ArbProcess;
  oldPid: number;
  health: string;
  metrics: string;
}

/**
 * arb with --health-bind and --metrics-bind on fixed ports (free a moment ago; another
 * pair is tried when one was taken meanwhile), serving.
 */
async function startArb(extra: string[] = [], files: Record<string, string> = {}): Promise<Setup> {
  const dir = tempDir();
  dirs.push(dir);
  fs.writeFileSync(
    path.join(dir, 'app.mjs'),
    'export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n',
  );
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  for (let attempt = 1; ; attempt++) {
    const [hp, mp] = [await freePort(), await freePort()];
    const a = new ArbProcess(
      [
        '-b',
        '127.0.0.1:0',
        '-w',
        '2',
        '-p',
        'arb.pid',
        '--health-bind',
        `127.0.0.1:${hp}`,
        '--metrics-bind',
        `127.0.0.1:${mp}`,
        ...extra,
        'app.mjs',
      ],
      { cwd: dir },
    );
    running.push(a);
    await a.ready();
    const taken = a.logs.some((e) => String(e.msg).startsWith('Cannot serve'));
    if (taken && attempt < 5) {
      running.splice(running.indexOf(a), 1);
      await a.stop();
      continue;
    }
    expect(taken).toBe(false);
    return {
      dir,
      a,
      oldPid: a.pid,
      health: `http://127.0.0.1:${hp}`,
      metrics: `http://127.0.0.1:${mp}`,
    };
  }
}

/** Pollers on /readyz and /livez of both servers. */
function pollAll(s: Setup): Poller[] {
  return [s.health, s.metrics].flatMap((base) => [
    new Poller(`${base}/readyz`),
    new Poller(`${base}/livez`),
  ]);
}

/**
 * After the upgrade: the old master gone, the new one promoted and answering on both
 * endpoints; every probe of the whole run was a 200, the old master's and then the new
 * one's, none refused.
 */
async function checkHandover(s: Setup, polls: Poller[], newPid: number): Promise<void> {
  masters.add(newPid);
  await waitFor(() => !isAlive(s.oldPid), 20_000, 'the old master to exit');
  await waitFor(() => readPid(path.join(s.dir, 'arb.pid')) === newPid, 10_000, 'the promotion');
  const answered = (p: Poller) => p.answers.at(-1)?.pid === newPid;
  await waitFor(() => polls.every(answered), 10_000, 'the new master to answer every probe');
  await sleep(300); // a few more rounds from the new master alone
  for (const p of polls) await p.stop();
  expect(polls.flatMap((p) => p.bad())).toEqual([]);
  for (const p of polls) {
    expect(p.answers.length).toBeGreaterThan(20);
    expect([...p.pids()].sort()).toEqual([s.oldPid, newPid].sort());
    // the old master answered first, the new one last
    expect(p.answers[0]!.pid).toBe(s.oldPid);
    expect(p.answers.at(-1)!.pid).toBe(newPid);
  }
  const metrics = await probe(`${s.metrics}/metrics`);
  expect(metrics.status).toBe(200);
  expect(metrics.pid).toBe(newPid);
  expect(metrics.body).toContain('arb_workers_alive 2');
  // the new master took the sockets over instead of failing to bind them
  expect(s.a.logs.some((e) => String(e.msg).startsWith('Cannot serve'))).toBe(false);
  const inherited = s.a.logs.filter(
    (e) => e.pid === newPid && String(e.msg).endsWith('(inherited from the previous master)'),
  );
  expect(inherited).toHaveLength(2);
}

describe('health and metrics endpoints across an upgrade', () => {
  it('arb upgrade --pid: /readyz and /livez 200 throughout, never refused', async () => {
    const s = await startArb();
    const polls = pollAll(s);
    await sleep(300);
    const r = await arb(['upgrade', '--pid', 'arb.pid'], s.dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const newPid = readPid(path.join(s.dir, 'arb.pid'))!;
    expect(newPid).not.toBe(s.oldPid);
    await checkHandover(s, polls, newPid);
  });

  it('arb ctl upgrade: /readyz and /livez 200 throughout, never refused', async () => {
    const s = await startArb();
    const polls = pollAll(s);
    await sleep(300);
    const r = await ctlJson(['upgrade'], s.dir);
    expect(r.body).toMatchObject({ ok: true, old_pid: s.oldPid });
    await checkHandover(s, polls, r.body.new_pid as number);
  });

  it('USR2, WINCH, QUIT by hand: the old master says ready while the new one serves', async () => {
    const s = await startArb();
    const polls = pollAll(s);
    await sleep(300);
    process.kill(s.oldPid, 'SIGUSR2');
    const newPid = await waitFor(
      () => readPid(path.join(s.dir, 'arb.pid.2')),
      30_000,
      'arb.pid.2: the new master serves',
    );
    masters.add(newPid);
    process.kill(s.oldPid, 'SIGWINCH');
    const oldWorkers = () =>
      fs
        .readFileSync(`/proc/${s.oldPid}/task/${s.oldPid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter((p) => p && Number(p) !== newPid);
    await waitFor(() => oldWorkers().length === 0, 20_000, 'the old workers to exit');
    // no worker of its own: the old master is still ready, its new master serves
    const meanwhile = await probe(`${s.health}/readyz`);
    expect(meanwhile.status).toBe(200);
    await sleep(300);
    process.kill(s.oldPid, 'SIGQUIT');
    await checkHandover(s, polls, newPid);
  });

  it('a new master whose config names another health address binds that one', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const config = (port: number) => JSON.stringify({ health: { bind: `127.0.0.1:${port}` } });
    const dir = tempDir();
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'app.mjs'), 'export default (req, res) => res.end("ok");\n');
    fs.writeFileSync(path.join(dir, 'arb.config.json'), config(p1));
    const a = new ArbProcess(['-b', '127.0.0.1:0', 'app.mjs'], { cwd: dir });
    running.push(a);
    await a.ready();
    expect((await probe(`http://127.0.0.1:${p1}/readyz`)).pid).toBe(a.pid);
    fs.writeFileSync(path.join(dir, 'arb.config.json'), config(p2));
    const r = await ctlJson(['upgrade'], dir);
    expect(r.body).toMatchObject({ ok: true });
    const newPid = r.body.new_pid as number;
    masters.add(newPid);
    await waitFor(() => !isAlive(a.pid), 20_000, 'the old master to exit');
    const now = await probe(`http://127.0.0.1:${p2}/readyz`);
    expect(now).toMatchObject({ status: 200, pid: newPid });
    // the socket of the old address went with the old master: refused now
    expect((await probe(`http://127.0.0.1:${p1}/readyz`)).status).toBe('ECONNREFUSED');
  });
});
