import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, request, tempDir } from './harness.js';

const LAUNCHER = fileURLToPath(new URL('../bin/arb', import.meta.url));
const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

describe('the arb launcher (bin/arb)', () => {
  it('runs the master lean, but the workers with full Node.js (optimizer and WebAssembly)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    // A worker reports its Node options and whether WebAssembly is there.
    fs.writeFileSync(
      path.join(dir, 'app.mjs'),
      'export default (q, s) => s.end(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, wasm: typeof WebAssembly }));\n',
    );
    const a = new ArbProcess(['-w', '2', '-b', '127.0.0.1:0', '--ctl-socket', 'none', 'app.mjs'], {
      cwd: dir,
      launcher: LAUNCHER,
    });
    running.push(a);
    const target = await a.tcpTarget();
    const body = JSON.parse((await request(target)).body);
    a.pids.add(body.pid);
    expect(body).toMatchObject({ execArgv: [], wasm: 'object' });
    // The launcher execs node in place: the master has the launcher's pid (pidfiles and
    // systemd's MAINPID name the master itself).
    expect(a.logs.find((e) => Array.isArray(e.listeners))?.pid).toBe(a.pid);
    expect(await a.stop()).toBe(0);
  });
});
