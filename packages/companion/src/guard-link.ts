import { type ChildProcess, fork } from 'node:child_process';
import { guardEntry } from './entries.js';
import { GUARD_STATE_ENV, type GuardMessage, type GuardState } from './guard-protocol.js';
import type { Logger } from './logger.js';
import type { OwnedFile } from './owned-file.js';

/** Delay before respawning a guard that died again soon; doubled per quick death, capped. */
const RESPAWN_BASE_MS = 100;
const RESPAWN_CAP_MS = 5000;
/** A guard that lived this long was healthy: its death restarts the delay at the base. */
const STABLE_MS = 10_000;

/**
 * The manager's side of the guard process (see guard.ts). It keeps what the guard must know
 * (the live groups, the socket file), so that a guard that dies (kill -9, OOM) is respawned
 * and told everything again: the safety net is never gone for more than a moment.
 */
export class GuardLink {
  private child: ChildProcess | null = null;
  private readonly groups = new Map<number, NodeJS.Signals>();
  private socket: OwnedFile | null = null;
  private closed = false;
  private quickDeaths = 0;
  private respawnTimer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger) {}

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Start the guard and wait until it listens. Failure is logged, not fatal. */
  async start(timeoutMs = 5000): Promise<void> {
    // What is known so far travels with the spawn (a respawned guard would otherwise start
    // empty): the guard is armed from its first instruction, even if the manager dies before
    // the guard could read a message. Later changes follow in order on the channel.
    const state: GuardState = {
      managerPid: process.pid,
      groups: [...this.groups],
      socket: this.socket,
    };
    const child = fork(guardEntry(), [], {
      // Own session: a Ctrl-C or a group kill aimed at the manager spares the guard.
      detached: true,
      execArgv: [],
      env: { ...process.env, [GUARD_STATE_ENV]: JSON.stringify(state) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child = child;
    const startedAt = Date.now();
    child.on('error', (err) => this.log.error({ err: err.message }, 'companion guard error'));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.log.warn({ code, signal, guardPid: child.pid }, 'companion guard exited; respawning it');
      this.quickDeaths = Date.now() - startedAt >= STABLE_MS ? 0 : this.quickDeaths + 1;
      this.scheduleRespawn();
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

  private scheduleRespawn(): void {
    if (this.closed || this.respawnTimer) return;
    // At once the first time (the net must be back before anything else happens), then
    // growing, so that a guard that cannot live does not spin.
    const delay =
      this.quickDeaths <= 1
        ? 0
        : Math.min(RESPAWN_BASE_MS * 2 ** (this.quickDeaths - 2), RESPAWN_CAP_MS);
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = null;
      if (!this.closed) void this.start();
    }, delay);
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
    this.groups.set(pgid, signal);
    this.send({ op: 'add', pgid, signal });
  }

  remove(pgid: number): void {
    this.groups.delete(pgid);
    this.send({ op: 'remove', pgid });
  }

  /** The control socket file the manager created: removed by the guard if the manager dies. */
  ownSocket(file: OwnedFile): void {
    this.socket = file;
    this.send({ op: 'socket', ...file });
  }

  /** Close the channel; the guard then exits (it knows no groups after a clean stop). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
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
