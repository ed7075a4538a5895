import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, EXAMPLES, request, tempDir } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

// The apps run where they are (their frameworks resolve from there); the one file arb
// writes, its control socket, goes to a temp dir instead of the source tree.
function arb(args: string[]) {
  const dir = tempDir();
  dirs.push(dir);
  const ctl = ['--ctl-socket', path.join(dir, 'arb.ctl')];
  const a = new ArbProcess([...ctl, ...args], { cwd: `${EXAMPLES}frameworks` });
  running.push(a);
  return a;
}

describe('example apps through arb with 2 workers', () => {
  it.each([
    ['plain http', 'plain-http.mjs', 'plain'],
    ['Express (CJS)', 'express.cjs', 'express'],
    ['Fastify instance', 'fastify.mjs', 'fastify'],
    ['Koa callback', 'koa.mjs:handler', 'koa'],
    ['Hono fetch handler', 'hono.mjs', 'hono'],
    ['TypeScript', 'typescript.ts', 'typescript'],
    ['async factory', 'factory.mjs:createServer', 'factory'],
    ['ESM named export', 'esm.mjs:app', 'esm'],
    ['CJS module.exports', 'cjs.cjs', 'cjs'],
  ])('%s', async (_name, app, kind) => {
    const a = arb(['-w', '2', '-b', '127.0.0.1:0', '--graceful-timeout', '5', app]);
    const target = await a.tcpTarget();
    const pids = await a.distinctPids(target, 2);
    expect(pids.size).toBe(2);
    const res = await request(target);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).kind).toBe(kind);
    expect(await a.stop()).toBe(0);
  });

  it('Hono receives request bodies through the fetch adapter', async () => {
    const a = arb(['-w', '2', '-b', '127.0.0.1:0', 'hono.mjs']);
    const target = await a.tcpTarget();
    const res = await request(target, { method: 'POST', path: '/echo', body: 'ping' });
    expect(JSON.parse(res.body)).toEqual({ kind: 'hono', echo: 'ping' });
  });
});
