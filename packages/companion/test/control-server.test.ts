import { existsSync, lstatSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SocketInUseError, SocketPathError } from '@arb/sock';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer, type Request, type Response, silentLogger } from '../src/index.js';
import { removeTmpDirs, sleep, tmp, waitFor } from './helpers.js';

const servers: ControlServer[] = [];
const raw: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const s of raw.splice(0)) await new Promise((r) => s.close(r));
  removeTmpDirs();
});

async function serve(
  path: string,
  handler: (r: Request) => Promise<Response> = async (r) => ({ ok: true, echo: r }),
  extra: { idleTimeoutMs?: number; maxLineBytes?: number; readTimeoutMs?: number } = {},
): Promise<ControlServer> {
  const s = new ControlServer({ path, handler, logger: silentLogger(), ...extra });
  servers.push(s);
  await s.listen();
  return s;
}

/** Send raw bytes, collect reply lines until the server closes (or `lines` arrive). */
function talk(
  path: string,
  data: string | Buffer,
  lines = Number.POSITIVE_INFINITY,
  end = true,
): Promise<{ replies: Response[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const replies: Response[] = [];
    const done = (closed: boolean) => {
      sock.destroy();
      resolve({ replies, closed });
    };
    sock.on('connect', () => {
      sock.write(data);
      if (end) sock.end();
    });
    sock.on('data', (d) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl !== -1) {
        replies.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
      if (replies.length >= lines) done(false);
    });
    sock.on('close', () => done(true));
    sock.on('error', reject);
  });
}

describe('control socket file', () => {
  it('is a socket with mode 0600, whatever the umask, and is removed on close', async () => {
    const path = join(tmp(), 'c.sock');
    const old = process.umask(0o000);
    try {
      const s = await serve(path);
      expect(process.umask()).toBe(0o000); // restored
      expect(lstatSync(path).isSocket()).toBe(true);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      await s.close();
      expect(existsSync(path)).toBe(false);
    } finally {
      process.umask(old);
    }
  });

  it('never deletes a live socket of another process', async () => {
    const path = join(tmp(), 'c.sock');
    const other = createServer((c) => c.on('error', () => {}).end('other\n'));
    raw.push(other);
    await new Promise<void>((r) => other.listen(path, r));
    const ino = statSync(path).ino;
    const s = new ControlServer({
      path,
      handler: async () => ({ ok: true }),
      logger: silentLogger(),
    });
    const err = await s.listen().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SocketInUseError);
    expect((err as SocketInUseError).path).toBe(path);
    expect((err as Error).message).toContain('address in use');
    expect(statSync(path).ino).toBe(ino);
    const got = await new Promise<string>((r) =>
      connect(path)
        .on('data', (d) => r(d.toString()))
        .on('error', () => {}),
    );
    expect(got).toBe('other\n');
  });

  it('replaces a stale socket', async () => {
    const path = join(tmp(), 'c.sock');
    // A socket file whose server is gone: a process that bound it and exited.
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
    ]);
    expect(lstatSync(path).isSocket()).toBe(true);
    const s = await serve(path);
    const { replies } = await talk(path, '{"cmd":"status"}\n', 1);
    expect(replies[0]).toMatchObject({ ok: true });
    await s.close();
  });

  it('refuses a path that is not a socket and leaves it alone', async () => {
    const path = join(tmp(), 'file');
    writeFileSync(path, 'keep me');
    const s = new ControlServer({
      path,
      handler: async () => ({ ok: true }),
      logger: silentLogger(),
    });
    await expect(s.listen()).rejects.toBeInstanceOf(SocketPathError);
    expect(statSync(path).isFile()).toBe(true);
  });

  it('does not remove a socket file that is no longer ours', async () => {
    const dir = tmp();
    const path = join(dir, 'c.sock');
    const s = await serve(path);
    unlinkSync(path);
    const other = createServer();
    raw.push(other);
    await new Promise<void>((r) => other.listen(path, r));
    await s.close();
    expect(lstatSync(path).isSocket()).toBe(true);
  });
});

describe('framing', () => {
  it('answers every line in order, skips blank lines, ignores a trailing fragment', async () => {
    const path = join(tmp(), 'c.sock');
    await serve(path, async (r) => {
      if (r.cmd === 'start') await sleep(50); // a slow first answer must not be overtaken
      return { ok: true, cmd: r.cmd };
    });
    const { replies } = await talk(
      path,
      '{"cmd":"start","name":"a"}\n\n   \n{"cmd": "status"}\r\nnot json\n[1]\n{}\n{"cmd":"reread"}\n{"cmd":"stat',
    );
    expect(replies).toEqual([
      { ok: true, cmd: 'start' },
      { ok: true, cmd: 'status' },
      { ok: false, error: 'invalid JSON' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: "missing 'cmd'" },
      { ok: true, cmd: 'reread' },
    ]);
  });

  it('answers thousands of pipelined requests in order (reading paused, not buffered)', async () => {
    const path = join(tmp(), 'c.sock');
    let n = 0;
    await serve(path, async () => ({ ok: true, n: n++ }));
    const lines = Array.from({ length: 3000 }, () => '{"cmd":"status"}\n').join('');
    const { replies } = await talk(path, lines, 3000);
    expect(replies).toHaveLength(3000);
    expect(replies.map((r) => r.n)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it('answers a line split across many writes', async () => {
    const path = join(tmp(), 'c.sock');
    await serve(path);
    const reply = await new Promise<string>((resolve) => {
      const sock = connect(path);
      sock.on('error', () => {});
      let buf = '';
      sock.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) {
          sock.destroy();
          resolve(buf);
        }
      });
      sock.on('connect', async () => {
        for (const part of ['{"cm', 'd":"st', 'atus"}', '\n']) {
          sock.write(part);
          await sleep(10);
        }
      });
    });
    expect(JSON.parse(reply)).toMatchObject({ ok: true, echo: { cmd: 'status' } });
  });

  it('answers an over-long unterminated line with an error and closes', async () => {
    const path = join(tmp(), 'c.sock');
    let calls = 0;
    await serve(
      path,
      async () => {
        calls++;
        return { ok: true };
      },
      { maxLineBytes: 1024 * 1024 },
    );
    const { replies, closed } = await talk(
      path,
      Buffer.alloc(1024 * 1024 + 10, 0x61),
      Number.POSITIVE_INFINITY,
      false,
    );
    expect(replies).toEqual([{ ok: false, error: 'line too long' }]);
    expect(closed).toBe(true);
    expect(calls).toBe(0);
  });

  it('closes idle connections after the idle timeout', async () => {
    const path = join(tmp(), 'c.sock');
    await serve(path, undefined, { idleTimeoutMs: 200 });
    const t0 = Date.now();
    const { closed } = await talk(path, '', Number.POSITIVE_INFINITY, false);
    expect(closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it('closes a request that trickles in slower than the read timeout', async () => {
    const path = join(tmp(), 'c.sock');
    await serve(path, undefined, { idleTimeoutMs: 10_000, readTimeoutMs: 300 });
    const t0 = Date.now();
    const result = await new Promise<{ replies: string; closedAfter: number }>((resolve) => {
      const sock = connect(path);
      let buf = '';
      sock.on('error', () => {});
      sock.on('data', (d) => {
        buf += d;
      });
      const drip = setInterval(() => sock.write(' '), 50);
      sock.on('connect', () => sock.write('{"cmd":"status"}\n{"cmd":'));
      sock.on('close', () => {
        clearInterval(drip);
        resolve({ replies: buf, closedAfter: Date.now() - t0 });
      });
    });
    expect(
      result.replies
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { ok: true, echo: { cmd: 'status' } },
      { ok: false, error: 'read timeout' },
    ]);
    expect(result.closedAfter).toBeGreaterThanOrEqual(250);
  });

  it('survives clients that leave before their reply', async () => {
    const path = join(tmp(), 'c.sock');
    let answered = 0;
    await serve(path, async () => {
      await sleep(100);
      answered++;
      return { ok: true, big: 'x'.repeat(100_000) };
    });
    const socks: Socket[] = [];
    for (let i = 0; i < 20; i++) {
      const s = connect(path);
      s.on('error', () => {});
      s.write('{"cmd":"status"}\n');
      socks.push(s);
    }
    await sleep(20);
    for (const s of socks) s.destroy();
    await waitFor(() => answered === 20);
    const { replies } = await talk(path, '{"cmd":"status"}\n', 1);
    expect(replies[0]).toMatchObject({ ok: true });
  });

  it('turns a throwing handler into an internal error envelope', async () => {
    const path = join(tmp(), 'c.sock');
    await serve(path, async () => {
      throw new Error('boom');
    });
    const { replies } = await talk(path, '{"cmd":"status"}\n', 1);
    expect(replies[0]).toEqual({ ok: false, error: 'internal error: boom' });
  });
});
