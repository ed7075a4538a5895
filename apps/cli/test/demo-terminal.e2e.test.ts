// The quick start as a person runs it: `npx pnpm start` in a terminal (a pty, through
// `script`), "ready" once the workers serve, and Ctrl-C ending it quietly: no red
// ELIFECYCLE from pnpm, nothing left running.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, cleanup, copyExample, request, waitFor } from './harness.js';

const dirs: string[] = [];
const pids: number[] = [];
afterEach(async () => {
  for (const p of pids.splice(0)) if (alive(p)) process.kill(p, 'SIGKILL');
  await cleanup([], dirs);
});

const PNPM = 'pnpm@10.34.9';

describe('the demo in a terminal (pnpm start)', () => {
  it('says ready once it serves; Ctrl-C stops everything without a pnpm error', async () => {
    const cwd = copyExample('hello', dirs);
    const port = 20_000 + (process.pid % 20_000);
    // as from a person's shell: not the npm_* settings of the npm that may run this suite
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(npm_|ARB_)/i.test(k)),
    );
    const term = spawn('script', ['-qfc', `npx --yes ${PNPM} start`, '/dev/null'], {
      cwd,
      env: { ...env, ARB_CMD_ARGS: `-b 127.0.0.1:${port}`, NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    pids.push(term.pid!);
    let out = '';
    term.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    term.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => term.once('exit', (code) => r(code)));
    const ready = await waitFor(
      () => /arb: ready; try curl 127\.0\.0\.1:(\d+), .*\(pid (\d+)\)/.exec(out) ?? undefined,
      60_000,
      `the ready line (output so far: ${out.slice(-1500)})`,
    );
    const master = Number(ready[2]);
    pids.push(master);
    expect(Number(ready[1])).toBe(port);
    // said after the master saw its workers serve, not before
    expect(out.indexOf('Serving with 2 workers')).toBeGreaterThan(-1);
    expect(out.indexOf('Serving with 2 workers')).toBeLessThan(out.indexOf('arb: ready'));
    expect((await request({ host: '127.0.0.1', port })).status).toBe(200);

    const before = out.length;
    term.stdin.write('\x03'); // Ctrl-C: INT to the terminal's foreground process group
    await exited;
    await waitFor(() => !alive(master), 10_000, 'the master to exit');
    const tail = out.slice(before);
    expect(tail).toContain('Shutting down: Master');
    expect(tail).not.toMatch(/ELIFECYCLE|ERR_PNPM|Command failed/);
  }, 120_000); // npx and pnpm start first
});
