// A stop signal that arrives during a stop (a terminal's Ctrl-C reaches the master, and the
// package manager that started it forwards another INT) must not hold the stop up: the
// master ends as soon as its children are gone, not at the end of the graceful timeout.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, tempDir } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

describe('signals during a stop', () => {
  it.each([
    ['INT, INT', ['SIGINT', 'SIGINT']],
    ['INT, HUP', ['SIGINT', 'SIGHUP']],
    ['TERM, TERM', ['SIGTERM', 'SIGTERM']],
  ] as const)('%s: the master exits 0 once its workers are gone', async (_name, signals) => {
    const cwd = tempDir();
    dirs.push(cwd);
    fs.writeFileSync(
      path.join(cwd, 'app.mjs'),
      'export default (req, res) => res.end(String(process.pid));\n',
    );
    // a companion: its manager's exit is what the stop waits for longest
    fs.writeFileSync(
      path.join(cwd, 'arb.config.json'),
      JSON.stringify({
        app: './app.mjs',
        bind: '127.0.0.1:0',
        workers: 2,
        gracefulTimeout: 30,
        ctl: { socket: 'none' },
        companions: { socket: './c.sock', workers: [{ name: 'idle', command: ['sleep', '300'] }] },
      }),
    );
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const sent = performance.now();
    for (const sig of signals) process.kill(a.pid, sig);
    expect(await a.exited()).toBe(0);
    // the workers stop at once on INT and TERM alike (they serve no request): seconds at
    // most, where a stop that spins on the queued signal takes the 30 s timeout
    expect(performance.now() - sent).toBeLessThan(8000);
    await a.log((e) => e.msg === 'Shutting down: Master', 'Shutting down');
  });
});
