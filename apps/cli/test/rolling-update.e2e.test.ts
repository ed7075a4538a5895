// A rolling update across two "hosts" (two arb instances on two ports) behind haproxy, which
// health-checks their /readyz: each is replaced in turn (TERM with --shutdown-delay, the new
// one started on the same ports, on once /readyz says so and haproxy agrees) under
// continuous load through haproxy, keep-alive and new connections. Not one request fails.
import fs from 'node:fs';
import path from 'node:path';
import { type Backend, freePort, Haproxy } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, request, tempDir, waitFor } from './harness.js';
import { LoadLoop } from './load.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const proxies: Haproxy[] = [];
afterEach(() =>
  cleanup(running, dirs, [
    async () => {
      for (const h of proxies.splice(0)) await h.stop();
    },
  ]),
);

// `version` is the instance that answered (the load loop records it), after a little work
// so that requests are in flight when an instance drains.
const APP = `const version = process.env.INSTANCE;
export default (req, res) => {
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version, pid: process.pid }));
  }, 2);
};
`;

/** Seconds an old instance keeps accepting after TERM: haproxy needs one check (200 ms). */
const DELAY = 1;

function startInstance(cwd: string, name: string, b: Backend): ArbProcess {
  const a = new ArbProcess(
    [
      '-b',
      `127.0.0.1:${b.port}`,
      '--health-bind',
      `127.0.0.1:${b.healthPort}`,
      '-w',
      '2',
      '--shutdown-delay',
      String(DELAY),
      '--graceful-timeout',
      '10',
      '--ctl-socket',
      'none',
      '-e',
      `INSTANCE=${name}`,
      'app.mjs',
    ],
    { cwd },
  );
  running.push(a);
  return a;
}

async function readyz(b: Backend): Promise<number> {
  return (await request({ host: '127.0.0.1', port: b.healthPort }, { path: '/readyz' })).status;
}

describe('rolling update behind haproxy', () => {
  it('replaces both instances one at a time under load: 0 failed requests, both new ones serve', async () => {
    const cwd = tempDir();
    dirs.push(cwd);
    fs.writeFileSync(path.join(cwd, 'app.mjs'), APP);
    const backends: Backend[] = [];
    for (const name of ['a', 'b'])
      backends.push({ name, port: await freePort(), healthPort: await freePort() });
    const instances = new Map<string, ArbProcess>();
    for (const b of backends) instances.set(b.name, startInstance(cwd, `${b.name}1`, b));
    for (const a of instances.values()) await a.ready();

    const h = new Haproxy(cwd, await freePort(), backends);
    proxies.push(h);
    for (const b of backends) await h.waitStatus(b.name, 'UP');
    const load = new LoadLoop([{ host: '127.0.0.1', port: h.port }], { fresh: 3, keepAlive: 3 });
    try {
      await load.progress(200);
      expect(load.versionsSince(0)).toEqual(new Set(['a1', 'b1']));

      const rollStart = Date.now();
      for (const b of backends) {
        const old = instances.get(b.name)!;
        const t0 = Date.now();
        old.child.kill('SIGTERM');
        // haproxy takes it out while it still accepts: within the delay
        await h.waitStatus(b.name, 'DOWN', DELAY * 1000);
        expect(Date.now() - t0).toBeLessThan(DELAY * 1000);
        expect(await old.stop()).toBe(0);
        const fresh = startInstance(cwd, `${b.name}2`, b);
        instances.set(b.name, fresh);
        await fresh.ready();
        await waitFor(async () => (await readyz(b)) === 200, 10_000, `${b.name}2 /readyz 200`);
        await h.waitStatus(b.name, 'UP');
        const since = Date.now();
        await load.progress(100);
        expect(load.versionsSince(since)).toContain(`${b.name}2`);
      }
      await load.progress(100);
      const after = load.versionsSince(rollStart);
      expect(after).toContain('a2');
      expect(after).toContain('b2');
      // nothing answered from an old instance once both were replaced
      const last = load.answers.slice(-50).map((x) => x.version);
      expect(new Set(last)).toEqual(new Set(['a2', 'b2']));
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0);
    expect(load.count).toBeGreaterThan(500);
    for (const a of instances.values()) expect(await a.stop()).toBe(0);
    await h.stop();
  });
});
