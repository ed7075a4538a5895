import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../logger.js';
import { Backoff } from './backoff.js';
import type { KillFn } from './pidfile.js';

/** What the arbiter hands a sidecar's `spawn`. */
export interface SidecarContext {
  readonly masterPid: number;
  readonly procName: string;
  readonly log: Logger;
}

/**
 * The one optional supervised process next to the workers (apps/cli plugs the companion
 * manager in here; core knows nothing about companions).
 */
export interface SidecarSpec {
  /** For log lines: `companion manager`. */
  readonly name: string;
  /**
   * A string that changes when the sidecar must be restarted (the companions' config
   * hashes). A reload restarts a running sidecar only when this changed.
   */
  readonly identity: string;
  /** Seconds the sidecar needs for a graceful stop; the master waits max(gracefulTimeout, this). */
  readonly stopTimeout: number;
  /** Signal for a graceful stop (master TERM, reload). Default SIGTERM. */
  readonly stopSignal?: NodeJS.Signals;
  /**
   * Signal for a quick stop (master INT/QUIT). Default SIGINT: the sidecar must stop at once
   * on it (unlike the reference's manager, which ignored QUIT and was killed after the full
   * timeout).
   */
  readonly quickStopSignal?: NodeJS.Signals;
  /** Starts the process (not detached: it must see the master die). */
  spawn(context: SidecarContext): ChildProcess;
  /**
   * Lines the master logs as warnings when it starts with this spec or a reload applies it
   * (the CLI names companions whose stopTimeout does not fit the stop budget).
   */
  readonly warnings?: readonly string[];
}

export interface SidecarDeps {
  now(): number;
  kill: KillFn;
  log: Logger;
  context(): SidecarContext;
  /** Called after the sidecar exited (the master wakes its loop). */
  onExit(): void;
}

/** A run this long (seconds) clears the crash backoff. */
export const SIDECAR_STABLE_SECONDS = 30;

/**
 * Supervises the sidecar (gunicorn fork §1.12): spawned when configured; an unexpected exit
 * respawns it after min(2^(n−1), 30) s; a deliberate stop, or a stable run, resets that.
 */
export class SidecarSlot {
  pid = 0;
  child: ChildProcess | undefined;
  /** The next exit was asked for: log it at info and do not back off. */
  stopping = false;
  readonly backoff = new Backoff(1, 30);
  /** The identity the running (or last) sidecar was spawned with. */
  spawnedIdentity: string | undefined;
  private startedAt = 0;

  constructor(
    public spec: SidecarSpec | undefined,
    private readonly deps: SidecarDeps,
  ) {}

  get running(): boolean {
    return this.pid !== 0;
  }

  /** The sidecar's own stop timeout (0 without one). */
  stopTimeout(): number {
    return this.spec?.stopTimeout ?? 0;
  }

  /** When the master must look again: the end of the respawn backoff, if one runs. */
  nextDeadline(): number | undefined {
    return !this.running && this.spec && this.backoff.remaining(this.deps.now()) > 0
      ? this.backoff.until
      : undefined;
  }

  /** One pass of the master loop: spawn it when configured, absent and not backing off. */
  manage(): void {
    const now = this.deps.now();
    if (this.running) {
      if (this.backoff.failures > 0 && now - this.startedAt >= SIDECAR_STABLE_SECONDS)
        this.backoff.reset();
      return;
    }
    if (!this.spec || this.backoff.remaining(now) > 0) return;
    this.spawn();
  }

  /** Starts the sidecar now. */
  spawn(): void {
    const spec = this.spec;
    if (!spec) return;
    let child: ChildProcess;
    try {
      child = spec.spawn(this.deps.context());
    } catch (err) {
      this.deps.log.error({ err }, `Could not start ${spec.name}`);
      this.failed(undefined, `spawn failed: ${(err as Error).message}`);
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', () => {});
      this.failed(undefined, 'spawn failed');
      return;
    }
    this.child = child;
    this.pid = pid;
    this.spawnedIdentity = spec.identity;
    this.startedAt = this.deps.now();
    child.once('exit', (code, signal) => {
      this.reap(pid, code, signal);
      this.deps.onExit();
    });
    this.deps.log.info(`${spec.name} started (pid:${pid})`);
  }

  /** The sidecar process `pid` exited. */
  reap(pid: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (pid !== this.pid) return;
    this.pid = 0;
    this.child = undefined;
    const name = this.spec?.name ?? 'sidecar';
    if (this.stopping) {
      this.stopping = false;
      this.deps.log.info(`${name} (pid:${pid}) exited`);
      return;
    }
    this.failed(pid, signal ? `killed by ${signal}` : `code ${code}`);
  }

  private failed(pid: number | undefined, how: string): void {
    const now = this.deps.now();
    if (this.startedAt && now - this.startedAt >= SIDECAR_STABLE_SECONDS) this.backoff.reset();
    const delay = this.backoff.fail(now);
    const name = this.spec?.name ?? 'sidecar';
    this.deps.log.error(
      `${name} (pid:${pid ?? '?'}) exited unexpectedly (${how}); respawning in ${delay}s`,
    );
  }

  /** Sends `signal` as a deliberate stop: the exit is expected and the backoff is cleared. */
  stop(signal: NodeJS.Signals): void {
    if (!this.running) return;
    this.stopping = true;
    this.backoff.reset();
    try {
      this.deps.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      this.pid = 0;
      this.child = undefined;
      this.stopping = false;
    }
  }

  /**
   * After a config reload: restart the sidecar only when its identity changed (a running
   * one is stopped; the loop respawns it once reaped), start it now when none runs.
   */
  reload(spec: SidecarSpec | undefined): void {
    const changed = spec?.identity !== this.spawnedIdentity;
    this.spec = spec;
    if (!changed) return;
    if (this.running) {
      this.deps.log.info(`${spec?.name ?? 'sidecar'} changed, restarting it`);
      this.stop(this.stopSignalOf('graceful'));
      return;
    }
    this.manage();
  }

  stopSignalOf(kind: 'graceful' | 'quick'): NodeJS.Signals {
    return kind === 'graceful'
      ? (this.spec?.stopSignal ?? 'SIGTERM')
      : (this.spec?.quickStopSignal ?? 'SIGINT');
  }
}
