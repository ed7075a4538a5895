import { EventEmitter } from 'node:events';
import { type LineServerLimits, readProcStats } from '@arb/sock';
import { monoNow } from './clock.js';
import { type CommandResult, Companion, type CompanionOutput } from './companion.js';
import {
  type BuildOptions,
  type CompanionConfig,
  type CompanionsSettings,
  parseCompanions,
} from './config.js';
import { ControlServer } from './control-server.js';
import { GuardLink } from './guard-link.js';
import { configHash, managerIdentity } from './hash.js';
import { type Logger, silentLogger } from './logger.js';
import { MEMORY_SAMPLE_SECONDS } from './memory-limit.js';
import { dependentsOf, startBlockers, stoppable } from './ordering.js';
import { fileIdentity } from './owned-file.js';
import { type Request, type Response, type StatusEntry, statusEntry } from './protocol.js';
import { refuseNonSocket } from './socket-path.js';
import type { CompanionState } from './state-machine.js';

export interface ManagerOptions {
  /** The `companions` object (validated here; throws `CompanionConfigError`). */
  companions?: unknown;
  /** Returns the companions object afresh; used by `reread` (and HUP). Required for reread. */
  load?: () => unknown | Promise<unknown>;
  /** Base for relative paths in the config. Default `process.cwd()`. */
  baseDir?: string;
  /** Control socket path; overrides the config's `socket`. `null`: no socket. */
  socket?: string | null;
  logger?: Logger;
  /**
   * Companions' stdout/stderr that no config sends to a file, line by line (the manager
   * process writes them as log lines). Without it, companions inherit this process's.
   */
  output?: CompanionOutput;
  /** Start the guard process that kills companions if this process dies. Default true. */
  guard?: boolean;
  /** Limits of the control socket (idle and read timeouts, connections...); @arb/sock's defaults. */
  socketLimits?: LineServerLimits;
  /** Random source for backoff jitter (tests). */
  random?: () => number;
  /**
   * User (name or uid) companions run as unless they name one; arb passes the workers'
   * `-u`. Default: this process's user. Root only when named.
   */
  user?: string | number;
  /** Group for those companions; default the primary group of `user` (arb: `-g`). */
  group?: string | number;
  /** `stopTimeout` of a companion that sets none (arb: the workers' `gracefulTimeout`). Default 60. */
  stopTimeout?: number;
}

function buildOptions(opts: ManagerOptions): BuildOptions {
  return {
    baseDir: opts.baseDir,
    user: opts.user,
    group: opts.group,
    stopTimeout: opts.stopTimeout,
  };
}

export interface StopOptions {
  /** Quick stop: SIGKILL after at most `cap` seconds (default 1) instead of stopTimeout. */
  quick?: boolean;
  /** Upper bound in seconds on every stop deadline. */
  cap?: number;
}

export type RereadResult = {
  ok: true;
  added: string[];
  removed: string[];
  restarted: string[];
  unchanged: string[];
};

/** Upper bound on the SIGKILL deadline for a quick stop (QUIT). */
export const QUICK_STOP_SECONDS = 1;

export interface ManagerEvents {
  state: [name: string, state: CompanionState];
  /** A reread was applied (the companions now run `identity`). */
  reread: [result: RereadResult, identity: string];
}

/**
 * Supervises a set of companions: one `Companion` per config, the optional control
 * socket, the guard. Usable on its own from the API; manager-main.ts wraps it in a process.
 */
export class Manager extends EventEmitter<ManagerEvents> {
  private companions = new Map<string, Companion>();
  /** Removed by reread but still alive: supervised (deadlines enforced) until reaped. */
  private readonly retiring = new Set<Companion>();
  private readonly log: Logger;
  private readonly guard: GuardLink | null;
  private control: ControlServer | null = null;
  private settings: CompanionsSettings | null = null;
  private readonly socketPath: string | null | undefined;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  /** Rereads run one at a time so two never interleave their diffs. */
  private rereadChain: Promise<unknown> = Promise.resolve();
  /** Samples the RSS of the companions with a `maxMemory`; only while one has. */
  private memoryTimer: NodeJS.Timeout | null = null;
  /** Asked to start, waiting for their `dependsOn` to be RUNNING (names). */
  private readonly waiting = new Set<string>();
  /** Asked to stop, waiting for their dependents to be gone first (graceful stops). */
  private readonly pendingStop = new Set<Companion>();
  /** Set while stepStops runs: the stops it makes re-enter through state events. */
  private steppingStops = false;

  constructor(private readonly opts: ManagerOptions) {
    super();
    this.log = opts.logger ?? silentLogger();
    this.guard = opts.guard === false ? null : new GuardLink(this.log);
    this.socketPath = opts.socket;
    if (opts.companions !== undefined) {
      this.settings = parseCompanions(opts.companions, buildOptions(opts));
    }
  }

  /** The control socket path in use (after start), or null. */
  get socket(): string | null {
    return this.control?.path ?? null;
  }

  get shuttingDown(): boolean {
    return this.stopping !== null;
  }

  /**
   * `managerIdentity` of the companions this manager runs now (rereads included) and of the
   * socket it uses: what arb's master compares with on reload, so that a HUP after a reread
   * restarts nothing when the file still says what the manager runs. Null before a config.
   */
  get identity(): string | null {
    if (!this.settings) return null;
    const socket =
      this.control?.path ??
      (this.socketPath === undefined ? this.settings.socket : this.socketPath);
    return managerIdentity(this.settings.configs, { socket });
  }

  /** Pid of the guard process, if running. */
  get guardPid(): number | null {
    return this.guard?.pid ?? null;
  }

  /** Names in config order. */
  names(): string[] {
    return [...this.companions.keys()];
  }

  get(name: string): Companion | undefined {
    return this.companions.get(name);
  }

  /**
   * Bind the control socket (before anything is spawned, so a socket conflict starts
   * nothing), start the guard, then start every companion.
   */
  start(): Promise<void> {
    if (this.starting) return Promise.reject(new Error('manager already started'));
    if (this.stopping) return Promise.reject(new Error('manager already stopped'));
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (!this.settings) {
      if (!this.opts.load) throw new Error('Manager needs `companions` or `load`');
      this.settings = parseCompanions(await this.opts.load(), buildOptions(this.opts));
    }
    const path = this.socketPath === undefined ? this.settings.socket : this.socketPath;
    if (path) {
      // A regular file or a directory in the way is the operator's: refuse it up front,
      // before any server exists, naming the path.
      refuseNonSocket(path);
      const control = new ControlServer({
        path,
        handler: (req) => this.handle(req),
        logger: this.log,
        ...this.opts.socketLimits,
      });
      await control.listen();
      this.control = control;
      // Recorded now, while the file is surely ours: the guard removes it if we are killed.
      const owned = fileIdentity(control.path);
      if (owned) this.guard?.ownSocket(owned);
    }
    if (this.guard) await this.guard.start();
    // A stop requested while we were binding (e.g. the parent died): start nothing.
    if (this.stopping) return;
    for (const notice of this.settings.notices) this.log.info(notice);
    for (const cfg of this.settings.configs) {
      this.companions.set(cfg.name, this.create(cfg));
    }
    for (const c of this.companions.values()) this.requestStart(c);
    this.watchMemory();
    this.log.info({ companions: this.names() }, `companion manager running (pid ${process.pid})`);
  }

  private create(cfg: CompanionConfig): Companion {
    const c = new Companion(cfg, this.log, this.opts.random, this.opts.output);
    c.on('spawn', (pid) => this.guard?.add(pid, c.config.stopSignal));
    c.on('reap', (pid) => {
      this.guard?.remove(pid);
      // After the reap's own transition has run.
      setImmediate(() => this.stepStops());
    });
    c.on('state', (state) => {
      this.emit('state', c.name, state);
      if (state === 'RUNNING') this.releaseWaiting();
      else this.stepStops();
    });
    return c;
  }

  /** What keeps `c` from starting now: its dependencies that are not RUNNING. */
  private blockers(c: Companion): string[] {
    return startBlockers(c.config.dependsOn, (name) => this.companions.get(name)?.state);
  }

  /**
   * Start `c` now, or once everything it depends on is RUNNING. A dependency that never
   * gets there (FATAL, stopped by hand) leaves it waiting, shown in its status.
   */
  private requestStart(c: Companion, cmd: 'start' | 'restart' = 'start'): CommandResult {
    this.pendingStop.delete(c);
    const blockers = c.hasProcess ? [] : this.blockers(c);
    if (blockers.length === 0) {
      this.waiting.delete(c.name);
      return c[cmd]();
    }
    this.waiting.add(c.name);
    this.log.info(
      { waitingOn: blockers },
      `companion ${c.name} waiting on ${blockers.join(', ')} to be RUNNING`,
    );
    return { ok: true, message: `${c.name} waiting on ${blockers.join(', ')}` };
  }

  /** Start the waiting companions whose dependencies are all RUNNING now. */
  private releaseWaiting(): void {
    if (this.stopping) return;
    for (const name of [...this.waiting]) {
      const c = this.companions.get(name);
      if (!c) {
        this.waiting.delete(name);
        continue;
      }
      if (this.blockers(c).length > 0) continue;
      this.waiting.delete(name);
      c.start();
    }
  }

  /**
   * Stop `list` in dependency order: each as soon as nothing that depends on it is still
   * waiting to stop or still has a process. Returns one result per companion: the stop's
   * own for those stopped now, "stopping after ..." for the others.
   */
  private orderedStop(list: Companion[], cap?: number): (CommandResult & { name: string })[] {
    for (const c of list) {
      this.waiting.delete(c.name);
      this.pendingStop.add(c);
    }
    const now = new Map(this.stepStops(cap).map((r) => [r.name, r]));
    return list.map((c) => {
      const done = now.get(c.name);
      if (done) return done;
      const after = (this.dependents().get(c.name) ?? []).filter((d) => {
        const dc = this.companions.get(d);
        return dc !== undefined && (this.pendingStop.has(dc) || dc.hasProcess);
      });
      return { name: c.name, ok: true, message: `${c.name} stopping after ${after.join(', ')}` };
    });
  }

  /** Stop the pending companions that may go now (see `stoppable`). */
  private stepStops(cap?: number): (CommandResult & { name: string })[] {
    // `stoppable` already ran to a fixed point: the stops below free nothing more.
    if (this.pendingStop.size === 0 || this.steppingStops) return [];
    this.steppingStops = true;
    try {
      const byName = new Map([...this.pendingStop].map((c) => [c.name, c]));
      const ready = stoppable([...byName.keys()], this.dependents(), (name) => {
        return this.companions.get(name)?.hasProcess ?? false;
      });
      for (const name of ready) this.pendingStop.delete(byName.get(name)!);
      return ready.map((name) => ({ name, ...byName.get(name)!.stop(cap) }));
    } finally {
      this.steppingStops = false;
    }
  }

  private dependents(): Map<string, string[]> {
    return dependentsOf(
      new Map([...this.companions.values()].map((c) => [c.name, c.config.dependsOn])),
    );
  }

  private all(): Companion[] {
    return [...this.companions.values(), ...this.retiring];
  }

  /**
   * Stop every companion (stop signal to each group, SIGKILL after stopTimeout, or after
   * at most `cap` seconds), wait until all are reaped, close the socket and the guard.
   * While stopping, commands that would start anything are refused.
   */
  stop(opts: StopOptions = {}): Promise<void> {
    const cap = opts.cap ?? (opts.quick ? QUICK_STOP_SECONDS : undefined);
    if (this.stopping) {
      // A second, quicker request tightens the deadlines of the stop in progress, and
      // stops at once what was still waiting for its dependents.
      if (cap !== undefined) {
        this.pendingStop.clear();
        for (const c of this.all()) c.stop(cap);
      }
      return this.stopping;
    }
    this.stopping = this.doStop(cap);
    return this.stopping;
  }

  private async doStop(cap: number | undefined): Promise<void> {
    // Let a start in progress finish binding (it spawns nothing once stopping is set), so
    // that its socket and guard are closed below rather than left behind.
    await this.starting?.catch(() => {});
    this.log.info('stopping all companions');
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    this.memoryTimer = null;
    this.waiting.clear();
    for (const c of this.retiring) c.stop(cap);
    if (cap === undefined) {
      // Graceful: dependents first, each dependency once they are gone.
      this.orderedStop([...this.companions.values()]);
    } else {
      // Quick (QUIT, parent gone): everything at once, the cap bounds the whole stop.
      this.pendingStop.clear();
      for (const c of this.companions.values()) c.stop(cap);
    }
    await this.waitAllGone();
    this.log.info('all companions stopped');
    await this.control?.close();
    await this.guard?.close();
    this.log.info(`companion manager stopped (pid ${process.pid})`);
  }

  private waitAllGone(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.all().some((c) => c.hasProcess)) return;
        for (const c of watched) c.off('reap', onReap);
        resolve();
      };
      // Re-check after the reap's own transition has run.
      const onReap = () => setImmediate(check);
      const watched = this.all();
      for (const c of watched) c.on('reap', onReap);
      check();
    });
  }

  /** Status entries in config order (companions being removed last, flagged `removed`). */
  status(): (StatusEntry & { removed?: true })[] {
    const entries: (StatusEntry & { removed?: true })[] = [...this.companions.values()].map((c) =>
      statusEntry({
        ...c.info(),
        waitingOn: this.waiting.has(c.name)
          ? this.blockers(c).map((name) => ({
              name,
              state: this.companions.get(name)?.state ?? 'STOPPED',
            }))
          : null,
      }),
    );
    for (const c of this.retiring) entries.push({ ...statusEntry(c.info()), removed: true });
    return entries;
  }

  /** Answer one control request (the control socket calls this; so can API users). */
  async handle(req: Request): Promise<Response> {
    switch (req.cmd) {
      case 'status':
        return {
          ok: true,
          companions: this.status(),
          manager: { pid: process.pid, guard_pid: this.guardPid, stopping: this.shuttingDown },
        };
      case 'reread':
        if (this.shuttingDown) return { ok: false, error: 'manager is shutting down' };
        return this.reread();
      case 'start':
      case 'stop':
      case 'restart':
      case 'signal': {
        if (this.shuttingDown && req.cmd !== 'stop') {
          return { ok: false, error: 'manager is shutting down' };
        }
        const act = (c: Companion): CommandResult => {
          if (req.cmd === 'signal') return c.signal(req.signal);
          if (req.cmd === 'stop') {
            this.waiting.delete(c.name);
            this.pendingStop.delete(c);
            return c.stop();
          }
          return this.requestStart(c, req.cmd);
        };
        const group = this.select(req.name);
        if (group) {
          // Several (all, or a numprocs group): a stop goes in dependency order.
          const results =
            req.cmd === 'stop'
              ? this.orderedStop(group)
              : group.map((c) => ({ name: c.name, ...act(c) }));
          return {
            ok: results.every((r) => r.ok),
            message: results.map((r) => r.message).join('; '),
            results,
          };
        }
        const c = this.companions.get(req.name);
        const r = c ? act(c) : { ok: false, message: `unknown companion ${req.name}` };
        // Per-name failures carry `message` (reference) and `error` (consistent envelopes).
        return r.ok ? r : { ...r, error: r.message };
      }
    }
  }

  /**
   * The companions a name addresses when it is not one companion's: `all`, or a numprocs
   * group (its copies, in order). Null otherwise.
   */
  private select(name: string): Companion[] | null {
    if (name === 'all') return [...this.companions.values()];
    if (this.companions.has(name)) return null;
    const copies = [...this.companions.values()].filter(
      (c) => c.config.processNum !== null && c.config.program === name,
    );
    return copies.length > 0 ? copies : null;
  }

  /**
   * Re-read the config (fresh), validate all of it, then apply the difference: removed
   * companions are stopped with deadlines and stay supervised until reaped; added ones
   * start (after any same-named predecessor is gone); changed ones restart unless stopped
   * by hand. Lists are in config order.
   */
  reread(): Promise<Response> {
    const run = this.rereadChain.then(() => this.doReread());
    this.rereadChain = run.catch(() => {});
    return run;
  }

  private async doReread(): Promise<Response> {
    if (!this.opts.load) return { ok: false, error: 'reread not configured' };
    let next: CompanionsSettings;
    try {
      next = parseCompanions(await this.opts.load(), buildOptions(this.opts));
    } catch (err) {
      return {
        ok: false,
        error: `invalid config: ${(err as Error).message}`,
        kept_old_config: true,
      };
    }
    if (this.shuttingDown) return { ok: false, error: 'manager is shutting down' };
    if (this.control && this.socketPath === undefined && next.socket !== this.control.path) {
      this.log.warn(
        { socket: next.socket },
        'control socket path changed; it takes effect when the manager is restarted',
      );
    }
    const result: RereadResult = { ok: true, added: [], removed: [], restarted: [], unchanged: [] };
    const newNames = new Set(next.configs.map((c) => c.name));
    for (const [name, c] of this.companions) {
      if (newNames.has(name)) continue;
      c.stop();
      result.removed.push(name);
      if (c.hasProcess) {
        this.retiring.add(c);
        const gone = () => {
          if (c.hasProcess) return;
          c.off('reap', onReap);
          this.retiring.delete(c);
        };
        const onReap = () => setImmediate(gone);
        c.on('reap', onReap);
      }
    }
    const map = new Map<string, Companion>();
    for (const cfg of next.configs) {
      const existing = this.companions.get(cfg.name);
      if (!existing) {
        const c = this.create(cfg);
        map.set(cfg.name, c);
        result.added.push(cfg.name);
        this.startAfterPredecessor(c);
        continue;
      }
      map.set(cfg.name, existing);
      if (configHash(existing.config) === configHash(cfg)) {
        result.unchanged.push(cfg.name);
        continue;
      }
      existing.setConfig(cfg);
      if (existing.manualStop) {
        // Stopped by hand stays stopped; the next start uses the new config.
        result.unchanged.push(cfg.name);
      } else if (existing.state === 'STOPPING') {
        // Already being restarted: the respawn picks up the new config.
        result.restarted.push(cfg.name);
      } else if (existing.restart().ok) {
        result.restarted.push(cfg.name);
      } else {
        result.unchanged.push(cfg.name);
      }
    }
    this.companions = map;
    this.settings = next;
    this.watchMemory();
    for (const name of [...this.waiting]) if (!map.has(name)) this.waiting.delete(name);
    for (const c of [...this.pendingStop]) if (map.get(c.name) !== c) this.pendingStop.delete(c);
    for (const notice of next.notices) this.log.info(notice);
    // Dependencies may have changed: what waited may start now.
    this.releaseWaiting();
    this.emit('reread', result, this.identity!);
    this.log.info(
      result,
      `companion reread applied: added ${result.added}, removed ${result.removed}, restarted ${result.restarted}, unchanged ${result.unchanged}`,
    );
    return result;
  }

  /**
   * Starts or stops the RSS sampling (`maxMemory`): on when some companion has a limit.
   * The process of the companion is sampled (the group leader: a command run through a
   * shell wrapper should `exec` its program), not its children.
   */
  private watchMemory(): void {
    const wanted =
      !this.shuttingDown && [...this.companions.values()].some((c) => c.config.maxMemory !== null);
    if (wanted && !this.memoryTimer) {
      this.memoryTimer = setInterval(() => this.sampleMemory(), MEMORY_SAMPLE_SECONDS * 1000);
      this.memoryTimer.unref();
    } else if (!wanted && this.memoryTimer) {
      clearInterval(this.memoryTimer);
      this.memoryTimer = null;
    }
  }

  private sampleMemory(): void {
    const now = monoNow();
    for (const c of this.companions.values()) {
      if (c.config.maxMemory === null || c.state !== 'RUNNING' || c.pid === null) continue;
      const stats = readProcStats(c.pid);
      if (stats) c.sampleMemory(now, stats.rssBytes);
    }
  }

  /** Never run two processes of one name: wait for a retiring namesake to be reaped. */
  private startAfterPredecessor(c: Companion): void {
    const predecessor = [...this.retiring].find((r) => r.name === c.name);
    if (!predecessor) {
      this.requestStart(c);
      return;
    }
    const onReap = () =>
      setImmediate(() => {
        if (predecessor.hasProcess) return;
        predecessor.off('reap', onReap);
        if (
          !this.shuttingDown &&
          this.companions.get(c.name) === c &&
          c.state === 'STOPPED' &&
          !c.manualStop
        ) {
          this.requestStart(c);
        }
      });
    predecessor.on('reap', onReap);
  }

  /** Reopen every companion output file (USR1). */
  reopenLogs(): void {
    for (const c of this.all()) c.reopenLogs();
    this.log.info('companion output files reopened');
  }

  /** Convenience wrappers returning the reference's `{ ok, message }`. */
  startCompanion(name: string): Promise<Response> {
    return this.handle({ cmd: 'start', name });
  }
  stopCompanion(name: string): Promise<Response> {
    return this.handle({ cmd: 'stop', name });
  }
  restartCompanion(name: string): Promise<Response> {
    return this.handle({ cmd: 'restart', name });
  }
}
