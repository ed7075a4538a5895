// `arb --reload` (development mode) through the real `arb` binary: real files edited, real
// inotify events, real reloads; every process stopped and checked gone.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, request, type Target, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];

afterEach(() => cleanup(running, dirs));

function jsApp(version: string): string {
  return `export default (req, res) => res.end(${JSON.stringify(version)});\n`;
}

function start(dir: string, app: string, args: string[] = []): ArbProcess {
  const arb = new ArbProcess(['--reload', '-b', '127.0.0.1:0', ...args, app], { cwd: dir });
  running.push(arb);
  return arb;
}

function newDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

function lines(arb: ArbProcess, match: (msg: string) => boolean): Record<string, unknown>[] {
  return arb.logs.filter((e) => typeof e.msg === 'string' && match(e.msg));
}

const reloads = (arb: ArbProcess) => lines(arb, (m) => m.startsWith('Files changed: ')).length;
const hups = (arb: ArbProcess) => lines(arb, (m) => m === 'Hang up: Master').length;

async function body(target: Target): Promise<string> {
  const res = await request(target);
  return res.body;
}

/** Writes `text` to `file`, then polls until the server answers `want`: ms from the write. */
async function editAndSee(target: Target, file: string, text: string, want: string) {
  const t0 = performance.now();
  fs.writeFileSync(file, text);
  await waitFor(async () => (await body(target)) === want, 10_000, `the answer ${want}`, 20);
  return performance.now() - t0;
}

/** The generation number the last `Reload complete` line named (0 when none). */
function servingGeneration(arb: ArbProcess): number {
  const done = lines(arb, (m) => m === 'Reload complete');
  return (done.at(-1)?.generation as number | undefined) ?? 0;
}

describe('arb --reload', () => {
  it('serves an edit within 2 s, keeps the old code over a syntax error, and serves the fix', async () => {
    const dir = newDir();
    const app = path.join(dir, 'app.mjs');
    fs.writeFileSync(app, jsApp('v1'));
    const arb = start(dir, 'app.mjs', ['-w', '2']);
    const target = await arb.tcpTarget();
    expect(await body(target)).toBe('v1');
    await arb.log((e) => String(e.msg).startsWith('Reload on change: watching'), 'the watch line');

    const v2ms = await editAndSee(target, app, jsApp('v2'), 'v2');
    expect(v2ms).toBeLessThan(2000);
    // the old generation is gone before the reload completes: only v2 answers now
    await waitFor(() => servingGeneration(arb) === 1, 10_000, 'generation 1 to serve');
    for (let i = 0; i < 6; i++) expect(await body(target)).toBe('v2');

    // a broken edit: the new generation fails, v2 keeps serving, one line says where and why
    fs.writeFileSync(app, 'export default (req, res) => res.end("v3";\n');
    const failed = await arb.log(
      (e) => String(e.msg).startsWith('Reload failed:'),
      'the rollback line',
    );
    expect(failed.msg).toMatch(
      /^Reload failed: .*could not load the app: app\.mjs:1:\d+: SyntaxError: .*; generation 2 stopped, generation 1 keeps serving$/,
    );
    expect(lines(arb, (m) => m.startsWith('Reload failed:'))).toHaveLength(1);
    for (let i = 0; i < 6; i++) expect(await body(target)).toBe('v2');

    const v3ms = await editAndSee(target, app, jsApp('v3'), 'v3');
    expect(v3ms).toBeLessThan(2000);
    await waitFor(() => servingGeneration(arb) === 3, 10_000, 'generation 3 to serve');
    expect(await arb.stop()).toBe(0);
  });

  it('does not reload for node_modules, .git, ignored globs or its own files; does for the rest', async () => {
    const dir = newDir();
    fs.mkdirSync(path.join(dir, 'node_modules', 'dep'), { recursive: true });
    fs.mkdirSync(path.join(dir, '.git'));
    fs.mkdirSync(path.join(dir, 'data'));
    fs.mkdirSync(path.join(dir, 'lib'));
    fs.writeFileSync(path.join(dir, 'lib', 'answer.mjs'), 'export const answer = "v1";\n');
    fs.writeFileSync(
      path.join(dir, 'app.mjs'),
      'import { answer } from "./lib/answer.mjs";\nexport default (req, res) => res.end(answer);\n',
    );
    fs.writeFileSync(
      path.join(dir, 'arb.config.mjs'),
      'export default { devReload: { ignore: ["*.log", "data/**"] } };\n',
    );
    // the access log goes to a file in the watched tree: arb's own writes never reload
    const arb = start(dir, 'app.mjs', ['--access-log', path.join(dir, 'access.txt')]);
    const target = await arb.tcpTarget();
    await arb.log((e) => String(e.msg).startsWith('Reload on change: watching'), 'the watch line');
    expect(await body(target)).toBe('v1');

    fs.writeFileSync(path.join(dir, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;\n');
    fs.writeFileSync(path.join(dir, '.git', 'index'), 'x');
    fs.writeFileSync(path.join(dir, 'app.log'), 'a line\n');
    fs.writeFileSync(path.join(dir, 'data', 'rows.json'), '[]');
    fs.mkdirSync(path.join(dir, 'data', 'more'));
    fs.writeFileSync(path.join(dir, '.app.mjs.swp'), 'vim');
    for (let i = 0; i < 5; i++) expect(await body(target)).toBe('v1'); // access log lines
    // the same edit that would reload, a moment later, proves the watch was on meanwhile
    await new Promise((r) => setTimeout(r, 600));
    expect(reloads(arb)).toBe(0);
    expect(hups(arb)).toBe(0);
    expect(fs.statSync(path.join(dir, 'access.txt')).size).toBeGreaterThan(0);

    // a module the app imports, one directory down: reloads, and names only itself
    const ms = await editAndSee(
      target,
      path.join(dir, 'lib', 'answer.mjs'),
      'export const answer = "v2";\n',
      'v2',
    );
    expect(ms).toBeLessThan(2000);
    const line = await arb.log(
      (e) => String(e.msg).startsWith('Files changed: '),
      'the reload line',
    );
    expect(line.changed).toEqual([path.join('lib', 'answer.mjs')]);
    expect(await arb.stop()).toBe(0);
  });

  it('makes one reload of a burst of writes (debounce)', async () => {
    const dir = newDir();
    const app = path.join(dir, 'app.mjs');
    fs.writeFileSync(app, jsApp('v0'));
    const arb = start(dir, 'app.mjs');
    const target = await arb.tcpTarget();
    await arb.log((e) => String(e.msg).startsWith('Reload on change: watching'), 'the watch line');
    // five saves 20 ms apart: each within the 150 ms of quiet the watch waits for
    for (let i = 1; i <= 5; i++) {
      fs.writeFileSync(app, jsApp(`v${i}`));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(async () => (await body(target)) === 'v5', 10_000, 'the last version');
    await waitFor(() => servingGeneration(arb) === 1, 10_000, 'generation 1 to serve');
    // time for a second reload to begin, had the burst been cut in two
    await new Promise((r) => setTimeout(r, 600));
    expect(lines(arb, (m) => m.startsWith('Files changed: ')).map((e) => e.changed)).toEqual([
      ['app.mjs'],
    ]);
    expect(hups(arb)).toBe(1);
    expect(await arb.stop()).toBe(0);
  });

  it('reloads a TypeScript app on an edit, through the same loader', async () => {
    const dir = newDir();
    const app = path.join(dir, 'app.ts');
    const ts = (v: string) =>
      `import type { IncomingMessage, ServerResponse } from 'node:http';\n` +
      `const version: string = ${JSON.stringify(v)};\n` +
      `export default (_req: IncomingMessage, res: ServerResponse): void => { res.end(version); };\n`;
    fs.writeFileSync(app, ts('t1'));
    const arb = start(dir, 'app.ts');
    const target = await arb.tcpTarget();
    expect(await body(target)).toBe('t1');
    await arb.log((e) => String(e.msg).startsWith('Reload on change: watching'), 'the watch line');
    expect(await editAndSee(target, app, ts('t2'), 't2')).toBeLessThan(2000);
    expect(await arb.stop()).toBe(0);
  });

  it('works with --preload: workers are new processes that import the edit afresh', async () => {
    const dir = newDir();
    const app = path.join(dir, 'app.mjs');
    fs.writeFileSync(app, jsApp('p1'));
    const arb = start(dir, 'app.mjs', ['--preload']);
    const target = await arb.tcpTarget();
    expect(await body(target)).toBe('p1');
    await arb.log((e) => String(e.msg).startsWith('Reload on change: watching'), 'the watch line');
    expect(await editAndSee(target, app, jsApp('p2'), 'p2')).toBeLessThan(2000);
    expect(await arb.stop()).toBe(0);
  });
});
