// Issue 13 items 4, 5 and 11: a worker that served and then dies is replaced at once (the
// crash backoff is for boot failures only, per slot); an uncaught error in one request lets
// the worker's other in-flight requests finish; workerExit runs however a worker ends.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, type Target, tempDir, waitFor } from './harness.js';
import { LoadLoop } from './load.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

function setup(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

/** A GET that resolves with the status, or the error code of a reset/refused connection. */
function get(target: Target, urlPath: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ ...target, path: urlPath, agent: false, timeout: 20_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('a worker that served and then died is replaced at once', () => {
  it('an app that exits at random under load never leaves the service without workers', async () => {
    // each worker serves 3..12 requests, then exits on its own (a leak check, a bad library)
    const app = `let left = 3 + Math.floor(Math.random() * 10);
export default (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version: 'v1', pid: process.pid }), () => {
    if (--left <= 0) process.exit(0);
  });
};
`;
    const cwd = setup({ 'app.mjs': app });
    const a = new ArbProcess(['-w', '2', '-b', '127.0.0.1:0', 'app.mjs'], { cwd });
    running.push(a);
    const target = await a.tcpTarget();
    const load = new LoadLoop([target], { fresh: 2, keepAlive: 1 });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    await load.stop();
    const ended = Date.now();
    // the longest stretch without any answer: time with no worker serving, as clients see it
    const times = [started, ...load.answers.map((x) => x.sentAt).sort((x, y) => x - y), ended];
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
    const exits = a.logs.filter((e) => /exited with code 0|exited/.test(String(e.msg))).length;
    const backoffs = a.logs.filter((e) => String(e.msg).includes('next spawn in')).length;
    process.stderr.write(
      `random exits: ${load.count} answered, ${load.failures.length} failed, ${exits} worker exits, ` +
        `longest stretch without an answer ${longest} ms, ${backoffs} backoff lines\n`,
    );
    expect(exits).toBeGreaterThan(10);
    expect(backoffs).toBe(0);
    expect(longest).toBeLessThan(1000);
    // process.exit cuts the connections the dying worker had just accepted (the app's own
    // doing, a couple per exit at most); nothing else fails
    expect(load.failures.length).toBeLessThanOrEqual(2 * exits);
    for (const pid of load.answers.map((x) => x.pid)) a.pids.add(pid);
  });

  it('a worker that fails to boot backs off, per slot, while the others keep serving', async () => {
    // the second worker to boot fails at import (a flaky dependency): its slot backs off,
    // the first one serves throughout
    const app = `import fs from 'node:fs';
let n = 0; // this boot's number, claimed exclusively
for (;;) { try { fs.writeFileSync('boot.' + n, '', { flag: 'wx' }); break; } catch { n++; } }
if (n >= 1 && n < 5) { await new Promise((r) => setTimeout(r, 50)); process.exit(1); }
export default (req, res) => res.end(String(process.pid));
`;
    const cwd = setup({ 'app.mjs': app });
    const a = new ArbProcess(['-w', '2', '-b', '127.0.0.1:0', 'app.mjs'], { cwd });
    running.push(a);
    await a.log((e) => String(e.msg).includes('next spawn in'), 'a boot backoff', 20_000);
    await a.ready();
    const target = await a.tcpTarget();
    expect(await get(target, '/')).toBe(200);
    // the first worker was never touched: one boot of slot 1 backed off, not the service
    const booted = a.logs.filter((e) => String(e.msg).startsWith('Booting worker')).length;
    expect(booted).toBe(6);
    // whichever slot's process claimed the failing boots (the two race to import): that
    // slot alone backs off
    const slots = new Set(
      a.logs.flatMap((e) => /^Worker (\d+) keeps failing to boot/.exec(String(e.msg))?.[1] ?? []),
    );
    expect(slots.size).toBe(1);
  });
});

describe('an uncaught error in one request', () => {
  const app = `export default (req, res) => {
  if (req.url === '/throw') {
    setTimeout(() => { throw new Error('async boom'); }, 10);
    return;
  }
  if (req.url === '/reject') {
    setTimeout(() => Promise.reject(new Error('rejected boom')), 10);
    return;
  }
  setTimeout(() => res.end('slow ' + process.pid), 600);
};
`;
  const hooks = (file: string) =>
    `import fs from 'node:fs';
export default {
  workerExit(server, worker) { fs.appendFileSync(${JSON.stringify(file)}, 'exit ' + worker.pid + '\\n'); },
};
`;

  for (const path_ of ['/throw', '/reject']) {
    it(`${path_}: the other in-flight requests on that worker complete, workerExit runs, it is replaced`, async () => {
      const cwd = setup({ 'app.mjs': app });
      const marks = path.join(cwd, 'exits.txt');
      fs.writeFileSync(path.join(cwd, 'arb.config.mjs'), hooks(marks));
      const a = new ArbProcess(
        ['-c', 'arb.config.mjs', '-w', '1', '-b', '127.0.0.1:0', 'app.mjs'],
        { cwd },
      );
      running.push(a);
      const target = await a.tcpTarget();
      const slow = Array.from({ length: 20 }, () => get(target, '/slow'));
      await new Promise((r) => setTimeout(r, 150)); // all twenty are in flight on the one worker
      void get(target, path_);
      const results = await Promise.all(slow);
      const resets = results.filter((r) => r !== 200).length;
      process.stderr.write(`uncaught ${path_}: ${resets} of 20 in-flight requests failed\n`);
      expect(results).toEqual(Array(20).fill(200));
      await a.log((e) => e.msg === 'Exception in worker process', 'the exception logged');
      await waitFor(
        () => fs.existsSync(marks) && fs.readFileSync(marks, 'utf8').includes('exit'),
        10_000,
        'workerExit',
      );
      // replaced: a new worker answers
      await waitFor(async () => (await get(target, '/slow')) === 200, 15_000, 'a replacement');
    });
  }
});

describe('workerExit runs however a worker ends', () => {
  it('when the worker fails to boot (exit 3/4 once hooks are loaded)', async () => {
    const cwd = setup({ 'app.mjs': 'export default 42;\n' });
    const marks = path.join(cwd, 'exits.txt');
    fs.writeFileSync(
      path.join(cwd, 'arb.config.mjs'),
      `import fs from 'node:fs';
export default { workerExit(s, w) { fs.appendFileSync(${JSON.stringify(marks)}, 'exit ' + w.pid + '\\n'); } };
`,
    );
    const a = new ArbProcess(['-c', 'arb.config.mjs', '-w', '1', '-b', '127.0.0.1:0', 'app.mjs'], {
      cwd,
    });
    running.push(a);
    expect(await a.exited()).toBe(4);
    expect(fs.readFileSync(marks, 'utf8')).toMatch(/^exit \d+\n/);
  });

  it('when the worker is orphaned (master killed with SIGKILL)', async () => {
    const cwd = setup({ 'app.mjs': 'export default (q, s) => s.end(String(process.pid));\n' });
    const marks = path.join(cwd, 'exits.txt');
    fs.writeFileSync(
      path.join(cwd, 'arb.config.mjs'),
      `import fs from 'node:fs';
export default { workerExit(s, w) { fs.appendFileSync(${JSON.stringify(marks)}, 'exit ' + w.pid + '\\n'); } };
`,
    );
    const a = new ArbProcess(['-c', 'arb.config.mjs', '-w', '1', '-b', '127.0.0.1:0', 'app.mjs'], {
      cwd,
    });
    running.push(a);
    const target = await a.tcpTarget();
    const res = await new Promise<string>((resolve, reject) =>
      http
        .get({ ...target, path: '/', agent: false }, (r) => {
          let b = '';
          r.on('data', (c) => (b += c)).on('end', () => resolve(b));
        })
        .on('error', reject),
    );
    const worker = Number(res);
    a.pids.add(worker);
    a.child.kill('SIGKILL');
    await waitFor(
      () => fs.existsSync(marks) && fs.readFileSync(marks, 'utf8').trim() === `exit ${worker}`,
      10_000,
      'workerExit of the orphan',
    );
  });
});
