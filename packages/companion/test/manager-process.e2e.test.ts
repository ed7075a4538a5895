import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { managerIdentity, parseCompanions, request } from '../src/index.js';
import {
  allRunning,
  cleanup,
  nodeCmd,
  running,
  spawnManager,
  status,
  tmp,
  track,
  waitFor,
} from './helpers.js';

afterEach(() => cleanup());

describe('manager process', () => {
  it('starts from a JSON file, signals ready, serves status, stops on TERM leaving nothing', async () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'jobs.mjs'),
      'export function run() { setInterval(() => {}, 1000); }\n',
    );
    writeFileSync(
      join(dir, 'arb.json'),
      JSON.stringify({
        socket: 'c.sock',
        defaults: { startSecs: 0.1, stopTimeout: 2 },
        workers: [
          { name: 'jobs', target: './jobs.mjs:run' },
          { name: 'sleeper', command: ['sleep', '60'] },
        ],
      }),
    );
    const m = spawnManager(['--config', join(dir, 'arb.json')], {}, dir);
    const ready = await m.ready;
    const sock = join(dir, 'c.sock');
    const config = JSON.parse(readFileSync(join(dir, 'arb.json'), 'utf8'));
    // The identity is the one arb's master computes from the same config (Manager.identity).
    const identity = managerIdentity(parseCompanions(config, { baseDir: dir }).configs, {
      socket: sock,
    });
    expect(ready).toEqual({ type: 'ready', pid: m.pid, socket: sock, identity });
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const list = await allRunning(sock, 2);
    const s = await status(sock);
    track(...list.map((c) => c.pid!), s.manager.guard_pid!);
    expect(list.map((c) => c.name)).toEqual(['jobs', 'sleeper']);
    expect(s.manager.pid).toBe(m.pid);
    m.child.kill('SIGTERM');
    expect(await m.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(sock)).toBe(false);
    for (const c of list) expect(running(c.pid!)).toBe(false);
    await waitFor(() => !running(s.manager.guard_pid!), 3000, 'guard to exit');
    expect(m.logs()).toContain('"proc":"manager"');
    expect(m.logs()).toContain('all companions stopped');
  });

  it('HUP and the reread command re-import a changed .mjs config', async () => {
    const dir = tmp();
    const file = join(dir, 'companions.mjs');
    const write = (names: string[]) =>
      writeFileSync(
        file,
        `export default { socket: ${JSON.stringify(join(dir, 'c.sock'))}, defaults: { startSecs: 0.1, stopTimeout: 2 }, workers: ${JSON.stringify(names.map((name) => ({ name, command: ['sleep', '60'] })))} };\n`,
      );
    write(['a']);
    const m = spawnManager(['--config', file], {}, dir);
    await m.ready;
    const sock = join(dir, 'c.sock');
    const [a] = await allRunning(sock, 1);
    track(a!.pid!, (await status(sock)).manager.guard_pid!);
    const identities: string[] = [];
    m.child.on('message', (msg: { type: string; identity: string }) => {
      if (msg.type === 'identity') identities.push(msg.identity);
    });
    write(['a', 'b']);
    m.child.kill('SIGHUP');
    const two = await allRunning(sock, 2);
    // Each applied reread tells the parent what runs now.
    const runs = async () =>
      managerIdentity(
        parseCompanions((await import(`${file}?${Date.now()}`)).default, { baseDir: dir }).configs,
        { socket: sock },
      );
    const expected = await runs();
    await waitFor(() => identities.at(-1) === expected, 5000, 'the identity after the reread');
    track(...two.map((c) => c.pid!));
    expect(two.map((c) => c.name)).toEqual(['a', 'b']);
    expect(two[0]!.pid).toBe(a!.pid);
    write(['b']);
    expect(await request(sock, { cmd: 'reread' })).toEqual({
      ok: true,
      added: [],
      removed: ['a'],
      restarted: [],
      unchanged: ['b'],
    });
    await waitFor(() => !running(a!.pid!), 5000, 'a to stop');
    writeFileSync(file, 'export default {{{ syntax error');
    const bad = await request(sock, { cmd: 'reread' });
    expect(bad).toMatchObject({ ok: false, kept_old_config: true });
    expect(String(bad.error)).toMatch(/^invalid config: /);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('--loader replaces the file loader, on start and on every reread', async () => {
    const dir = tmp();
    // A loader for a format the built-in one does not read: one companion name per line.
    const loader = join(dir, 'loader.mjs');
    writeFileSync(
      loader,
      `import { readFileSync } from 'node:fs';
export function loadCompanions(file) {
  const names = readFileSync(file, 'utf8').split('\\n').filter(Boolean);
  return { socket: ${JSON.stringify(join(dir, 'c.sock'))}, defaults: { startSecs: 0.1, stopTimeout: 2 },
    workers: names.map((name) => ({ name, command: ['sleep', '60'] })) };
}
`,
    );
    const file = join(dir, 'names.txt');
    writeFileSync(file, 'one\n');
    const m = spawnManager(['--config', file, '--loader', loader], {}, dir);
    await m.ready;
    const sock = join(dir, 'c.sock');
    track(
      ...(await allRunning(sock, 1)).map((c) => c.pid!),
      (await status(sock)).manager.guard_pid!,
    );
    writeFileSync(file, 'one\ntwo\n');
    expect(await request(sock, { cmd: 'reread' })).toMatchObject({ ok: true, added: ['two'] });
    track(...(await allRunning(sock, 2)).map((c) => c.pid!));
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('refuses a --loader without a loadCompanions function, starting nothing', async () => {
    const dir = tmp();
    const loader = join(dir, 'empty.mjs');
    writeFileSync(loader, 'export const nothing = 1;\n');
    writeFileSync(join(dir, 'x.txt'), 'a\n');
    const m = spawnManager(['--config', join(dir, 'x.txt'), '--loader', loader], {}, dir);
    expect((await m.exited).code).toBe(1);
  });

  it('USR1 reopens companion output files', async () => {
    const dir = tmp();
    const config = {
      workers: [
        {
          name: 'chatty',
          startSecs: 0.1,
          stdout: join(dir, 'out.log'),
          command: nodeCmd("setInterval(() => console.log('tick'), 30)"),
        },
      ],
    };
    const m = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await m.ready;
    const log = join(dir, 'out.log');
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('tick'));
    renameSync(log, `${log}.1`);
    m.child.kill('SIGUSR1');
    await waitFor(
      () => existsSync(log) && readFileSync(log, 'utf8').includes('tick'),
      5000,
      'the new log file',
    );
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('exits 1 on an invalid config and 2 when the socket is in use, starting nothing', async () => {
    const dir = tmp();
    const marker = join(dir, 'started');
    const cmd = nodeCmd(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`);
    const bad = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify({
        workers: [{ name: 'x', command: cmd, stopSignal: 'SIGKILL' }],
      }),
    });
    expect((await bad.exited).code).toBe(1);
    expect(bad.logs()).toContain('stopSignal');

    const sock = join(dir, 'c.sock');
    const other = createServer((c) => c.on('error', () => {}).end());
    await new Promise<void>((r) => other.listen(sock, r));
    try {
      const busy = spawnManager([], {
        ARB_COMPANION_CONFIG_JSON: JSON.stringify({
          socket: sock,
          workers: [{ name: 'x', command: cmd }],
        }),
      });
      expect((await busy.exited).code).toBe(2);
      expect(busy.logs()).toContain('address in use');
      expect(statSync(sock).isSocket()).toBe(true);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});

/** Descriptors of a process that are sockets (the control listener or a client connection). */
function sockets(pid: number): string[] {
  const fds = readdirSync(`/proc/${pid}/fd`);
  expect(fds).toEqual(expect.arrayContaining(['0', '1', '2']));
  // 0-2 are inherited stdio (socketpairs here, as the test pipes the manager's output).
  return fds
    .filter((fd) => Number(fd) > 2)
    .map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`))
    .filter((l) => l.startsWith('socket:'));
}

describe('manager process hygiene', () => {
  it('companions inherit no socket descriptor, even when spawned from a control command', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const config = {
      socket: sock,
      defaults: { startSecs: 0.1 },
      workers: [{ name: 's', command: ['sleep', '60'] }],
    };
    const m = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await m.ready;
    const [first] = await allRunning(sock, 1);
    track(first!.pid!, (await status(sock)).manager.guard_pid!);
    expect(sockets(first!.pid!)).toEqual([]);
    // Restarted while a control connection is open: still nothing leaked.
    expect(await request(sock, { cmd: 'restart', name: 's' })).toEqual({
      ok: true,
      message: 's restarting',
    });
    const again = await waitFor(async () => {
      const [c] = (await status(sock)).companions;
      return c!.state === 'RUNNING' && c!.pid !== first!.pid ? c : null;
    });
    track(again.pid!);
    expect(sockets(again.pid!)).toEqual([]);
    // The manager's own inputs are not passed down.
    expect(readFileSync(`/proc/${again.pid}/environ`, 'utf8')).not.toContain(
      'ARB_COMPANION_CONFIG_JSON',
    );
    expect(readFileSync(`/proc/${again.pid}/environ`, 'utf8')).toContain('ARB_COMPANION_NAME=s');
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('starts nothing when its parent is already gone (ARB_COMPANION_PARENT_PID)', async () => {
    const dir = tmp();
    const marker = join(dir, 'started');
    const config = {
      workers: [
        {
          name: 'x',
          command: nodeCmd(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`),
        },
      ],
    };
    const m = spawnManager([], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify(config),
      ARB_COMPANION_PARENT_PID: String(process.pid + 1_000_000),
    });
    expect((await m.exited).code).toBe(0);
    expect(m.logs()).toContain('parent gone before start');
    expect(existsSync(marker)).toBe(false);
  });
});
