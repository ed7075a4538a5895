import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CONFORMANCE_LIMITS, lineSocketCases } from '@arb/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  claimSocketPath,
  isSocketLive,
  LineClientError,
  LineServer,
  NoSocketError,
  requestLine,
  SocketBusyError,
  SocketInUseError,
  SocketPathError,
} from '../src/index.js';
import { tempDir } from './helpers.js';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A server that answers every JSON object with `{"ok":true,"echo":...}`. */
async function echoServer(
  socketPath: string,
  extra: Partial<ConstructorParameters<typeof LineServer>[0]> = {},
) {
  const server = new LineServer({
    path: socketPath,
    handle: async (line) => {
      let value: unknown;
      try {
        value = JSON.parse(line.toString('utf8'));
      } catch {
        return `${JSON.stringify({ ok: false, error: 'invalid JSON' })}\n`;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return `${JSON.stringify({ ok: false, error: 'request must be a JSON object' })}\n`;
      }
      return `${JSON.stringify({ ok: true, echo: value })}\n`;
    },
    ...extra,
  });
  await server.listen();
  closers.push(() => server.close());
  return server;
}

/** A plain net server, as another process's socket would be. */
async function foreign(socketPath: string): Promise<net.Server> {
  // resume(): a connection nobody reads never sees its peer leave, and close() would wait on it
  const s = net.createServer((c) =>
    c
      .on('error', () => {})
      .resume()
      .end('{"ok":true,"other":true}\n'),
  );
  await new Promise<void>((r) => s.listen(socketPath, r));
  closers.push(() => new Promise((r) => s.close(r)));
  return s;
}

/** A socket file whose server is gone: a process bound it and exited. */
function staleSocket(socketPath: string): void {
  execFileSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`,
  ]);
}

describe('LineServer conformance', () => {
  let server: LineServer | undefined;
  const base = tempDir();
  afterAll(async () => {
    await server?.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  beforeAll(async () => {
    server = new LineServer({
      path: path.join(base, 'line.sock'),
      ...CONFORMANCE_LIMITS,
      handle: async (line) => {
        try {
          const v = JSON.parse(line.toString('utf8'));
          if (typeof v !== 'object' || v === null || Array.isArray(v)) {
            return `${JSON.stringify({ ok: false, error: 'request must be a JSON object' })}\n`;
          }
          // replies of 1 KiB, as a status is: they fill socket buffers when a client does not read
          return `${JSON.stringify({ ok: true, pad: 'x'.repeat(1000) })}\n`;
        } catch {
          return '{"ok":false,"error":"invalid JSON"}\n';
        }
      },
    });
    await server.listen();
  });
  for (const c of lineSocketCases({
    path: () => server!.path,
    okRequest: '{"cmd":"status"}',
    stop: () => server!.close(),
  })) {
    it(c.name, c.run);
  }
});

describe('claiming a socket path', () => {
  it('creates the file 0600 whatever the umask, and removes only its own file on close', async () => {
    const p = path.join(dir(), 'c.sock');
    const old = process.umask(0);
    try {
      const s = await echoServer(p);
      expect(process.umask()).toBe(0); // restored
      expect(fs.statSync(p).mode & 0o777).toBe(0o600);
      await s.close();
      expect(fs.existsSync(p)).toBe(false);
    } finally {
      process.umask(old);
    }
    // a file that another process put at the path since is left alone
    const s = await echoServer(p);
    fs.unlinkSync(p);
    await foreign(p);
    await s.close();
    expect(fs.lstatSync(p).isSocket()).toBe(true);
  });

  it('refuses a live socket and leaves it serving', async () => {
    const p = path.join(dir(), 'c.sock');
    await foreign(p);
    const ino = fs.statSync(p).ino;
    const err = await new LineServer({ path: p, handle: async () => undefined })
      .listen()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SocketInUseError);
    expect((err as SocketInUseError).path).toBe(p);
    expect((err as Error).message).toContain('address in use');
    expect(fs.statSync(p).ino).toBe(ino);
    expect(await requestLine(p, { cmd: 'status' })).toEqual({ ok: true, other: true });
  });

  it('replaces a stale socket', async () => {
    const p = path.join(dir(), 'c.sock');
    staleSocket(p);
    expect(await isSocketLive(p)).toBe(false);
    await echoServer(p);
    expect(await requestLine(p, { cmd: 'status' })).toEqual({ ok: true, echo: { cmd: 'status' } });
  });

  it('refuses a regular file or a directory at the path, naming it, and leaves it alone', async () => {
    const d = dir();
    const file = path.join(d, 'file');
    fs.writeFileSync(file, 'keep me');
    const sub = path.join(d, 'sub');
    fs.mkdirSync(sub);
    for (const [p, what] of [
      [file, 'a regular file'],
      [sub, 'a directory'],
    ] as const) {
      const err = await claimSocketPath(
        p,
        async () => 1,
        () => {},
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SocketPathError);
      expect((err as SocketPathError).path).toBe(p);
      expect((err as Error).message).toContain(`${p} exists and is not a socket (${what})`);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
    expect(fs.statSync(sub).isDirectory()).toBe(true);
  });

  it('counts a socket it may not connect to (EACCES) as live', async () => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: needs root to probe as another user (uid 65534)');
      return;
    }
    const d = dir();
    fs.chmodSync(d, 0o755);
    const p = path.join(d, 'c.sock');
    await echoServer(p); // mode 0600, owned by root
    const probe = `import('${path.resolve('dist/index.js')}').then(async (m) => {
      const live = await m.isSocketLive(${JSON.stringify(p)});
      const err = await m.claimSocketPath(${JSON.stringify(p)}, async () => 1, () => {}).catch((e) => e);
      console.log(JSON.stringify({ live, claim: err.name }));
    })`;
    const r = spawnSync(process.execPath, ['-e', probe], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ live: true, claim: 'SocketInUseError' });
    expect(await requestLine(p, { cmd: 'status' })).toMatchObject({ ok: true });
  });
});

describe('requestLine', () => {
  it('says "no control socket at PATH" for a missing or stale socket, after retrying', async () => {
    const d = dir();
    const missing = path.join(d, 'none.sock');
    const t0 = Date.now();
    const e1 = await requestLine(missing, {}, { retryMs: 300 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(e1).toBeInstanceOf(NoSocketError);
    expect(e1).toMatchObject({ code: 'ENOENT', socketPath: missing });
    expect((e1 as Error).message).toBe(`no control socket at ${missing}`);
    const stale = path.join(d, 'stale.sock');
    staleSocket(stale);
    const e2 = await requestLine(stale, {}, { retryMs: 0 }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(NoSocketError);
    expect(e2).toMatchObject({ code: 'ECONNREFUSED', socketPath: stale });
  });

  it('retries while the server is starting', async () => {
    const p = path.join(dir(), 'c.sock');
    const later = setTimeout(() => void echoServer(p), 300);
    closers.push(async () => clearTimeout(later));
    expect(await requestLine(p, { cmd: 'x' }, { retryMs: 3000 })).toEqual({
      ok: true,
      echo: { cmd: 'x' },
    });
  });

  it('says "control socket busy" when no reply comes in time', async () => {
    const p = path.join(dir(), 'c.sock');
    const s = net.createServer((c) => c.on('error', () => {}).resume());
    await new Promise<void>((r) => s.listen(p, r));
    closers.push(() => new Promise((r) => s.close(r)));
    const t0 = Date.now();
    const e = await requestLine(p, {}, { timeoutMs: 300 }).catch((err: unknown) => err);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(e).toBeInstanceOf(SocketBusyError);
    expect(e).toMatchObject({ code: 'ETIMEDOUT', socketPath: p });
    expect((e as Error).message).toBe(`control socket busy: no reply from ${p} within 300 ms`);
  });

  it('rejects a reply that is not one JSON object, and a close without reply', async () => {
    const d = dir();
    for (const [name, reply] of [
      ['a', 'nope\n'],
      ['b', '[1]\n'],
      ['c', ''],
    ] as const) {
      const p = path.join(d, `${name}.sock`);
      const s = net.createServer((c) =>
        c
          .on('error', () => {})
          .resume()
          .end(reply),
      );
      await new Promise<void>((r) => s.listen(p, r));
      closers.push(() => new Promise((r) => s.close(r)));
      const e = await requestLine(p, {}).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(LineClientError);
      expect(e).toMatchObject({ code: 'EBADREPLY', socketPath: p });
    }
  });

  it('reads a reply that arrives in many pieces', async () => {
    const p = path.join(dir(), 'c.sock');
    const big = 'x'.repeat(1_000_000);
    const s = net.createServer((c) => {
      c.on('error', () => {});
      c.once('data', () => c.end(`${JSON.stringify({ ok: true, big })}\n`));
    });
    await new Promise<void>((r) => s.listen(p, r));
    closers.push(() => new Promise((r) => s.close(r)));
    expect(await requestLine(p, {})).toEqual({ ok: true, big });
  });
});
