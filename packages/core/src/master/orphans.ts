import type { ChildProcess } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from '../logger.js';
import { loadLibc } from '../ops/libc.js';

/**
 * PID 1 duties: reaping orphans. A process whose parent dies is re-parented to the nearest
 * child subreaper above it, else to PID 1 of its PID namespace; that process must wait() for
 * it, or it stays a zombie. As PID 1 (a container) the master does it; elsewhere on Linux it
 * can become a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so grandchildren of
 * workers and companions are re-parented to it instead of leaking past it.
 *
 * It must never reap libuv's own children: libuv waits for each child it spawned by pid, and
 * a child reaped by someone else first is an exit libuv never reports (the arbiter would never
 * learn that a worker died). So no `waitpid(-1)`: `waitid(P_ALL, WNOWAIT)` peeks at one
 * exited child and leaves it waitable; an orphan is then reaped by its pid, while one of our
 * own children is left to libuv, and the next peek waits for libuv's 'exit' of that child
 * (a peek always shows the same one until it is reaped). SIGCHLD triggers it, never a timer.
 * The system calls go through the optional koffi (`ops/libc.ts`); without it, a warning
 * says to run arb under an init such as tini.
 */

const P_ALL = 0;
const P_PID = 1;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
const PR_SET_CHILD_SUBREAPER = 36;
/** `sizeof(siginfo_t)` on Linux. */
const SIGINFO_SIZE = 128;
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;
/** Orphans reaped in one pass at most; more are reaped in the next one (the loop keeps turning). */
const MAX_PER_PASS = 256;

/** How a reaped orphan ended: an exit code, or the signal that killed it. */
export interface OrphanStatus {
  code: number | null;
  signal: string | null;
}

/** The three system calls (koffi in production, fakes in tests). */
export interface WaitCalls {
  /** The pid of one exited child, left waitable (`WNOWAIT`); 0 when there is none. */
  peek(): number;
  /** Reaps `pid`; how it ended, or undefined when it was not waitable. */
  reap(pid: number): OrphanStatus | undefined;
  /** `prctl(PR_SET_CHILD_SUBREAPER, 1)`; throws with the errno on failure. */
  becomeSubreaper(): void;
}

/** Where `si_pid` is in a `siginfo_t`: after three ints, aligned to the union's 8 bytes on 64-bit. */
export function siginfoPidOffset(arch: string = process.arch): number {
  return arch.includes('64') || arch === 's390x' ? 16 : 12;
}

/**
 * Reads the pid and the end of a child from the `siginfo_t` waitid filled (`si_pid`, then
 * `si_uid`, then `si_status`); pid 0 when waitid found nothing.
 */
export function decodeSiginfo(
  buf: Buffer,
  arch: string = process.arch,
  le = os.endianness() === 'LE',
): { pid: number; status: OrphanStatus } {
  const int = (at: number) => (le ? buf.readInt32LE(at) : buf.readInt32BE(at));
  const at = siginfoPidOffset(arch);
  const pid = int(at);
  const code = int(8);
  const value = int(at + 8);
  if (code === CLD_KILLED || code === CLD_DUMPED) {
    return { pid, status: { code: null, signal: signalName(value) } };
  }
  return { pid, status: { code: code === CLD_EXITED ? value : null, signal: null } };
}

function signalName(n: number): string {
  const found = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return found ? found[0] : String(n);
}

/** The wait calls through koffi, or the reason (one sentence) they are not usable. */
export function loadWaitCalls(): WaitCalls | string {
  const loaded = loadLibc();
  if ('error' in loaded) return loaded.error;
  const { lib, errno } = loaded.libc;
  try {
    const waitid = lib.func('int waitid(int idtype, uint32_t id, void *infop, int options)');
    const prctl = lib.func(
      'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
    );
    const info = Buffer.alloc(SIGINFO_SIZE);
    const wait = (idtype: number, id: number, options: number) => {
      info.fill(0);
      // -1: ECHILD (no child at all) or EINTR; with WNOHANG there is nothing to wait for then
      return (waitid(idtype, id, info, options) as number) === 0 ? decodeSiginfo(info) : undefined;
    };
    return {
      peek: () => wait(P_ALL, 0, WEXITED | WNOHANG | WNOWAIT)?.pid ?? 0,
      reap: (pid) => {
        const r = wait(P_PID, pid, WEXITED | WNOHANG);
        return r && r.pid === pid ? r.status : undefined;
      },
      becomeSubreaper: () => {
        if ((prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) as number) !== 0) {
          throw new Error(`prctl(PR_SET_CHILD_SUBREAPER) failed (errno ${errno()})`);
        }
      },
    };
  } catch (err) {
    return `the optional dependency koffi is not usable: ${(err as Error).message}`;
  }
}

/** Why the master reaps orphans: it is PID 1, it is a child subreaper, or it does not. */
export type ReapingMode = 'pid1' | 'subreaper' | 'off';

/** PID 1 always reaps; elsewhere only as a subreaper (`subreaper` on). */
export function reapingMode(pid: number, subreaper: boolean): ReapingMode {
  if (pid === 1) return 'pid1';
  return subreaper ? 'subreaper' : 'off';
}

/** A child libuv owns but that has no ChildProcess here (it ran before we were watching). */
const EARLIER = 'earlier';

/**
 * The children this process spawned: every ChildProcess (workers, the companion manager, a
 * re-exec'd master, a hook's `exec`...) as `node:child_process` announces it on the
 * `child_process` diagnostics channel, plus the children that were already there when the
 * watch began (read from /proc). libuv reaps each of them; none is ever an orphan.
 */
export class OwnChildren {
  private readonly children = new Set<ChildProcess>();
  private readonly earlier = new Set<number>();
  /** Held here: a channel nobody references could be collected with its subscribers. */
  readonly channel = dc.channel('child_process');
  private watching = false;
  private readonly onSpawn = (message: unknown) => {
    const child = (message as { process?: ChildProcess }).process;
    if (child) this.children.add(child);
  };

  constructor(private readonly procRoot = '/proc') {}

  /** Starts watching; `pid` is this process (its present children are recorded). */
  start(pid = process.pid): void {
    if (this.watching) return;
    this.watching = true;
    dc.subscribe('child_process', this.onSpawn);
    for (const child of childrenOf(pid, this.procRoot)) this.earlier.add(child);
  }

  stop(): void {
    if (!this.watching) return;
    this.watching = false;
    dc.unsubscribe('child_process', this.onSpawn);
  }

  /** Records a child by hand (tests; a spawn the channel did not announce). */
  add(child: ChildProcess): void {
    this.children.add(child);
  }

  /**
   * The live child with this pid (libuv will report its exit), `'earlier'` for one that was
   * already there, undefined for a process that is not ours: an orphan.
   */
  find(pid: number): ChildProcess | typeof EARLIER | undefined {
    for (const c of this.children) {
      // spawn failed (no pid), or libuv reaped it and said so: it is not waitable any more
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) {
        this.children.delete(c);
      } else if (c.pid === pid) return c;
    }
    if (this.earlier.has(pid)) return EARLIER;
    return undefined;
  }

  /** Forgets earlier children that are gone (reaped by libuv): their pids may come back. */
  prune(self = process.pid): void {
    for (const pid of this.earlier) {
      if (parentOf(pid, this.procRoot) !== self) this.earlier.delete(pid);
    }
  }

  get size(): number {
    return this.children.size + this.earlier.size;
  }
}

/** The children of `pid` from /proc (every thread's list); empty when /proc cannot tell. */
export function childrenOf(pid: number, procRoot = '/proc'): number[] {
  const found: number[] = [];
  try {
    for (const tid of fs.readdirSync(`${procRoot}/${pid}/task`)) {
      const text = fs.readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'utf8');
      for (const p of text.split(/\s+/)) if (p) found.push(Number(p));
    }
  } catch {
    // no /proc, or a kernel without CONFIG_PROC_CHILDREN: only the channel knows our children
  }
  return found;
}

/** The parent pid in `/proc/<pid>/stat` (after the `(comm)`, which may hold spaces); 0 if gone. */
export function parentOf(pid: number, procRoot = '/proc'): number {
  try {
    const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

export interface OrphansOptions {
  log: Logger;
  /** Wakes the master loop, which then calls `reap()`. */
  wake(): void;
  /** The `subreaper` setting. */
  subreaper: boolean;
  /** This process's pid (tests). */
  pid?: number;
  /** The system calls, or why there are none (tests); by default through koffi. */
  calls?: WaitCalls | string;
  own?: OwnChildren;
  /** Listen for SIGCHLD (off in unit tests, which call `due()` themselves). Default true. */
  listen?: boolean;
}

/**
 * The master's orphan reaper. `start()` decides (PID 1, subreaper or off), becomes a
 * subreaper if asked and listens for SIGCHLD; each SIGCHLD (or the exit of an own child a
 * peek found) marks a reap due and wakes the loop; the loop's pass calls `reap()`.
 */
export class Orphans {
  mode: ReapingMode = 'off';
  /** Orphans reaped so far. */
  reaped = 0;
  private calls: WaitCalls | undefined;
  private pending = false;
  private listening = false;
  private readonly own: OwnChildren;
  /** Own children whose 'exit' a later peek waits for (one listener each). */
  private readonly awaited = new WeakSet<ChildProcess>();

  constructor(private readonly opts: OrphansOptions) {
    this.own = opts.own ?? new OwnChildren();
  }

  /** Reaping is on. */
  get active(): boolean {
    return this.calls !== undefined;
  }

  /** Starts reaping when this process is PID 1 or a subreaper is asked for; logs why not. */
  start(): void {
    const mode = reapingMode(this.opts.pid ?? process.pid, this.opts.subreaper);
    if (mode === 'off' || this.calls) return;
    const role = mode === 'pid1' ? 'as PID 1' : 'as a child subreaper';
    const calls = this.opts.calls ?? loadWaitCalls();
    if (typeof calls === 'string') {
      this.opts.log.warn(
        `Cannot reap orphans ${role}: ${calls}; run arb under an init such as tini (docker run --init)`,
      );
      return;
    }
    // before the prctl: every child there is now is ours (orphans can only come after it)
    this.own.start(this.opts.pid);
    if (mode === 'subreaper') {
      try {
        calls.becomeSubreaper();
      } catch (err) {
        this.own.stop();
        this.opts.log.warn(
          `Cannot reap orphans ${role}: ${(err as Error).message}; run arb under an init such as tini`,
        );
        return;
      }
    }
    this.calls = calls;
    this.mode = mode;
    if (this.opts.listen !== false) {
      process.on('SIGCHLD', this.due);
      this.listening = true;
    }
    this.opts.log.debug({ mode }, `Reaping orphans ${role}`);
    this.due(); // any that came before the listener
  }

  /** A child may have exited: a reap is due at the loop's next pass. */
  readonly due = (): void => {
    if (!this.calls) return;
    this.pending = true;
    this.opts.wake();
  };

  /**
   * Reaps every exited orphan, up to the first exited child of our own (libuv's to reap:
   * its 'exit' makes a reap due again). Returns how many were reaped.
   */
  reap(): number {
    const calls = this.calls;
    if (!calls || !this.pending) return 0;
    this.pending = false;
    this.own.prune(this.opts.pid);
    let n = 0;
    for (; n < MAX_PER_PASS; ) {
      const pid = calls.peek();
      if (pid <= 0) return n;
      const own = this.own.find(pid);
      if (own === EARLIER) return n; // libuv reaps it; the next SIGCHLD looks again
      if (own) {
        if (!this.awaited.has(own)) {
          this.awaited.add(own);
          own.once('exit', this.due);
        }
        return n;
      }
      const status = calls.reap(pid);
      if (!status) return n; // gone meanwhile: nothing more to learn in this pass
      n += 1;
      this.reaped += 1;
      this.opts.log.debug(
        { orphan: pid, code: status.code, signal: status.signal },
        `Reaped orphan (pid:${pid}) ${status.signal ? `killed by ${status.signal}` : `exit ${status.code}`}`,
      );
    }
    this.due(); // more than one pass's worth: the loop comes back for the rest
    return n;
  }

  /** Stops listening (the master is done). */
  stop(): void {
    if (this.listening) process.off('SIGCHLD', this.due);
    this.listening = false;
    this.own.stop();
    this.calls = undefined;
  }
}
