// End to end: the sidecar slot with a real sidecar process next to real workers.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupMasters,
  FIXTURES,
  isAlive,
  loggedWorkerPids,
  type Master,
  request,
  startMaster,
  waitFor,
} from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');
const SIDECAR = path.join(FIXTURES, 'sidecar.mjs');

afterEach(cleanupMasters);

function sidecarPids(master: Master): number[] {
  return [...master.log().matchAll(/test sidecar started \(pid:(\d+)\)/g)].map((m) => Number(m[1]));
}

async function withSidecar(
  config: Record<string, unknown> = {},
): Promise<{ master: Master; sidecar: number }> {
  const master = await startMaster({ app: APP, workers: 1, sidecarScript: SIDECAR, ...config });
  const sidecar = await waitFor(() => sidecarPids(master)[0], { what: 'the sidecar' });
  master.seenPids.add(sidecar);
  await waitFor(() => master.log().includes(`sidecar ${sidecar}: started`), {
    what: 'the sidecar running',
  });
  return { master, sidecar };
}

describe('sidecar', () => {
  it('runs next to the workers without the listeners, and a graceful stop ends it deliberately', async () => {
    const { master, sidecar } = await withSidecar();
    expect((await request(master, '/')).status).toBe(200);
    const fds = master.log().match(new RegExp(`sidecar ${sidecar}: started fds=(.*)`))![1]!;
    // the listeners (a worker's fd 3 and 4) are not among the sidecar's descriptors
    const [worker] = loggedWorkerPids(master);
    const listeners = [3, 4].map((fd) => fs.readlinkSync(`/proc/${worker}/fd/${fd}`));
    expect(listeners.every((l) => l.startsWith('socket:'))).toBe(true);
    expect(JSON.parse(fds).filter((f: string) => listeners.includes(f))).toEqual([]);
    process.kill(master.pid, 'SIGTERM');
    expect(await master.exited).toBe(0);
    expect(master.log()).toContain(`sidecar ${sidecar}: got SIGTERM`);
    expect(master.log()).toContain(`test sidecar (pid:${sidecar}) exited"`);
    expect(isAlive(sidecar)).toBe(false);
  });

  it('an unexpected exit is an error and it is respawned after the backoff', async () => {
    const { master, sidecar } = await withSidecar();
    const killedAt = Date.now();
    process.kill(sidecar, 'SIGKILL');
    const next = await waitFor(() => sidecarPids(master)[1], { what: 'a new sidecar' });
    master.seenPids.add(next);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(900);
    expect(master.log()).toContain(
      `test sidecar (pid:${sidecar}) exited unexpectedly (killed by SIGKILL); respawning in 1s`,
    );
  });

  it('a quick stop (INT) reaches it at once', async () => {
    const { master, sidecar } = await withSidecar({ sidecarStopTimeout: 60, gracefulTimeout: 30 });
    const started = Date.now();
    process.kill(master.pid, 'SIGINT');
    expect(await master.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(master.log()).toContain(`sidecar ${sidecar}: got SIGINT`);
  });

  it('a sidecar that ignores TERM is killed after max(gracefulTimeout, its stop timeout)', async () => {
    const { master, sidecar } = await withSidecar({
      gracefulTimeout: 0.5,
      sidecarStopTimeout: 1.5,
      env: { ARB_SIDECAR_STUBBORN: '1' },
    });
    const started = Date.now();
    process.kill(master.pid, 'SIGTERM');
    expect(await master.exited).toBe(0);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(5000);
    expect(master.log()).toContain(`sidecar ${sidecar}: got SIGTERM`);
    expect(isAlive(sidecar)).toBe(false);
  });
});
