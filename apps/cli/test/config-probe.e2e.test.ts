// A JS/TS config file of plain data is evaluated in a short-lived process, not the master
// (which then never loads jiti: master RSS, docs/BENCHMARKS.md); one with hooks in the
// master, where they run. Either way a reload (HUP) reads the file afresh, and a broken
// file is refused in one line.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, alive, BIN, cleanup, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

function project(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

const app = 'export default (req, res) => res.end("ok");\n';
/** A config that appends the pid of the process evaluating it to `evaluated`. */
const config = (workers: number, hooks: string) => `import fs from 'node:fs';
const n: number = ${workers};
fs.appendFileSync(new URL('./evaluated', import.meta.url), process.pid + '\\n');
export default { app: './app.mjs', bind: '127.0.0.1:0', workers: n${hooks} };
`;
const evaluations = (cwd: string) =>
  fs.readFileSync(path.join(cwd, 'evaluated'), 'utf8').trim().split('\n').map(Number);

describe('config file loading', () => {
  it('plain data: evaluated outside the master, at start and on each reload', async () => {
    const cwd = project({ 'app.mjs': app, 'arb.config.ts': config(1, '') });
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    // the probe (gone once it answered), then the worker (it imports the config module)
    const first = evaluations(cwd);
    expect(first).not.toContain(a.pid);
    expect(first.some((pid) => !alive(pid))).toBe(true);
    fs.writeFileSync(path.join(cwd, 'arb.config.ts'), config(2, ''));
    process.kill(a.pid, 'SIGHUP');
    // a new probe, and the new generation's two workers
    const after = await waitFor(
      () => (evaluations(cwd).length >= first.length + 3 ? evaluations(cwd) : undefined),
      15_000,
      'the reload read the file',
    );
    expect(after).not.toContain(a.pid);
    expect(await a.stop()).toBe(0);
  });

  it('with hooks: evaluated in the master, where the hooks run', async () => {
    const cwd = project({
      'app.mjs': app,
      'arb.config.mjs': config(1, ', onStarting() {}').replace('const n: number', 'const n'),
    });
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    await waitFor(
      () => evaluations(cwd).includes(a.pid) || undefined,
      15_000,
      'the master evaluated the config',
    );
    expect(await a.stop()).toBe(0);
  });

  it('a broken file is refused in one line, exit 1, as when the master loaded it', () => {
    const cwd = project({ 'app.mjs': app, 'arb.config.mjs': 'throw new Error("boom at import")' });
    const r = spawnSync(process.execPath, [BIN], { cwd, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `arb: ${path.join(cwd, 'arb.config.mjs')}: cannot load: boom at import\n`,
    );
  });
});
