import { afterEach, describe, expect, it } from 'vitest';
import { adopt, bind, close, InheritError, type Listener } from '../src/index.js';

const opened: Listener[] = [];
afterEach(() => close(opened.splice(0), { unlink: true }));

// In-process checks of what adopt() makes of the variables; the cross-process adoption is
// covered in handoff.test.ts and systemd.test.ts.
describe('adopt', () => {
  it('finds nothing when nothing was handed over', () => {
    expect(adopt({ env: {} })).toEqual([]);
  });

  it('reads ARB_FD, ARB_LISTENERS, ARB_BACKLOG and unsets them by default', async () => {
    const [l] = await bind(['127.0.0.1:0']);
    opened.push(l!);
    const env: NodeJS.ProcessEnv = {
      ARB_FD: String(l!.fd),
      ARB_LISTENERS: l!.address,
      ARB_BACKLOG: '10',
      OTHER: 'x',
    };
    expect(adopt({ env })).toEqual([
      { fd: l!.fd, kind: 'tcp', address: l!.address, backlog: 10, source: 'arb' },
    ]);
    expect(env).toEqual({ OTHER: 'x' });
  });

  it('keeps the variables with unsetEnv: false', async () => {
    const [l] = await bind(['127.0.0.1:0']);
    opened.push(l!);
    const env: NodeJS.ProcessEnv = { ARB_FD: String(l!.fd), ARB_LISTENERS: l!.address };
    adopt({ env, unsetEnv: false });
    expect(env).toEqual({ ARB_FD: String(l!.fd), ARB_LISTENERS: l!.address });
  });

  it('rejects a malformed ARB_FD and a descriptor that is not open', () => {
    expect(() => adopt({ env: { ARB_FD: '3,x' } })).toThrow('ARB_FD="3,x" is not a list of fds');
    expect(() => adopt({ env: { ARB_FD: '999' } })).toThrow(InheritError);
    expect(() => adopt({ env: { ARB_FD: '999' } })).toThrow('inherited fd 999: not open (EBADF)');
  });

  it("uses ARB_FD when LISTEN_PID is another process's, leaving LISTEN_* alone", async () => {
    const [l] = await bind(['127.0.0.1:0']);
    opened.push(l!);
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: String(process.pid + 1),
      LISTEN_FDS: '1',
      ARB_FD: String(l!.fd),
      ARB_LISTENERS: l!.address,
    };
    expect(adopt({ env }).map((a) => a.source)).toEqual(['arb']);
    expect(env.LISTEN_FDS).toBe('1');
  });
});
