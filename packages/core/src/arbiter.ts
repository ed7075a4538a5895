import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import { close as closeListeners, createListeners, handoff, type Listener } from '@arb/sock';
import { Backoff } from './backoff.js';
import { monotonic } from './clock.js';
import { type ArbiterConfig, type ArbiterSettings, settingsOf } from './config.js';
import { AppLoadError, HaltServer } from './errors.js';
import { createHeartbeat, type Heartbeat, type HeartbeatOptions } from './heartbeat.js';
import {
  type ArbiterHooks,
  pickHooks,
  runHook,
  runHookSafely,
  type ServerView,
  type WorkerInfo,
} from './hooks.js';
import { createLogger, type Logger, type LogSink } from './logger.js';
import { type KillFn, Pidfile } from './pidfile.js';
import { classifyExit } from './reap.js';
import { SidecarSlot } from './sidecar.js';
import { MASTER_SIGNALS, type MasterSignal, SignalQueue } from './signals.js';
import { masterTitle } from './titles.js';
import { loadApp } from './worker/load-app.js';
import {
  isWorkerMessage,
  WORKER_ENV,
  type WorkerMessage,
  type WorkerPayload,
} from './worker-protocol.js';
import { isLive, type WorkerExit, WorkerProcess } from './worker-state.js';

/** The built worker entry, next to this module in `dist/` (ESM and CJS alike). */
export const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** A worker that dies within this many seconds of its spawn counts as a crash loop. */
export const CRASH_WINDOW_SECONDS = 5;

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
};

interface PendingExit {
  worker: WorkerProcess;
  exit: WorkerExit;
}

/**
 * The master: binds the listeners, keeps `workers` worker processes accepting on them,
 * and supervises the sidecar. One serialized async loop does everything; signal listeners
 * only queue the signal and wake it (gunicorn's arbiter, upstream's queue shape).
 */
export class Arbiter implements ServerView {
  readonly settings: ArbiterSettings;
  readonly hooks: Partial<ArbiterHooks>;
  readonly configModule: string | undefined;
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
  /** pid of a re-exec'd master we started (USR2, next issue); 0 when none. */
  reexecPid = 0;
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

  constructor(config: ArbiterConfig, deps: Partial<ArbiterDeps> = {}) {
    this.deps = { ...DEFAULT_DEPS, ...deps };
    this.settings = settingsOf(config);
    this.hooks = pickHooks(config);
    this.configModule = config.configModule;
    this.procName = this.settings.procName;
    this.numWorkersValue = this.settings.workers;
    this.logSink =
      this.deps.logSink ??
      createLogger({ proc: 'master', level: this.settings.logLevel, dest: this.settings.errorLog });
    this.log = this.logSink.log;
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
    try {
      await this.manageWorkers();
      this.sidecar.manage();
      for (;;) {
        const signals = await this.signals.wait(this.sleepMs());
        await this.reapWorkers();
        for (const sig of signals) await this.handleSignal(sig);
        await this.murderWorkers();
        await this.manageWorkers();
        this.sidecar.manage();
      }
    } catch (err) {
      if (err instanceof HaltServer) return this.halt(err.reason, err.status, err.graceful);
      this.log.error({ err }, 'Unhandled exception in main loop');
      await this.stop(false);
      this.pidfile?.unlink();
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
      pidfile.create(this.pid);
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
        this.log.warn('USR2 (re-exec) is not supported yet: ignored');
        return;
      case 'SIGWINCH':
        return this.handleWinch();
    }
  }

  private async handleHup(): Promise<void> {
    this.log.info('Hang up: Master');
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
   * HUP: a new generation from the same config; the oldest workers are retired by
   * manageWorkers. (Re-reading the config and retiring only once the new generation is
   * ready belong to the reload issue.)
   */
  async reload(): Promise<void> {
    await runHookSafely(this.log, this.hooks, 'onReload', this);
    for (let i = 0; i < this.numWorkers; i++) await this.spawnWorker();
    await this.manageWorkers();
    this.sidecar.reload(this.sidecar.spec);
  }

  // ---- workers -----------------------------------------------------------------------

  /** Live workers (booting or ready), oldest first. */
  liveWorkers(): WorkerProcess[] {
    return [...this.workers.values()].filter((w) => isLive(w.state)).sort((a, b) => a.age - b.age);
  }

  /** Keeps the number of live workers: spawns the missing ones, retires the oldest excess. */
  async manageWorkers(): Promise<void> {
    let live = this.liveWorkers();
    if (live.length < this.numWorkers && this.spawnBackoff.remaining(this.deps.now()) === 0) {
      for (let i = live.length; i < this.numWorkers; i++) await this.spawnWorker();
      live = this.liveWorkers();
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
    }
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
      this.countCrash(worker, isLive(before));
      await runHookSafely(this.log, this.hooks, 'childExit', this, worker);
      if (verdict.halt && halting) throw new HaltServer(verdict.halt.reason, verdict.halt.status);
    }
  }

  private countCrash(worker: WorkerProcess, unexpected: boolean): void {
    if (!unexpected) return;
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
    const unlink =
      this.reexecPid === 0 && this.masterPid === 0 && !this.systemd && !this.settings.reusePort;
    this.deps.closeListeners(this.listeners, { unlink });
    this.listeners = [];
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
    await this.stop(graceful);
    if (status === 0) this.log.info('Shutting down: Master');
    else this.log.error({ status }, `Shutting down: Master. Reason: ${reason}`);
    this.pidfile?.unlink();
    await runHookSafely(this.log, this.hooks, 'onExit', this);
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
    return ms;
  }

  /** The workers as hooks and tools see them. */
  workerInfos(): WorkerInfo[] {
    return [...this.workers.values()].map((w) => w.toJSON());
  }
}

/** The worker's Node options: the configured ones, or the master's minus inspector flags. */
function workerExecArgv(s: ArbiterSettings): string[] {
  if (s.workerExecArgv.length > 0) return s.workerExecArgv;
  return process.execArgv.filter((a) => !a.startsWith('--inspect') && !a.startsWith('--debug'));
}
