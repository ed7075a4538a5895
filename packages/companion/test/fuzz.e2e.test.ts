import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request, type StatusEntry } from '../src/index.js';
import {
  cleanup,
  type ManagerProcess,
  nodeCmd,
  running,
  spawnManager,
  tmp,
  track,
  waitFor,
} from './helpers.js';

/** Send raw bytes; resolve with every reply line received before the server closes. */
function raw(
  path: string,
  data: Buffer | string,
  opts: { end?: boolean; waitMs?: number } = {},
): Promise<string[]> {
  return new Promise((resolve) => {
    const sock = connect(path);
    let buf = '';
    const finish = () => {
      sock.destroy();
      resolve(buf.split('\n').filter(Boolean));
    };
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('data', (d) => {
      buf += d.toString();
    });
    sock.on('connect', () => {
      sock.write(data);
      if (opts.end !== false) sock.end();
    });
    if (opts.waitMs) setTimeout(finish, opts.waitMs);
  });
}

describe('control socket fuzzing against a live manager', () => {
  let m: ManagerProcess;
  let sock: string;
  let before: StatusEntry[];

  const companions = async () =>
    (await request(sock, { cmd: 'status' })).companions as StatusEntry[];

  beforeAll(async () => {
    const dir = tmp();
    sock = join(dir, 'c.sock');
    writeFileSync(
      join(dir, 'c.json'),
      JSON.stringify({
        socket: sock,
        restartDelay: 0.05,
        maxRestartDelay: 0.05,
        defaults: { startSecs: 0.1, stopTimeout: 1 },
        workers: [
          { name: 'steady', command: ['sleep', '120'] },
          { name: 'worker', command: nodeCmd('setInterval(() => {}, 1000)') },
          // Keeps the supervisor busy: proves idle clients never stall retries.
          { name: 'flapper', command: ['sh', '-c', 'sleep 0.05; exit 1'], startSecs: 1 },
        ],
      }),
    );
    m = spawnManager(['--config', join(dir, 'c.json')], {}, dir);
    await m.ready;
    before = await waitFor(async () => {
      const c = await companions();
      return c[0]!.state === 'RUNNING' && c[1]!.state === 'RUNNING' ? c : null;
    });
    track(before[0]!.pid!, before[1]!.pid!);
  });

  afterAll(() =>
    cleanup(async () => {
      const s = await request(sock, { cmd: 'status' });
      const guard = (s.manager as { guard_pid: number }).guard_pid;
      track(guard);
      m.child.kill('SIGTERM');
      expect((await m.exited).code).toBe(0);
    }),
  );

  // After every test, whatever ran before it: the manager is up and the steady companions
  // are the same processes, never restarted.
  afterEach(async () => {
    expect(running(m.pid)).toBe(true);
    const after = await companions();
    expect(after[0]).toMatchObject({
      name: 'steady',
      state: 'RUNNING',
      pid: before[0]!.pid,
      restarts: 0,
    });
    expect(after[1]).toMatchObject({
      name: 'worker',
      state: 'RUNNING',
      pid: before[1]!.pid,
      restarts: 0,
    });
  });

  it('answers malformed input with the reference envelopes', async () => {
    const replies = await raw(
      sock,
      'garbage\n{"cmd":\n[1,2]\n42\n"s"\nnull\n{}\n{"cmd":7}\n{"cmd":"stop"}\n{"cmd":"bogus"}\n\xff\xfe\n',
    );
    expect(replies.map((r) => JSON.parse(r))).toEqual([
      { ok: false, error: 'invalid JSON' },
      { ok: false, error: 'invalid JSON' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: "missing 'cmd'" },
      { ok: false, error: "missing 'cmd'" },
      { ok: false, error: "'stop' requires a 'name'" },
      { ok: false, error: "unknown command 'bogus'" },
      { ok: false, error: 'invalid JSON' },
    ]);
  });

  it('answers a 2 MiB line with an error and closes', async () => {
    const replies = await raw(sock, Buffer.alloc(2 * 1024 * 1024, 0x7b), {
      end: false,
      waitMs: 10_000,
    });
    expect(replies.map((r) => JSON.parse(r))).toEqual([{ ok: false, error: 'line too long' }]);
  });

  it('shrugs off half requests and clients that vanish before their reply', async () => {
    await raw(sock, '{"cmd":"sta', { end: false, waitMs: 50 });
    await raw(sock, '{"cmd":"status"', { end: true });
    const vanished = Array.from({ length: 30 }, () => {
      const s = connect(sock);
      s.on('error', () => {});
      s.on('connect', () => {
        s.write('{"cmd":"status"}\n{"cmd":"reread"}\n');
        s.destroy();
      });
      return new Promise((r) => s.once('close', r));
    });
    // every client is gone before the manager is asked again
    await Promise.all(vanished);
    expect((await request(sock, { cmd: 'status' })).ok).toBe(true);
  });

  it('serves 200 concurrent clients', async () => {
    const replies = await Promise.all(
      Array.from({ length: 200 }, () => request(sock, { cmd: 'status' }, { timeoutMs: 20_000 })),
    );
    for (const r of replies) {
      expect(r.ok).toBe(true);
      expect((r.companions as StatusEntry[]).map((c) => c.name)).toEqual([
        'steady',
        'worker',
        'flapper',
      ]);
    }
  });

  it('keeps supervising while idle clients hold connections open', async () => {
    const idle = Array.from({ length: 20 }, () => {
      const s = connect(sock);
      s.on('error', () => {});
      s.write('{"cmd":"sta'); // never finished
      return s;
    });
    try {
      const exitsBefore = (await companions())[2]!.exits;
      // The flapper is retried every ~0.1 s; with idle clients around it must keep going.
      await waitFor(
        async () => (await companions())[2]!.exits >= exitsBefore + 5,
        10_000,
        'flapper retries',
      );
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});
