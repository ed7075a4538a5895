// `npx arb app.mjs & kill -TERM $!`: npm runs arb under `sh -c` and the TERM never reaches
// it; the master notices its parent is gone and stops rather than serve on, orphaned.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, alive, cleanup, tempDir, waitFor } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

describe('arb run by npx', () => {
  it('TERM to npx: the master it started stops too, and its workers', async () => {
    const cwd = tempDir();
    dirs.push(cwd);
    fs.writeFileSync(path.join(cwd, 'app.mjs'), 'export default (q, s) => s.end("ok");\n');
    // as from a person's shell: not the npm_* settings of an npm that may run this suite
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const a = new ArbProcess(
      [
        '--no-install',
        '--prefix',
        ROOT,
        'arb',
        '-w',
        '2',
        '-b',
        '127.0.0.1:0',
        '--ctl-socket',
        'none',
        'app.mjs',
      ],
      { cwd, launcher: 'npx', env },
    );
    running.push(a);
    await a.ready();
    const master = a.logs.find((e) => Array.isArray(e.listeners))?.pid as number;
    expect(master).not.toBe(a.pid); // npm's shell is in between: the signal cannot reach it
    process.kill(a.pid, 'SIGTERM');
    await waitFor(() => !alive(master), 10_000, `master ${master} to stop`);
    await a.log((e) => e.msg === 'Shutting down: Master', 'the master to shut down cleanly');
    expect(a.stderr).toContain('arb: the package manager that started arb (pid ');
  });
});
