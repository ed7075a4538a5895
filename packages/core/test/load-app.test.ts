// The app export kinds of DESIGN, loaded in-process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AppLoadError } from '../src/errors.js';
import { classify, loadApp } from '../src/worker/load-app.js';
import { FIXTURES, tempDir } from './helpers.js';

const load = (spec: string) => loadApp(spec, FIXTURES);
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

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

/**
 * `loadApp` of the built package in a plain node process: Node's own module loader (under
 * vitest, imports go through vite's), as the worker runs it. Resolves to the error's fields.
 */
function loadInNode(spec: string, dir: string): Pick<AppLoadError, 'name' | 'thrown' | 'where'> {
  const script =
    "const { loadApp } = await import(process.argv[1]); await loadApp(process.argv[2], process.argv[3]).then(() => console.log('{}'), (e) => console.log(JSON.stringify({ name: e.name, thrown: e.thrown, where: e.where })));";
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, DIST, spec, dir], {
    encoding: 'utf8',
  });
  return JSON.parse(r.stdout);
}

describe('an app that does not load says where (in node, from dist/)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  function write(name: string, text: string): string {
    const d = tempDir();
    dirs.push(d);
    fs.writeFileSync(path.join(d, name), text);
    return d;
  }

  it.each([
    ['an ES module (located by node --check)', 'a.mjs'],
    ['a CommonJS module (located from its stack)', 'a.cjs'],
  ])('%s: a syntax error, at the token V8 points at', (_what, name) => {
    const dir = write(name, 'const a = {\n  b: 1,\n  c 2\n};\n');
    expect(loadInNode(name, dir)).toEqual({
      name: 'AppLoadError',
      thrown: 'SyntaxError: Unexpected number',
      where: { file: path.join(dir, name), line: 3, column: 5, text: '  c 2' },
    });
  });

  it('end of input: the end of the last line with code, not the empty line after it', () => {
    const dir = write('a.mjs', 'export default function (q, s) {\n  s.end(\n\n');
    expect(loadInNode('a.mjs', dir)).toEqual({
      name: 'AppLoadError',
      thrown: 'SyntaxError: Unexpected end of input',
      where: { file: path.join(dir, 'a.mjs'), line: 2, column: 9, text: '  s.end(' },
    });
  });

  it('a throw: the frame of the app that threw', () => {
    expect(loadInNode('app-throws.mjs', FIXTURES)).toEqual({
      name: 'AppLoadError',
      thrown: 'Error: this app cannot be loaded',
      where: {
        file: path.join(FIXTURES, 'app-throws.mjs'),
        line: 2,
        column: 7,
        text: "throw new Error('this app cannot be loaded');",
      },
    });
  });
});
