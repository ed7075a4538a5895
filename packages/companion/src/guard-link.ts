import { type ChildProcess, fork } from 'node:child_process';
import { guardEntry } from './entries.js';
import type { GuardMessage } from './guard.js';
import type { Logger } from './logger.js';

/** The manager's side of the guard process (see guard.ts). */
export class GuardLink {
  private child: ChildProcess | null = null;

  constructor(private readonly log: Logger) {}

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Start the guard and wait until it listens. Failure is logged, not fatal. */
  async start(timeoutMs = 5000): Promise<void> {
    const child = fork(guardEntry(), [], {
      // Own session: a Ctrl-C or a group kill aimed at the manager spares the guard.
      detached: true,
      execArgv: [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child = child;
    child.on('error', (err) => this.log.error({ err: err.message }, 'companion guard error'));
    child.on('exit', (code, signal) => {
      if (this.child === child) {
        this.child = null;
        this.log.warn({ code, signal }, 'companion guard exited');
      }
    });
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      child.once('message', () => {
        clearTimeout(timer);
        resolve(true);
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready)
      this.log.error('companion guard did not start; orphans possible if the manager is killed');
  }

  private send(msg: GuardMessage): void {
    const c = this.child;
    if (c?.connected)
      c.send(
        msg,
        (err: Error | null) => err && this.log.warn({ err: err.message }, 'guard send failed'),
      );
  }

  add(pgid: number, signal: NodeJS.Signals): void {
    this.send({ op: 'add', pgid, signal });
  }

  remove(pgid: number): void {
    this.send({ op: 'remove', pgid });
  }

  /** Close the channel; the guard then exits (it knows no groups after a clean stop). */
  async close(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = null;
    const exited = new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once('exit', () => resolve());
    });
    if (c.connected) c.disconnect();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  }
}
