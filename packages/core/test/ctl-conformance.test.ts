// The line-socket conformance cases of @arb/testkit against the master's real ctl socket:
// a master process (run-arbiter.mjs) with one worker, answering `status`.
import path from 'node:path';
import { CONFORMANCE_LIMITS, lineSocketCases } from '@arb/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { cleanupMasters, FIXTURES, type Master, startMaster, tempDir } from './helpers.js';

describe('master ctl socket conformance', () => {
  let master: Master | undefined;
  let socket = '';
  beforeAll(async () => {
    const dir = tempDir();
    socket = path.join(dir, 'arb.ctl');
    master = await startMaster(
      {
        app: path.join(FIXTURES, 'app-pid.mjs'),
        workers: 1,
        control: { socket, socketLimits: CONFORMANCE_LIMITS },
      },
      { dir },
    );
  });
  afterAll(cleanupMasters);
  const stop = async () => {
    master!.proc.kill('SIGTERM');
    await master!.exited;
  };
  for (const c of lineSocketCases({ path: () => socket, okRequest: '{"cmd":"status"}', stop })) {
    it(c.name, c.run);
  }
});
