import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, request, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

const APP = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;
// Boots only once ./go exists: the test decides when a worker serves.
const GATED_APP = `import fs from 'node:fs';
while (!fs.existsSync('./go')) await new Promise((r) => setTimeout(r, 50));
${APP}`;

function project(files: Record<string, string> = {}): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), APP);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

function start(cwd: string, args: string[]): ArbProcess {
  const a = new ArbProcess(['-b', '127.0.0.1:0', ...args], { cwd });
  running.push(a);
  return a;
}

/** The URL an endpoint server logged (`{"health":"http://..."}` or `{"metrics":...}`). */
async function urlOf(a: ArbProcess, what: 'health' | 'metrics'): Promise<string> {
  const entry = await a.log((e) => typeof e[what] === 'string', `the ${what} server`);
  return entry[what] as string;
}

interface Answer {
  status: number;
  body: string;
  type: string | undefined;
}

/** One request on a fresh connection (a probe opens its own, as kubelet and haproxy do). */
function probe(url: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

async function readyz(base: string): Promise<{ status: number; body: unknown }> {
  const r = await probe(`${base}/readyz`);
  expect(r.body.endsWith('\n') && !r.body.slice(0, -1).includes('\n')).toBe(true);
  return { status: r.status, body: JSON.parse(r.body) };
}

const notReady = (reason: string) => ({ ready: false, reason });

describe('health endpoints', () => {
  it('/livez and /readyz on the health and the metrics server; other paths 404; HEAD works', async () => {
    const cwd = project();
    const a = start(cwd, [
      '--health-bind',
      '127.0.0.1:0',
      '--metrics-bind',
      '127.0.0.1:0',
      '-w',
      '2',
      'app.mjs',
    ]);
    await a.ready();
    const health = await urlOf(a, 'health');
    const metrics = await urlOf(a, 'metrics');
    expect(health).not.toBe(metrics);
    for (const base of [health, metrics]) {
      const live = await probe(`${base}/livez`);
      expect([live.status, JSON.parse(live.body)]).toEqual([200, { live: true }]);
      expect(live.type).toBe('application/json');
      expect(await readyz(base)).toEqual({ status: 200, body: { ready: true } });
      const head = await probe(`${base}/readyz`, 'HEAD');
      expect([head.status, head.body]).toEqual([200, '']);
      const headLive = await probe(`${base}/livez`, 'HEAD');
      expect([headLive.status, headLive.body]).toEqual([200, '']);
      for (const p of ['/', '/healthz', '/readyz/x', '/metricsx'])
        expect((await probe(`${base}${p}`)).status, `${base}${p}`).toBe(404);
      expect((await probe(`${base}/readyz`, 'POST')).status).toBe(405);
    }
    // /metrics only on the metrics server
    expect((await probe(`${health}/metrics`)).status).toBe(404);
    const scraped = await probe(`${metrics}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('arb_workers_alive 2');
    // the query string does not change the path
    expect((await probe(`${health}/readyz?verbose=1`)).status).toBe(200);
    expect(await a.stop()).toBe(0);
  });

  it('/readyz is 503 "no worker serves" until a worker boots; /livez is 200 meanwhile', async () => {
    const cwd = project({ 'app.mjs': GATED_APP });
    const a = start(cwd, ['--health-bind', '127.0.0.1:0', 'app.mjs']);
    const health = await urlOf(a, 'health');
    // the worker is spawned and held at its import: nothing serves
    await a.log((e) => /^Booting worker/.test(String(e.msg)), 'Booting worker');
    for (let i = 0; i < 3; i++) {
      expect(await readyz(health)).toEqual({ status: 503, body: notReady('no worker serves') });
      expect((await probe(`${health}/livez`)).status).toBe(200);
      await sleep(100);
    }
    fs.writeFileSync(path.join(cwd, 'go'), '');
    await a.ready();
    expect(await readyz(health)).toEqual({ status: 200, body: { ready: true } });
    expect(await a.stop()).toBe(0);
  });

  it('/livez fails while the master loop is stuck (a hook that hangs), and recovers with it', async () => {
    const cwd = project({
      // TTIN runs nworkersChanged inside a pass of the loop: 4 s of a stuck loop
      'arb.config.mjs': `export default {
  nworkersChanged(server, value) {
    if (value === 2) return new Promise((r) => setTimeout(r, 4000));
  },
};
`,
    });
    const a = start(cwd, ['--health-bind', '127.0.0.1:0', 'app.mjs']);
    await a.ready();
    const health = await urlOf(a, 'health');
    expect((await probe(`${health}/livez`)).status).toBe(200);
    a.child.kill('SIGTTIN');
    await a.log((e) => /ttin/.test(String(e.msg)), 'Handling signal: ttin');
    const stuck = await probe(`${health}/livez`);
    expect(stuck.status).toBe(503);
    expect(JSON.parse(stuck.body)).toEqual({
      live: false,
      reason: 'the master loop did not turn within 2000 ms',
    });
    // the worker still serves: ready, only the loop is not live
    expect((await readyz(health)).status).toBe(200);
    await waitFor(
      async () => (await probe(`${health}/livez`)).status === 200,
      10_000,
      '/livez 200 once the hook returned',
    );
    expect(await a.stop()).toBe(0);
  });
});

describe('--shutdown-delay', () => {
  async function serving(args: string[]) {
    const cwd = project();
    const a = start(cwd, ['--health-bind', '127.0.0.1:0', '-w', '2', ...args, 'app.mjs']);
    const target = await a.tcpTarget();
    const health = await urlOf(a, 'health');
    expect(await readyz(health)).toEqual({ status: 200, body: { ready: true } });
    return { a, target, health };
  }

  const delayStarted = (a: ArbProcess) =>
    a.log((e) => String(e.msg).startsWith('Shutdown delay:'), 'the shutdown delay line');

  it('on TERM /readyz turns 503 at once, a new connection 0.3 s later is served, then drain and exit', async () => {
    const { a, target, health } = await serving(['--shutdown-delay', '2']);
    const t0 = performance.now();
    a.child.kill('SIGTERM');
    await delayStarted(a);
    expect(await readyz(health)).toEqual({ status: 503, body: notReady('stopping') });
    expect((await probe(`${health}/livez`)).status).toBe(200);
    await sleep(Math.max(0, 300 - (performance.now() - t0)));
    const late = await request(target); // agent: false, a new connection
    expect(late.status).toBe(200);
    expect(a.pids.has(JSON.parse(late.body).pid)).toBe(false); // a worker, not a log pid yet
    a.pids.add(JSON.parse(late.body).pid);
    // still accepting, and still not ready, near the end of the delay
    await sleep(Math.max(0, 1500 - (performance.now() - t0)));
    expect((await request(target)).status).toBe(200);
    expect((await readyz(health)).status).toBe(503);
    expect(await a.exited()).toBe(0);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(2000);
    expect(took).toBeLessThan(2000 + 3000);
    await expect(request(target)).rejects.toThrow(/ECONNREFUSED/);
    expect(a.logs.some((e) => e.msg === 'Shutting down: Master')).toBe(true);
    expect(await a.stop()).toBe(0);
  });

  it('a second TERM ends the delay early (and says so)', async () => {
    const { a } = await serving(['--shutdown-delay', '30']);
    const t0 = performance.now();
    a.child.kill('SIGTERM');
    await delayStarted(a);
    a.child.kill('SIGTERM');
    expect(await a.exited()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
    await a.log((e) => /ended early: TERM received again/.test(String(e.msg)), 'ended early');
    expect(await a.stop()).toBe(0);
  });

  it('INT during the delay stops at once (quick)', async () => {
    const { a } = await serving(['--shutdown-delay', '30']);
    const t0 = performance.now();
    a.child.kill('SIGTERM');
    await delayStarted(a);
    a.child.kill('SIGINT');
    expect(await a.exited()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
    await a.log((e) => /Quick shutdown requested during/.test(String(e.msg)), 'quick stop line');
    expect(await a.stop()).toBe(0);
  });
});

describe('the companions stop budget (shutdownDelay + gracefulTimeout)', () => {
  it('warns at start about each companion whose stopTimeout does not fit, and only those', async () => {
    const cwd = project({
      'arb.config.json': JSON.stringify({
        companions: {
          workers: [
            { name: 'slow', command: ['sleep', '300'], stopTimeout: 90 },
            { name: 'fits', command: ['sleep', '300'], stopTimeout: 5 },
            { name: 'plain', command: ['sleep', '300'] },
          ],
        },
      }),
    });
    const a = start(cwd, ['--graceful-timeout', '5', '--shutdown-delay', '1', 'app.mjs']);
    await a.ready();
    const warning = await a.log((e) => /^Companion slow:/.test(String(e.msg)), 'budget warning');
    expect(warning.level).toBe(40);
    expect(warning.msg).toBe(
      'Companion slow: stopTimeout 90 s does not fit the stop budget of 6 s (shutdownDelay 1 + ' +
        'gracefulTimeout 5; companions stop after the delay): a TERM may take 91 s; give it ' +
        'stopTimeout <= 5 or raise gracefulTimeout',
    );
    await a.log((e) => /Listening at/.test(String(e.msg)), 'Listening at');
    expect(a.logs.filter((e) => /^Companion /.test(String(e.msg)))).toHaveLength(1);
    expect(await a.stop()).toBe(0);
  });

  it('a companion that leaves a timer running no longer holds TERM for 60 s: it gets gracefulTimeout', async () => {
    const cwd = project({
      'jobs.mjs': `export async function run() {
  setInterval(() => {}, 1000); // never cleared: the process outlives run()
  await new Promise((r) => process.once('SIGTERM', r));
}
`,
      'arb.config.json': JSON.stringify({
        companions: { workers: [{ name: 'jobs', target: './jobs.mjs:run' }] },
      }),
    });
    const a = start(cwd, ['--graceful-timeout', '2', 'app.mjs']);
    await a.ready();
    const started = await a.log(
      (e) => /^companion jobs running/.test(String(e.msg)),
      'the jobs companion to run',
    );
    a.pids.add(started.childPid as number);
    expect(a.logs.some((e) => /does not fit the stop budget/.test(String(e.msg)))).toBe(false);
    const t0 = performance.now();
    a.child.kill('SIGTERM');
    expect(await a.exited()).toBe(0);
    const took = performance.now() - t0;
    // the companion is SIGKILLed at its stopTimeout (2 s), not the old default of 60 s
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(2000 + 2500);
    expect(await a.stop()).toBe(0);
  });
});
