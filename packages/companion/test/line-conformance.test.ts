// The line-socket conformance cases of @arb/testkit against the companion manager's real
// control socket: a started Manager, with a companion, answering `status`.
import { join } from 'node:path';
import { CONFORMANCE_LIMITS, lineSocketCases } from '@arb/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Manager } from '../src/index.js';
import { nodeCmd, reapTracked, removeTmpDirs, tmp, track } from './helpers.js';

describe('companion control socket conformance', () => {
  let manager: Manager | undefined;
  let socket = '';
  let stopped = false;
  const stop = async () => {
    if (stopped || !manager) return;
    stopped = true;
    const guard = manager.guardPid;
    await manager.stop({ quick: true });
    if (guard) track(guard);
  };
  beforeAll(async () => {
    socket = join(tmp(), 'c.sock');
    manager = new Manager({
      socket,
      socketLimits: CONFORMANCE_LIMITS,
      companions: { workers: [{ name: 'idle', command: nodeCmd('setInterval(() => {}, 1000)') }] },
    });
    await manager.start();
  });
  afterAll(async () => {
    await stop();
    await reapTracked();
    removeTmpDirs();
  });
  for (const c of lineSocketCases({ path: () => socket, okRequest: '{"cmd":"status"}', stop })) {
    it(c.name, c.run);
  }
});
