// Runs `arb` (the built CLI) and watches its JSON log lines on stderr.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import {
  ARB_BIN,
  ARB_LAUNCHER,
  alive,
  descendants,
  killQuiet,
  now,
  rmDir,
  sleep,
  tempDir,
  waitGone,
} from './util.js';

export interface LogLine {
  /** performance.now() when the harness read the line */
  at: number;
  /** the logger's own timestamp (ms since epoch) */
  time: number;
  pid: number;
  level: number;
  msg: string;
  raw: Record<string, unknown>;
}

export class ArbProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly startedAt = now();
  private waiters: Array<{ pred: (l: LogLine) => boolean; done: (l: LogLine) => void }> = [];
  private buf = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private exitWaiters: Array<() => void> = [];

  /** arb runs in its own temp dir so that default files (control socket...) stay out of the repo */
  readonly cwd: string;
  private ownCwd = false;
  /** files arb left in its working directory after stop (control socket, pidfile...) */
  leftFiles: string[] = [];

  /** `command`: run this instead of arb, with `args` (a wrapper that execs arb in place). */
  constructor(args: string[], env: Record<string, string> = {}, cwd?: string, command?: string) {
    if (!cwd) {
      cwd = tempDir('cwd');
      this.ownCwd = true;
    }
    this.cwd = cwd;
    if (!existsSync(ARB_BIN)) {
      throw new Error(`${ARB_BIN} is missing: run \`pnpm build\` first`);
    }
    // the command users run when the build has it (same pid: it execs node), else the entry
    const [cmd, argv] = command
      ? [command, args]
      : existsSync(ARB_LAUNCHER)
        ? [ARB_LAUNCHER, args]
        : [process.execPath, [ARB_BIN, ...args]];
    this.child = spawn(cmd, argv, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
      cwd,
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => this.onData(d));
    this.child.once('exit', (code, signal) => {
      this.exit = { code, signal };
      for (const w of this.exitWaiters.splice(0)) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onData(d: string): void {
    this.buf += d;
    let i = this.buf.indexOf('\n');
    while (i >= 0) {
      const text = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      i = this.buf.indexOf('\n');
      if (!text.startsWith('{')) continue;
      try {
        const raw = JSON.parse(text) as Record<string, unknown>;
        const line: LogLine = {
          at: now(),
          time: Number(raw.time),
          pid: Number(raw.pid),
          level: Number(raw.level),
          msg: String(raw.msg ?? ''),
          raw,
        };
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.pred(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.done(line);
          }
        }
      } catch {
        // not JSON: ignore
      }
    }
  }

  /** The first line from `since` (an index into lines) on that matches, or undefined on timeout. */
  waitLog(
    pred: (l: LogLine) => boolean,
    timeoutMs: number,
    since = 0,
  ): Promise<LogLine | undefined> {
    const seen = this.lines.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((res) => {
      const w = {
        pred,
        done: (l: LogLine) => {
          clearTimeout(t);
          res(l);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        res(undefined);
      }, timeoutMs);
      this.waiters.push(w);
      if (this.exit) {
        // nothing more will come
      }
    });
  }

  waitMsg(re: RegExp, timeoutMs: number, since = 0): Promise<LogLine | undefined> {
    return this.waitLog((l) => re.test(l.msg), timeoutMs, since);
  }

  waitExit(timeoutMs: number): Promise<boolean> {
    if (this.exit) return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        res(true);
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    killQuiet(this.pid, sig);
  }

  /** Worker pids: children of the master that run the worker runtime (not the manager). */
  workerPids(): number[] {
    return descendants(this.pid)
      .filter((p) => p.ppid === this.pid && !/companion|manager/i.test(p.cmd))
      .map((p) => p.pid);
  }

  /**
   * TERM, wait for exit, then check that every process of the tree is gone.
   * Returns the leaked pids (SIGKILLed afterwards so nothing stays behind).
   */
  async stop(timeoutMs = 15000): Promise<number[]> {
    const tree = descendants(this.pid).map((p) => p.pid);
    if (!this.exit) this.signal('SIGTERM');
    const exited = await this.waitExit(timeoutMs);
    if (!exited) killQuiet(this.pid, 'SIGKILL');
    const leaked = await waitGone(tree, 3000);
    for (const p of leaked) killQuiet(p, 'SIGKILL');
    if (!exited) leaked.unshift(this.pid);
    this.leftFiles = readdirSync(this.cwd);
    if (this.ownCwd) rmDir(this.cwd);
    return leaked;
  }
}

/** Starts arb and waits for "Serving with N workers"; throws with the log tail if it does not. */
export async function startArb(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30000,
  cwd?: string,
): Promise<ArbProcess> {
  const arb = new ArbProcess(args, env, cwd);
  const serving = await Promise.race([
    arb.waitMsg(/^Serving with \d+ workers/, timeoutMs),
    arb.waitExit(timeoutMs).then(() => undefined),
  ]);
  if (!serving) {
    const tail = arb.lines
      .slice(-10)
      .map((l) => l.msg)
      .join('\n  ');
    await arb.stop();
    throw new Error(`arb did not start serving (exit ${JSON.stringify(arb.exit)}):\n  ${tail}`);
  }
  return arb;
}

export async function ensureDead(pid: number): Promise<void> {
  if (!alive(pid)) return;
  killQuiet(pid, 'SIGKILL');
  await sleep(50);
}
