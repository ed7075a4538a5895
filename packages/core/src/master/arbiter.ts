import { claimSocketFile, type Listener } from '@arb/sock';
import { type ArbiterConfig, settingsOf } from '../config.js';
import { AppLoadError, HaltServer } from '../errors.js';
import {
  type ArbiterHooks,
  runHook,
  runHookSafely,
  type ServerView,
  type WorkerInfo,
} from '../hooks.js';
import { createLogger, type Logger, type LogSink } from '../logger.js';
import { ArbiterControl } from '../ops/control.js';
import type { AppFailure } from '../protocol/worker.js';
import {
  type ArbiterSettings,
  aboveMaxWorkers,
  checkWorkerCount,
  effectiveBootTimeout,
} from '../settings.js';
import { masterTitle } from '../titles.js';
import { loadApp } from '../worker/load-app.js';
import { type ArbiterDeps, DEFAULT_DEPS } from './deps.js';
import { Generations, Reloader } from './generation.js';
import {
  initialLineage,
  type Lineage,
  type LineageEvent,
  lineageTransition,
  mayUnlink,
  ownName,
  runsSidecar,
  SOLE,
} from './lineage.js';
import { handOverLogFiles, reopenLogs } from './log-files.js';
import { MemoryWatch } from './memory-watch.js';
import { Orphans } from './orphans.js';
import { Pidfile } from './pidfile.js';
import { stopChildren } from './shutdown.js';
import { SidecarSlot } from './sidecar.js';
import { type UpgradeProgress, type UpgradeResult, Upgrader } from './upgrade.js';
import { MASTER_SIGNALS, type MasterSignal, msUntil, Wakeup } from './wakeup.js';
import { watchSources } from './watch-sources.js';
import type { WorkerProcess } from './worker-state.js';
import { WorkerPool } from './workers.js';

export type { ArbiterDeps } from './deps.js';

/** How the caller of {@link Arbiter.run} takes part. */
export interface RunOptions {
  /**
   * Told first when the master cannot start (pidfile, bind, preload, `onStarting`; nothing
   * is left running): returns true when it told the user itself, and the master then does
   * not log the error. The CLI prints one line for the errors it knows.
   */
  onStartError?: (err: unknown) => boolean;
}

function appFailureOf(err: AppLoadError): AppFailure {
  return { message: err.message, thrown: err.thrown, where: err.where };
}

export type { UpgradeProgress, UpgradeResult } from './upgrade.js';

/**
 * The master: binds the listeners, keeps `workers` worker processes accepting on them,
 * and supervises the sidecar. One serialized async loop does everything: it sleeps until a
 * signal, a child exit, a worker message or the nearest deadline, then makes one `pass()`
 * (gunicorn's arbiter, upstream's queue shape). Signal listeners only queue and wake.
 */
export class Arbiter implements ServerView {
  readonly log: Logger;
  /** The signal queue and wake-ups: the loop's one way to wait. */
  readonly signals = new Wakeup();
  readonly pool: WorkerPool;
  readonly sidecar: SidecarSlot;
  /** The HUP reload machine (`reload.ts`) and its effects (`generation.ts`). */
  readonly reloader: Reloader;
  /** systemd notifications, metrics and the control socket (`ops/control.ts`). */
  readonly control: ArbiterControl;
  /** PID 1 duties: orphans re-parented to the master are reaped (see `orphans.ts`). */
  readonly orphans: Orphans;
  /** `--max-memory`: workers above it replaced, successor first (see `memory-limit.ts`). */
  readonly memory: MemoryWatch;
  /** The config in force, generation by generation. */
  readonly generations: Generations;
  /** Resolves true once the first generation of workers all serve, false if it never does. */
  readonly serving: Promise<boolean>;
  /** sole, parent of a new master, or awaiting promotion (see `lineage.ts`). */
  lineage: Lineage = SOLE;
  pid = process.pid;
  /** The listeners came from systemd socket activation. */
  systemd = false;
  pidfile: Pidfile | undefined;
  /** The environment as it was before this master changed anything (for a re-exec). */
  readonly envOrig: NodeJS.ProcessEnv;
  /** The directory this master started in (a re-exec'd master starts there too). */
  readonly startCwd: string;
  /**
   * Set when `run()` resolved 4: why the app could not be loaded (by a worker, or by the
   * master with `preload`), with the place of the syntax error or throw when known.
   */
  appFailure: AppFailure | undefined;

  /** What the master does to the outside world (tests replace parts of it). */
  readonly deps: ArbiterDeps;
  readonly logSink: LogSink;
  private numWorkersValue: number;
  private resolveServing!: (serving: boolean) => void;
  private servingSettled = false;
  private readonly signalListeners = new Map<MasterSignal, () => void>();
  private readonly upgrader: Upgrader;
  /** The source watch of development mode (`devReload`), while it runs. */
  private devWatch: { close(): void } | undefined;

  constructor(config: ArbiterConfig, deps: Partial<ArbiterDeps> = {}) {
    this.deps = { ...DEFAULT_DEPS, ...deps };
    // before anything below changes the environment: a re-exec'd master starts from it
    this.envOrig = { ...process.env };
    this.startCwd = process.cwd();
    const settings = settingsOf(config);
    this.logSink =
      this.deps.logSink ??
      createLogger({
        proc: 'master',
        level: settings.logLevel,
        format: settings.logFormat,
        dest: settings.errorLog,
      });
    this.log = this.logSink.log;
    this.generations = new Generations(config, this.deps, this.log, this.envOrig);
    this.numWorkersValue = settings.workers;
    this.pool = new WorkerPool(this);
    this.reloader = new Reloader(this);
    this.memory = new MemoryWatch(this);
    this.upgrader = new Upgrader(this);
    this.control = new ArbiterControl(this, config.control);
    this.sidecar = new SidecarSlot(config.sidecar, {
      now: () => this.deps.now(),
      kill: (pid, sig) => this.deps.kill(pid, sig),
      log: this.log,
      context: () => ({ masterPid: process.pid, procName: this.procName, log: this.log }),
      onExit: () => this.signals.wake(),
    });
    this.orphans = new Orphans({
      log: this.log,
      wake: () => this.signals.wake(),
      subreaper: settings.subreaper,
    });
    this.serving = new Promise((resolve) => {
      this.resolveServing = resolve;
    });
    // gunicorn's setup(): `env` is in the environment before a preload and for every worker.
    for (const [k, v] of Object.entries(settings.env)) process.env[k] = v;
  }

  // ---- the config in force -------------------------------------------------------------

  get config(): ArbiterConfig {
    return this.generations.current.config;
  }
  get settings(): ArbiterSettings {
    return this.generations.current.settings;
  }
  get hooks(): Partial<ArbiterHooks> {
    return this.generations.current.hooks;
  }
  set hooks(hooks: Partial<ArbiterHooks>) {
    this.generations.current.hooks = hooks;
  }
  get listeners(): Listener[] {
    return this.generations.current.listeners;
  }
  set listeners(listeners: Listener[]) {
    this.generations.current.listeners = listeners;
  }
  /** The generation of workers `pool.manage` keeps (+1 per reload). */
  get generation(): number {
    return this.generations.current.generation;
  }
  /** `arb: master [procName]`; `.2` while awaiting promotion. */
  get procName(): string {
    return ownName(this.lineage, this.settings.procName);
  }
  /** Monotonic seconds (the clock every deadline uses). */
  now(): number {
    return this.deps.now();
  }
  /** The number of workers kept. */
  get numWorkers(): number {
    return this.numWorkersValue;
  }
  /** The workers of the current generation the pool keeps: fewer while a canary is judged. */
  get keptWorkers(): number {
    const cap = this.reloader.canaryCap;
    return cap === undefined ? this.numWorkers : Math.min(cap, this.numWorkers);
  }

  /** Changes the number of workers kept (`nworkersChanged` runs); throws above `maxWorkers`. */
  async setNumWorkers(value: number): Promise<void> {
    checkWorkerCount(value, this.settings);
    const old = this.numWorkersValue;
    this.numWorkersValue = value;
    await runHookSafely(this.log, this.hooks, 'nworkersChanged', this, value, old);
  }

  // ---- run -----------------------------------------------------------------------------

  /**
   * Runs the master until it stops; resolves with the exit status for `process.exit`:
   * 0 after TERM/INT/QUIT, 1 when it could not start (pidfile, bind, startup hook),
   * 3/4 when a worker failed to boot/load the app, 4 when a preload failed, 255 after an
   * unexpected error in the loop. Nothing is left running when it resolves.
   */
  async run(options: RunOptions = {}): Promise<number> {
    try {
      await this.start();
    } catch (err) {
      if (err instanceof AppLoadError) this.appFailure = appFailureOf(err);
      if (options.onStartError?.(err) !== true) {
        this.log.error({ err }, `Error: ${(err as Error).message}`);
      }
      this.closeListeners();
      this.pidfile?.unlink();
      this.finish();
      return err instanceof AppLoadError ? 4 : 1;
    }
    process.title = masterTitle(this.procName);
    await this.control.start();
    try {
      for (;;) {
        await this.pass();
        await this.signals.sleep(msUntil(this.deps.now(), this.deadlines()));
      }
    } catch (err) {
      if (err instanceof HaltServer) {
        this.appFailure = err.app;
        return this.halt(err.reason, err.status, err.graceful);
      }
      this.log.error({ err }, 'Unhandled exception in main loop');
      this.control.stopping();
      await this.stop(false);
      this.pidfile?.unlink();
      await this.control.close();
      this.finish();
      return 255;
    }
  }

  /** One pass of the loop: everything that happened since the last one, in this order. */
  async pass(): Promise<void> {
    await this.pool.reap();
    this.orphans.reap();
    this.upgrader.reap();
    for (const sig of this.signals.drain()) await this.handleSignal(sig);
    await this.reloader.step();
    await this.memory.pass();
    await this.upgrader.step();
    this.checkPromotion();
    await this.pool.murder();
    await this.pool.manage();
    if (runsSidecar(this.lineage)) this.sidecar.manage();
    this.signals.turned();
  }

  /** When the loop must look again if nothing wakes it earlier. */
  private deadlines(): (number | undefined)[] {
    return [
      this.pool.nextDeadline(),
      this.reloader.nextDeadline(),
      this.memory.nextDeadline(),
      this.upgrader.nextDeadline(),
      runsSidecar(this.lineage) ? this.sidecar.nextDeadline() : undefined,
      // the old master's exit closes our IPC channel ('disconnect' wakes us); without a
      // channel, the parent pid is all there is to look at
      this.lineage.role === 'awaiting-promotion' && !process.connected
        ? this.deps.now() + 1
        : undefined,
    ];
  }

  /** Queues a signal as if the process had received it (`arbiter.signal('SIGTERM')`). */
  signal(sig: MasterSignal): void {
    this.signals.push(sig);
  }

  /**
   * gunicorn's start(): preload, pidfile, `onStarting`, signals, listeners, `whenReady`.
   * Throws on any failure (the caller cleans up).
   */
  async start(): Promise<void> {
    this.log.info(`Starting arb (node ${process.version})`);
    this.lineage = initialLineage(process.env);
    this.pid = process.pid;
    // first: before a preload or a hook spawns anything, and before orphans can appear
    if (this.deps.installSignals) this.orphans.start();
    // gunicorn's setup() assigns num_workers first (old value None)
    await runHookSafely(this.log, this.hooks, 'nworkersChanged', this, this.numWorkers, undefined);
    if (this.settings.preload) await loadApp(this.settings.app, this.settings.chdir);
    if (this.settings.pidfile) {
      this.pidfile = new Pidfile(ownName(this.lineage, this.settings.pidfile), this.deps.kill);
      // a re-exec'd master writes `<pidfile>.2` once its workers serve (checkServing): its
      // existence tells the operator (and `arb upgrade`) that the old one can go
      if (this.lineage.role === 'sole') this.pidfile.create(this.pid);
    }
    await runHook(this.hooks, 'onStarting', this);
    handOverLogFiles(this.settings, this.log);
    this.installSignals();
    if (this.listeners.length === 0) this.systemd = await this.generations.bind();
    if (this.lineage.role === 'awaiting-promotion' && this.deps.installSignals) {
      // the old master's exit closes our IPC channel: look for promotion at once; the
      // channel itself must not keep this process alive once it has stopped
      process.once('disconnect', () => this.signals.wake());
      process.channel?.unref();
    }
    this.log.info(
      { listeners: this.listeners.map((l) => l.address) },
      `Listening at: ${this.listeners.map((l) => l.url).join(',')} (${this.pid})`,
    );
    for (const line of this.config.sidecar?.warnings ?? []) this.log.warn(line);
    if (this.config.devReload) this.devWatch = await watchSources(this, this.config.devReload);
    await runHook(this.hooks, 'whenReady', this);
  }

  // ---- signals: one small handler each (gunicorn's handle_*) ---------------------------

  private installSignals(): void {
    if (!this.deps.installSignals) return;
    for (const sig of MASTER_SIGNALS) {
      const listener = () => this.signals.push(sig);
      this.signalListeners.set(sig, listener);
      process.on(sig, listener);
    }
  }

  async handleSignal(sig: MasterSignal): Promise<void> {
    this.log.info(`Handling signal: ${sig.slice(3).toLowerCase()}`);
    switch (sig) {
      case 'SIGHUP':
        return this.handleHup();
      case 'SIGTERM':
        throw new HaltServer('', 0, true);
      case 'SIGINT':
      case 'SIGQUIT':
        throw new HaltServer('', 0, false);
      case 'SIGTTIN':
        return this.handleTtin();
      case 'SIGTTOU':
        return this.handleTtou();
      case 'SIGUSR1':
        return this.handleUsr1();
      case 'SIGUSR2':
        await this.reexec();
        return;
      case 'SIGWINCH':
        return this.handleWinch();
    }
  }

  /**
   * HUP: reads the config afresh and boots a new generation; old workers are retired one
   * for one as new ones report ready, and a failing generation is rolled back (see
   * `reload.ts`). A HUP during a reload is coalesced into one more reload after it.
   */
  private async handleHup(): Promise<void> {
    this.log.info('Hang up: Master');
    this.control.reloadRequested();
    await this.memory.reloading();
    await this.reloader.hup();
    await this.pool.manage(); // spawn the new generation in this same pass
  }

  private async handleTtin(): Promise<void> {
    if (this.numWorkers >= this.settings.maxWorkers) {
      this.log.warn(
        `TTIN ignored: ${aboveMaxWorkers(this.numWorkers + 1, this.settings.maxWorkers)}`,
      );
      return;
    }
    await this.setNumWorkers(this.numWorkers + 1);
    await this.pool.manage();
  }

  private async handleTtou(): Promise<void> {
    if (this.numWorkers <= 1) return;
    await this.setNumWorkers(this.numWorkers - 1);
    await this.pool.manage();
  }

  private async handleUsr1(): Promise<void> {
    reopenLogs(this.logSink, this.settings, this.log);
    await this.pool.killAll('SIGUSR1');
  }

  private async handleWinch(): Promise<void> {
    if (this.deps.isTerminal()) {
      this.log.debug('SIGWINCH ignored: attached to a terminal');
      return;
    }
    this.log.info('graceful stop of workers');
    await this.setNumWorkers(0);
    await this.pool.killAll('SIGTERM');
  }

  // ---- USR2: re-exec, promotion, the one-step upgrade ----------------------------------

  /** A re-exec'd master whose parent is gone (we were re-parented) takes over. */
  private checkPromotion(): void {
    const l = this.lineage;
    if (l.role === 'awaiting-promotion' && this.deps.ppid() !== l.parentPid) {
      this.lineageEvent({ type: 'parent-gone' });
    }
  }

  /** Moves the lineage on and carries out what that asks. */
  lineageEvent(event: LineageEvent): void {
    const { state, effects } = lineageTransition(this.lineage, event);
    this.lineage = state;
    for (const effect of effects) {
      if (effect.type === 'log-child-serving') {
        this.log.info(`New master (pid:${effect.pid}) is serving`);
        this.signals.wake();
      } else if (effect.type === 'promote') this.promote();
    }
  }

  /**
   * The plain pidfile, the plain title, no ARB_PID, the socket files, and only now the
   * sidecar (it must never run twice).
   */
  private promote(): void {
    this.log.info('Master has been promoted.');
    delete process.env.ARB_PID;
    if (this.pidfile && this.settings.pidfile) {
      try {
        this.pidfile.rename(this.settings.pidfile);
      } catch (err) {
        this.log.error({ err }, `Cannot write the pidfile ${this.settings.pidfile}`);
      }
    }
    process.title = masterTitle(this.procName);
    this.pool.tell({ type: 'title', procName: this.procName });
    // the socket files the old master created are ours now: our final stop removes them
    // (only for listeners handed over by ARB_FD, matched one to one with the config)
    if (!this.systemd && this.generations.current.boundAs) {
      for (const l of this.listeners) claimSocketFile(l);
    }
    this.control.promoted();
  }

  /**
   * USR2: starts a new master with our listeners (see `upgrade.ts`). Resolves with the new
   * master's pid, or the reason it was refused.
   */
  reexec(): Promise<{ pid?: number; error?: string }> {
    return this.upgrader.reexec();
  }

  /** The one-step upgrade (see `upgrade.ts`): resolves once it succeeded or failed. */
  upgrade(
    options: { timeout?: number; onProgress?: (p: UpgradeProgress) => void } = {},
  ): Promise<UpgradeResult> {
    return this.upgrader.request(
      options.timeout ?? Math.max(effectiveBootTimeout(this.settings), 60),
      options.onProgress,
    );
  }

  // ---- serving, stop, halt -------------------------------------------------------------

  /**
   * A worker exited 3/4: true when that halts the master. A new generation failing to boot
   * fails its reload instead; a worker of a retired or rolled-back generation cannot, nor
   * a successor (`--max-memory`).
   */
  haltsOn(worker: WorkerProcess, reason: string): boolean {
    // a `--max-memory` successor that cannot boot: the worker it was to replace serves on
    if (worker.successorOf !== undefined && !worker.booted) return false;
    return !this.reloader.absorbHalt(worker, reason) && worker.generation === this.generation;
  }

  /** A worker is ready: the first generation may now serve. */
  checkServing(): void {
    if (this.servingSettled) return;
    const ready = this.pool.live().filter((w) => w.state === 'ready').length;
    if (ready < Math.max(1, this.numWorkers)) return;
    this.servingSettled = true;
    this.log.info({ workers: ready }, `Serving with ${ready} workers`);
    this.resolveServing(true);
    if (this.lineage.role !== 'awaiting-promotion') return;
    // a re-exec'd master serves: `<pidfile>.2` appears and the old master is told (IPC)
    try {
      this.pidfile?.create(this.pid);
    } catch (err) {
      this.log.error({ err }, `Cannot write the pidfile ${this.pidfile?.path}`);
    }
    this.deps.sendToParent({ type: 'arb:serving', pid: this.pid });
  }

  /** The unlink rule of the four seed cases: only the one master that bound the files. */
  mayUnlink(): boolean {
    return mayUnlink(this.lineage, { systemd: this.systemd, reusePort: this.settings.reusePort });
  }

  private closeListeners(): void {
    this.generations.closeAll(this.mayUnlink());
  }

  /**
   * Stops everything: closes the listeners (unlinking unix files only when no other master
   * uses them), signals the workers (TERM graceful, QUIT quick) and the sidecar, waits up to
   * `gracefulTimeout` for workers and max(gracefulTimeout, sidecar stop timeout) for the
   * sidecar, then SIGKILLs what is left. During a graceful stop a queued INT/QUIT turns it
   * into a quick one.
   */
  async stop(graceful = true): Promise<void> {
    this.closeListeners();
    await stopChildren(this, graceful);
  }

  /**
   * `shutdownDelay` seconds after TERM with the listeners open and the workers serving
   * (respawned, timed out) while `/readyz` says "stopping": a load balancer sees it and
   * routes elsewhere before a connection is refused. A second TERM ends it early; INT/QUIT
   * end it and ask for a quick stop (resolves false). Skipped while a new master of ours
   * serves on the same sockets (an upgrade): nothing is refused when we go.
   */
  private async shutdownDelay(): Promise<boolean> {
    const delay = this.settings.shutdownDelay;
    if (delay <= 0 || this.lineage.role === 'parent') return true;
    const until = this.deps.now() + delay;
    this.log.info(
      { shutdownDelay: delay },
      `Shutdown delay: not ready, still accepting for ${delay} s before draining`,
    );
    for (;;) {
      await this.pool.reap(false);
      // every signal is taken: one left queued would make each sleep return at once
      const sigs = this.signals.drain();
      if (sigs.includes('SIGINT') || sigs.includes('SIGQUIT')) {
        this.log.info('Quick shutdown requested during the shutdown delay');
        return false;
      }
      if (sigs.includes('SIGTERM')) {
        this.log.info('Shutdown delay ended early: TERM received again');
        return true;
      }
      for (const sig of sigs) this.log.info(`Signal ${sig} ignored: shutting down`);
      if (this.deps.now() >= until) return true;
      await this.pool.murder();
      await this.pool.manage();
      if (runsSidecar(this.lineage)) this.sidecar.manage();
      this.signals.turned();
      const deadlines = [until, this.pool.nextDeadline()];
      if (runsSidecar(this.lineage)) deadlines.push(this.sidecar.nextDeadline());
      await this.signals.sleep(msUntil(this.deps.now(), deadlines));
    }
  }

  /** gunicorn's halt(): stop, one line saying why, pidfile removed, `onExit`; the status. */
  async halt(reason = '', status = 0, graceful = true): Promise<number> {
    this.control.stopping();
    // only TERM asks for a graceful stop with status 0; a halt on a worker's failure does not wait
    if (graceful && status === 0) graceful = await this.shutdownDelay();
    await this.stop(graceful);
    if (status === 0) this.log.info('Shutting down: Master');
    else this.log.error({ status }, `Shutting down: Master. Reason: ${reason}`);
    this.pidfile?.unlink();
    await runHookSafely(this.log, this.hooks, 'onExit', this);
    await this.control.close();
    this.finish();
    return status;
  }

  private finish(): void {
    this.devWatch?.close();
    this.devWatch = undefined;
    for (const [sig, listener] of this.signalListeners) process.off(sig, listener);
    this.signalListeners.clear();
    this.orphans.stop();
    this.upgrader.disconnect();
    if (!this.servingSettled) {
      this.servingSettled = true;
      this.resolveServing(false);
    }
  }

  /** The workers as hooks and tools see them. */
  workerInfos(): WorkerInfo[] {
    return this.pool.all().map((w) => w.toJSON());
  }
}
