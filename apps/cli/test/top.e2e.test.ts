// `arb top` and the figures behind it (`arb ctl status --json`) with the real arb bin: a
// known load on an app that takes ~20 ms, a worker that stalls its loop 200 ms at a time,
// and the live view in a pseudo-terminal (`script`), quit with `q`.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { arb, ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, BIN, cleanup, type Target, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const terms: ChildProcess[] = [];
afterEach(async () => {
  for (const t of terms.splice(0)) {
    if (t.exitCode === null && t.signalCode === null) t.kill('SIGKILL');
    if (t.pid !== undefined) await waitFor(() => !alive(t.pid!), 5_000, 'the terminal to exit');
  }
  await cleanup(running, dirs);
});

/** Takes ~20 ms per request (a timer: the loop stays free). */
const SLOW_APP = `export default (req, res) => {
  setTimeout(() => res.end(JSON.stringify({ pid: process.pid })), 20);
};
`;
/** Stalls its event loop 200 ms every 500 ms. */
const STALLING_APP = `setInterval(() => { const until = Date.now() + 200; while (Date.now() < until); }, 500);
export default (req, res) => res.end('ok');
`;

function project(app: string): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), app);
  return d;
}

async function start(cwd: string, args: string[]): Promise<ArbProcess> {
  const a = new ArbProcess(['-b', '127.0.0.1:0', ...args, 'app.mjs'], { cwd });
  running.push(a);
  await a.ready();
  await a.log((e) => typeof e.ctl === 'string', 'Control socket listening');
  return a;
}

/**
 * `concurrency` loops of requests until `stop()`; counts the 200s. A new connection each:
 * keep-alive connections stay with the worker that accepted them, and the workers share
 * one accept queue, so a few long connections may all land on one worker.
 */
function load(target: Target, concurrency: number) {
  let on = true;
  let ok = 0;
  const failures: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({ ...target, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok += 1;
          else failures.push(String(res.statusCode));
          resolve();
        });
      });
      req.on('error', (err) => {
        failures.push(err.message);
        resolve();
      });
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (on) await one();
  });
  return {
    get ok() {
      return ok;
    },
    failures,
    async stop() {
      on = false;
      await Promise.all(loops);
    },
  };
}

type Obj = Record<string, unknown>;
type WorkerRow = {
  pid: number;
  state: string;
  requests: number;
  req_per_sec: number;
  p50: number | null;
  p99: number | null;
  lag: number | null;
  last_heartbeat: number | null;
  rss_bytes: number | null;
  cpu_percent: number | null;
  cpu_seconds: number | null;
};

/** `arb top --json` through the real bin. */
async function topJson(cwd: string): Promise<Obj & { master: Obj; workers: WorkerRow[] }> {
  const r = await arb(['top', '--json'], cwd);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('arb top and ctl status figures', () => {
  it('a known load: requests, req/s, p50/p99 of a 20 ms app, RSS, CPU, heartbeat; zero once idle', async () => {
    const cwd = project(SLOW_APP);
    const a = await start(cwd, ['-w', '2']);
    const traffic = load(await a.tcpTarget(), 4);
    try {
      // while it runs: each worker's last interval, as `arb top --json` reports it
      const busy = await waitFor(
        async () => {
          const s = await topJson(cwd);
          const serving = s.workers.filter((w) => w.req_per_sec > 0 && w.p99 !== null);
          return serving.length === 2 ? s : undefined;
        },
        20_000,
        'both workers serving with figures',
      );
      for (const w of busy.workers) {
        // 4 clients, 20 ms each: at most ~200 req/s in all
        expect(w.req_per_sec).toBeLessThanOrEqual(250);
        // a 20 ms response is in the (0.01, 0.025] bucket or later, never faster
        expect(w.p50!).toBeGreaterThanOrEqual(0.01);
        expect(w.p99!).toBeGreaterThanOrEqual(w.p50!);
        expect(w.p99!).toBeGreaterThan(0.01);
        expect(w.p99!).toBeLessThanOrEqual(0.25);
        expect(w.rss_bytes!).toBeGreaterThan(10 * 1024 * 1024);
        expect(w.cpu_percent!).toBeGreaterThanOrEqual(0);
        expect(w.cpu_seconds!).toBeGreaterThan(0);
        expect(w.lag!).toBeGreaterThanOrEqual(0);
        expect(w.last_heartbeat!).toBeGreaterThanOrEqual(0);
      }
      expect(busy.master).toMatchObject({ pid: a.pid });
      expect(busy.master.rss_bytes as number).toBeGreaterThan(10 * 1024 * 1024);
      expect(busy.master.cpu_percent as number).toBeGreaterThanOrEqual(0);
    } finally {
      await traffic.stop();
    }
    expect(traffic.failures).toEqual([]);
    expect(traffic.ok).toBeGreaterThan(0);
    // every request counted, then req/s back to 0 and no latency once the workers idle
    const idle = await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        const workers = r.body.workers as WorkerRow[];
        const served = workers.reduce((n, w) => n + w.requests, 0);
        const quiet = workers.every((w) => w.req_per_sec === 0 && w.p99 === null);
        return served === traffic.ok && quiet ? workers : undefined;
      },
      15_000,
      `${traffic.ok} requests counted, then idle`,
    );
    for (const w of idle) {
      expect(w.rss_bytes!).toBeGreaterThan(0);
      expect(w.cpu_percent!).toBeGreaterThanOrEqual(0);
    }
  }, 60_000);

  it('a worker that stalls its loop 200 ms at a time shows a lag over 0.1 s', async () => {
    const cwd = project(STALLING_APP);
    await start(cwd, ['-w', '2']);
    // no requests: the lag comes in the idle workers' reports
    const workers = await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        const ws = r.body.workers as WorkerRow[];
        return ws.length === 2 && ws.every((w) => (w.lag ?? 0) > 0.1) ? ws : undefined;
      },
      15_000,
      'both workers with a lag over 0.1 s',
    );
    for (const w of workers) {
      expect(w.lag!).toBeLessThan(1);
      expect(w.requests).toBe(0);
    }
  }, 60_000);

  it('not on a terminal: one text snapshot; no master: exit 2', async () => {
    const cwd = project(SLOW_APP);
    await start(cwd, ['-w', '2']);
    const status = await ctlJson(['status'], cwd);
    const pids = (status.body.workers as WorkerRow[]).map((w) => w.pid);
    const once = await arb(['top'], cwd);
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^arb top - master \d+ \(app\), up \d+:\d\d:\d\d, generation 0/);
    expect(once.stdout).toMatch(
      /PID +AGE +STATE +UPTIME +REQ\/S +P50 +P99 +RSS +CPU +LAG +HEARTBEAT/,
    );
    for (const pid of pids) expect(once.stdout).toMatch(new RegExp(`^${pid} +\\d+ +ready `, 'm'));
    expect(once.stdout).not.toContain('\x1b');

    const nowhere = tempDir();
    dirs.push(nowhere);
    const none = await arb(['top', '--once'], nowhere);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/arb top: cannot reach the master at .*arb\.ctl/);
  }, 60_000);

  it('live in a pseudo-terminal: the workers and their req/s on screen, q quits and restores the terminal', async () => {
    const cwd = project(SLOW_APP);
    const a = await start(cwd, ['-w', '2']);
    const status = await ctlJson(['status'], cwd);
    const pids = (status.body.workers as WorkerRow[]).map((w) => w.pid);
    const traffic = load(await a.tcpTarget(), 4);
    // the terminal's settings after arb top exits tell whether raw mode was undone
    const term = spawn(
      'script',
      [
        '-qfc',
        `stty cols 120 rows 30; '${process.execPath}' '${BIN}' top; echo "exit=$?"; stty -a`,
        '/dev/null',
      ],
      { cwd, env: { ...process.env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    terms.push(term);
    let screen = '';
    term.stdout!.setEncoding('utf8').on('data', (d: string) => {
      screen += d;
    });
    term.stderr!.setEncoding('utf8').on('data', (d: string) => {
      screen += d;
    });
    const exited = new Promise<number | null>((r) => term.once('exit', (code) => r(code)));
    try {
      // the latest frame: both workers' rows, each with a req/s above 0
      await waitFor(
        () => {
          const frame = plain(screen.slice(screen.lastIndexOf('\x1b[H')));
          const rows = pids.map((pid) =>
            frame
              .split('\n')
              .find((l) => l.startsWith(`${pid} `))
              ?.trim()
              .split(/ +/),
          );
          // PID AGE STATE UPTIME REQ/S ...
          return rows.every((r) => r && r[2] === 'ready' && Number(r[4]) > 0) ? rows : undefined;
        },
        20_000,
        `both workers with req/s > 0 on the screen (screen so far: ${JSON.stringify(plain(screen).slice(-1500))})`,
      );
      expect(screen).toContain('\x1b[?1049h'); // the alternate screen
      expect(plain(screen)).toContain('REQ/S');
    } finally {
      await traffic.stop();
    }
    term.stdin!.write('q');
    expect(await exited).toBe(0);
    const after = plain(screen.slice(screen.lastIndexOf('\x1b[?1049l')));
    expect(after).toMatch(/exit=0/);
    // back from the alternate screen, cursor shown, cooked mode with echo again
    expect(screen).toContain('\x1b[?25h\x1b[?1049l');
    expect(after).toMatch(/(^|[\s;])icanon([\s;]|$)/);
    expect(after).toMatch(/(^|[\s;])echo([\s;]|$)/);
  }, 60_000);
});

/** The screen's text without escape sequences and carriage returns. */
function plain(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}
