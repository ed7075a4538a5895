import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { LineClientError } from '@arb/sock';
import { afterEach, describe, expect, it } from 'vitest';
import { CompanionClient, ControlServer, request, silentLogger } from '../src/index.js';
import { removeTmpDirs, tmp } from './helpers.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  removeTmpDirs();
});

function rawServer(path: string, onConn: (c: Socket) => void): Promise<Server> {
  // resume(): a socket nobody reads never notices the peer's close, and close() would hang.
  const s = createServer((c) => {
    c.resume();
    onConn(c);
  });
  closers.push(() => new Promise((r) => s.close(r)));
  return new Promise((r) => s.listen(path, () => r(s)));
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as LineClientError,
  );

describe('client', () => {
  it('retries briefly while the socket does not exist yet', async () => {
    const path = join(tmp(), 'c.sock');
    setTimeout(() => {
      const s = new ControlServer({
        path,
        handler: async (r) => ({ ok: true, got: r.cmd }),
        logger: silentLogger(),
      });
      closers.push(() => s.close());
      void s.listen();
    }, 300);
    expect(await request(path, { cmd: 'status' }, { retryMs: 3000 })).toEqual({
      ok: true,
      got: 'status',
    });
  });

  it('gives up on a missing socket after the retry window', async () => {
    const path = join(tmp(), 'none.sock');
    const t0 = Date.now();
    const e = await failure(request(path, { cmd: 'status' }, { retryMs: 300 }));
    expect(e).toBeInstanceOf(LineClientError);
    expect(e.code).toBe('ENOENT');
    expect(e.socketPath).toBe(path);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('times out when no reply comes', async () => {
    const path = join(tmp(), 'c.sock');
    await rawServer(path, (c) => c.on('error', () => {}));
    const e = await failure(request(path, { cmd: 'status' }, { timeoutMs: 300 }));
    expect(e.code).toBe('ETIMEDOUT');
  });

  it('rejects replies that are not a JSON object, and a close without reply', async () => {
    const path = join(tmp(), 'c.sock');
    await rawServer(path, (c) => c.on('error', () => {}).end('nope\n'));
    expect((await failure(request(path, { cmd: 'status' }))).code).toBe('EBADREPLY');
    const path2 = join(tmp(), 'd.sock');
    await rawServer(path2, (c) => c.on('error', () => {}).end('[1]\n'));
    expect((await failure(request(path2, { cmd: 'status' }))).code).toBe('EBADREPLY');
    const path3 = join(tmp(), 'e.sock');
    await rawServer(path3, (c) => c.on('error', () => {}).end());
    expect((await failure(request(path3, { cmd: 'status' }))).code).toBe('EBADREPLY');
  });

  it('sends one compact JSON line per request (typed helpers)', async () => {
    const path = join(tmp(), 'c.sock');
    const seen: string[] = [];
    await rawServer(path, (c) => {
      c.on('error', () => {});
      c.on('data', (d) => {
        seen.push(d.toString());
        c.end('{"ok":true}\n');
      });
    });
    const client = new CompanionClient(path);
    await client.status();
    await client.stop('ticker');
    await client.signal('ticker', 'SIGUSR1');
    expect(seen).toEqual([
      '{"cmd":"status"}\n',
      '{"cmd":"stop","name":"ticker"}\n',
      '{"cmd":"signal","name":"ticker","signal":"SIGUSR1"}\n',
    ]);
  });
});
