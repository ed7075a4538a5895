import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { reusePortSupported } from '@arb/sock';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, request, type Target, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const agents: http.Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) a.destroy();
  const stops = await Promise.allSettled(running.splice(0).map((a) => a.stop()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  for (const s of stops) if (s.status === 'rejected') throw s.reason;
});

function appDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  fs.writeFileSync(
    path.join(dir, 'app.mjs'),
    'export default (q, s) => s.end(JSON.stringify({ name: process.env.NAME, pid: process.pid }));\n',
  );
  return dir;
}

function start(dir: string, name: string, bind: string): ArbProcess {
  const a = new ArbProcess(
    [
      '--reuse-port',
      '-w',
      '2',
      '-b',
      bind,
      '-e',
      `NAME=${name}`,
      '--ctl-socket',
      'none',
      'app.mjs',
    ],
    { cwd: dir },
  );
  running.push(a);
  return a;
}

function ask(target: Target, agent: http.Agent | false = false) {
  return request(target, { agent }).then(
    (r) => JSON.parse(r.body) as { name: string; pid: number },
  );
}

const supported = reusePortSupported();

// One set of cases per Node.js: the matrix runs this file on 20 (refused) and 22/24/26.
describe(`--reuse-port on Node.js ${process.versions.node}`, () => {
  if (supported)
    it('two masters serve one port; stopping one loses nothing of the other', async () => {
      const dir = appDir();
      const a = start(dir, 'a', '127.0.0.1:0');
      const target = await a.tcpTarget();
      const b = start(dir, 'b', `127.0.0.1:${(target as { port: number }).port}`);
      await b.ready();
      expect(await b.listening()).toEqual(await a.listening());

      // The kernel spreads new connections over both masters' sockets.
      const seen = new Set<string>();
      await waitFor(
        async () => {
          const r = await ask(target);
          seen.add(r.name);
          (r.name === 'a' ? a : b).pids.add(r.pid);
          return seen.size === 2;
        },
        20_000,
        'both masters to answer on the shared port',
      );

      // Keep-alive connections that landed on b, kept busy while a stops.
      const onB: http.Agent[] = [];
      for (let i = 0; i < 40 && onB.length < 3; i++) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        const r = await ask(target, agent);
        if (r.name === 'b') onB.push(agent);
      }
      expect(onB.length).toBe(3);
      let served = 0;
      const failures: string[] = [];
      let busy = true;
      const loops = onB.map(async (agent) => {
        while (busy) {
          try {
            const r = await ask(target, agent);
            if (r.name !== 'b') failures.push(`answered by ${r.name}`);
            served += 1;
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      });
      a.child.kill('SIGTERM');
      expect(await a.exited()).toBe(0);
      const servedAtStop = served;
      // Once a is gone, every new connection lands on b.
      for (let i = 0; i < 20; i++) expect((await ask(target)).name).toBe('b');
      busy = false;
      await Promise.all(loops);
      expect(failures).toEqual([]);
      expect(servedAtStop).toBeGreaterThan(0);
      expect(served).toBeGreaterThan(servedAtStop);
      expect(await b.stop()).toBe(0);
    });

  if (supported)
    it('a second master without --reuse-port cannot take the port', async () => {
      const dir = appDir();
      const a = start(dir, 'a', '127.0.0.1:0');
      const { port } = (await a.tcpTarget()) as { port: number };
      const c = new ArbProcess(
        ['-w', '1', '-b', `127.0.0.1:${port}`, '--ctl-socket', 'none', 'app.mjs'],
        { cwd: dir, env: { ARB_CMD_ARGS: '' } },
      );
      running.push(c);
      expect(await c.exited()).toBe(1);
      expect(c.stderr).toContain('address in use');
      expect((await ask({ host: '127.0.0.1', port })).name).toBe('a');
    });

  if (!supported)
    it('is refused in one line, nothing started', async () => {
      const dir = appDir();
      const a = start(dir, 'a', '127.0.0.1:0');
      expect(await a.exited()).toBe(1);
      expect(a.stderr).toContain(
        `reusePort needs Node.js >= 22.12 (this is ${process.versions.node}); remove reusePort or upgrade Node.js`,
      );
      expect(a.pids.size).toBeLessThanOrEqual(1);
    });
});
