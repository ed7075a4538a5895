// The app export kinds of DESIGN, loaded in-process.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppLoadError } from '../src/errors.js';
import { classify, loadApp } from '../src/worker/load-app.js';
import { FIXTURES } from './helpers.js';

const load = (spec: string) => loadApp(spec, FIXTURES);

describe('loadApp', () => {
  it('an ESM request listener (default export)', async () => {
    expect((await load('app-pid.mjs')).kind).toBe('listener');
  });

  it('a CommonJS request listener', async () => {
    expect((await load('app-cjs.cjs')).kind).toBe('listener');
  });

  it('a TypeScript file', async () => {
    expect((await load('app-ts.ts')).kind).toBe('listener');
  });

  it('a fetch handler', async () => {
    expect((await load('app-fetch.mjs')).kind).toBe('fetch');
  });

  it('an http.Server under a named export', async () => {
    expect((await load('app-server.mjs:server')).kind).toBe('server');
  });

  it('a Fastify-shaped instance', async () => {
    expect((await load('app-fastify.mjs')).kind).toBe('fastify');
  });

  it('an async factory is called and its result classified', async () => {
    expect((await load('app-factory.mjs')).kind).toBe('listener');
  });

  it('an absolute path works from any directory', async () => {
    expect((await loadApp(path.join(FIXTURES, 'app-pid.mjs'), '/')).kind).toBe('listener');
  });

  it('every failure is an AppLoadError naming the app', async () => {
    await expect(load('missing.mjs')).rejects.toThrow(AppLoadError);
    await expect(load('missing.mjs')).rejects.toThrow(/no file .*missing\.mjs/);
    await expect(load('app-throws.mjs')).rejects.toThrow(/this app cannot be loaded/);
    await expect(load('app-bad-export.mjs')).rejects.toThrow(/number 42, which is not an app/);
    await expect(load('app-pid.mjs:nope')).rejects.toThrow(/no export named 'nope'/);
    const err = await load('app-bad-export.mjs').catch((e) => e);
    expect(err.app).toBe('app-bad-export.mjs');
  });

  it('the rule: arity 0 is a factory, arity >= 1 a listener, objects by shape', () => {
    expect(classify((_req: unknown) => {})?.kind).toBe('listener');
    expect(classify(() => {})).toBeUndefined();
    expect(classify({ fetch: () => new Response('') })?.kind).toBe('fetch');
    expect(classify({})).toBeUndefined();
    expect(classify(null)).toBeUndefined();
  });
});
