import http from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  assertReusePort,
  bind,
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

  it('the master binds nothing with reusePort, or refuses clearly on an older Node.js', async () => {
    const attempt = bind(['127.0.0.1:0'], { reusePort: true });
    const viaCreate = createListeners({ bind: ['127.0.0.1:0'], reusePort: true, env: {} });
    if (reusePortSupported()) {
      expect(await attempt).toEqual([]);
      expect(await viaCreate).toEqual({ listeners: [], systemd: false });
    } else {
      await expect(attempt).rejects.toBeInstanceOf(ReusePortError);
      await expect(viaCreate).rejects.toThrow(`this is ${process.versions.node}`);
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
