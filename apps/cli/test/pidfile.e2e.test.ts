// Issue 13, smaller items: the pidfile is claimed exclusively, a directory is refused.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, tempDir } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

function appDir(): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'ok.mjs'), 'export default (q, s) => s.end("ok")\n');
  return d;
}

const start = (cwd: string) => {
  const a = new ArbProcess(
    ['-p', 'arb.pid', '-b', '127.0.0.1:0', '--ctl-socket', 'none', 'ok.mjs'],
    {
      cwd,
    },
  );
  running.push(a);
  return a;
};

describe('pidfile', () => {
  it('two masters started together: exactly one runs, the other exits 1 naming the pidfile and the pid', async () => {
    for (let round = 0; round < 3; round++) {
      const cwd = appDir();
      const pair = [start(cwd), start(cwd)];
      // the loser exits; the winner serves (each outcome awaited, whichever comes)
      const outcome = await Promise.all(
        pair.map((a) =>
          Promise.race([
            a.exited().then((c) => ({ a, exit: c })),
            a.ready().then(() => ({ a, exit: undefined })),
          ]),
        ),
      );
      const losers = outcome.filter((o) => o.exit !== undefined);
      expect(losers.map((o) => o.exit)).toEqual([1]);
      const winner = outcome.find((o) => o.exit === undefined)!.a;
      expect(losers[0]!.a.stderr).toContain(`Already running on PID ${winner.pid}`);
      expect(losers[0]!.a.stderr).toContain("pid file 'arb.pid'");
      expect(fs.readFileSync(path.join(cwd, 'arb.pid'), 'utf8').trim()).toBe(String(winner.pid));
      await cleanup(running);
    }
  });

  it('a stale pidfile (dead pid) is replaced', async () => {
    const cwd = appDir();
    fs.writeFileSync(path.join(cwd, 'arb.pid'), '999999\n');
    const a = start(cwd);
    await a.ready();
    expect(fs.readFileSync(path.join(cwd, 'arb.pid'), 'utf8').trim()).toBe(String(a.pid));
  });

  it('a pidfile path that is a directory is refused naming the path', async () => {
    const cwd = appDir();
    fs.mkdirSync(path.join(cwd, 'arb.pid'));
    const a = start(cwd);
    expect(await a.exited()).toBe(1);
    expect(a.stderr).toContain("Can't create pidfile arb.pid: it is a directory");
  });
});
