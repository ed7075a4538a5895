import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BindError, bind, close, type Listener, MAX_UNIX_PATH_BYTES } from '../src/index.js';
import { tempDir } from './helpers.js';

const opened: Listener[] = [];
const dirs: string[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  close(opened.splice(0), { unlink: true });
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function bindAll(addresses: string[], opts: Parameters<typeof bind>[1] = {}) {
  const ls = await bind(addresses, opts);
  opened.push(...ls);
  return ls;
}

function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

function connect(target: { port: number; host: string } | string): Promise<string> {
  return new Promise((resolve) => {
    const c = typeof target === 'string' ? net.connect(target) : net.connect(target);
    c.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

function listenOnPort(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve) => server.listen(port, host, () => resolve()));
}

describe('bind: TCP', () => {
  it('binds IPv4 with the real port and never accepts in this process', async () => {
    const [l] = await bindAll(['127.0.0.1:0'], { backlog: 77 });
    expect(l).toMatchObject({ kind: 'tcp', host: '127.0.0.1', backlog: 77, origin: 'bound' });
    expect(l!.port).toBeGreaterThan(0);
    expect(l!.address).toBe(`127.0.0.1:${l!.port}`);
    expect(l!.url).toBe(`http://127.0.0.1:${l!.port}`);
    expect(l!.fd).toBeGreaterThan(2);
    // Bound, not listening: a connection is refused rather than queued for this process.
    expect(await connect({ port: l!.port!, host: '127.0.0.1' })).toBe('ECONNREFUSED');
  });

  it('binds IPv6 literals', async () => {
    const [l] = await bindAll(['[::1]:0']);
    expect(l).toMatchObject({ kind: 'tcp', host: '::1' });
    expect(l!.address).toBe(`[::1]:${l!.port}`);
    expect(l!.url).toBe(`http://[::1]:${l!.port}`);
  });

  it('resolves a host name (IPv4 first)', async () => {
    const [l] = await bindAll(['localhost:0']);
    expect(l!.host).toBe('127.0.0.1');
  });

  it('names an unresolvable host', async () => {
    await expect(bindAll(['no-such-host.invalid:80'], { retries: 1 })).rejects.toThrow(
      /cannot listen on no-such-host\.invalid:80: cannot resolve host/,
    );
  });

  it('binds several addresses in order', async () => {
    const d = dir();
    const ls = await bindAll(['127.0.0.1:0', `unix:${d}/a.sock`, '[::1]:0']);
    expect(ls.map((l) => l.kind)).toEqual(['tcp', 'unix', 'tcp']);
    expect(new Set(ls.map((l) => l.fd)).size).toBe(3);
  });

  it('retries a busy port, then fails naming the address and the process on it', async () => {
    const busy = net.createServer();
    servers.push(busy);
    await listenOnPort(busy, 0, '127.0.0.1');
    const port = (busy.address() as net.AddressInfo).port;
    const attempts: number[] = [];
    const started = performance.now();
    const err = await bindAll([`127.0.0.1:${port}`], {
      retries: 3,
      retryDelay: 100,
      onRetry: (_e, n) => attempts.push(n),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BindError);
    expect((err as BindError).address).toBe(`127.0.0.1:${port}`);
    expect((err as BindError).errno).toBe('EADDRINUSE');
    // this process is the one listening on it, and /proc says so
    expect((err as BindError).pid).toBe(process.pid);
    expect((err as Error).message).toBe(
      `cannot listen on 127.0.0.1:${port}: address in use (by pid ${process.pid}) (gave up after 3 attempts)`,
    );
    expect(attempts).toEqual([1, 2]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('succeeds when the port frees up during the retries', async () => {
    const busy = net.createServer();
    await listenOnPort(busy, 0, '127.0.0.1');
    const port = (busy.address() as net.AddressInfo).port;
    const [l] = await bindAll([`127.0.0.1:${port}`], {
      retries: 5,
      retryDelay: 100,
      onRetry: () => busy.close(),
    });
    expect(l!.port).toBe(port);
  });

  it('closes what it bound when a later address fails', async () => {
    const d = dir();
    const busy = net.createServer();
    servers.push(busy);
    await listenOnPort(busy, 0, '127.0.0.1');
    const port = (busy.address() as net.AddressInfo).port;
    const sock = `${d}/first.sock`;
    await expect(bind([`unix:${sock}`, `127.0.0.1:${port}`], { retries: 1 })).rejects.toThrow(
      /address in use/,
    );
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describe('bind: unix', () => {
  it('creates the socket file with the mode the umask gives', async () => {
    const d = dir();
    const [a] = await bindAll([`unix:${d}/a.sock`], { umask: 0 });
    const [b] = await bindAll([`unix:${d}/b.sock`], { umask: 0o077 });
    const [c] = await bindAll([`unix:${d}/c.sock`], { umask: 0o027 });
    expect(fs.statSync(a!.path!).mode & 0o777).toBe(0o777);
    expect(fs.statSync(b!.path!).mode & 0o777).toBe(0o700);
    expect(fs.statSync(c!.path!).mode & 0o777).toBe(0o750);
    expect(fs.statSync(a!.path!).isSocket()).toBe(true);
    expect(a).toMatchObject({ kind: 'unix', address: `unix:${d}/a.sock`, origin: 'bound' });
    // Only the final names remain: the temporary bind names were renamed away.
    expect(fs.readdirSync(d).sort()).toEqual(['a.sock', 'b.sock', 'c.sock']);
  });

  it('restores the process umask', async () => {
    const before = process.umask();
    await bindAll([`unix:${dir()}/x.sock`], { umask: 0o077 });
    expect(process.umask()).toBe(before);
  });

  it('resolves relative paths against the cwd', async () => {
    const d = dir();
    const cwd = process.cwd();
    process.chdir(d);
    try {
      const [l] = await bindAll(['unix:rel.sock']);
      expect(l!.path).toBe(path.join(fs.realpathSync(d), 'rel.sock'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('sets the owner when asked (root only can give files away)', async () => {
    const d = dir();
    const uid = process.getuid!() === 0 ? 65534 : process.getuid!();
    const gid = process.getgid!() === 0 ? 65534 : process.getgid!();
    const [l] = await bindAll([`unix:${d}/own.sock`], { uid, gid });
    const st = fs.statSync(l!.path!);
    expect([st.uid, st.gid]).toEqual([uid, gid]);
  });

  it('replaces a stale socket file', async () => {
    const d = dir();
    const p = `${d}/stale.sock`;
    // A socket file whose listener is gone: bind and exit without unlinking.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(p, () => r()));
    fs.linkSync(p, `${d}/keep`);
    await new Promise((r) => stale.close(r)); // unlinks p
    fs.renameSync(`${d}/keep`, p);
    expect(await connect(p)).toBe('ECONNREFUSED');
    const oldIno = fs.statSync(p).ino;
    const [l] = await bindAll([`unix:${p}`]);
    expect(fs.statSync(l!.path!).ino).not.toBe(oldIno);
  });

  it('never deletes a socket another process is listening on', async () => {
    const d = dir();
    const p = `${d}/live.sock`;
    const live = net.createServer((c) => {
      c.on('error', () => {});
      c.end('still here');
    });
    servers.push(live);
    await new Promise<void>((r) => live.listen(p, () => r()));
    const ino = fs.statSync(p).ino;
    const err = await bindAll([`unix:${p}`], { retries: 2, retryDelay: 20 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BindError);
    expect((err as Error).message).toBe(
      `cannot listen on unix:${p}: address in use (another process is listening on it) (gave up after 2 attempts)`,
    );
    expect(fs.statSync(p).ino).toBe(ino);
    expect(await connect(p)).toBe('connected');
  });

  it('refuses to replace a file that is not a socket', async () => {
    const p = `${dir()}/plain`;
    fs.writeFileSync(p, 'data');
    await expect(bindAll([`unix:${p}`])).rejects.toThrow(`${p} exists and is not a socket`);
    expect(fs.readFileSync(p, 'utf8')).toBe('data');
  });

  it('names a missing directory', async () => {
    const p = `${dir()}/nope/x.sock`;
    await expect(bindAll([`unix:${p}`])).rejects.toThrow(
      `cannot listen on unix:${p}: directory ${path.dirname(p)} does not exist`,
    );
  });

  it('refuses a path too long for sun_path instead of truncating it', async () => {
    const d = dir();
    const p = `${d}/${'x'.repeat(MAX_UNIX_PATH_BYTES - d.length)}`;
    expect(Buffer.byteLength(p)).toBe(MAX_UNIX_PATH_BYTES + 1);
    const err = await bindAll([`unix:${p}`]).catch((e: unknown) => e);
    expect((err as BindError).errno).toBe('ENAMETOOLONG');
    expect((err as Error).message).toContain(`path too long (${MAX_UNIX_PATH_BYTES + 1} bytes`);
    expect(fs.readdirSync(d)).toEqual([]);
    // Exactly at the limit works.
    const ok = `${d}/${'y'.repeat(MAX_UNIX_PATH_BYTES - d.length - 1)}`;
    const [l] = await bindAll([`unix:${ok}`]);
    expect(fs.statSync(l!.path!).isSocket()).toBe(true);
  });
});
