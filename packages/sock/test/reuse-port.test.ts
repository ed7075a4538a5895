import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  assertReusePort,
  bind,
  close,
  createListeners,
  listenReusePort,
  ReusePortError,
  reusePortSupported,
} from '../src/index.js';

describe('reusePort', () => {
  it('knows which Node.js versions have it', () => {
    expect(reusePortSupported('20.20.2')).toBe(false);
    expect(reusePortSupported('22.11.0')).toBe(false);
    expect(reusePortSupported('22.12.0')).toBe(true);
    expect(reusePortSupported('23.1.0')).toBe(true);
    expect(reusePortSupported('24.0.0')).toBe(true);
    expect(() => assertReusePort('20.20.2')).toThrow(
      'reusePort needs Node.js >= 22.12 (this is 20.20.2); remove reusePort or upgrade Node.js',
    );
    expect(() => assertReusePort('22.12.0')).not.toThrow();
  });

  it('the master binds with SO_REUSEPORT: a second bind of the same address works, both accept', async () => {
    const first = bind(['127.0.0.1:0'], { reusePort: true });
    if (!reusePortSupported()) {
      await expect(first).rejects.toBeInstanceOf(ReusePortError);
      await expect(
        createListeners({ bind: ['127.0.0.1:0'], reusePort: true, env: {} }),
      ).rejects.toThrow(`this is ${process.versions.node}`);
      return;
    }
    const [a] = await first;
    const port = a!.port!;
    const {
      listeners: [b],
    } = await createListeners({
      bind: [`127.0.0.1:${port}`],
      reusePort: true,
      env: {},
      retries: 1,
    });
    const servers: net.Server[] = [];
    try {
      expect(b!.port).toBe(port);
      // Both sockets listen and accept: the kernel spreads connections over them.
      const seen = new Set<string>();
      for (const [name, l] of [
        ['a', a!],
        ['b', b!],
      ] as const) {
        const s = net.createServer((c) => c.end(name));
        servers.push(s);
        await new Promise<void>((r) => s.listen({ fd: l.fd }, r));
      }
      for (let i = 0; i < 200 && seen.size < 2; i++) seen.add(await read(port));
      expect([...seen].sort()).toEqual(['a', 'b']);
      // Without SO_REUSEPORT on the newcomer the address stays taken.
      await expect(bind([`127.0.0.1:${port}`], { retries: 1 })).rejects.toThrow('address in use');
    } finally {
      for (const s of servers) s.close();
      close([a!, b!], { unlink: false });
    }
  });

  it('two servers share a port in reusePort mode, or refuse clearly', async () => {
    const a = http.createServer((_q, r) => r.end('a'));
    const b = http.createServer((_q, r) => r.end('b'));
    try {
      if (!reusePortSupported()) {
        await expect(listenReusePort(a, '127.0.0.1:0')).rejects.toBeInstanceOf(ReusePortError);
        expect(a.listening).toBe(false);
        return;
      }
      await listenReusePort(a, '127.0.0.1:0');
      const { port } = a.address() as { port: number };
      await listenReusePort(b, `127.0.0.1:${port}`);
      expect(b.listening).toBe(true);
      await expect(listenReusePort(http.createServer(), 'unix:/tmp/x.sock')).rejects.toThrow(
        'TCP addresses only',
      );
    } finally {
      a.close();
      b.close();
    }
  });
});

function read(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    net
      .connect(port, '127.0.0.1')
      .on('data', (d) => {
        out += d;
      })
      .on('end', () => resolve(out))
      .on('error', reject);
  });
}
