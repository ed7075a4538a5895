import { type AdoptedListener, adopt } from '@arb/sock';
import { AppLoadError } from '../errors.js';
import {
  type ArbiterHooks,
  pickHooks,
  runHookSafely,
  type ServerView,
  type WorkerInfo,
} from '../hooks.js';
import { createLogger, type LogSink } from '../logger.js';
import { startHeartbeat } from '../protocol/heartbeat.js';
import type { MasterMessage, WorkerMessage, WorkerPayload } from '../protocol/worker.js';
import { APP_LOAD_ERROR, WORKER_BOOT_ERROR } from '../protocol/worker.js';
import { workerTitle } from '../titles.js';
import { primaryGid } from '../users.js';
import { type AccessLog, createAccessLog } from './access-log.js';
import { importModule, loadApp } from './load-app.js';
import { LoopLag } from './loop-lag.js';
import { WorkerRequestStats } from './request-stats.js';
import { type Serving, serve } from './serve.js';

/** How often an orphan check polls the parent pid (the IPC disconnect usually comes first). */
const ORPHAN_POLL_MS = 250;

type Phase = 'booting' | 'serving' | 'exiting';

/**
 * One worker process: boots (hooks, app, listeners), serves, and exits on the master's
 * signals. Exit status: 0 after a drain or a quick stop, 1 after SIGABRT or a crash once
 * serving, 3 when booting failed, 4 when the app could not be loaded.
 */
export class WorkerRuntime implements WorkerInfo {
  readonly age: number;
  readonly pid = process.pid;
  booted = false;
  aborted = false;
  private phase: Phase = 'booting';
  private hooks: Partial<ArbiterHooks> = {};
  private readonly logSink: LogSink;
  private readonly accessLog: AccessLog | undefined;
  private serving: Serving | undefined;
  private requests = 0;
  /** Request counts and latencies for the master's metrics, sent about once a second. */
  private readonly stats = new WorkerRequestStats(
    (m) => {
      if (process.send && process.connected) process.send(m, undefined, {}, () => {});
    },
    undefined,
    () => this.logSink.dropped() + (this.accessLog?.sink.dropped() ?? 0),
    { lag: () => this.loopLag?.take() ?? 0 },
  );
  /** Event-loop lag, reported with the stats once serving. */
  private loopLag: LoopLag | undefined;
  private readonly server: ServerView;

  constructor(private readonly payload: WorkerPayload) {
    const s = payload.settings;
    this.age = payload.age;
    this.logSink = createLogger({
      proc: 'worker',
      level: s.logLevel,
      format: s.logFormat,
      dest: s.errorLog,
    });
    this.accessLog = createAccessLog(s.accessLog, s.accessLogFormat, s.logFormat);
    this.server = {
      pid: payload.masterPid,
      procName: s.procName,
      numWorkers: payload.numWorkers,
      settings: s,
      log: this.logSink.log,
    };
  }

  get log() {
    return this.logSink.log;
  }

  async run(): Promise<void> {
    const s = this.payload.settings;
    process.title = workerTitle(s.procName);
    this.installSignals();
    this.watchParent();
    if (this.payload.heartbeatFd !== undefined && s.timeout > 0) {
      startHeartbeat(this.payload.heartbeatFd, s.timeout);
    }
    process.on('uncaughtException', (err) => this.crash(err));
    process.on('unhandledRejection', (err) => this.crash(err));

    // a JSON config file carries no hooks: nothing to re-import
    if (this.payload.configModule && !this.payload.configModule.endsWith('.json')) {
      try {
        const mod = await importModule(
          this.payload.configModule,
          this.payload.configModule,
          s.chdir,
        );
        this.hooks = pickHooks(mod.default ?? mod);
      } catch (err) {
        return this.fatal(
          WORKER_BOOT_ERROR,
          `cannot load the config module: ${(err as Error).message}`,
          err,
        );
      }
    }
    if (!(await this.bootStep('postFork', () => this.hooks.postFork?.(this.server, this)))) return;
    try {
      dropPrivileges(s.user, s.group);
    } catch (err) {
      return this.fatal(
        WORKER_BOOT_ERROR,
        `cannot switch user/group: ${(err as Error).message}`,
        err,
      );
    }
    let listeners: AdoptedListener[];
    try {
      listeners = adopt();
      if (listeners.length === 0) throw new Error('no listeners were handed to this worker');
    } catch (err) {
      return this.fatal(WORKER_BOOT_ERROR, (err as Error).message, err);
    }
    let app: Awaited<ReturnType<typeof loadApp>>;
    try {
      app = await loadApp(s.app, s.chdir);
    } catch (err) {
      const code = err instanceof AppLoadError ? APP_LOAD_ERROR : WORKER_BOOT_ERROR;
      return this.fatal(code, (err as Error).message, err);
    }
    if (this.phase !== 'booting') return;
    try {
      this.serving = await serve(app, listeners, {
        settings: s,
        log: this.log,
        accessLog: this.accessLog,
        onRequest: (req, res) => {
          this.stats.track(req, res);
          this.countRequest();
        },
      });
    } catch (err) {
      return this.fatal(WORKER_BOOT_ERROR, `cannot listen: ${(err as Error).message}`, err);
    }
    if (!(await this.bootStep('postWorkerInit', () => this.hooks.postWorkerInit?.(this)))) return;
    if (this.phase !== 'booting') return;
    this.booted = true;
    this.phase = 'serving';
    this.send({ type: 'ready' });
    this.loopLag = new LoopLag();
    this.stats.start();
    this.log.debug({ app: app.kind, listeners: listeners.map((l) => l.address) }, 'Worker ready');
  }

  private async bootStep(name: string, step: () => unknown): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (err) {
      this.fatal(WORKER_BOOT_ERROR, `${name} hook threw: ${(err as Error)?.message ?? err}`, err);
      return false;
    }
  }

  private installSignals(): void {
    process.on('SIGTERM', () => void this.gracefulExit('SIGTERM'));
    process.on('SIGINT', () => void this.quickExit());
    process.on('SIGQUIT', () => void this.quickExit());
    process.on('SIGABRT', () => void this.abort());
    process.on('SIGUSR1', () => {
      this.logSink.reopen();
      this.accessLog?.sink.reopen();
    });
    // without a listener a Node process is stopped by TTIN/TTOU; gunicorn workers ignore
    // these three
    for (const sig of ['SIGTTIN', 'SIGTTOU', 'SIGWINCH'] as const) process.on(sig, () => {});
  }

  /** Exits within a second of the master's death: IPC disconnect, or a changed parent. */
  private watchParent(): void {
    const orphaned = () => {
      if (this.phase === 'exiting') return;
      this.phase = 'exiting';
      this.log.info(`Parent changed, shutting down: worker ${process.pid}`);
      void this.exitAfterHook(0);
    };
    process.on('disconnect', orphaned);
    // the master's messages: a promoted master gives its workers the plain title
    process.on('message', (m: MasterMessage) => {
      if (m?.type === 'title' && typeof m.procName === 'string') {
        process.title = workerTitle(m.procName);
      }
    });
    const timer = setInterval(() => {
      if (process.ppid !== this.payload.masterPid) orphaned();
    }, ORPHAN_POLL_MS);
    timer.unref();
  }

  private countRequest(): void {
    this.requests += 1;
    const max = this.payload.maxRequests;
    if (max > 0 && this.requests >= max && this.phase === 'serving') {
      this.log.info('Autorestarting worker after current request.');
      this.send({ type: 'retiring' });
      void this.gracefulExit('maxRequests');
    }
  }

  /** TERM (or max requests): stop accepting, finish in-flight requests, exit 0. */
  async gracefulExit(why: string): Promise<void> {
    if (this.phase === 'exiting') return;
    const wasBooting = this.phase === 'booting';
    this.phase = 'exiting';
    if (wasBooting) {
      this.log.info({ why }, `Worker exiting (pid: ${process.pid})`);
      await this.exitAfterHook(0);
    } else await this.drainThenExit(why, 0);
  }

  /** INT/QUIT: `workerInt`, then exit now. */
  async quickExit(): Promise<void> {
    if (this.phase === 'exiting') return;
    this.phase = 'exiting';
    await runHookSafely(this.log, this.hooks, 'workerInt', this);
    await runHookSafely(this.log, this.hooks, 'workerExit', this.server, this);
    this.exit(0);
  }

  /** SIGABRT (heartbeat timeout): `workerAbort`, exit 1. */
  async abort(): Promise<void> {
    this.aborted = true;
    this.phase = 'exiting';
    await runHookSafely(this.log, this.hooks, 'workerAbort', this);
    await runHookSafely(this.log, this.hooks, 'workerExit', this.server, this);
    this.exit(1);
  }

  /**
   * An uncaught exception or unhandled rejection. While booting it is a boot failure (3).
   * Once serving, the process state may be damaged, but the error belongs to one request:
   * the worker tells the master it retires (its replacement boots at once), stops
   * accepting, lets its other in-flight requests finish (up to `gracefulTimeout`; the one
   * that threw may never answer), runs `workerExit` and exits 1. Exiting at once would
   * reset every other request in flight on this worker.
   */
  private crash(err: unknown): void {
    if (!this.booted) {
      this.fatal(
        WORKER_BOOT_ERROR,
        `uncaught error while booting: ${(err as Error)?.message ?? err}`,
        err,
      );
      return;
    }
    this.log.error({ err }, 'Exception in worker process');
    this.failRequest();
    if (this.phase === 'exiting') return; // already on its way out: the drain goes on
    this.phase = 'exiting';
    this.send({ type: 'retiring' });
    void this.drainThenExit('uncaught exception', 1);
  }

  /**
   * The request whose code threw will never answer: a 500 (or, once its headers are out, a
   * cut), so that the drain does not wait `gracefulTimeout` for it.
   */
  private failRequest(): void {
    const res = this.serving?.tracker.currentResponse();
    if (!res || res.writableEnded) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.statusCode = 500;
    res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', 'text/plain');
    res.end('Internal Server Error\n');
  }

  /** Exits with 3 or 4 after telling the master why (and running `workerExit`). */
  private fatal(code: 3 | 4, message: string, err: unknown): void {
    if (this.phase === 'exiting') return;
    this.phase = 'exiting';
    const app =
      err instanceof AppLoadError
        ? { message: err.message, thrown: err.thrown, where: err.where }
        : undefined;
    // A syntax error's stack is the module loader's, not the app's: its place says it all.
    if (app?.where && app.thrown?.startsWith('SyntaxError')) {
      this.log.error({ code, where: app.where }, message);
    } else this.log.error({ err, code }, message);
    const sent = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 500);
      this.send({ type: 'fatal', code, message, ...(app ? { app } : {}) }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    void sent.then(() => this.exitAfterHook(code));
  }

  /** Stops accepting, finishes in-flight requests (up to `gracefulTimeout`), `workerExit`, exit. */
  private async drainThenExit(why: string, code: number): Promise<void> {
    this.log.info({ why }, `Worker exiting (pid: ${process.pid})`);
    if (this.serving) {
      const clean = await this.serving.tracker.drain(
        this.serving.servers,
        this.payload.settings.gracefulTimeout * 1000,
      );
      if (!clean) this.log.warn('Graceful timeout: in-flight requests were cut');
    }
    await this.exitAfterHook(code);
  }

  /** gunicorn's `finally`: `workerExit` runs however the worker ends, then it exits. */
  private async exitAfterHook(code: number): Promise<void> {
    await runHookSafely(this.log, this.hooks, 'workerExit', this.server, this);
    this.exit(code);
  }

  private send(message: WorkerMessage, callback?: () => void): void {
    if (process.send && process.connected) {
      process.send(message, undefined, {}, (err) => {
        if (err) this.log.debug({ err }, 'IPC send failed');
        callback?.();
      });
    } else callback?.();
  }

  private exit(code: number): void {
    this.phase = 'exiting';
    process.exit(code);
  }
}

/**
 * Switches to `group` then `user` (gunicorn's order; after `postFork`, which runs with the
 * master's rights). As root, the supplementary groups become those of `user` (initgroups,
 * as nginx and supervisord do), or just `group` when no user is given: never root's own.
 * Without `group`, a `user` brings its primary group from the passwd database.
 */
export function dropPrivileges(user: number | undefined, group: number | undefined): void {
  const gid = group ?? (user !== undefined ? primaryGid(user) : undefined);
  if (process.getuid?.() === 0) {
    // initgroups is in Node's API on POSIX, not in @types/node's Process
    const initgroups = (process as { initgroups?: (user: number, extra: number) => void })
      .initgroups;
    if (user !== undefined && user !== 0 && initgroups) initgroups(user, gid ?? 0);
    else if (gid !== undefined) process.setgroups?.([gid]);
  }
  if (gid !== undefined && process.getgid?.() !== gid) process.setgid?.(gid);
  if (user !== undefined && process.getuid?.() !== user) process.setuid?.(user);
}
