// Issue 16 item 4 through the real manager process: Procfile companions (with .env and an
// ignored web line, re-read on reread), numprocs copies and dependsOn ordering.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { request, runCompanionCommand, type StatusEntry } from '../src/index.js';
import {
  allRunning,
  cleanup,
  running,
  spawnManager,
  status,
  tmp,
  track,
  waitFor,
} from './helpers.js';

afterEach(() => cleanup());

/** The env a process runs with, from /proc. */
function environOf(pid: number): Record<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
  return Object.fromEntries(
    raw.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** The manager's JSON log lines. */
function logLines(m: ReturnType<typeof spawnManager>): Record<string, unknown>[] {
  return m
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function stopManager(m: ReturnType<typeof spawnManager>, pids: number[]): Promise<void> {
  m.child.kill('SIGTERM');
  expect(await m.exited).toEqual({ code: 0, signal: null });
  for (const p of pids) expect(running(p)).toBe(false);
}

describe('Procfile companions', () => {
  it('runs each entry through sh with the .env, ignores web with one line, rereads the file', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    writeFileSync(
      join(dir, 'Procfile'),
      [
        '# the app',
        'web: node server.js --port $PORT',
        'worker: echo "$GREETING from $ARB_COMPANION_NAME" > worker.out; exec sleep 60',
        '',
        'clock: echo "$GREETING $QUOTED" > clock.out && exec sleep 60',
      ].join('\n'),
    );
    writeFileSync(join(dir, '.env'), '# env\nGREETING=hello\nQUOTED="two words" # c\n');
    writeFileSync(
      join(dir, 'c.json'),
      JSON.stringify({ socket: 'c.sock', defaults: { startSecs: 0.2, stopTimeout: 3 } }),
    );
    const m = spawnManager(
      ['--config', join(dir, 'c.json'), '--procfile', join(dir, 'Procfile'), '--base-dir', dir],
      {},
      dir,
    );
    await m.ready;
    const list = await allRunning(sock, 2);
    track(...list.map((c) => c.pid!));
    expect(list.map((c) => c.name)).toEqual(['worker', 'clock']);
    await waitFor(
      () => {
        try {
          return (
            readFileSync(join(dir, 'clock.out'), 'utf8') !== '' &&
            readFileSync(join(dir, 'worker.out'), 'utf8') !== ''
          );
        } catch {
          return false;
        }
      },
      5000,
      'both entries to write',
    );
    expect(readFileSync(join(dir, 'worker.out'), 'utf8')).toBe('hello from worker\n');
    expect(readFileSync(join(dir, 'clock.out'), 'utf8')).toBe('hello two words\n');
    const webLines = logLines(m).filter((l) => String(l.msg).includes('web entry ignored'));
    expect(webLines.map((l) => l.msg)).toEqual([
      'Procfile:2: web entry ignored: arb serves the web (give arb the app)',
    ]);

    // Edit the Procfile: reread adds the new entry, keeps the unchanged ones.
    writeFileSync(
      join(dir, 'Procfile'),
      readFileSync(join(dir, 'Procfile'), 'utf8') + '\nmailer: exec sleep 60\n',
    );
    const r = await request(sock, { cmd: 'reread' });
    expect(r).toMatchObject({ ok: true, added: ['mailer'], unchanged: ['worker', 'clock'] });
    const after = await allRunning(sock, 3);
    track(...after.map((c) => c.pid!));
    // A broken line is refused by reread, naming the file and line; the old config stays.
    writeFileSync(join(dir, 'Procfile'), 'worker: sleep 60\nbroken line\n');
    expect(await request(sock, { cmd: 'reread' })).toEqual({
      ok: false,
      error: "invalid config: Procfile:2: expected 'name: command'",
      kept_old_config: true,
    });
    await stopManager(
      m,
      after.map((c) => c.pid!),
    );
  });
});

describe('numprocs', () => {
  it('runs copies name.1..3 with ARB_PROCESS_NUM; commands take the group or one copy', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const m = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify({
        socket: sock,
        defaults: { startSecs: 0.2, stopTimeout: 3 },
        workers: [{ name: 'jobs', command: ['sleep', '60'], numprocs: 3 }],
      }),
    });
    await m.ready;
    const list = await allRunning(sock, 3);
    track(...list.map((c) => c.pid!));
    expect(list.map((c) => [c.name, c.group, c.process_num])).toEqual([
      ['jobs.1', 'jobs', 1],
      ['jobs.2', 'jobs', 2],
      ['jobs.3', 'jobs', 3],
    ]);
    expect(new Set(list.map((c) => c.pid)).size).toBe(3);
    expect(list.map((c) => environOf(c.pid!).ARB_PROCESS_NUM)).toEqual(['1', '2', '3']);
    expect(list.map((c) => environOf(c.pid!).ARB_COMPANION_NAME)).toEqual([
      'jobs.1',
      'jobs.2',
      'jobs.3',
    ]);

    // One copy: only it restarts.
    const one = await request(sock, { cmd: 'restart', name: 'jobs.2' });
    expect(one).toEqual({ ok: true, message: 'jobs.2 restarting' });
    const restarted = await waitFor(
      async () => {
        const s = (await status(sock)).companions;
        return s[1]!.state === 'RUNNING' && s[1]!.pid !== list[1]!.pid ? s : null;
      },
      5000,
      'jobs.2 to run again',
    );
    track(restarted[1]!.pid!);
    expect(restarted[0]!.pid).toBe(list[0]!.pid);
    expect(restarted[2]!.pid).toBe(list[2]!.pid);
    expect(running(list[1]!.pid!)).toBe(false);

    // The group: all copies.
    expect(await request(sock, { cmd: 'stop', name: 'jobs' })).toMatchObject({
      ok: true,
      message: 'jobs.1 stopping; jobs.2 stopping; jobs.3 stopping',
    });
    await waitFor(
      async () => (await status(sock)).companions.every((c) => c.state === 'STOPPED'),
      5000,
      'the group to stop',
    );
    // `arb companion status jobs` shows the group's copies.
    let out = '';
    const stdout = new Writable({
      write(chunk, _e, cb) {
        out += String(chunk);
        cb();
      },
    });
    const code = await runCompanionCommand(['status', 'jobs', '--json', '--socket', sock], {
      stdout,
      stderr: stdout,
      env: {},
      isTTY: false,
    });
    expect(code).toBe(0);
    expect(JSON.parse(out).companions.map((c: StatusEntry) => [c.name, c.state])).toEqual([
      ['jobs.1', 'STOPPED'],
      ['jobs.2', 'STOPPED'],
      ['jobs.3', 'STOPPED'],
    ]);
    expect(await request(sock, { cmd: 'start', name: 'jobs' })).toMatchObject({ ok: true });
    const again = await allRunning(sock, 3);
    track(...again.map((c) => c.pid!));
    await stopManager(
      m,
      again.map((c) => c.pid!),
    );
  });
});

/** Node code: append `<tag> <ms since epoch>` to `file` now and on TERM, exit `delayMs` later. */
function recorder(file: string, tag: string, delayMs: number): string[] {
  const f = JSON.stringify(file);
  const log = `(w) => require('fs').appendFileSync(${f}, ${JSON.stringify(tag)} + ' ' + w + ' ' + Date.now() + '\\n')`;
  return [
    process.execPath,
    '-e',
    `const log = ${log}; log('start'); process.on('SIGTERM', () => { log('term'); setTimeout(() => { log('exit'); process.exit(0); }, ${delayMs}); }); setInterval(() => {}, 1000);`,
  ];
}

function events(file: string): { tag: string; what: string; at: number }[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [tag, what, at] = l.split(' ');
      return { tag: tag!, what: what!, at: Number(at) };
    });
}

describe('dependsOn', () => {
  it('starts B only once A is RUNNING, and on TERM stops B before A', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const file = join(dir, 'events');
    const m = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify({
        socket: sock,
        defaults: { stopTimeout: 5 },
        // B first in the list: the order comes from dependsOn, not from the list.
        workers: [
          { name: 'b', command: recorder(file, 'b', 300), startSecs: 0.1, dependsOn: ['a'] },
          { name: 'a', command: recorder(file, 'a', 0), startSecs: 0.8 },
        ],
      }),
    });
    await m.ready;
    const list = await allRunning(sock, 2);
    track(...list.map((c) => c.pid!));
    const started = await waitFor(
      () => {
        const s = events(file).filter((e) => e.what === 'start');
        return s.length === 2 ? s : null;
      },
      5000,
      'both to write their start',
    );
    expect(started.map((e) => e.tag)).toEqual(['a', 'b']);
    // A is RUNNING startSecs (0.8 s) after its spawn; B is spawned only then.
    expect(started[1]!.at - started[0]!.at).toBeGreaterThanOrEqual(750);
    expect(m.logs()).toContain('companion b waiting on a to be RUNNING');

    await stopManager(
      m,
      list.map((c) => c.pid!),
    );
    // B got TERM, took 300 ms to exit, and only then did A get its TERM.
    const stops = events(file).filter((e) => e.what !== 'start');
    expect(stops.map((e) => `${e.tag} ${e.what}`)).toEqual([
      'b term',
      'b exit',
      'a term',
      'a exit',
    ]);
    expect(stops[2]!.at).toBeGreaterThanOrEqual(stops[1]!.at);
  });

  it('leaves a dependent waiting, shown in status, while its dependency is FATAL', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const m = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify({
        socket: sock,
        restartDelay: 0.05,
        defaults: { startSecs: 0.2, stopTimeout: 3 },
        workers: [
          { name: 'db', command: ['sh', '-c', 'exit 3'], startRetries: 1 },
          { name: 'api', command: ['sleep', '60'], dependsOn: ['db'] },
        ],
      }),
    });
    await m.ready;
    const s = await waitFor(
      async () => {
        const c = (await status(sock)).companions;
        return c[0]!.state === 'FATAL' ? c : null;
      },
      5000,
      'db to go FATAL',
    );
    expect(s[1]).toMatchObject({
      name: 'api',
      state: 'STOPPED',
      pid: null,
      waiting_on: ['db'],
      description: 'stopped, waiting on db (FATAL)',
      exits: 0,
    });
    // Starting it by hand still waits: the dependency is not RUNNING.
    expect(await request(sock, { cmd: 'start', name: 'api' })).toEqual({
      ok: true,
      message: 'api waiting on db',
    });
    expect((await status(sock)).companions[1]!.state).toBe('STOPPED');
    await stopManager(m, []);
  });

  it('refuses a cycle at start-up in one line, starting nothing', async () => {
    const m = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify({
        workers: [
          { name: 'a', command: ['sleep', '60'], dependsOn: ['b'] },
          { name: 'b', command: ['sleep', '60'], dependsOn: ['a'] },
        ],
      }),
    });
    expect(await m.exited).toEqual({ code: 1, signal: null });
    const lines = logLines(m).filter((l) => String(l.msg).includes('cycle'));
    expect(lines.map((l) => l.msg)).toEqual([
      'invalid companions config: companions: dependsOn cycle: a -> b -> a',
    ]);
  });
});
