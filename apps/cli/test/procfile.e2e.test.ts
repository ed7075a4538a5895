// Issue 16 item 4 through the real arb bin: `--procfile` companions next to the workers, a
// dependsOn cycle refused in one line before anything starts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, alive, BIN, cleanup, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

function project(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

const app = 'export default (req, res) => res.end("ok");\n';

interface Entry {
  name: string;
  state: string;
  pid: number | null;
}

function companionStatus(socket: string, cwd: string): Entry[] | undefined {
  const r = spawnSync(
    process.execPath,
    [BIN, 'companion', 'status', '--json', '--socket', socket],
    {
      cwd,
      encoding: 'utf8',
    },
  );
  return r.status === 0 ? (JSON.parse(r.stdout).companions as Entry[]) : undefined;
}

describe('arb --procfile', () => {
  it('runs the Procfile entries with the .env as companions, ignoring web with one line', async () => {
    const cwd = project({
      'app.mjs': app,
      Procfile: [
        'web: node app.mjs',
        'worker: echo "$GREETING $ARB_COMPANION_NAME" > worker.out && exec sleep 60',
        'clock: echo "$GREETING clock" > clock.out && exec sleep 60',
      ].join('\n'),
      '.env': 'GREETING="hello from"\n',
    });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess(
      [
        '--ctl-socket',
        'none',
        '-b',
        '127.0.0.1:0',
        '--companion-socket',
        socket,
        '--procfile',
        'Procfile',
        'app.mjs',
      ],
      { cwd },
    );
    running.push(a);
    await a.ready();
    const list = await waitFor(
      () => {
        const s = companionStatus(socket, cwd);
        return s?.length === 2 && s.every((c) => c.state === 'RUNNING') ? s : undefined;
      },
      15_000,
      'both Procfile companions to run',
    );
    for (const c of list) a.pids.add(c.pid!);
    expect(list.map((c) => c.name)).toEqual(['worker', 'clock']);
    await waitFor(
      () =>
        fs.existsSync(path.join(cwd, 'worker.out')) && fs.existsSync(path.join(cwd, 'clock.out')),
      5000,
      'the entries to write',
    );
    expect(fs.readFileSync(path.join(cwd, 'worker.out'), 'utf8')).toBe('hello from worker\n');
    expect(fs.readFileSync(path.join(cwd, 'clock.out'), 'utf8')).toBe('hello from clock\n');
    const web = a.logs.filter((e) => String(e.msg).includes('web entry ignored'));
    expect(web.map((e) => e.msg)).toEqual([
      'Procfile:1: web entry ignored: arb serves the web (give arb the app)',
    ]);
    expect(await a.stop()).toBe(0);
    for (const c of list) expect(alive(c.pid!)).toBe(false);
  });

  it('merges with the config file companions; arb companion reread re-reads the Procfile', async () => {
    const cwd = project({
      'app.mjs': app,
      'arb.config.json': JSON.stringify({
        companions: {
          socket: 'c.sock',
          defaults: { startSecs: 0.2 },
          workers: [{ name: 'jobs', command: ['sleep', '60'], dependsOn: ['worker'] }],
        },
      }),
      Procfile: 'worker: exec sleep 60\n',
    });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess(
      ['--ctl-socket', 'none', '-b', '127.0.0.1:0', '--procfile', 'Procfile', 'app.mjs'],
      { cwd },
    );
    running.push(a);
    await a.ready();
    const running2 = (n: number) =>
      waitFor(
        () => {
          const s = companionStatus(socket, cwd);
          return s?.length === n && s.every((c) => c.state === 'RUNNING') ? s : undefined;
        },
        15_000,
        `${n} companions to run`,
      );
    const list = await running2(2);
    for (const c of list) a.pids.add(c.pid!);
    expect(list.map((c) => c.name)).toEqual(['jobs', 'worker']);
    fs.appendFileSync(path.join(cwd, 'Procfile'), 'mailer: exec sleep 60\n');
    const r = spawnSync(
      process.execPath,
      [BIN, 'companion', 'reread', '--json', '--socket', socket],
      {
        cwd,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, added: ['mailer'] });
    const after = await running2(3);
    for (const c of after) a.pids.add(c.pid!);
    expect(after.map((c) => c.name)).toEqual(['jobs', 'worker', 'mailer']);
    expect(await a.stop()).toBe(0);
  });

  it('a bad Procfile line is refused in one line naming file and line, nothing started', async () => {
    const cwd = project({ 'app.mjs': app, Procfile: 'worker: sleep 60\nnot an entry\n' });
    const a = new ArbProcess(['--ctl-socket', 'none', '--procfile', 'Procfile', 'app.mjs'], {
      cwd,
    });
    running.push(a);
    expect(await a.exited()).toBe(1);
    const own = a.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(own).toEqual(["arb: config: Procfile:2: expected 'name: command'"]);
  });
});

describe('dependsOn cycle', () => {
  it('is refused at start-up in one line naming the cycle', async () => {
    const cwd = project({
      'app.mjs': app,
      'arb.config.json': JSON.stringify({
        companions: {
          workers: [
            { name: 'queue', command: ['sleep', '60'], dependsOn: ['mailer'] },
            { name: 'mailer', command: ['sleep', '60'], numprocs: 2, dependsOn: ['queue'] },
          ],
        },
      }),
    });
    const a = new ArbProcess(['--ctl-socket', 'none', 'app.mjs'], { cwd });
    running.push(a);
    expect(await a.exited()).toBe(1);
    const own = a.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(own).toEqual([
      `arb: ${cwd}/arb.config.json: companions: dependsOn cycle: queue -> mailer -> queue`,
    ]);
  });
});
