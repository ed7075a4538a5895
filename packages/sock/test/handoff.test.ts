import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bind, close, handoff, type Listener } from '../src/index.js';
import { alive, exited, fixture, get, jsonLines, Procs, tempDir, waitFor } from './helpers.js';

const procs = new Procs();
const opened: Listener[] = [];
const dirs: string[] = [];

afterEach(async () => {
  try {
    await procs.stopAll();
  } finally {
    close(opened.splice(0), { unlink: true });
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
});

async function listeners(addresses: string[], backlog?: number) {
  const ls = await bind(addresses, { backlog });
  opened.push(...ls);
  return ls;
}

function startWorker(ls: Listener[]) {
  const h = handoff(ls);
  const child = procs.spawn(process.execPath, [fixture('worker.mjs')], {
    stdio: ['ignore', 'pipe', 'pipe', ...h.stdio],
    env: { ...process.env, ...h.env },
  });
  return { child, lines: jsonLines(child) };
}

describe('handoff', () => {
  it('gives the child slots 3.. in bind order, with addresses and backlog', async () => {
    const d = tempDir();
    dirs.push(d);
    const ls = await listeners(['127.0.0.1:0', `unix:${d}/a,b%.sock`], 99);
    const h = handoff(ls);
    expect(h.stdio).toEqual(ls.map((l) => l.fd));
    expect(h.env).toEqual({
      ARB_FD: '3,4',
      ARB_LISTENERS: `${ls[0]!.address},unix:${d}/a%2Cb%25.sock`,
      ARB_BACKLOG: '99',
    });
    expect(handoff(ls, { firstFd: 5 }).env.ARB_FD).toBe('5,6');
  });

  it('hands systemd-style variables for a socket-activated re-exec', async () => {
    const ls = await listeners(['127.0.0.1:0', '127.0.0.1:0']);
    expect(handoff(ls, { systemd: true }).env).toEqual({
      LISTEN_FDS: '2',
      LISTEN_FDNAMES: 'unknown:unknown',
    });
  });
});

describe('a spawned child adopts fd 3 and serves HTTP', () => {
  it.each([
    ['TCP v4', '127.0.0.1:0'],
    ['TCP v6', '[::1]:0'],
    ['unix', 'unix'],
  ])('%s', async (_name, address) => {
    let bindTo = address;
    if (address === 'unix') {
      const d = tempDir();
      dirs.push(d);
      bindTo = `unix:${d}/w.sock`;
    }
    const ls = await listeners([bindTo], 64);
    const l = ls[0]!;
    const target = l.kind === 'unix' ? { socketPath: l.path! } : { port: l.port!, host: l.host! };
    const { child, lines } = startWorker(ls);
    const ready = await lines.next((m) => m.ready === true);
    expect(ready.listeners).toEqual([
      { fd: 3, kind: l.kind, address: l.address, backlog: 64, source: 'arb' },
    ]);
    expect(ready.leftover).toEqual([]); // adopt() unset ARB_FD & co. for grandchildren
    const res = await get(target);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ pid: child.pid, address: l.address });
  });

  it('the child listens with the backlog the master chose', async () => {
    const ls = await listeners(['127.0.0.1:0'], 77);
    const w = startWorker(ls);
    await w.lines.next((m) => m.ready === true);
    // For a listening socket, ss reports the backlog as Send-Q.
    const out = execFileSync('ss', ['-Hltn', `sport = :${ls[0]!.port}`], { encoding: 'utf8' });
    expect(out.trim().split(/\s+/)[2]).toBe('77');
  });

  it('two children sharing one listener both serve', async () => {
    const ls = await listeners(['127.0.0.1:0']);
    const port = ls[0]!.port!;
    const a = startWorker(ls);
    const b = startWorker(ls);
    await a.lines.next((m) => m.ready === true);
    await b.lines.next((m) => m.ready === true);
    const pids = new Set<number>();
    await waitFor(
      async () => {
        const res = await get({ port, host: '127.0.0.1' });
        pids.add(JSON.parse(res.body).pid);
        return pids.size === 2;
      },
      15_000,
      'both children to answer',
    );
    expect(pids).toEqual(new Set([a.child.pid, b.child.pid]));
  });

  it('keeps the socket listening for the next child after a child dies', async () => {
    const ls = await listeners(['127.0.0.1:0']);
    const target = { port: ls[0]!.port!, host: '127.0.0.1' };
    const a = startWorker(ls);
    await a.lines.next((m) => m.ready === true);
    a.child.kill('SIGKILL');
    await waitFor(() => !alive(a.child.pid!), 5000, 'the child to die');
    // No child is accepting, but the master's copy keeps the socket in LISTEN state:
    // a connection is queued, not refused, and the next child serves it.
    const pending = get(target);
    const b = startWorker(ls);
    await b.lines.next((m) => m.ready === true);
    expect(JSON.parse((await pending).body).pid).toBe(b.child.pid);
  });

  it('refuses a listed fd that is not a socket', async () => {
    const file = fs.openSync(fixture('worker.mjs'), 'r');
    try {
      const child = procs.spawn(process.execPath, [fixture('worker.mjs')], {
        stdio: ['ignore', 'pipe', 'pipe', file],
        env: { ...process.env, ARB_FD: '3', ARB_LISTENERS: '127.0.0.1:1' },
      });
      let stderr = '';
      child.stderr!.on('data', (d) => {
        stderr += d;
      });
      const code = await exited(child);
      expect(code).not.toBe(0);
      expect(stderr).toContain('inherited fd 3: not a socket');
    } finally {
      fs.closeSync(file);
    }
  });
});

describe('master side: fd://N and a re-exec handover', () => {
  it('adopts fd://N, hands it on, and never unlinks an inherited unix socket', async () => {
    const d = tempDir();
    dirs.push(d);
    // A socket bound by some other supervisor (einhorn, a shell script) under its real name,
    // inherited by the master at fd 3, which is told `fd://3`.
    const foreign = (
      net as unknown as {
        _createServerHandle: (p: string, a: number, b: number) => { fd: number; close(): void };
      }
    )._createServerHandle(`${d}/in.sock`, -1, -1);
    const master = procs.spawn(
      process.execPath,
      [fixture('master.mjs'), JSON.stringify({ bind: ['fd://3', '127.0.0.1:0'], workers: 2 })],
      { stdio: ['ignore', 'pipe', 'pipe', foreign.fd] },
    );
    const lines = jsonLines(master);
    const up = await lines.next((m) => 'listeners' in m);
    // Inherited descriptors win: the configured TCP address is not bound.
    expect(up.listeners).toEqual([
      expect.objectContaining({
        kind: 'unix',
        fd: 3,
        address: `unix:${d}/in.sock`,
        origin: 'inherited',
      }),
    ]);
    const res = await get({ socketPath: `${d}/in.sock` });
    expect((up.workers as number[]).includes(JSON.parse(res.body).pid)).toBe(true);
    master.kill('SIGTERM');
    await lines.next((m) => m.closed === true);
    expect(fs.statSync(`${d}/in.sock`).isSocket()).toBe(true);
    foreign.close();
  });

  it('a re-exec child master takes ARB_FD and ARB_LISTENERS', async () => {
    const d = tempDir();
    dirs.push(d);
    const ls = await listeners(['127.0.0.1:0', `unix:${d}/re.sock`]);
    const h = handoff(ls);
    const master = procs.spawn(
      process.execPath,
      [fixture('master.mjs'), JSON.stringify({ bind: ['127.0.0.1:1'] })],
      {
        stdio: ['ignore', 'pipe', 'pipe', ...h.stdio],
        env: { ...process.env, ...h.env, ARB_PID: String(process.pid) },
      },
    );
    const up = await jsonLines(master).next((m) => 'listeners' in m);
    expect((up.listeners as Listener[]).map((l) => [l.fd, l.address, l.origin])).toEqual([
      [3, ls[0]!.address, 'inherited'],
      [4, ls[1]!.address, 'inherited'],
    ]);
    expect((await get({ port: ls[0]!.port!, host: '127.0.0.1' })).status).toBe(200);
    expect((await get({ socketPath: `${d}/re.sock` })).status).toBe(200);
  });

  it.each([
    [
      'a file',
      () => fs.openSync(fixture('worker.mjs'), 'r'),
      'not a TCP or unix stream socket (EINVAL)',
    ],
    ['a connected pipe', () => 'pipe' as const, 'a connected socket (a pipe), not a listener'],
  ])('reports fd://N that is %s clearly', async (_what, make, reason) => {
    const fd = make();
    const master = procs.spawn(
      process.execPath,
      [fixture('master.mjs'), JSON.stringify({ bind: ['fd://3'] })],
      {
        stdio: ['ignore', 'pipe', 'pipe', fd],
      },
    );
    const msg = await jsonLines(master).next((m) => 'error' in m);
    expect(msg).toEqual({ name: 'InheritError', error: `inherited fd 3: ${reason}` });
    expect(await exited(master)).toBe(1);
    if (typeof fd === 'number') fs.closeSync(fd);
  });
});

describe('the master itself never accepts', () => {
  it('connections are refused until a child listens, then served by the child only', async () => {
    const ls = await listeners(['127.0.0.1:0']);
    const port = ls[0]!.port!;
    const refused = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('error', (e: NodeJS.ErrnoException) => r(e.code));
      c.once('connect', () => {
        c.destroy();
        r('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
    const w = startWorker(ls);
    await w.lines.next((m) => m.ready === true);
    for (let i = 0; i < 20; i++) {
      expect(JSON.parse((await get({ port, host: '127.0.0.1' })).body).pid).toBe(w.child.pid);
    }
  });
});
