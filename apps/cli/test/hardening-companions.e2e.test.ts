// Companion supervision under faults, through `arb`: a SIGKILLed guard and manager, a
// socket path taken by a file, a reread followed by a HUP, and privilege drop with -u/-g.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, alive, BIN, cleanup, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

const root = process.getuid?.() === 0;
if (!root) console.log('skipped: running companions as nobody needs root');

function project(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

const app = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;

type Status = {
  manager: { pid: number; guard_pid: number | null };
  companions: { name: string; pid: number; state: string }[];
};

function companionStatus(cwd: string, socket: string): Status | undefined {
  const r = spawnSync(
    process.execPath,
    [BIN, 'companion', 'status', '--json', '--socket', socket],
    {
      cwd,
      encoding: 'utf8',
    },
  );
  return r.status === 0 ? (JSON.parse(r.stdout) as Status) : undefined;
}

/** Waits for a status where `ok` holds and every companion is RUNNING; tracks its pids. */
function statusWhen(
  a: ArbProcess,
  cwd: string,
  socket: string,
  ok: (s: Status) => boolean,
  what: string,
): Promise<Status> {
  return waitFor(
    () => {
      const s = companionStatus(cwd, socket);
      if (!s || !s.companions.every((c) => c.state === 'RUNNING') || !ok(s)) return undefined;
      a.pids.add(s.manager.pid);
      if (s.manager.guard_pid) a.pids.add(s.manager.guard_pid);
      for (const c of s.companions) a.pids.add(c.pid);
      return s;
    },
    20_000,
    what,
  );
}

describe('companion supervision faults', () => {
  it('kill -9 of the guard, then of the manager: the guard is back, no companion runs twice', async () => {
    // The companion notes a live predecessor when it starts: that would be a second copy. (A
    // zombie is not alive: it waits for its reaper, having run its last instruction.)
    const single = `const fs = require('fs');
      try {
        const prev = fs.readFileSync('lock', 'utf8');
        const stat = fs.readFileSync('/proc/' + prev + '/stat', 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
        if (state !== 'Z' && state !== 'X') fs.appendFileSync('twice', prev + ' ' + state + ' ' + process.pid + '\\n');
      } catch {}
      fs.writeFileSync('lock', String(process.pid));
      process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`;
    const cwd = project({
      'app.mjs': app,
      'arb.config.json': JSON.stringify({
        app: './app.mjs',
        bind: '127.0.0.1:0',
        companions: {
          socket: './c.sock',
          defaults: { startSecs: 0.2, stopTimeout: 2 },
          workers: [{ name: 'single', command: [process.execPath, '-e', single] }],
        },
      }),
    });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const first = await statusWhen(a, cwd, socket, (s) => s.companions.length === 1, 'companion');
    const guard = first.manager.guard_pid!;
    process.kill(guard, 'SIGKILL');
    const second = await statusWhen(
      a,
      cwd,
      socket,
      (s) => s.manager.guard_pid !== null && s.manager.guard_pid !== guard,
      'a new guard',
    );
    expect(second.manager.pid).toBe(first.manager.pid);
    expect(alive(second.manager.guard_pid!)).toBe(true);

    process.kill(first.manager.pid, 'SIGKILL');
    const third = await statusWhen(
      a,
      cwd,
      socket,
      (s) => s.manager.pid !== first.manager.pid && s.companions.length === 1,
      'the respawned manager with its companion',
    );
    expect(third.companions[0]!.pid).not.toBe(first.companions[0]!.pid);
    expect(alive(first.companions[0]!.pid)).toBe(false);
    const twice = path.join(cwd, 'twice');
    expect(fs.existsSync(twice) && fs.readFileSync(twice, 'utf8')).toBe(false);
    expect(await a.stop()).toBe(0);
  });

  for (const kind of ['a regular file', 'a directory'] as const) {
    it(`a companion socket path that is ${kind}: exit 1 naming it, nothing started`, async () => {
      const cwd = project({
        'app.mjs': app,
        'arb.config.json': JSON.stringify({
          app: './app.mjs',
          bind: '127.0.0.1:0',
          companions: {
            socket: './c.sock',
            workers: [{ name: 'x', command: ['sleep', '300'] }],
          },
        }),
      });
      const socket = path.join(cwd, 'c.sock');
      if (kind === 'a directory') fs.mkdirSync(socket);
      else fs.writeFileSync(socket, 'precious');
      const a = new ArbProcess([], { cwd });
      running.push(a);
      expect(await a.exited()).toBe(1);
      const lines = a.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(socket);
      expect(a.stderr).not.toContain('companion manager');
      expect(fs.existsSync(path.join(cwd, 'arb.ctl'))).toBe(false);
      if (kind === 'a directory') expect(fs.statSync(socket).isDirectory()).toBe(true);
      else expect(fs.readFileSync(socket, 'utf8')).toBe('precious');
    });
  }

  it('after `arb companion reread`, a HUP with the same config restarts nothing', async () => {
    const config = (names: string[]) =>
      JSON.stringify({
        app: './app.mjs',
        bind: '127.0.0.1:0',
        companions: {
          socket: './c.sock',
          defaults: { startSecs: 0.2, stopTimeout: 2 },
          workers: names.map((name) => ({ name, command: ['sleep', '300'] })),
        },
      });
    const cwd = project({ 'app.mjs': app, 'arb.config.json': config(['one']) });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const first = await statusWhen(a, cwd, socket, (s) => s.companions.length === 1, 'one');

    fs.writeFileSync(path.join(cwd, 'arb.config.json'), config(['one', 'two']));
    const reread = spawnSync(
      process.execPath,
      [BIN, 'companion', 'reread', '--json', '--socket', socket],
      { cwd, encoding: 'utf8' },
    );
    expect(reread.status).toBe(0);
    const afterReread = await statusWhen(a, cwd, socket, (s) => s.companions.length === 2, 'two');
    expect(afterReread.manager.pid).toBe(first.manager.pid);

    const reloads = () => a.logs.filter((e) => e.msg === 'Reload complete').length;
    process.kill(a.pid, 'SIGHUP');
    await waitFor(() => reloads() === 1, 15_000, 'the reload');
    const afterHup = await statusWhen(a, cwd, socket, (s) => s.companions.length === 2, 'two');
    expect(afterHup.manager.pid).toBe(first.manager.pid);
    expect(afterHup.companions.map((c) => c.pid)).toEqual(afterReread.companions.map((c) => c.pid));
    expect(a.logs.some((e) => String(e.msg).includes('changed, restarting'))).toBe(false);

    // The file goes back to what the manager was started with: the manager, which runs
    // something else now, must follow it.
    fs.writeFileSync(path.join(cwd, 'arb.config.json'), config(['one']));
    process.kill(a.pid, 'SIGHUP');
    await waitFor(() => reloads() === 2, 15_000, 'the second reload');
    await statusWhen(
      a,
      cwd,
      socket,
      (s) => s.companions.map((c) => c.name).join() === 'one',
      'only one again',
    );
    expect(await a.stop()).toBe(0);
  });
});

/** Ids and groups of a process, from /proc. */
function credentials(pid: number): { uid: number; gid: number; groups: number[] } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    /^(\S+):\s*(.*)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name}:`))!)![2]!;
  const ids = (name: string) => field(name).split(/\s+/).filter(Boolean).map(Number);
  return {
    uid: ids('Uid')[0]!,
    gid: ids('Gid')[0]!,
    groups: ids('Groups').sort((x, y) => x - y),
  };
}

describe('companion privileges under -u/-g', () => {
  it.skipIf(!root)(
    'companions run as the workers user and group unless they name root; the manager stays root',
    async () => {
      const cwd = project({
        'app.mjs': app,
        'arb.config.json': JSON.stringify({
          app: './app.mjs',
          bind: '127.0.0.1:0',
          companions: {
            socket: './c.sock',
            defaults: { startSecs: 0.2, stopTimeout: 2 },
            workers: [
              { name: 'plain', command: ['sleep', '300'] },
              { name: 'rooted', user: 'root', command: ['sleep', '300'] },
            ],
          },
        }),
      });
      // Workers as nobody read the app through this directory.
      fs.chmodSync(cwd, 0o755);
      const socket = path.join(cwd, 'c.sock');
      const a = new ArbProcess(['-u', 'nobody', '-g', 'nogroup'], { cwd });
      running.push(a);
      await a.ready();
      const s = await statusWhen(a, cwd, socket, (x) => x.companions.length === 2, 'both');
      const pid = (name: string) => s.companions.find((c) => c.name === name)!.pid;
      expect(credentials(pid('plain'))).toEqual({ uid: 65534, gid: 65534, groups: [65534] });
      expect(credentials(pid('rooted'))).toMatchObject({ uid: 0, gid: 0 });
      // The manager and its guard keep the master's user: they signal every companion.
      expect(credentials(s.manager.pid).uid).toBe(0);
      expect(credentials(s.manager.guard_pid!).uid).toBe(0);
      expect(await a.stop()).toBe(0);
    },
  );

  it.skipIf(!root)(
    '-u without -g: companions get the user primary group and its groups',
    async () => {
      const cwd = project({
        'app.mjs': app,
        'arb.config.json': JSON.stringify({
          app: './app.mjs',
          bind: '127.0.0.1:0',
          companions: {
            socket: './c.sock',
            defaults: { startSecs: 0.2, stopTimeout: 2 },
            workers: [{ name: 'plain', command: ['sleep', '300'] }],
          },
        }),
      });
      fs.chmodSync(cwd, 0o755);
      const socket = path.join(cwd, 'c.sock');
      const a = new ArbProcess(['-u', 'daemon'], { cwd });
      running.push(a);
      await a.ready();
      const s = await statusWhen(a, cwd, socket, (x) => x.companions.length === 1, 'plain');
      expect(credentials(s.companions[0]!.pid)).toEqual({ uid: 1, gid: 1, groups: [1] });
      expect(await a.stop()).toBe(0);
    },
  );
});
