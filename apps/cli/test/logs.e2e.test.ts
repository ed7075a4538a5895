// Logs a machine and a person can read (issue 15, Logs): strict JSON lines from every
// process of a real run (master, workers, access log, companion manager, companions), and
// readable lines on a terminal (a pty from util-linux `script`), coloured or not.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type ArbLogLine, alive, parseArbLogLine } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, BIN, cleanup, request, tempDir, waitFor } from './harness.js';
import { writeApp } from './load.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const ptys: ChildProcess[] = [];
const ptyPids = new Set<number>();
afterEach(() =>
  cleanup(running, dirs, [
    async () => {
      for (const p of ptys.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
      for (const pid of ptyPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await waitFor(() => [...ptyPids].every((p) => !alive(p)), 5000, 'no process left');
      ptyPids.clear();
    },
  ]),
);

/** A project: the app, and a companion that writes on stdout and stderr, then ticks. */
function project(): string {
  const dir = tempDir();
  dirs.push(dir);
  writeApp(dir, 'v1');
  fs.writeFileSync(
    path.join(dir, 'jobs.mjs'),
    `export function run() {
  console.log('jobs: started');
  console.error('jobs: a warning');
  setInterval(() => console.log('jobs: tick'), 200);
}
`,
  );
  fs.writeFileSync(
    path.join(dir, 'arb.config.mjs'),
    `export default {
  app: './app.mjs',
  workers: 2,
  companions: { workers: [{ name: 'jobs', target: './jobs.mjs:run', startSecs: 0.2 }] },
};
`,
  );
  return dir;
}

function strictLines(text: string): ArbLogLine[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => parseArbLogLine(l));
}

describe('JSON log lines', () => {
  it('every line of every process: no key twice, proc and pid, companions named with their stream', async () => {
    const cwd = project();
    const a = new ArbProcess(
      ['-b', '127.0.0.1:0', '--access-log', '-', '--log-format', 'json', '--ctl-socket', 'none'],
      { cwd },
    );
    running.push(a);
    const target = await a.tcpTarget();
    const pids = await a.distinctPids(target, 2);
    await a.log((e) => e.msg === 'jobs: tick', 'a companion tick');
    const res = await request(target, { path: '/access?x=1' });
    await waitFor(() => a.stdout.includes('/access?x=1'), 5000, 'the access line');
    expect(await a.stop()).toBe(0);

    const errors = strictLines(a.stderr);
    const access = strictLines(a.stdout);
    const procs = new Set(errors.map((l) => l.proc));
    expect([...procs].sort()).toEqual(['companion', 'manager', 'master', 'worker']);
    for (const l of errors.filter((e) => e.proc === 'master')) expect(l.pid).toBe(a.pid);

    // the master names each worker by its pid (workerPid) and its age (workerAge)
    const booted = errors.filter((l) => l.msg.startsWith('Booting worker'));
    for (const l of booted) {
      expect(l.msg).toBe(`Booting worker with pid: ${l.workerPid}`);
      expect(l.workerAge).toEqual(expect.any(Number));
      expect('worker' in l).toBe(false);
    }
    for (const pid of pids) expect(booted.map((l) => l.workerPid)).toContain(pid);

    // the companion's output, each line on its own, naming it, its pid and stream
    const manager = errors.find((l) => l.proc === 'manager')!;
    const jobs = errors.filter((l) => l.proc === 'companion');
    expect(jobs.find((l) => l.msg === 'jobs: started')).toMatchObject({
      companion: 'jobs',
      stream: 'stdout',
    });
    expect(jobs.find((l) => l.msg === 'jobs: a warning')).toMatchObject({
      companion: 'jobs',
      stream: 'stderr',
    });
    const started = errors.find(
      (l) => l.proc === 'manager' && /^companion jobs started/.test(l.msg),
    )!;
    expect(jobs.every((l) => l.pid === started.childPid && l.pid !== manager.pid)).toBe(true);

    // access lines: the worker that served, one `time`, the request's start as `start`
    const line = access.find((l) => l.url === '/access?x=1')!;
    expect(line).toMatchObject({ proc: 'worker', log: 'access', method: 'GET', status: 200 });
    expect(line.pid).toBe(JSON.parse(res.body).pid);
    expect(Date.parse(String(line.start))).toBeLessThanOrEqual(line.time);
  });
});

/** Runs arb on a pseudo-terminal; its output as the terminal shows it (`\r\n` as `\n`). */
class PtyArb {
  readonly child: ChildProcess;
  out = '';
  constructor(cwd: string, args: string[], env: NodeJS.ProcessEnv) {
    const { NO_COLOR: _n, FORCE_COLOR: _f, NODE_DISABLE_COLORS: _d, ...base } = process.env;
    const cmd = ['exec', process.execPath, BIN, ...args].map(shellQuote).join(' ');
    this.child = spawn('script', ['-qfc', cmd, '/dev/null'], {
      cwd,
      env: { ...base, TERM: 'xterm-256color', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ptys.push(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out += d.replaceAll('\r\n', '\n');
      // every process the lines name is checked gone after the test
      for (const m of this.out.matchAll(/\[[\w-]+ (\d+)\]/g)) ptyPids.add(Number(m[1]));
    });
  }

  wait(what: RegExp): Promise<RegExpMatchArray> {
    return waitFor(
      () => this.out.match(what),
      20_000,
      `${what} (so far: ${this.out.slice(-1500)})`,
    );
  }

  /** TERM to the master (named in its lines); resolves when the terminal closed. */
  async stop(): Promise<void> {
    const master = Number((await this.wait(/\[master (\d+)\]/))[1]);
    process.kill(master, 'SIGTERM');
    await new Promise((r) => (this.child.exitCode !== null ? r(null) : this.child.once('exit', r)));
    await waitFor(() => [...ptyPids].every((p) => !alive(p)), 10_000, 'every arb process gone');
  }
}

function shellQuote(s: string): string {
  return /^[\w./=:-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

const ESC = '\x1b[';
const STAMP = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+05:30`;

describe('on a terminal', () => {
  const args = ['-b', '127.0.0.1:0', '--ctl-socket', 'none'];

  it('readable lines for every process, the time zone shown; NO_COLOR: no colours', async () => {
    const cwd = project();
    const t = new PtyArb(cwd, args, { NO_COLOR: '1', TZ: 'Asia/Kolkata' });
    await t.wait(/Serving with 2 workers/);
    await t.wait(/OUT {3}\[jobs \d+\] jobs: tick/);
    await t.stop();
    expect(t.out).not.toContain(ESC);
    const lines = t.out.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines)
      expect(l).toMatch(
        new RegExp(
          `^${STAMP} (?:(?:TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \\[(?:master|worker|manager) \\d+\\]|(?:OUT|ERR)   \\[jobs \\d+\\]) `,
        ),
      );
    expect(t.out).toMatch(
      new RegExp(
        `${STAMP} INFO  \\[master \\d+\\] Booting worker with pid: (\\d+) workerPid=\\1 workerAge=\\d+\\n`,
      ),
    );
    expect(t.out).toMatch(new RegExp(`${STAMP} INFO  \\[worker \\d+\\] `));
    expect(t.out).toMatch(new RegExp(`${STAMP} INFO  \\[manager \\d+\\] companion jobs started`));
    expect(t.out).toMatch(new RegExp(`${STAMP} OUT   \\[jobs \\d+\\] jobs: started\\n`));
    expect(t.out).toMatch(new RegExp(`${STAMP} ERR   \\[jobs \\d+\\] jobs: a warning\\n`));
  });

  it('coloured by default and with FORCE_COLOR even when NO_COLOR is set; json when asked', async () => {
    const cwd = project();
    const coloured = new PtyArb(cwd, args, { TZ: 'Asia/Kolkata' });
    await coloured.wait(/Serving with 2 workers/);
    await coloured.stop();
    expect(coloured.out).toContain(`${ESC}32mINFO ${ESC}0m ${ESC}36m[master `);

    const forced = new PtyArb(cwd, args, { NO_COLOR: '1', FORCE_COLOR: '1' });
    await forced.wait(/jobs: started/);
    await forced.stop();
    expect(forced.out.replaceAll('\x1b', '<ESC>')).toMatch(
      /<ESC>\[32mOUT {2}<ESC>\[0m <ESC>\[35m\[jobs \d+\]<ESC>\[0m jobs: started/,
    );

    const json = new PtyArb(cwd, [...args, '--log-format', 'json'], {});
    await json.wait(/"msg":"Serving with 2 workers"/);
    await json.wait(/"msg":"jobs: started"/);
    const master = Number((await json.wait(/"proc":"master","pid":(\d+)/))[1]);
    for (const m of json.out.matchAll(/"pid":(\d+)/g)) ptyPids.add(Number(m[1]));
    process.kill(master, 'SIGTERM');
    await new Promise((r) => (json.child.exitCode !== null ? r(null) : json.child.once('exit', r)));
    const lines = strictLines(json.out);
    expect(new Set(lines.map((l) => l.proc))).toEqual(
      new Set(['master', 'worker', 'manager', 'companion']),
    );
    await waitFor(() => [...ptyPids].every((p) => !alive(p)), 10_000, 'every arb process gone');
  });
});
