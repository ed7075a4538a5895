import fs from 'node:fs';
import net from 'node:net';
import { retryOnPortInUse } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { listenFds, systemdFds } from '../src/index.js';
import { fixture, get, jsonLines, Procs, tempDir } from './helpers.js';

// gunicorn tests/test_systemd.py, both values of `unset`.
describe.each([true, false])('listenFds (unsetEnv: %s)', (unsetEnv) => {
  it('ignores descriptors meant for another pid and leaves the variables alone', () => {
    const env = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '5', LISTEN_FDNAMES: 'a' };
    expect(listenFds({ env, unsetEnv })).toBe(0);
    expect(env).toEqual({
      LISTEN_PID: String(process.pid + 1),
      LISTEN_FDS: '5',
      LISTEN_FDNAMES: 'a',
    });
  });

  it('returns the count for this pid and unsets the variables only when asked', () => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: String(process.pid),
      LISTEN_FDS: '5',
      LISTEN_FDNAMES: 'a:b',
    };
    expect(listenFds({ env, unsetEnv })).toBe(5);
    if (unsetEnv) expect(env).toEqual({});
    else
      expect(env).toEqual({
        LISTEN_PID: String(process.pid),
        LISTEN_FDS: '5',
        LISTEN_FDNAMES: 'a:b',
      });
  });
});

describe('systemdFds', () => {
  it('numbers descriptors from 3 and names them from LISTEN_FDNAMES', () => {
    const env = { LISTEN_PID: '42', LISTEN_FDS: '3', LISTEN_FDNAMES: 'web::admin' };
    expect(systemdFds({ env, pid: 42 })).toEqual({
      fds: [3, 4, 5],
      names: ['web', undefined, 'admin'],
    });
  });
  it('treats a missing or bad LISTEN_FDS as none', () => {
    expect(systemdFds({ env: { LISTEN_PID: '42' }, pid: 42 }).fds).toEqual([]);
    expect(systemdFds({ env: { LISTEN_PID: '42', LISTEN_FDS: 'x' }, pid: 42 }).fds).toEqual([]);
    expect(systemdFds({ env: {}, pid: 42 }).fds).toEqual([]);
  });
});

const procs = new Procs();
const dirs: string[] = [];
afterEach(async () => {
  try {
    await procs.stopAll();
  } finally {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
});

/**
 * Runs `command` under the real systemd-socket-activate (it execs in place), listening on
 * `listen(port)` for a free TCP port; another port is tried when that one was taken
 * meanwhile (the activator cannot pick one itself).
 */
async function activate(
  listen: (port: number) => string[],
  command: string[],
  env: NodeJS.ProcessEnv = {},
) {
  return retryOnPortInUse(async (port) => {
    const child = procs.spawn('systemd-socket-activate', [...listen(port), ...command], {
      env: { ...process.env, ...env },
    });
    const lines = jsonLines(child);
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        reject(new Error(`systemd-socket-activate did not listen in 10 s: ${stderr}`));
      }, 10_000);
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`systemd-socket-activate exited: ${stderr}`));
      };
      child.once('exit', onExit);
      child.stderr!.on('data', (d) => {
        stderr += d;
        if (!/Listening on/.test(stderr)) return;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve();
      });
    });
    return { child, lines, port };
  });
}

describe('adoption under systemd-socket-activate', () => {
  it('serves HTTP on socket-activated TCP and unix sockets, with their names', async () => {
    const d = tempDir();
    dirs.push(d);
    const sock = `${d}/sd.sock`;
    const { child, lines, port } = await activate(
      (p) => [`--listen=127.0.0.1:${p}`, `--listen=${sock}`, '--fdname=web:admin'],
      [process.execPath, fixture('worker.mjs')],
    );
    // The first connection makes systemd-socket-activate start the service.
    const first = get({ port, host: '127.0.0.1' });
    const ready = await lines.next((m) => m.ready === true);
    expect(ready.pid).toBe(child.pid);
    expect(ready.listeners).toEqual([
      { fd: 3, kind: 'tcp', address: `127.0.0.1:${port}`, name: 'web', source: 'systemd' },
      { fd: 4, kind: 'unix', address: `unix:${sock}`, name: 'admin', source: 'systemd' },
    ]);
    expect(ready.leftover).toEqual([]);
    expect(JSON.parse((await first).body)).toEqual({
      pid: child.pid,
      address: `127.0.0.1:${port}`,
    });
    expect(JSON.parse((await get({ socketPath: sock })).body).pid).toBe(child.pid);
  });

  it('ignores LISTEN_FDS when LISTEN_PID names another process', async () => {
    // The fixture runs under a shell, so LISTEN_PID is the shell's parent's, not the worker's.
    const { lines, port } = await activate(
      (p) => [`--listen=127.0.0.1:${p}`],
      ['/bin/sh', '-c', `LISTEN_PID=1 exec "${process.execPath}" "${fixture('worker.mjs')}"`],
      { KEEP_ENV: '0' },
    );
    const probe = net.connect(port, '127.0.0.1');
    probe.on('error', () => {});
    const ready = await lines.next((m) => m.ready === true);
    probe.destroy();
    expect(ready.listeners).toEqual([]);
    // Not ours: left in place for whoever they were meant for.
    expect(ready.leftover).toEqual(expect.arrayContaining(['LISTEN_FDS', 'LISTEN_PID']));
  });
});
