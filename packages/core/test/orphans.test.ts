// The orphan reaper's parts that need no PID namespace: siginfo decoding, the mode, the
// container default, knowing our own children, and the reap loop against fake system calls
// (with real child processes where libuv's side matters). The real waitid/prctl are proven
// end to end in apps/cli/test/orphans.e2e.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  childrenOf,
  decodeSiginfo,
  loadWaitCalls,
  type OrphanStatus,
  Orphans,
  OwnChildren,
  parentOf,
  reapingMode,
  siginfoPidOffset,
  type WaitCalls,
} from '../src/master/orphans.js';
import { inContainer, resolveSettings } from '../src/settings.js';
import { isAlive, recordingLog } from './helpers.js';

const started: ChildProcess[] = [];
const owns: OwnChildren[] = [];
afterEach(async () => {
  for (const o of owns.splice(0)) o.stop();
  for (const c of started.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await new Promise<void>((r) =>
      c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
    );
  }
});

function sleeper(): ChildProcess {
  const c = spawn('sleep', ['30'], { stdio: 'ignore' });
  started.push(c);
  return c;
}

function siginfo(code: number, pid: number, status: number, arch = 'x64'): Buffer {
  const b = Buffer.alloc(128);
  const at = siginfoPidOffset(arch);
  b.writeInt32LE(17, 0); // SIGCHLD
  b.writeInt32LE(code, 8);
  b.writeInt32LE(pid, at);
  b.writeInt32LE(status, at + 8);
  return b;
}

/** A fake kernel: `exited` are zombies (peeked first to last); `reap` removes one. */
function fakeCalls(exited: { pid: number; status: OrphanStatus }[]) {
  const reaped: number[] = [];
  let subreaper = false;
  const calls: WaitCalls = {
    peek: () => exited[0]?.pid ?? 0,
    reap: (pid) => {
      const i = exited.findIndex((e) => e.pid === pid);
      if (i < 0) return undefined;
      reaped.push(pid);
      return exited.splice(i, 1)[0]!.status;
    },
    becomeSubreaper: () => {
      subreaper = true;
    },
  };
  return { calls, reaped, exited, subreaper: () => subreaper };
}

const exit0 = { code: 0, signal: null };

describe('decodeSiginfo', () => {
  it('reads si_pid at 16 on 64-bit and 12 on 32-bit, and an exit status', () => {
    expect(siginfoPidOffset('x64')).toBe(16);
    expect(siginfoPidOffset('arm64')).toBe(16);
    expect(siginfoPidOffset('arm')).toBe(12);
    expect(decodeSiginfo(siginfo(1, 4321, 7), 'x64', true)).toEqual({
      pid: 4321,
      status: { code: 7, signal: null },
    });
    expect(decodeSiginfo(siginfo(1, 99, 3, 'arm'), 'arm', true).pid).toBe(99);
  });

  it('names the signal of a killed or dumped child', () => {
    expect(decodeSiginfo(siginfo(2, 5, 9), 'x64', true).status).toEqual({
      code: null,
      signal: 'SIGKILL',
    });
    expect(decodeSiginfo(siginfo(3, 5, 11), 'x64', true).status.signal).toBe('SIGSEGV');
  });

  it('is pid 0 when waitid found nothing (WNOHANG leaves the buffer zeroed)', () => {
    expect(decodeSiginfo(Buffer.alloc(128)).pid).toBe(0);
  });
});

describe('mode and default', () => {
  it('PID 1 always reaps; elsewhere only as a subreaper', () => {
    expect(reapingMode(1, false)).toBe('pid1');
    expect(reapingMode(1, true)).toBe('pid1');
    expect(reapingMode(42, true)).toBe('subreaper');
    expect(reapingMode(42, false)).toBe('off');
  });

  it('a container is PID 1, a marker file, or a marker variable', () => {
    const none = () => false;
    expect(inContainer(42, {}, none)).toBe(false);
    expect(inContainer(1, {}, none)).toBe(true);
    expect(inContainer(42, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, none)).toBe(true);
    expect(inContainer(42, { container: 'podman' }, none)).toBe(true);
    expect(inContainer(42, {}, (f) => f === '/.dockerenv')).toBe(true);
    expect(inContainer(42, {}, (f) => f === '/run/.containerenv')).toBe(true);
  });

  it('subreaper is a boolean setting; given, it is kept', () => {
    expect(resolveSettings({ app: 'a.js', subreaper: false }).subreaper).toBe(false);
    expect(resolveSettings({ app: 'a.js', subreaper: true }).subreaper).toBe(true);
    expect(typeof resolveSettings({ app: 'a.js' }).subreaper).toBe('boolean');
    expect(() => resolveSettings({ app: 'a.js', subreaper: 'yes' as never })).toThrow(/subreaper/);
  });
});

describe('OwnChildren', () => {
  it('knows every child spawned after start, until libuv reports its exit', async () => {
    const own = new OwnChildren();
    owns.push(own);
    const before = sleeper();
    own.start();
    // one already running at start is known as an earlier child
    expect(own.find(before.pid!)).toBe('earlier');
    const c = sleeper();
    expect(own.find(c.pid!)).toBe(c);
    c.kill('SIGKILL');
    await new Promise((r) => c.once('exit', r));
    expect(own.find(c.pid!)).toBeUndefined();
    expect(own.find(999_999_999)).toBeUndefined();
  });

  it('forgets an earlier child once it is gone', async () => {
    const before = sleeper();
    const own = new OwnChildren();
    owns.push(own);
    own.start();
    expect(own.find(before.pid!)).toBe('earlier');
    before.kill('SIGKILL');
    await new Promise((r) => before.once('exit', r));
    own.prune();
    expect(own.find(before.pid!)).toBeUndefined();
  });

  it('reads children and parents from /proc', () => {
    const c = sleeper();
    expect(parentOf(c.pid!)).toBe(process.pid);
    expect(childrenOf(process.pid)).toContain(c.pid);
    expect(parentOf(999_999_999)).toBe(0);
  });
});

describe('Orphans', () => {
  function reaper(calls: WaitCalls | string, opts: { pid?: number; subreaper?: boolean } = {}) {
    const sink = recordingLog();
    let wakes = 0;
    const own = new OwnChildren();
    owns.push(own);
    const o = new Orphans({
      log: sink.log,
      wake: () => {
        wakes += 1;
      },
      subreaper: opts.subreaper ?? true,
      pid: opts.pid ?? 4242,
      calls,
      own,
      listen: false,
    });
    return { o, sink, own, wakes: () => wakes };
  }

  it('does nothing when not PID 1 and no subreaper is asked for', () => {
    const k = fakeCalls([{ pid: 7, status: exit0 }]);
    const { o } = reaper(k.calls, { subreaper: false });
    o.start();
    expect(o.active).toBe(false);
    o.due();
    expect(o.reap()).toBe(0);
    expect(k.reaped).toEqual([]);
    expect(k.subreaper()).toBe(false);
  });

  it('as PID 1 reaps without prctl; as a subreaper calls it first', () => {
    const a = fakeCalls([]);
    reaper(a.calls, { pid: 1, subreaper: false }).o.start();
    expect(a.subreaper()).toBe(false);
    const b = fakeCalls([]);
    const { o } = reaper(b.calls);
    o.start();
    expect(b.subreaper()).toBe(true);
    expect(o.mode).toBe('subreaper');
  });

  it('reaps every exited orphan once a reap is due, logging each at debug', () => {
    const k = fakeCalls([
      { pid: 7, status: exit0 },
      { pid: 8, status: { code: null, signal: 'SIGKILL' } },
    ]);
    const { o, sink, wakes } = reaper(k.calls);
    o.start();
    expect(wakes()).toBe(1); // start looks for orphans that came before the listener
    expect(o.reap()).toBe(2);
    expect(k.reaped).toEqual([7, 8]);
    const lines = sink.at('debug').filter((l) => l.msg.startsWith('Reaped orphan'));
    expect(lines.map((l) => [l.orphan, l.code, l.signal])).toEqual([
      [7, 0, null],
      [8, null, 'SIGKILL'],
    ]);
    expect(lines[1]!.msg).toBe('Reaped orphan (pid:8) killed by SIGKILL');
    // not due any more: a second call does not wait()
    k.exited.push({ pid: 9, status: exit0 });
    expect(o.reap()).toBe(0);
    expect(k.reaped).toEqual([7, 8]);
  });

  it("never reaps a child of its own: waits for libuv's exit, then reaps what was behind it", async () => {
    const sink = recordingLog();
    let wakes = 0;
    const own = new OwnChildren();
    owns.push(own);
    const k = fakeCalls([]);
    const o = new Orphans({
      log: sink.log,
      wake: () => {
        wakes += 1;
      },
      subreaper: true,
      pid: 4242,
      calls: k.calls,
      own,
      listen: false,
    });
    o.start();
    const mine = sleeper();
    // the kernel shows our exited child first, an orphan behind it
    k.exited.push({ pid: mine.pid!, status: exit0 }, { pid: 77, status: exit0 });
    o.due();
    expect(o.reap()).toBe(0);
    expect(k.reaped).toEqual([]);
    // no spin: nothing is due until libuv reports the exit
    const wakesBefore = wakes;
    expect(o.reap()).toBe(0);
    mine.kill('SIGKILL');
    await new Promise((r) => mine.once('exit', r));
    k.exited.shift(); // libuv reaped it
    expect(wakes).toBe(wakesBefore + 1);
    expect(o.reap()).toBe(1);
    expect(k.reaped).toEqual([77]);
    expect(isAlive(mine.pid!)).toBe(false);
  });

  it("with the real waitid: our exited child, seen before libuv reaps it, stays libuv's", async () => {
    const calls = loadWaitCalls();
    expect(typeof calls).not.toBe('string'); // koffi is installed here
    // as PID 1 (no prctl on the test process): peeks see every exited child of this process
    const { o } = reaper(calls, { pid: 1 });
    o.start();
    const c = spawn('sh', ['-c', 'exit 3'], { stdio: 'ignore' });
    started.push(c);
    // hold the event loop until it is a zombie: libuv has not had a chance to wait() for it
    const deadline = Date.now() + 5000;
    for (;;) {
      const stat = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') break;
      if (Date.now() > deadline) throw new Error(`child ${c.pid} did not exit`);
    }
    o.due();
    expect(o.reap()).toBe(0);
    // libuv still reports it: reaped by anyone else, this exit would never come
    const code = await new Promise((r) => c.once('exit', (n) => r(n)));
    expect(code).toBe(3);
  });

  it('without koffi: one warning naming why and tini, and no reaping', () => {
    const { o, sink } = reaper('the optional dependency koffi is not usable: nope', { pid: 1 });
    o.start();
    expect(o.active).toBe(false);
    const warn = sink.at('warn').map((l) => l.msg);
    expect(warn).toEqual([
      'Cannot reap orphans as PID 1: the optional dependency koffi is not usable: nope; run arb under an init such as tini (docker run --init)',
    ]);
  });

  it('a failing prctl is one warning, and no reaping', () => {
    const k = fakeCalls([{ pid: 7, status: exit0 }]);
    k.calls.becomeSubreaper = () => {
      throw new Error('prctl(PR_SET_CHILD_SUBREAPER) failed (errno 1)');
    };
    const { o, sink } = reaper(k.calls);
    o.start();
    expect(o.active).toBe(false);
    o.due();
    expect(o.reap()).toBe(0);
    expect(sink.at('warn')[0]!.msg).toMatch(/^Cannot reap orphans as a child subreaper: prctl/);
  });

  it('stops after a pass worth of orphans and asks the loop to come back', () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ pid: 1000 + i, status: exit0 }));
    const k = fakeCalls(many);
    const { o, wakes } = reaper(k.calls);
    o.start();
    const w = wakes();
    expect(o.reap()).toBe(256);
    expect(wakes()).toBe(w + 1);
    expect(o.reap()).toBe(44);
    expect(k.exited).toEqual([]);
  });
});
