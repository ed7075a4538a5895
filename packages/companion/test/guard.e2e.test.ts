// The guard: the safety net that stops companions when the manager dies. These tests kill
// the guard and the manager with SIGKILL, as an operator or the OOM killer would.
import { existsSync, renameSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  allRunning,
  cleanup,
  readPids,
  running,
  spawnManager,
  status,
  stubbornWithChild,
  tmp,
  track,
  waitFor,
} from './helpers.js';

afterEach(() => cleanup());

describe('the guard', () => {
  it('a SIGKILLed guard is respawned; a later kill -9 of the manager still leaves no companion', async () => {
    const dir = tmp();
    const pids = join(dir, 'pids');
    const sock = join(dir, 'c.sock');
    const config = {
      socket: sock,
      defaults: { startSecs: 0.1, stopTimeout: 30 },
      workers: [
        { name: 'stubborn', command: stubbornWithChild(pids) },
        { name: 'sleeper', command: ['sleep', '300'] },
      ],
    };
    const m = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await m.ready;
    const companions = await allRunning(sock, 2);
    const stubborn = await waitFor(() => (readPids(pids).length === 2 ? readPids(pids) : null));
    const all = [...new Set([...stubborn, ...companions.map((c) => c.pid!)])];
    const firstGuard = (await status(sock)).manager.guard_pid!;
    track(...all, firstGuard);

    process.kill(firstGuard, 'SIGKILL');
    const secondGuard = await waitFor(
      async () => {
        const g = (await status(sock)).manager.guard_pid;
        return g !== null && g !== firstGuard && running(g) ? g : null;
      },
      5000,
      'a new guard',
    );
    track(secondGuard);
    // The new guard knows the groups started before it: kill -9 of the manager stops them.
    m.child.kill('SIGKILL');
    await m.exited;
    await waitFor(() => all.every((p) => !running(p)), 3000, 'every companion to be gone');
    await waitFor(() => !running(secondGuard), 3000, 'the guard to exit');
    expect(m.logs()).toContain('companion guard exited');
  });

  it('removes the control socket of a SIGKILLed manager, but never a socket it did not create', async () => {
    const dir = tmp();
    const sock = join(dir, 'c.sock');
    const config = {
      socket: sock,
      defaults: { startSecs: 0.1, stopTimeout: 30 },
      workers: [{ name: 'sleeper', command: ['sleep', '300'] }],
    };
    const first = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await first.ready;
    const [c1] = await allRunning(sock, 1);
    const g1 = (await status(sock)).manager.guard_pid!;
    track(c1!.pid!, g1);
    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor(() => !running(g1), 3000, 'the guard to exit');
    expect(existsSync(sock)).toBe(false);

    // Another process's socket now sits at the path the manager created: it stays.
    const second = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(config) }, dir);
    await second.ready;
    const [c2] = await allRunning(sock, 1);
    const g2 = (await status(sock)).manager.guard_pid!;
    track(c2!.pid!, g2);
    renameSync(sock, join(dir, 'moved.sock'));
    const other = createServer((s) => s.on('error', () => {}).end());
    await new Promise<void>((r) => other.listen(sock, r));
    try {
      const ino = statSync(sock).ino;
      second.child.kill('SIGKILL');
      await second.exited;
      await waitFor(() => !running(g2) && !running(c2!.pid!), 3000, 'guard and companion gone');
      expect(statSync(sock).ino).toBe(ino);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });
});
