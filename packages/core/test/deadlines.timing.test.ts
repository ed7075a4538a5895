// Deadlines the master and its workers keep, measured on the wall clock. The bounds hold
// only on a machine not loaded by other test files: the `timing` project (vitest.config.ts)
// runs this file after all the others, alone.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupMasters,
  distinctPids,
  FIXTURES,
  isAlive,
  loggedWorkerPids,
  request,
  startMaster,
  waitFor,
} from './helpers.js';

const APP = path.join(FIXTURES, 'app-pid.mjs');

afterEach(cleanupMasters);

describe('orphaned workers', () => {
  it('kill -9 of the master leaves no worker alive after 1 s', async () => {
    const master = await startMaster({ app: APP, workers: 3 });
    const workers = loggedWorkerPids(master);
    process.kill(master.pid, 'SIGKILL');
    await master.exited;
    const killedAt = Date.now();
    await waitFor(() => workers.every((p) => !isAlive(p)), {
      what: 'orphans gone',
      intervalMs: 10,
      timeoutMs: 5000,
    });
    // 1 s, plus scheduling slack
    expect(Date.now() - killedAt).toBeLessThan(1500);
  });
});

describe('heartbeat timeout', () => {
  it('a worker whose event loop is blocked is killed after `timeout` and replaced; the others keep serving', async () => {
    const master = await startMaster({ app: APP, workers: 2, timeout: 2 });
    const pids = await distinctPids(master, 2);
    const blocked = request(master, '/block?ms=30000').catch(() => 'cut');
    const blockedAt = Date.now();
    // (a connection the worker had accepted together with the blocking one would be lost
    // with it; once it blocks it accepts nothing more)
    await waitFor(() => master.log().includes('blocking request started'), {
      what: 'the worker blocked',
    });
    // the other worker keeps serving meanwhile
    for (let i = 0; i < 5; i++) expect((await request(master, '/')).status).toBe(200);
    const victim = await waitFor(
      () => {
        const m = /WORKER TIMEOUT \(pid:(\d+)\)/.exec(master.log());
        return m ? Number(m[1]) : undefined;
      },
      { what: 'WORKER TIMEOUT', timeoutMs: 10_000 },
    );
    expect(pids.has(victim)).toBe(true);
    await waitFor(() => !isAlive(victim), { what: 'the hung worker killed', intervalMs: 10 });
    const killedAfter = (Date.now() - blockedAt) / 1000;
    // timeout + 1 s, plus scheduling slack
    expect(killedAfter).toBeLessThan(2 + 1 + 1);
    expect(await blocked).toBe('cut');
    await waitFor(() => loggedWorkerPids(master).length === 3, { what: 'a replacement' });
    const after = await distinctPids(master, 2);
    expect(after.has(victim)).toBe(false);
  });
});
