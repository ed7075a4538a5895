import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Manager, type ManagerOptions, type StatusEntry } from '../src/index.js';
import {
  alive,
  cleanup,
  cmdline,
  nodeCmd,
  pgidOf,
  readPids,
  running,
  tmp,
  track,
  waitFor,
} from './helpers.js';

const managers: Manager[] = [];

function manager(opts: ManagerOptions): Manager {
  const m = new Manager(opts);
  managers.push(m);
  return m;
}

afterEach(() =>
  cleanup(async () => {
    const stops = await Promise.allSettled(
      managers.splice(0).map(async (m) => {
        const guard = m.guardPid;
        if (guard) track(guard);
        await m.stop({ quick: true });
      }),
    );
    for (const r of stops) if (r.status === 'rejected') throw r.reason;
  }),
);

const entry = (m: Manager, name: string): StatusEntry => {
  const e = m.status().find((s) => s.name === name);
  if (!e) throw new Error(`no companion ${name}`);
  return e;
};

async function waitState(
  m: Manager,
  name: string,
  state: string,
  timeoutMs = 10_000,
): Promise<StatusEntry> {
  return waitFor(
    () => {
      const e = entry(m, name);
      return e.state === state ? e : null;
    },
    timeoutMs,
    `${name} to be ${state} (is ${entry(m, name).state})`,
  );
}

/** Node one-liner that records its pid in `file` (appending) then runs `body`. */
const recordPid = (file: string, body = 'setInterval(() => {}, 1000);') =>
  nodeCmd(`require('fs').appendFileSync(${JSON.stringify(file)}, process.pid + '\\n'); ${body}`);

describe('Manager with real processes', () => {
  it('runs target and command companions with cwd, env, output files, own groups, titles', async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'jobs.mjs'),
      `export function run({ name }) {
        console.log(JSON.stringify({ name, a: process.env.A, b: process.env.B, inherited: process.env.ARBC_INHERITED, cwd: process.cwd() }));
        console.error('to stderr');
        setInterval(() => {}, 1000);
      }\n`,
    );
    process.env.ARBC_INHERITED = 'yes';
    const m = manager({
      baseDir: dir,
      companions: {
        defaults: { startSecs: 0.2, stopTimeout: 2, env: { A: 'default', B: 'default' } },
        workers: [
          {
            name: 'jobs',
            target: './jobs.mjs:run',
            env: { B: 'own' },
            stdout: 'jobs.log',
            stderr: 'stdout',
          },
          {
            name: 'cmd',
            command: nodeCmd(
              "console.log(process.cwd(), process.env.A); console.error('err line'); setInterval(() => {}, 1000)",
            ),
            cwd: '/tmp',
            stdout: join(dir, 'cmd.out'),
            stderr: join(dir, 'cmd.err'),
          },
        ],
      },
    });
    await m.start();
    const jobs = await waitState(m, 'jobs', 'RUNNING');
    const cmd = await waitState(m, 'cmd', 'RUNNING');
    track(jobs.pid!, cmd.pid!);
    expect(m.names()).toEqual(['jobs', 'cmd']);
    // Own process group (and session): pgid == pid, not the manager's group.
    expect(pgidOf(jobs.pid!)).toBe(jobs.pid);
    expect(pgidOf(cmd.pid!)).toBe(cmd.pid);
    expect(pgidOf(jobs.pid!)).not.toBe(pgidOf(process.pid));
    // The runner sets its title once node has booted, which may be after RUNNING.
    await waitFor(() => cmdline(jobs.pid!).includes('arb companion jobs'), 5000, 'the title');
    const log = await waitFor(() => {
      const t = existsSync(join(dir, 'jobs.log'))
        ? readFileSync(join(dir, 'jobs.log'), 'utf8')
        : '';
      return t.includes('to stderr') && t.includes('"name"') ? t : null;
    });
    const line = JSON.parse(log.split('\n').find((l) => l.startsWith('{'))!);
    expect(line).toEqual({ name: 'jobs', a: 'default', b: 'own', inherited: 'yes', cwd: dir });
    const umask = process.umask();
    expect(statSync(join(dir, 'jobs.log')).mode & 0o777).toBe(0o644 & ~umask);
    await waitFor(() => readFileSync(join(dir, 'cmd.out'), 'utf8').includes('/tmp default'));
    await waitFor(() => readFileSync(join(dir, 'cmd.err'), 'utf8').includes('err line'));
    expect(readFileSync(join(dir, 'cmd.out'), 'utf8')).not.toContain('err line');
    delete process.env.ARBC_INHERITED;

    await m.stop();
    expect(running(jobs.pid!)).toBe(false);
    expect(running(cmd.pid!)).toBe(false);
    expect(entry(m, 'jobs')).toMatchObject({ state: 'STOPPED', exit_signal: 'SIGTERM' });
  });

  it('a target whose run() only awaits its stop signal stays up until stopped', async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'waits.mjs'),
      "import fs from 'node:fs';\nexport async function run() { fs.writeFileSync('in-run', ''); await new Promise((r) => process.once('SIGTERM', r)); }\n",
    );
    const m = manager({
      baseDir: dir,
      companions: {
        // a run() that lets the event loop drain would end within milliseconds of its call:
        // living through startSecs proves it is still awaited
        workers: [{ name: 'waits', target: './waits.mjs:run', startSecs: 1, stopTimeout: 2 }],
      },
    });
    const states: string[] = [];
    m.on('state', (name, state) => {
      if (name === 'waits') states.push(state);
    });
    await m.start();
    const up = await waitState(m, 'waits', 'RUNNING');
    expect(existsSync(join(dir, 'in-run'))).toBe(true);
    expect(states).toEqual(['STARTING', 'RUNNING']);
    expect(entry(m, 'waits')).toMatchObject({ state: 'RUNNING', pid: up.pid, exits: 0 });
    await m.stop();
    expect(entry(m, 'waits')).toMatchObject({ state: 'STOPPED', exit_code: 0 });
    expect(running(up.pid!)).toBe(false);
  });

  it('a crash loop shows a growing, capped backoff', async () => {
    const dir = tmp();
    const times = join(dir, 'times');
    const m = manager({
      baseDir: dir,
      companions: {
        restartDelay: 0.1,
        maxRestartDelay: 0.4,
        workers: [
          {
            name: 'crash',
            command: nodeCmd(
              `require('fs').appendFileSync(${JSON.stringify(times)}, Date.now() + '\\n'); process.exit(3)`,
            ),
            startSecs: 5,
          },
        ],
      },
    });
    const delays: number[] = [];
    m.on('state', (name, state) => {
      if (name === 'crash' && state === 'BACKOFF')
        delays.push(m.get('crash')!.info().restartDelay!);
    });
    await m.start();
    await waitFor(() => delays.length >= 6, 15_000, 'six backoffs');
    await m.stop();
    const nominal = [0.1, 0.2, 0.4, 0.4, 0.4, 0.4];
    nominal.forEach((n, i) => {
      expect(delays[i]).toBeLessThanOrEqual(n);
      expect(delays[i]).toBeGreaterThanOrEqual(n * 0.9 - 1e-9);
    });
    // The spawns really were spaced by (at least) those delays.
    const t = readFileSync(times, 'utf8').trim().split('\n').map(Number);
    for (let i = 1; i < 6; i++) {
      expect(t[i]! - t[i - 1]!).toBeGreaterThanOrEqual(delays[i - 1]! * 1000 - 15);
    }
    const e = entry(m, 'crash');
    expect(e.exit_code).toBe(3);
    expect(e.restarts).toBeGreaterThanOrEqual(5);
  });

  it('a stable run resets the backoff', async () => {
    const m = manager({
      companions: {
        restartDelay: 0.1,
        maxRestartDelay: 5,
        backoffResetAfter: 0.3,
        // Runs 0.5 s (longer than backoffResetAfter) then fails: always the first step.
        workers: [{ name: 'steady', command: ['sh', '-c', 'sleep 0.5; exit 1'], startSecs: 0.1 }],
      },
    });
    const delays: number[] = [];
    m.on('state', (name, state) => {
      if (state === 'BACKOFF') delays.push(m.get(name)!.info().restartDelay!);
    });
    await m.start();
    await waitFor(() => delays.length >= 3, 15_000, 'three backoffs');
    for (const d of delays.slice(0, 3)) {
      expect(d).toBeGreaterThanOrEqual(0.09 - 1e-9);
      expect(d).toBeLessThanOrEqual(0.1);
    }
  });

  it('goes FATAL after startRetries failed starts and recovers with start', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'fail'), '');
    const pids = join(dir, 'pids');
    const m = manager({
      baseDir: dir,
      companions: {
        restartDelay: 0.05,
        workers: [
          {
            name: 'flaky',
            command: recordPid(
              pids,
              "if (require('fs').existsSync('fail')) process.exit(2); setInterval(() => {}, 1000);",
            ),
            startSecs: 0.3,
            startRetries: 2,
          },
        ],
      },
    });
    await m.start();
    const fatal = await waitState(m, 'flaky', 'FATAL');
    expect(fatal).toMatchObject({ pid: null, failed_starts: 3, exits: 3, exit_code: 2 });
    expect(fatal.description).toBe('fatal, exited with status 2, gave up after 3 failed starts');
    // FATAL is final: no process, and no retry armed (the only way it would run again).
    expect(m.get('flaky')!.info()).toMatchObject({ pid: null, retryIn: null, nextRetryAt: null });
    expect(readPids(pids)).toHaveLength(3);
    unlinkSync(join(dir, 'fail'));
    expect(await m.handle({ cmd: 'start', name: 'flaky' })).toEqual({
      ok: true,
      message: 'flaky started',
    });
    const up = await waitState(m, 'flaky', 'RUNNING');
    track(up.pid!);
    expect(up.failed_starts).toBe(0);
  });

  it('SIGKILLs a companion that ignores SIGTERM after stopTimeout, with its child', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const ignore = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";
    const m = manager({
      baseDir: dir,
      companions: {
        workers: [
          {
            name: 'stubborn',
            startSecs: 0.1,
            stopTimeout: 1,
            command: nodeCmd(
              `${ignore} const c = require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(`${ignore} require('fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');`)}], { stdio: 'ignore' });
               require('fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');`,
            ),
          },
        ],
      },
    });
    await m.start();
    const [a, b] = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    track(a!, b!);
    await waitState(m, 'stubborn', 'RUNNING');
    const t0 = performance.now();
    expect(await m.handle({ cmd: 'stop', name: 'stubborn' })).toEqual({
      ok: true,
      message: 'stubborn stopping',
    });
    expect(entry(m, 'stubborn').state).toBe('STOPPING');
    await waitFor(() => !running(a!) && !running(b!), 5000, 'both processes to die');
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);
    const e = await waitState(m, 'stubborn', 'STOPPED');
    expect(e).toMatchObject({ kills: 1, exit_signal: 'SIGKILL', manual_stop: true });
    expect(e.description).toBe('stopped, stopped manually');
  });

  it('restart respawns with a new pid; signal reaches the group; all addresses everyone', async () => {
    const dir = tmp();
    const m = manager({
      baseDir: dir,
      companions: {
        defaults: { startSecs: 0.1, stopTimeout: 2, reloadTimeout: 2 },
        workers: [
          {
            name: 'one',
            command: nodeCmd(
              `process.on('SIGUSR1', () => require('fs').appendFileSync('usr1', process.pid + '\\n')); require('fs').appendFileSync('ready', process.pid + '\\n'); setInterval(() => {}, 1000);`,
            ),
          },
          { name: 'two', command: ['sleep', '60'] },
        ],
      },
    });
    await m.start();
    const first = await waitState(m, 'one', 'RUNNING');
    track(first.pid!, (await waitState(m, 'two', 'RUNNING')).pid!);
    // The handler must be installed before the signal is sent (SIGUSR1's default starts the inspector).
    await waitFor(() => readPids(join(dir, 'ready')).includes(first.pid!));
    expect(await m.handle({ cmd: 'signal', name: 'one', signal: 'SIGUSR1' })).toEqual({
      ok: true,
      message: 'one signalled SIGUSR1',
    });
    await waitFor(() => readPids(join(dir, 'usr1')).includes(first.pid!));
    expect(await m.handle({ cmd: 'restart', name: 'one' })).toEqual({
      ok: true,
      message: 'one restarting',
    });
    const second = await waitFor(() => {
      const e = entry(m, 'one');
      return e.state === 'RUNNING' && e.pid !== first.pid ? e : null;
    });
    track(second.pid!);
    expect(running(first.pid!)).toBe(false);
    expect(second.restarts).toBe(1);
    const all = await m.handle({ cmd: 'stop', name: 'all' });
    expect(all).toMatchObject({ ok: true, message: 'one stopping; two stopping' });
    expect((all.results as { name: string }[]).map((r) => r.name)).toEqual(['one', 'two']);
    await waitState(m, 'two', 'STOPPED');
    expect(await m.handle({ cmd: 'start', name: 'nope' })).toEqual({
      ok: false,
      message: 'unknown companion nope',
      error: 'unknown companion nope',
    });
    expect(await m.handle({ cmd: 'signal', name: 'two', signal: 'SIGUSR1' })).toMatchObject({
      ok: false,
    });
  });

  it('autorestart unexpected leaves an expected exit stopped; never restarts nothing', async () => {
    const dir = tmp();
    const m = manager({
      baseDir: dir,
      companions: {
        restartDelay: 0.05,
        defaults: { startSecs: 0 },
        workers: [
          { name: 'ok', command: ['sh', '-c', 'exit 0'], autorestart: 'unexpected' },
          {
            name: 'code3',
            command: ['sh', '-c', 'sleep 0.1; exit 3'],
            autorestart: 'unexpected',
            exitCodes: [0, 3],
          },
          { name: 'bad', command: ['sh', '-c', 'sleep 0.1; exit 1'], autorestart: 'unexpected' },
          { name: 'never', command: ['sh', '-c', 'sleep 0.1; exit 1'], autorestart: 'never' },
        ],
      },
    });
    await m.start();
    expect((await waitState(m, 'ok', 'STOPPED')).description).toBe('stopped, exited with status 0');
    await waitState(m, 'code3', 'STOPPED');
    await waitState(m, 'never', 'STOPPED');
    await waitFor(() => entry(m, 'bad').exits >= 2, 10_000, 'bad to be retried');
    expect(entry(m, 'ok').exits).toBe(1);
    expect(entry(m, 'never').exits).toBe(1);
  });

  it('reports a program that cannot be spawned and backs off', async () => {
    const m = manager({
      companions: {
        restartDelay: 0.05,
        workers: [{ name: 'ghost', command: ['arbc-no-such-program-xyz'], startRetries: 1 }],
      },
    });
    await m.start();
    const e = await waitState(m, 'ghost', 'FATAL');
    // ENOENT; EACCES when a directory on PATH cannot be searched by this user (execvp
    // reports that one then): both mean the program cannot be spawned
    expect(e.error).toMatch(/^spawn arbc-no-such-program-xyz (ENOENT|EACCES)$/);
    expect(e.exit_code).toBe(127);
  });

  it('reopens output files (USR1 path) after a rename', async () => {
    const dir = tmp();
    const m = manager({
      baseDir: dir,
      companions: {
        workers: [
          {
            name: 'chatty',
            startSecs: 0.1,
            stopTimeout: 2,
            stdout: 'out.log',
            command: nodeCmd("setInterval(() => console.log('tick'), 30)"),
          },
        ],
      },
    });
    await m.start();
    track((await waitState(m, 'chatty', 'RUNNING')).pid!);
    await waitFor(
      () =>
        existsSync(join(dir, 'out.log')) &&
        readFileSync(join(dir, 'out.log'), 'utf8').includes('tick'),
    );
    renameSync(join(dir, 'out.log'), join(dir, 'out.log.1'));
    m.reopenLogs();
    await waitFor(
      () =>
        existsSync(join(dir, 'out.log')) &&
        readFileSync(join(dir, 'out.log'), 'utf8').includes('tick'),
    );
    // five more ticks land in the new file, none in the old one
    const before = readFileSync(join(dir, 'out.log.1'), 'utf8').length;
    const ticks = () => readFileSync(join(dir, 'out.log'), 'utf8').split('tick').length - 1;
    const now = ticks();
    await waitFor(() => ticks() >= now + 5, 5000, 'five more ticks in out.log');
    expect(readFileSync(join(dir, 'out.log.1'), 'utf8').length).toBe(before);
  });

  it('an output file that cannot be written never blocks the companion', async () => {
    const dir = tmp();
    const m = manager({
      baseDir: dir,
      companions: {
        workers: [
          {
            name: 'loud',
            startSecs: 0.1,
            stdout: 'out.log',
            // 1 MiB, far more than a pipe buffer, then a marker.
            command: nodeCmd(
              "const b = 'x'.repeat(1024) + '\\n'; let i = 0; (function w() { while (i < 1024) { i++; if (!process.stdout.write(b)) return process.stdout.once('drain', w); } require('fs').writeFileSync('done', ''); setInterval(() => {}, 1000); })();",
            ),
          },
        ],
      },
    });
    // Valid when checked, unusable when opened.
    mkdirSync(join(dir, 'out.log'));
    await m.start();
    track((await waitState(m, 'loud', 'RUNNING')).pid!);
    await waitFor(() => existsSync(join(dir, 'done')), 10_000, 'the companion to finish writing');
    expect(entry(m, 'loud').state).toBe('RUNNING');
  });

  it('a stop requested during start starts nothing and leaves no socket', async () => {
    const dir = tmp();
    const marker = join(dir, 'started');
    const m = manager({
      baseDir: dir,
      companions: {
        socket: 'c.sock',
        workers: [
          {
            name: 'x',
            command: nodeCmd(`require('fs').writeFileSync(${JSON.stringify(marker)}, '')`),
          },
        ],
      },
    });
    const starting = m.start();
    const stopping = m.stop();
    await starting;
    await stopping;
    expect(m.status()).toEqual([]);
    expect(existsSync(join(dir, 'c.sock'))).toBe(false);
    expect(existsSync(marker)).toBe(false);
    await expect(m.start()).rejects.toThrow('already started');
  });

  it('refuses to start anything while shutting down', async () => {
    const dir = tmp();
    const m = manager({
      baseDir: dir,
      load: () => ({ workers: [] }),
      companions: {
        workers: [
          {
            name: 'slow',
            startSecs: 0.1,
            stopTimeout: 1,
            command: nodeCmd("process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"),
          },
          { name: 'idle', command: ['sleep', '60'], startSecs: 0.1 },
        ],
      },
    });
    await m.start();
    const slow = await waitState(m, 'slow', 'RUNNING');
    track(slow.pid!, (await waitState(m, 'idle', 'RUNNING')).pid!);
    const stopping = m.stop();
    await waitState(m, 'idle', 'STOPPED');
    expect(await m.handle({ cmd: 'start', name: 'idle' })).toEqual({
      ok: false,
      error: 'manager is shutting down',
    });
    expect(await m.handle({ cmd: 'reread' })).toEqual({
      ok: false,
      error: 'manager is shutting down',
    });
    expect((await m.handle({ cmd: 'status' })).ok).toBe(true);
    await stopping;
    expect(running(slow.pid!)).toBe(false);
    expect(alive(slow.pid!)).toBe(false);
  });
});

describe('reread', () => {
  it('adds, removes, restarts changed, keeps manually stopped ones stopped', async () => {
    const dir = tmp();
    const cmd = (tag: string) => ['sleep', `6${tag}`];
    let current: unknown = {
      defaults: { startSecs: 0.1, stopTimeout: 2 },
      workers: [
        { name: 'a', command: cmd('1') },
        { name: 'b', command: cmd('2') },
        { name: 'c', command: cmd('3') },
      ],
    };
    const m = manager({ baseDir: dir, load: () => current });
    await m.start();
    const a = await waitState(m, 'a', 'RUNNING');
    const b = await waitState(m, 'b', 'RUNNING');
    track(a.pid!, b.pid!, (await waitState(m, 'c', 'RUNNING')).pid!);
    await m.handle({ cmd: 'stop', name: 'c' });
    await waitState(m, 'c', 'STOPPED');

    current = {
      defaults: { startSecs: 0.1, stopTimeout: 2 },
      workers: [
        { name: 'd', command: cmd('4') },
        { name: 'a', command: cmd('1') },
        { name: 'c', command: cmd('3'), stdout: 'c.log' },
      ],
    };
    expect(await m.handle({ cmd: 'reread' })).toEqual({
      ok: true,
      added: ['d'],
      removed: ['b'],
      restarted: [],
      unchanged: ['a', 'c'],
    });
    expect(m.names()).toEqual(['d', 'a', 'c']);
    const d = await waitState(m, 'd', 'RUNNING');
    track(d.pid!);
    await waitFor(() => !running(b.pid!), 5000, 'removed b to stop');
    expect(entry(m, 'a').pid).toBe(a.pid);
    expect(entry(m, 'c')).toMatchObject({ state: 'STOPPED', manual_stop: true });
    expect(m.get('c')!.config.stdout).toBe(join(dir, 'c.log'));

    // A changed config restarts a running companion.
    current = {
      defaults: { startSecs: 0.1, stopTimeout: 2 },
      workers: [
        { name: 'd', command: cmd('4') },
        { name: 'a', command: cmd('5') },
        { name: 'c', command: cmd('3'), stdout: 'c.log' },
      ],
    };
    expect(await m.handle({ cmd: 'reread' })).toMatchObject({
      restarted: ['a'],
      unchanged: ['d', 'c'],
    });
    const a2 = await waitFor(() => {
      const e = entry(m, 'a');
      return e.state === 'RUNNING' && e.pid !== a.pid ? e : null;
    });
    track(a2.pid!);
    expect(cmdline(a2.pid!)).toBe('sleep 65');

    // An invalid config changes nothing at all.
    current = {
      workers: [
        { name: 'd', command: cmd('4') },
        { name: 'd', command: cmd('4') },
      ],
    };
    const bad = await m.handle({ cmd: 'reread' });
    expect(bad).toMatchObject({ ok: false, kept_old_config: true });
    expect(String(bad.error)).toMatch(/^invalid config: .*duplicate/);
    current = { workers: [{ name: 'x', command: cmd('4'), stopSignal: 'SIGKILL' }] };
    expect(await m.handle({ cmd: 'reread' })).toMatchObject({ ok: false, kept_old_config: true });
    expect(m.names()).toEqual(['d', 'a', 'c']);
    expect(entry(m, 'a').pid).toBe(a2.pid);
    expect(entry(m, 'd').pid).toBe(d.pid);
  });

  it('a removed companion stays supervised until it dies; its re-added namesake never overlaps', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const stubborn = {
      name: 'w',
      startSecs: 0.1,
      stopTimeout: 1,
      // Handler first: a recorded pid means SIGTERM is already ignored.
      command: nodeCmd(
        `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); require('fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n');`,
      ),
    };
    let current: unknown = { workers: [stubborn] };
    const m = manager({ baseDir: dir, load: () => current });
    await m.start();
    const first = await waitState(m, 'w', 'RUNNING');
    track(first.pid!);
    await waitFor(() => readPids(pids).includes(first.pid!));
    current = { workers: [] };
    expect(await m.handle({ cmd: 'reread' })).toMatchObject({ removed: ['w'] });
    // Still visible and still supervised.
    expect(m.status()).toMatchObject([{ name: 'w', state: 'STOPPING', removed: true }]);
    current = { workers: [{ ...stubborn, env: { V: '2' } }] };
    expect(await m.handle({ cmd: 'reread' })).toMatchObject({ added: ['w'] });
    let overlap = false;
    const t0 = performance.now();
    const second = await waitFor(
      () => {
        const live = readPids(pids).filter(running);
        if (live.length > 1) overlap = true;
        const e = entry(m, 'w');
        return e.state === 'RUNNING' && e.pid !== first.pid ? e : null;
      },
      10_000,
      'the new w',
      5,
    );
    track(second.pid!);
    expect(overlap).toBe(false);
    expect(running(first.pid!)).toBe(false);
    // The old one was SIGKILLed at its deadline, not left behind.
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(m.status().map((s) => s.name)).toEqual(['w']);
  });

  it('reports reread not configured without a loader', async () => {
    const m = manager({ companions: { workers: [] }, guard: false });
    await m.start();
    expect(await m.handle({ cmd: 'reread' })).toEqual({
      ok: false,
      error: 'reread not configured',
    });
  });
});
