import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import {
  claimSocketFile,
  close as closeListeners,
  createListeners,
  handoff,
  type Listener,
} from '@arb/sock';
import { Backoff } from './backoff.js';
import { monotonic } from '../clock.js';
import { type ArbiterConfig, settingsOf } from '../config.js';
import { type ArbiterSettings, effectiveBootTimeout } from '../settings.js';
import { ArbiterControl } from '../control.js';
import { AppLoadError, HaltServer } from '../errors.js';
import { createHeartbeat, type Heartbeat, type HeartbeatOptions } from '../protocol/heartbeat.js';
import {
  type ArbiterHooks,
  pickHooks,
  runHook,
  runHookSafely,
  type ServerView,
  type WorkerInfo,
} from '../hooks.js';
import { createLogger, type Logger, type LogSink } from '../logger.js';
import { type KillFn, Pidfile } from './pidfile.js';
import { classifyExit } from './reap.js';
import { isServingMessage, reexecPlan } from './upgrade.js';
import { Reload, type ReloadHost } from './reload.js';
import { SidecarSlot } from './sidecar.js';
import { MASTER_SIGNALS, type MasterSignal, SignalQueue } from './wakeup.js';
import { masterTitle } from '../titles.js';
import { loadApp } from '../worker/load-app.js';
import {
  isWorkerMessage,
  WORKER_ENV,
  type WorkerMessage,
  type WorkerPayload,
} from '../protocol/worker.js';
import { isLive, type WorkerExit, WorkerProcess } from './worker-state.js';

/** The built worker entry, next to this module in `dist/` (ESM and CJS alike). */
export const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** A worker that dies within this many seconds of its spawn counts as a crash loop. */
export const CRASH_WINDOW_SECONDS = 5;

/** Signals a process raises on itself when it crashes; any other one came from outside. */
const CRASH_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set([
  'SIGSEGV',
  'SIGABRT',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGSYS',
  'SIGTRAP',
]);

/** Everything the arbiter does to the outside world; tests replace parts of it. */
export interface ArbiterDeps {
  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess;
  kill: KillFn;
  /** Monotonic seconds. */
  now(): number;
  random(): number;
  createListeners: typeof createListeners;
  handoff: typeof handoff;
  closeListeners: typeof closeListeners;
  createHeartbeat(options: HeartbeatOptions): Heartbeat;
  /** The master is attached to a terminal (WINCH is then ignored). */
  isTerminal(): boolean;
  /** Where the master logs; by default from `errorLog`/`logLevel`. */
  logSink?: LogSink;
  /** Install process signal listeners (off in unit tests). Default true. */
  installSignals: boolean;
  /** Path of the worker entry module. */
  workerEntry: string;
  /** Our parent's pid now (a re-exec'd master is promoted when it changes). */
  ppid(): number;
  /** Sends a message to the parent over IPC, if there is a channel (the re-exec'd master). */
  sendToParent(message: unknown): void;
}

const DEFAULT_DEPS: ArbiterDeps = {
  spawn: (command, args, options) => spawn(command, args, options),
  kill: process.kill.bind(process) as KillFn,
  now: monotonic,
  random: Math.random,
  createListeners,
  handoff,
  closeListeners,
  createHeartbeat,
  isTerminal: () => tty.isatty(0),
  installSignals: true,
  workerEntry: WORKER_ENTRY,
  ppid: () => process.ppid,
  sendToParent: (message) => {
    if (process.send && process.connected) process.send(message, undefined, {}, () => {});
  },
};

/** What `Arbiter.upgrade()` resolves to. */
export interface UpgradeResult {
  ok: boolean;
  /** The new master's pid (also on failure when one was started). */
  newPid?: number;
  error?: string;
}

/** The one-step upgrade in progress, stepped by the master loop. */
interface UpgradeJob {
  phase: 'requested' | 'starting' | 'retiring';
  /** Seconds. */
  timeout: number;
  deadline: number;
  newPid: number;
  resolve(result: UpgradeResult): void;
}

/** What the previous config was, for a reload's rollback. */
interface ConfigSnapshot {
  config: ArbiterConfig;
  settings: ArbiterSettings;
  hooks: Partial<ArbiterHooks>;
  listeners: Listener[];
  boundAs: string[] | undefined;
  numWorkers: number;
  generation: number;
  procName: string;
}

interface PendingExit {
  worker: WorkerProcess;
  exit: WorkerExit;
}

/**
 * The master: binds the listeners, keeps `workers` worker processes accepting on them,
 * and supervises the sidecar. One serialized async loop does everything; signal listeners
 * only queue the signal and wake it (gunicorn's arbiter, upstream's queue shape).
 */
export class Arbiter implements ServerView, ReloadHost {
  /** The settings in force (a HUP reload replaces them). */
  settings: ArbiterSettings;
  /** The hooks in force (a HUP reload replaces them). */
  hooks: Partial<ArbiterHooks>;
  configModule: string | undefined;
  /** The config in force. */
  config: ArbiterConfig;
  readonly log: Logger;
  readonly signals = new SignalQueue();
  readonly sidecar: SidecarSlot;
  /** Resolves true once the first generation of workers all serve, false if it never does. */
  readonly serving: Promise<boolean>;

  pid = process.pid;
  procName: string;
  listeners: Listener[] = [];
  /** The listeners came from systemd socket activation. */
  systemd = false;
  /** Workers by age (spawn order). */
  readonly workers = new Map<number, WorkerProcess>();
  workerAge = 0;
  /** pid of a re-exec'd master we started (USR2); 0 when none. */
  reexecPid = 0;
  /** The re-exec'd master we started said its first generation serves. */
  reexecServing = false;
  /** The generation of workers `manageWorkers` keeps (+1 per reload). */
  generation = 0;
  /** The HUP reload state machine. */
  readonly reloader: Reload;
  /** systemd notifications, metrics and the control socket (`control.ts`). */
  readonly control: ArbiterControl;
  /** The environment as it was before this master changed anything (for a re-exec). */
  readonly envOrig: NodeJS.ProcessEnv;
  /** The directory this master started in (a re-exec'd master starts there too). */
  readonly startCwd: string;
  /**
   * The `bind` entries the listeners came from, index by index; undefined when they were
   * inherited (systemd, ARB_FD) and cannot be matched with the config: bind changes then
   * need a restart.
   */
  boundAs: string[] | undefined;
  /** pid of the master that re-exec'd us (ARB_PID); 0 when we are the only master. */
  masterPid = 0;
  pidfile: Pidfile | undefined;
  /** Crash-loop protection for workers that die right after spawn. */
  readonly spawnBackoff = new Backoff(0.1, 10);

  private readonly deps: ArbiterDeps;
  private readonly logSink: LogSink;
  private numWorkersValue: number;
  private readonly pendingExits: PendingExit[] = [];
  private exitWaiter: (() => void) | undefined;
  private resolveServing!: (serving: boolean) => void;
  private servingSettled = false;
  private readonly signalListeners = new Map<MasterSignal, () => void>();
  private lastLoggedCount = -1;
  private readonly reloadConfigFn: (() => Promise<ArbiterConfig>) | undefined;
  private generationCounter = 0;
  /** The config before the reload in progress (its rollback target). */
  private previous: ConfigSnapshot | undefined;
  /** Listeners the reload in progress bound (closed on rollback). */
  private addedListeners: Listener[] = [];
  /** Listeners the reload in progress dropped (closed once the old workers are gone). */
  private droppedListeners: Listener[] = [];
  private reexecExit: WorkerExit | undefined;
  private reexecChild: ChildProcess | undefined;
  private upgradeJob: UpgradeJob | undefined;

  constructor(config: ArbiterConfig, deps: Partial<ArbiterDeps> = {}) {
    this.deps = { ...DEFAULT_DEPS, ...deps };
    // before anything below changes the environment: a re-exec'd master starts from it
    this.envOrig = { ...process.env };
    this.startCwd = process.cwd();
    this.config = config;
    this.reloadConfigFn = config.reloadConfig;
    this.reloader = new Reload(this);
    this.settings = settingsOf(config);
    this.hooks = pickHooks(config);
    this.configModule = config.configModule;
    this.procName = this.settings.procName;
    this.numWorkersValue = this.settings.workers;
    this.logSink =
      this.deps.logSink ??
      createLogger({ proc: 'master', level: this.settings.logLevel, dest: this.settings.errorLog });
    this.log = this.logSink.log;
    this.control = new ArbiterControl(this, config.control);
    this.sidecar = new SidecarSlot(config.sidecar, {
      now: () => this.deps.now(),
      kill: (pid, sig) => this.deps.kill(pid, sig),
      log: this.log,
      context: () => ({ masterPid: process.pid, procName: this.procName, log: this.log }),
      onExit: () => this.wake(),
    });
    this.serving = new Promise((resolve) => {
      this.resolveServing = resolve;
    });
    // gunicorn's setup(): `env` is in the environment before a preload and for every worker.
    for (const [k, v] of Object.entries(this.settings.env)) process.env[k] = v;
  }

  /** The number of workers kept. */
  get numWorkers(): number {
    return this.numWorkersValue;
  }

  /** Changes the number of workers kept (the `nworkersChanged` hook runs). */
  async setNumWorkers(value: number): Promise<void> {
    const old = this.numWorkersValue;
    this.numWorkersValue = value;
    await runHookSafely(this.log, this.hooks, 'nworkersChanged', this, value, old);
  }

  /**
   * Runs the master until it stops; resolves with the exit status for `process.exit`:
   * 0 after TERM/INT/QUIT, 1 when it could not start (pidfile, bind, startup hook),
   * 3/4 when a worker failed to boot/load the app, 4 when a preload failed, 255 after an
   * unexpected error in the loop. Nothing is left running when it resolves.
   */
  async run(): Promise<number> {
    try {
      await this.start();
    } catch (err) {
      const status = err instanceof AppLoadError ? 4 : 1;
      this.log.error({ err }, `Error: ${(err as Error).message}`);
      this.cleanupAfterFailedStart();
      return status;
    }
    process.title = masterTitle(this.procName);
    await this.control.start();
    try {
      await this.manageWorkers();
      this.manageSidecar();
      for (;;) {
        const signals = await this.signals.wait(this.sleepMs());
        await this.reapWorkers();
        this.reapReexec();
        for (const sig of signals) await this.handleSignal(sig);
        await this.reloader.step();
        await this.stepUpgrade();
        this.maybePromote();
        this.control.tick();
        await this.murderWorkers();
        await this.manageWorkers();
        this.manageSidecar();
      }
    } catch (err) {
      if (err instanceof HaltServer) return this.halt(err.reason, err.status, err.graceful);
      this.log.error({ err }, 'Unhandled exception in main loop');
      this.control.stopping();
      await this.stop(false);
      this.pidfile?.unlink();
      await this.control.close();
      this.finish(false);
      return 255;
    }
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
    if (process.env.ARB_PID) {
      this.masterPid = Number(process.env.ARB_PID);
      this.procName += '.2';
    }
    this.pid = process.pid;
    // gunicorn's setup() assigns num_workers first (old value None)
    await runHookSafely(this.log, this.hooks, 'nworkersChanged', this, this.numWorkers, undefined);
    if (this.settings.preload) await loadApp(this.settings.app, this.settings.chdir);
    if (this.settings.pidfile) {
      const name = this.masterPid ? `${this.settings.pidfile}.2` : this.settings.pidfile;
      const pidfile = new Pidfile(name, this.deps.kill);
      // a re-exec'd master writes `<pidfile>.2` once its workers serve (checkServing): its
      // existence tells the operator (and `arb upgrade`) that the old one can go
      if (!this.masterPid) pidfile.create(this.pid);
      this.pidfile = pidfile;
    }
    await runHook(this.hooks, 'onStarting', this);
    this.installSignals();
    if (this.listeners.length === 0) {
      const made = await this.deps.createListeners({
        bind: this.settings.bind,
        backlog: this.settings.backlog,
        umask: this.settings.umask,
        uid: this.settings.user,
        gid: this.settings.group,
        reusePort: this.settings.reusePort,
      });
      this.listeners = made.listeners;
      this.systemd = made.systemd;
      // index i came from bind[i] when every entry gave one listener of its own
      const matches =
        !made.systemd &&
        made.listeners.length === this.settings.bind.length &&
        !this.settings.bind.some((b) => b.startsWith('fd://'));
      this.boundAs = matches ? [...this.settings.bind] : undefined;
    }
    if (this.masterPid && this.deps.installSignals) {
      // the old master's exit closes our IPC channel: look for promotion at once; the
      // channel itself must not keep this process alive once it has stopped
      process.once('disconnect', () => this.wake());
      process.channel?.unref();
    }
    this.log.debug('Arbiter booted');
    this.log.info(
      { listeners: this.listeners.map((l) => l.address) },
      `Listening at: ${this.listeners.map((l) => l.url).join(',')} (${this.pid})`,
    );
    await runHook(this.hooks, 'whenReady', this);
  }

  // ---- signals -----------------------------------------------------------------------

  private installSignals(): void {
    if (!this.deps.installSignals) return;
    for (const sig of MASTER_SIGNALS) {
      const listener = () => this.signals.push(sig);
      this.signalListeners.set(sig, listener);
      process.on(sig, listener);
    }
  }

  private removeSignals(): void {
    for (const [sig, listener] of this.signalListeners) process.off(sig, listener);
    this.signalListeners.clear();
  }

  /** Handles one queued signal (each a small method, as gunicorn's handle_*). */
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

  private async handleHup(): Promise<void> {
    this.log.info('Hang up: Master');
    this.control.reloadRequested();
    await this.reload();
  }

  private async handleTtin(): Promise<void> {
    await this.setNumWorkers(this.numWorkers + 1);
    await this.manageWorkers();
  }

  private async handleTtou(): Promise<void> {
    if (this.numWorkers <= 1) return;
    await this.setNumWorkers(this.numWorkers - 1);
    await this.manageWorkers();
  }

  private async handleUsr1(): Promise<void> {
    this.logSink.reopen();
    this.log.info('Reopened log files');
    await this.killWorkers('SIGUSR1');
  }

  private async handleWinch(): Promise<void> {
    if (this.deps.isTerminal()) {
      this.log.debug('SIGWINCH ignored: attached to a terminal');
      return;
    }
    this.log.info('graceful stop of workers');
    await this.setNumWorkers(0);
    await this.killWorkers('SIGTERM');
  }

  /**
   * HUP: reads the config afresh and boots a new generation; old workers are retired one
   * for one as new ones report ready, and a failing generation is rolled back (see
   * `reload.ts`). A HUP during a reload is coalesced into one more reload after it.
   */
  async reload(): Promise<void> {
    await this.reloader.begin();
    // spawn the new generation in this same pass
    await this.manageWorkers();
  }

  // ---- reload: what the state machine asks of the master (ReloadHost) ------------------

  now(): number {
    return this.deps.now();
  }

  allWorkers(): WorkerProcess[] {
    return [...this.workers.values()];
  }

  async applyNewConfig(): Promise<number> {
    const reloadConfig = this.config.reloadConfig ?? this.reloadConfigFn;
    const next = reloadConfig ? await reloadConfig() : this.config;
    const settings = settingsOf(next); // throws SettingError: nothing changed yet
    const hooks = pickHooks(next);
    const previous: ConfigSnapshot = {
      config: this.config,
      settings: this.settings,
      hooks: this.hooks,
      listeners: this.listeners,
      boundAs: this.boundAs,
      numWorkers: this.numWorkers,
      generation: this.generation,
      procName: this.procName,
    };
    await this.rebind(settings); // throws when a new address cannot be bound
    this.previous = previous;
    this.config = next;
    this.settings = settings;
    this.hooks = hooks;
    this.configModule = next.configModule;
    this.swapEnv(previous.settings.env, settings.env);
    this.procName = this.masterPid ? `${settings.procName}.2` : settings.procName;
    process.title = masterTitle(this.procName);
    await runHookSafely(this.log, this.hooks, 'onReload', this);
    this.generationCounter += 1;
    this.generation = this.generationCounter;
    await this.setNumWorkers(settings.workers);
    return effectiveBootTimeout(settings);
  }

  commitConfig(): void {
    this.previous = undefined;
    this.addedListeners = [];
    // an unpromoted re-exec'd master runs no sidecar (it would run twice): keep the spec
    if (this.masterPid === 0) this.sidecar.reload(this.config.sidecar);
    else this.sidecar.spec = this.config.sidecar;
  }

  closeDroppedListeners(): void {
    if (this.droppedListeners.length === 0) return;
    this.log.info(
      { listeners: this.droppedListeners.map((l) => l.address) },
      `Closing listeners dropped from the config: ${this.droppedListeners.map((l) => l.url).join(',')}`,
    );
    this.deps.closeListeners(this.droppedListeners, { unlink: this.mayUnlink() });
    this.droppedListeners = [];
  }

  async restoreOldConfig(): Promise<void> {
    const p = this.previous;
    if (!p) return;
    this.previous = undefined;
    // the new generation's own listeners go; the kept ones were never closed
    this.deps.closeListeners(this.addedListeners, { unlink: this.mayUnlink() });
    this.addedListeners = [];
    this.droppedListeners = [];
    this.swapEnv(this.settings.env, p.settings.env);
    this.config = p.config;
    this.settings = p.settings;
    this.hooks = p.hooks;
    this.configModule = p.config.configModule;
    this.listeners = p.listeners;
    this.boundAs = p.boundAs;
    this.procName = p.procName;
    process.title = masterTitle(this.procName);
    this.generation = p.generation;
    if (this.numWorkers !== p.numWorkers) await this.setNumWorkers(p.numWorkers);
  }

  async retire(worker: WorkerProcess): Promise<void> {
    worker.on('retire');
    await this.killWorker(worker, 'SIGTERM');
  }

  async killNow(worker: WorkerProcess): Promise<void> {
    worker.on('kill');
    await this.killWorker(worker, 'SIGKILL');
  }

  requestReload(): void {
    this.signals.push('SIGHUP');
  }

  /**
   * Binds the addresses the new config adds (before its workers spawn, so they get them)
   * and sets aside the ones it drops (closed once the old workers are gone). The kept
   * listeners are never closed: their sockets, and unix socket inodes, stay.
   */
  private async rebind(s: ArbiterSettings): Promise<void> {
    this.addedListeners = [];
    this.droppedListeners = [];
    const current = this.boundAs ?? this.settings.bind;
    if (sameList(current, s.bind)) return;
    if (!this.boundAs || s.reusePort !== this.settings.reusePort) {
      this.log.warn(
        'bind changed, but the listeners were inherited (systemd, ARB_FD) or reusePort changed: ' +
          'keeping the current listeners (restart to change them)',
      );
      return;
    }
    const byAddress = new Map(this.boundAs.map((b, i) => [b, this.listeners[i]!]));
    const added = s.bind.filter((b) => !byAddress.has(b));
    const made =
      added.length === 0
        ? []
        : (
            await this.deps.createListeners({
              bind: added,
              backlog: s.backlog,
              umask: s.umask,
              uid: s.user,
              gid: s.group,
              reusePort: s.reusePort,
              env: {}, // bind these: nothing to inherit
              retries: 1,
            })
          ).listeners;
    const fresh = new Map(added.map((b, i) => [b, made[i]!]));
    this.addedListeners = made;
    this.droppedListeners = this.boundAs
      .filter((b) => !s.bind.includes(b))
      .map((b) => byAddress.get(b)!);
    this.listeners = s.bind.map((b) => byAddress.get(b) ?? fresh.get(b)!);
    this.boundAs = [...s.bind];
    this.log.info(
      { listeners: this.listeners.map((l) => l.address) },
      `Listening at: ${this.listeners.map((l) => l.url).join(',')}`,
    );
  }

  /** Undoes the `env` settings of the old config (back to the original values), sets the new. */
  private swapEnv(old: Record<string, string>, next: Record<string, string>): void {
    for (const k of Object.keys(old)) {
      if (this.envOrig[k] === undefined) delete process.env[k];
      else process.env[k] = this.envOrig[k];
    }
    for (const [k, v] of Object.entries(next)) process.env[k] = v;
  }

  /** The unlink rule of the four seed cases: only the one master that bound the files. */
  private mayUnlink(): boolean {
    return (
      this.reexecPid === 0 && this.masterPid === 0 && !this.systemd && !this.settings.reusePort
    );
  }

  // ---- USR2: re-exec, promotion, the one-step upgrade ----------------------------------

  /**
   * USR2: starts a new master with our listeners (see `reexec.ts`). Refused while one we
   * started lives, while we are ourselves unpromoted, and during a reload. Resolves with
   * the new master's pid, or the reason it was refused.
   */
  async reexec(): Promise<{ pid?: number; error?: string }> {
    const refuse = (error: string) => {
      this.log.warn(error);
      return { error };
    };
    if (this.reexecPid !== 0) return refuse('USR2 signal ignored. Child exists.');
    if (this.masterPid !== 0) return refuse('USR2 signal ignored. Parent exists.');
    if (this.reloader.active) return refuse('USR2 signal ignored. A reload is in progress.');
    const plan = reexecPlan({
      listeners: this.listeners,
      systemd: this.systemd,
      masterPid: process.pid,
      envOrig: this.envOrig,
      startCwd: this.startCwd,
      execPath: process.execPath,
      execArgv: process.execArgv,
      argv: process.argv,
      handoff: this.deps.handoff,
    });
    // there is no forked pre-exec child in Node: preExec runs here, before the spawn
    await runHookSafely(this.log, this.hooks, 'preExec', this);
    let child: ChildProcess;
    try {
      child = this.deps.spawn(plan.command, plan.args, plan.options);
    } catch (err) {
      this.log.error({ err }, 'Cannot start a new master');
      return { error: `cannot start a new master: ${(err as Error).message}` };
    }
    if (child.pid === undefined) {
      child.once('error', () => {});
      this.log.error('Cannot start a new master');
      return { error: 'cannot start a new master' };
    }
    const pid = child.pid;
    this.reexecPid = pid;
    this.reexecChild = child;
    // neither the child nor its IPC channel may keep this process alive after its halt
    child.unref?.();
    child.channel?.unref();
    this.reexecServing = false;
    this.reexecExit = undefined;
    child.on('message', (m) => {
      if (isServingMessage(m) && this.reexecPid === pid) {
        this.reexecServing = true;
        this.log.info(`New master (pid:${pid}) is serving`);
        this.wake();
      }
    });
    child.once('exit', (code, signal) => {
      if (this.reexecPid !== pid) return;
      this.reexecExit = { code, signal };
      this.wake();
    });
    this.log.info(`Started a new master (pid:${pid}) with ${this.listeners.length} listeners`);
    return { pid };
  }

  /** The new master we started exited: USR2 works again. */
  private reapReexec(): void {
    const exit = this.reexecExit;
    if (!exit) return;
    this.reexecExit = undefined;
    this.log.warn(
      { code: exit.code, signal: exit.signal },
      `New master (pid:${this.reexecPid}) exited (${exit.signal ?? `code ${exit.code}`})`,
    );
    this.reexecPid = 0;
    this.reexecServing = false;
  }

  /**
   * A re-exec'd master whose parent is gone (we were re-parented) takes over: the plain
   * pidfile, the plain title, no ARB_PID, and only now the sidecar (it must never run
   * twice).
   */
  private maybePromote(): void {
    if (this.masterPid === 0 || this.deps.ppid() === this.masterPid) return;
    this.log.info('Master has been promoted.');
    this.masterPid = 0;
    this.procName = this.settings.procName;
    delete process.env.ARB_PID;
    if (this.pidfile && this.settings.pidfile) {
      try {
        this.pidfile.rename(this.settings.pidfile);
      } catch (err) {
        this.log.error({ err }, `Cannot write the pidfile ${this.settings.pidfile}`);
      }
    }
    process.title = masterTitle(this.procName);
    // the socket files the old master created are ours now: our final stop removes them
    // (only for listeners handed over by ARB_FD, matched one to one with the config)
    if (!this.systemd && this.boundAs) for (const l of this.listeners) claimSocketFile(l);
    this.control.promoted();
  }

  /** The sidecar runs only in a master that is not waiting for promotion. */
  private manageSidecar(): void {
    if (this.masterPid === 0) this.sidecar.manage();
  }

  /**
   * The whole upgrade in one call: starts a new master (USR2), waits until its workers
   * serve (at most `timeout` seconds, default max(bootTimeout, 60)), retires our workers
   * gracefully (WINCH), and once they are gone resolves `{ ok: true, newPid }` and stops
   * this master (TERM, sockets not unlinked); the new master then promotes itself. On any
   * failure the new master is stopped (TERM) and we keep serving: `{ ok: false, error }`.
   */
  upgrade(options: { timeout?: number } = {}): Promise<UpgradeResult> {
    if (this.upgradeJob) return Promise.resolve({ ok: false, error: 'an upgrade is in progress' });
    const timeout = options.timeout ?? Math.max(effectiveBootTimeout(this.settings), 60);
    return new Promise((resolve) => {
      this.upgradeJob = { phase: 'requested', timeout, deadline: 0, newPid: 0, resolve };
      this.wake();
    });
  }

  /** One pass of the loop for `upgrade()`. */
  private async stepUpgrade(): Promise<void> {
    const job = this.upgradeJob;
    if (!job) return;
    const done = (result: UpgradeResult) => {
      this.upgradeJob = undefined;
      if (result.ok) this.log.info(`Upgrade: new master (pid:${result.newPid}) took over`);
      else this.log.error(`Upgrade failed: ${result.error}; this master keeps serving`);
      job.resolve(result);
    };
    const now = this.deps.now();
    switch (job.phase) {
      case 'requested': {
        const started = await this.reexec();
        if (!started.pid) return done({ ok: false, error: started.error });
        job.newPid = started.pid;
        job.deadline = now + job.timeout;
        job.phase = 'starting';
        return;
      }
      case 'starting':
        if (this.reexecPid !== job.newPid) {
          return done({ ok: false, newPid: job.newPid, error: 'the new master exited' });
        }
        if (this.reexecServing) {
          job.phase = 'retiring';
          this.log.info('Upgrade: new master serves; graceful stop of the old workers');
          await this.setNumWorkers(0);
          await this.killWorkers('SIGTERM');
          return;
        }
        if (now >= job.deadline) {
          this.stopReexecChild();
          return done({
            ok: false,
            newPid: job.newPid,
            error: `the new master did not serve within ${job.timeout}s`,
          });
        }
        return;
      case 'retiring':
        if (this.reexecPid !== job.newPid) {
          // it died after serving: serve again ourselves
          await this.setNumWorkers(this.settings.workers);
          return done({ ok: false, newPid: job.newPid, error: 'the new master exited' });
        }
        if (this.workers.size > 0) return;
        done({ ok: true, newPid: job.newPid });
        this.signals.push('SIGTERM'); // halt; reexecPid is set, so sockets are not unlinked
        return;
    }
  }

  private stopReexecChild(): void {
    try {
      this.deps.kill(this.reexecPid, 'SIGTERM');
    } catch {
      // gone already
    }
  }

  // ---- workers -----------------------------------------------------------------------

  /** Live workers (booting or ready), oldest first. */
  liveWorkers(): WorkerProcess[] {
    return [...this.workers.values()].filter((w) => isLive(w.state)).sort((a, b) => a.age - b.age);
  }

  /**
   * Keeps the number of live workers of the current generation: spawns the missing ones,
   * retires the oldest excess. Workers of other generations are the reload's business
   * (retired one for one as new ones are ready, or after a rollback).
   */
  async manageWorkers(): Promise<void> {
    let live = this.currentWorkers();
    if (live.length < this.numWorkers && this.spawnBackoff.remaining(this.deps.now()) === 0) {
      for (let i = live.length; i < this.numWorkers; i++) await this.spawnWorker();
      live = this.currentWorkers();
    }
    while (live.length > this.numWorkers) {
      const oldest = live.shift()!;
      oldest.on('retire');
      await this.killWorker(oldest, 'SIGTERM');
    }
    if (live.length !== this.lastLoggedCount) {
      this.lastLoggedCount = live.length;
      this.log.debug({ workers: live.length }, `${live.length} workers`);
    }
  }

  /** Live workers of the generation being kept, oldest first. */
  private currentWorkers(): WorkerProcess[] {
    return this.liveWorkers().filter((w) => w.generation === this.generation);
  }

  /** Spawns one worker with the listeners at fd 3.., its heartbeat file after them, and IPC. */
  async spawnWorker(): Promise<WorkerProcess | undefined> {
    this.workerAge += 1;
    const s = this.settings;
    let heartbeat: Heartbeat | undefined;
    try {
      heartbeat = this.deps.createHeartbeat({
        dir: s.workerTmpDir,
        umask: s.umask,
        uid: s.user,
        gid: s.group,
      });
    } catch (err) {
      this.log.error({ err }, 'Cannot create the worker heartbeat file');
      this.spawnBackoff.fail(this.deps.now());
      return undefined;
    }
    const jitter =
      s.maxRequestsJitter > 0 ? Math.floor(this.deps.random() * (s.maxRequestsJitter + 1)) : 0;
    const worker = new WorkerProcess(
      this.workerAge,
      this.deps.now(),
      heartbeat,
      s.maxRequests > 0 ? s.maxRequests + jitter : 0,
    );
    worker.generation = this.generation;
    await runHookSafely(this.log, this.hooks, 'preFork', this, worker);

    const listeners = this.deps.handoff(this.listeners);
    const heartbeatSlot = 3 + listeners.stdio.length;
    const payload: WorkerPayload = {
      age: worker.age,
      masterPid: process.pid,
      heartbeatFd: heartbeatSlot,
      maxRequests: worker.maxRequests,
      numWorkers: this.numWorkers,
      settings: { ...s, procName: this.procName },
      configModule: this.configModule,
    };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...listeners.env,
      [WORKER_ENV]: JSON.stringify(payload),
    };
    delete env.ARB_PID;
    let child: ChildProcess;
    try {
      child = this.deps.spawn(process.execPath, [...workerExecArgv(s), this.deps.workerEntry], {
        stdio: ['inherit', 'inherit', 'inherit', ...listeners.stdio, heartbeat.fd, 'ipc'],
        env,
        cwd: s.chdir,
      });
    } catch (err) {
      this.log.error({ err }, 'Cannot spawn a worker');
      heartbeat.close();
      this.spawnBackoff.fail(this.deps.now());
      return undefined;
    }
    worker.child = child;
    worker.pid = child.pid;
    this.workers.set(worker.age, worker);
    this.control.workerSpawned(worker);
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      this.pendingExits.push({ worker, exit: { code, signal } });
      this.wake();
    };
    child.on('message', (m) => this.onWorkerMessage(worker, m));
    child.once('exit', onExit);
    child.on('error', (err) => {
      // spawn failures (EAGAIN, ENOENT) arrive here, without an exit event
      if (worker.pid === undefined) {
        worker.fatal = err.message;
        onExit(null, null);
      }
    });
    this.log.info({ worker: worker.age }, `Booting worker with pid: ${worker.pid}`);
    return worker;
  }

  private onWorkerMessage(worker: WorkerProcess, message: unknown): void {
    this.control.workerMessage(worker, message);
    if (!isWorkerMessage(message)) return;
    const m = message as WorkerMessage;
    switch (m.type) {
      case 'ready':
        worker.readyAt = this.deps.now();
        worker.on('ready');
        this.checkServing();
        return;
      case 'retiring':
        // it finishes its request and exits: its replacement can start booting now
        worker.on('retire');
        this.wake();
        return;
      case 'fatal':
        worker.fatal = m.message;
        return;
    }
  }

  private checkServing(): void {
    if (this.servingSettled) return;
    const ready = this.liveWorkers().filter((w) => w.state === 'ready').length;
    if (ready >= Math.max(1, this.numWorkers)) {
      this.servingSettled = true;
      this.log.info({ workers: ready }, `Serving with ${ready} workers`);
      this.resolveServing(true);
      if (this.masterPid !== 0) this.announceServing();
    }
  }

  /** A re-exec'd master serves: `<pidfile>.2` appears and the old master is told (IPC). */
  private announceServing(): void {
    try {
      this.pidfile?.create(this.pid);
    } catch (err) {
      this.log.error({ err }, `Cannot write the pidfile ${this.pidfile?.path}`);
    }
    this.deps.sendToParent({ type: 'arb:serving', pid: this.pid });
  }

  /** Sends `sig` to one worker; a worker already gone is removed (`workerExit` runs here). */
  async killWorker(worker: WorkerProcess, sig: NodeJS.Signals): Promise<void> {
    if (worker.pid === undefined) return;
    try {
      this.deps.kill(worker.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      this.workers.delete(worker.age);
      worker.on('exit');
      worker.heartbeat?.close();
      await runHookSafely(this.log, this.hooks, 'workerExit', this, worker);
    }
  }

  async killWorkers(sig: NodeJS.Signals): Promise<void> {
    for (const w of [...this.workers.values()]) {
      if (sig === 'SIGTERM' || sig === 'SIGQUIT') w.on('retire');
      if (sig === 'SIGKILL') w.on('kill');
      await this.killWorker(w, sig);
    }
  }

  /**
   * The heartbeat check: a worker silent for more than `timeout` gets SIGABRT, and SIGKILL
   * if it is still silent on a later pass.
   */
  async murderWorkers(): Promise<void> {
    const timeout = this.settings.timeout;
    if (timeout <= 0) return;
    const now = this.deps.now();
    for (const w of [...this.workers.values()]) {
      if (w.state === 'killed' || w.state === 'exited') continue;
      const last = w.heartbeat?.lastUpdate();
      if (last === undefined || now - last <= timeout) continue;
      if (!w.aborted) {
        this.log.error({ worker: w.age }, `WORKER TIMEOUT (pid:${w.pid})`);
        w.abortedAt = now;
        w.on('abort');
        await this.killWorker(w, 'SIGABRT');
      } else {
        w.on('kill');
        await this.killWorker(w, 'SIGKILL');
      }
    }
  }

  /**
   * Handles the exits seen since the last pass: log, remove, `childExit`, crash-loop
   * backoff; an exit with 3 or 4 halts the master (when `halting` is allowed).
   */
  async reapWorkers(halting = true): Promise<void> {
    while (this.pendingExits.length > 0) {
      const { worker, exit } = this.pendingExits.shift()!;
      if (this.workers.get(worker.age) !== worker) {
        // already removed (found gone when signalled): nothing to report twice
        this.log.debug(
          `Reaped unknown child process (pid:${worker.pid}, code:${exit.code}, signal:${exit.signal})`,
        );
        continue;
      }
      const before = worker.state;
      worker.exit = exit;
      worker.on('exit');
      this.control.workerExited(worker, before);
      const verdict = classifyExit(worker.pid, exit, {
        killedByMaster: before === 'killed',
        fatal: worker.fatal,
      });
      this.log[verdict.level](
        { worker: worker.age, code: exit.code, signal: exit.signal },
        verdict.message,
      );
      this.workers.delete(worker.age);
      worker.heartbeat?.close();
      this.countCrash(worker, isLive(before), exit.signal);
      await runHookSafely(this.log, this.hooks, 'childExit', this, worker);
      if (!verdict.halt || !halting) continue;
      // a new generation failing to boot fails its reload, not the master
      if (this.reloader.absorbHalt(worker, verdict.halt.reason)) continue;
      // a worker of a retired or rolled-back generation cannot take the master down
      if (worker.generation !== this.generation) continue;
      throw new HaltServer(verdict.halt.reason, verdict.halt.status);
    }
  }

  /**
   * The crash-loop backoff is for a worker that cannot stay up by itself: it exited on its
   * own, or crashed (SEGV, ABRT, ...), soon after its spawn. A worker killed from outside
   * (kill -9, the OOM killer, a stray TERM), booting or serving, is replaced at once, as
   * gunicorn does: backing off there would leave the service with no worker at all under
   * repeated kills.
   */
  private countCrash(
    worker: WorkerProcess,
    unexpected: boolean,
    signal: NodeJS.Signals | null,
  ): void {
    if (!unexpected) return;
    if (signal !== null && !CRASH_SIGNALS.has(signal)) return;
    const now = this.deps.now();
    if (now - worker.spawnedAt >= CRASH_WINDOW_SECONDS) {
      this.spawnBackoff.reset();
      return;
    }
    const delay = this.spawnBackoff.fail(now);
    if (this.spawnBackoff.failures > 1) {
      this.log.warn(
        { failures: this.spawnBackoff.failures },
        `Workers keep dying right after boot; next spawn in ${delay.toFixed(1)}s`,
      );
    }
  }

  // ---- stop --------------------------------------------------------------------------

  /**
   * Stops everything: closes the listeners (unlinking unix files only when no other master
   * uses them), signals the workers (TERM graceful, QUIT quick) and the sidecar, waits up to
   * `gracefulTimeout` for workers and max(gracefulTimeout, sidecar stop timeout) for the
   * sidecar, then SIGKILLs what is left. During a graceful stop a queued INT/QUIT turns it
   * into a quick one.
   */
  async stop(graceful = true): Promise<void> {
    const unlink = this.mayUnlink();
    // a reload in progress: the listeners it dropped, or the old set, go too
    const extra = [...this.droppedListeners, ...(this.previous?.listeners ?? [])].filter(
      (l) => !this.listeners.includes(l),
    );
    this.deps.closeListeners(this.listeners, { unlink });
    this.listeners = [];
    if (extra.length > 0) this.deps.closeListeners(extra, { unlink });
    this.droppedListeners = [];
    const now = this.deps.now();
    let workerLimit = now + this.settings.gracefulTimeout;
    let sidecarLimit = now + Math.max(this.settings.gracefulTimeout, this.sidecar.stopTimeout());
    await this.killWorkers(graceful ? 'SIGTERM' : 'SIGQUIT');
    this.sidecar.stop(this.sidecar.stopSignalOf(graceful ? 'graceful' : 'quick'));
    let workersKilled = false;
    for (;;) {
      await this.reapWorkers(false);
      const t = this.deps.now();
      if (graceful && this.signals.take(['SIGINT', 'SIGQUIT'])) {
        this.log.info('Quick shutdown requested');
        graceful = false;
        await this.killWorkers('SIGQUIT');
        this.sidecar.stop(this.sidecar.stopSignalOf('quick'));
        workerLimit = Math.min(workerLimit, t + 2);
        sidecarLimit = Math.min(sidecarLimit, t + 2);
      }
      if (!workersKilled && this.workers.size > 0 && t >= workerLimit) {
        workersKilled = true;
        await this.killWorkers('SIGKILL');
      }
      const waitWorkers = this.workers.size > 0 && !workersKilled;
      const waitSidecar = this.sidecar.running && t < sidecarLimit;
      if (!waitWorkers && !waitSidecar) break;
      await this.waitForExit(100);
    }
    if (this.workers.size > 0 && !workersKilled) await this.killWorkers('SIGKILL');
    this.sidecar.stop('SIGKILL');
    // let the kernel report the last deaths, so they are logged and nothing is left behind
    const until = this.deps.now() + 2;
    while ((this.workers.size > 0 || this.sidecar.running) && this.deps.now() < until) {
      await this.waitForExit(50);
      await this.reapWorkers(false);
    }
  }

  /** gunicorn's halt(): stop, one line saying why, pidfile removed, `onExit`; the status. */
  async halt(reason = '', status = 0, graceful = true): Promise<number> {
    this.control.stopping();
    await this.stop(graceful);
    if (status === 0) this.log.info('Shutting down: Master');
    else this.log.error({ status }, `Shutting down: Master. Reason: ${reason}`);
    this.pidfile?.unlink();
    await runHookSafely(this.log, this.hooks, 'onExit', this);
    await this.control.close();
    this.finish(false);
    return status;
  }

  private cleanupAfterFailedStart(): void {
    const unlink = this.masterPid === 0 && !this.systemd && !this.settings.reusePort;
    this.deps.closeListeners(this.listeners, { unlink });
    this.listeners = [];
    this.pidfile?.unlink();
    this.finish(false);
  }

  private finish(serving: boolean): void {
    this.removeSignals();
    if (this.reexecChild?.connected && typeof this.reexecChild.disconnect === 'function') {
      this.reexecChild.disconnect();
    }
    if (!this.servingSettled) {
      this.servingSettled = true;
      this.resolveServing(serving);
    }
  }

  // ---- waiting -----------------------------------------------------------------------

  /** Wakes the loop (a child exited, a worker retires). */
  private wake(): void {
    this.signals.wake();
    const w = this.exitWaiter;
    this.exitWaiter = undefined;
    w?.();
  }

  private waitForExit(ms: number): Promise<void> {
    if (this.pendingExits.length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.exitWaiter = undefined;
        resolve();
      }, ms);
      this.exitWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * How long the loop sleeps when nothing happens: short enough that a hung worker is
   * killed within `timeout` + 1 s, and that a spawn backoff ends on time.
   */
  private sleepMs(): number {
    const t = this.settings.timeout;
    let ms = t > 0 ? Math.min(500, Math.max(100, (t * 1000) / 8)) : 1000;
    const backoff = this.spawnBackoff.remaining(this.deps.now());
    if (backoff > 0) ms = Math.min(ms, Math.max(10, backoff * 1000));
    const boot = this.reloader.nextDeadline(this.deps.now());
    if (boot !== undefined) ms = Math.min(ms, Math.max(10, boot * 1000));
    return ms;
  }

  /** The workers as hooks and tools see them. */
  workerInfos(): WorkerInfo[] {
    return [...this.workers.values()].map((w) => w.toJSON());
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Node options meant for the master only: the `arb` launcher runs the master with
 * `--lite-mode --no-expose-wasm` on Node 20 and the interpreter only (`--no-opt --no-sparkplug
 * --no-maglev`, `--optimize-for-size`, a small young generation) on newer ones: the master
 * serves no request, and this keeps its RSS under 60 MB (see bin/arb); workers serve traffic and must never inherit it.
 */
export const MASTER_ONLY_NODE_FLAGS = [
  '--lite-mode',
  '--no-expose-wasm',
  '--no-opt',
  '--no-sparkplug',
  '--no-maglev',
  '--max-lazy',
  '--optimize-for-size',
  '--max-semi-space-size',
] as const;

/** The worker's Node options: the configured ones, or the master's minus inspector and master-only flags. */
function workerExecArgv(s: ArbiterSettings): string[] {
  if (s.workerExecArgv.length > 0) return s.workerExecArgv;
  return process.execArgv.filter(
    (a) =>
      !a.startsWith('--inspect') &&
      !a.startsWith('--debug') &&
      !MASTER_ONLY_NODE_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)),
  );
}
