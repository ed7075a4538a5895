import type { ChildProcess } from 'node:child_process';
import type { Listener } from '@arb/sock';
import { HaltServer } from '../errors.js';
import { type ArbiterHooks, runHookSafely, type ServerView } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { Heartbeat } from '../protocol/heartbeat.js';
import {
  APP_LOAD_ERROR,
  isWorkerMessage,
  type MasterMessage,
  type StatsMessage,
  WORKER_ENV,
  type WorkerMessage,
  type WorkerPayload,
} from '../protocol/worker.js';
import type { ArbiterSettings } from '../settings.js';
import { Backoff } from './backoff.js';
import type { ArbiterDeps } from './deps.js';
import { classifyExit } from './reap.js';
import { isCounted, type WorkerExit, WorkerProcess, type WorkerState } from './worker-state.js';

/**
 * Spawns allowed per `SPAWN_WINDOW_SECONDS`: a pass never spends long spawning, so signals
 * are handled within a second under any storm (`-w 256`, `arb ctl workers add`).
 */
export const SPAWNS_PER_WINDOW = 8;
export const SPAWN_WINDOW_SECONDS = 0.1;

/** Seconds a worker sent SIGABRT (heartbeat timeout) has to run `workerAbort` before SIGKILL. */
export const ABORT_GRACE_SECONDS = 0.5;

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

/**
 * Node options meant for the master only: the `arb` launcher runs the master with
 * `--lite-mode --no-expose-wasm` on Node 20 and the interpreter only (`--no-opt --no-sparkplug
 * --no-maglev`, `--optimize-for-size`, a small young generation) on newer ones: the master
 * serves no request, and this keeps its RSS under 60 MB (see bin/arb); workers serve traffic
 * and must never inherit it.
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

/** What the pool needs of its master: the Arbiter itself. */
export interface PoolHost extends ServerView {
  readonly deps: ArbiterDeps;
  readonly log: Logger;
  readonly hooks: Partial<ArbiterHooks>;
  readonly listeners: Listener[];
  /** The generation `manage` keeps workers of. */
  readonly generation: number;
  /** How many of them `manage` keeps: `numWorkers`, or fewer while a canary is judged. */
  readonly keptWorkers: number;
  /** Hears every worker's batched counts too (a canary is judged on them). */
  readonly reloader: { workerStats(worker: WorkerProcess, message: StatsMessage): void };
  readonly config: { readonly configModule?: string };
  readonly signals: { wake(): void };
  /** The operator side (metrics, status) hears of each of these. */
  readonly control: {
    workerSpawned(worker: WorkerProcess): void;
    workerExited(worker: WorkerProcess, before: WorkerState): void;
    workerStats(worker: WorkerProcess, message: StatsMessage): void;
    workerRetiring(worker: WorkerProcess): void;
  };
  /** A worker is ready. */
  checkServing(): void;
  /** A worker exited 3/4: true when that halts the master (false: a reload takes it). */
  haltsOn(worker: WorkerProcess, reason: string): boolean;
}

interface PendingExit {
  worker: WorkerProcess;
  exit: WorkerExit;
}

/**
 * The worker pool: spawns workers with the listeners and a heartbeat file, sorts their
 * messages in one table, keeps their number, kills hung ones, reaps exits, and backs off
 * when they fail to boot.
 */
export class WorkerPool {
  /**
   * Boot-failure backoff, one per slot (0..workers-1): a worker that exits before it is
   * ready delays only the next spawn into its own slot; the other slots are untouched.
   */
  private readonly slotBackoffs = new Map<number, Backoff>();
  /**
   * The machine refused a process (EAGAIN, EMFILE, ENFILE: `spawn` threw, gave no pid, or
   * the heartbeat file could not be created): no spawn at all until it passes, and one log
   * line per interval.
   */
  readonly spawnBackoff = new Backoff(0.1, 10);
  private lastSpawnFailureAt = Number.NEGATIVE_INFINITY;
  private spawnWindowStart = Number.NEGATIVE_INFINITY;
  private spawnsInWindow = 0;
  /** `manage` left slots empty for lack of spawn budget: look again when the window ends. */
  private spawnsPending = false;
  private readonly workers = new Map<number, WorkerProcess>();
  private age = 0;
  private readonly pendingExits: PendingExit[] = [];
  private lastLoggedCount = -1;

  /** Worker → master messages, each to its handler: the one place they are sorted. */
  private readonly onMessage: {
    [T in WorkerMessage['type']]: (
      w: WorkerProcess,
      m: Extract<WorkerMessage, { type: T }>,
    ) => void;
  } = {
    ready: (w) => {
      w.readyAt = this.host.deps.now();
      // a worker spawned since the last refusal could start and boot: the machine has room
      // again (a pid alone proves little in a pids cgroup, where the new process may fail
      // to start its threads; one spawned before the refusal proves nothing)
      if (w.spawnedAt > this.lastSpawnFailureAt) this.spawnBackoff.reset();
      w.on('ready');
      this.host.checkServing();
      this.host.signals.wake(); // a reload or an upgrade may go on at once
    },
    retiring: (w) => {
      // it finishes its request and exits: its replacement can start booting now
      w.on('retire');
      this.host.control.workerRetiring(w);
      this.host.signals.wake();
    },
    fatal: (w, m) => {
      w.fatal = m.message;
      if (m.code === APP_LOAD_ERROR && m.app && typeof m.app.message === 'string')
        w.fatalApp = m.app;
    },
    stats: (w, m) => {
      this.host.control.workerStats(w, m);
      this.host.reloader.workerStats(w, m);
    },
  };

  constructor(private readonly host: PoolHost) {}

  get size(): number {
    return this.workers.size;
  }

  get(age: number): WorkerProcess | undefined {
    return this.workers.get(age);
  }

  /** Every worker the master knows, in any state, oldest first. */
  all(): WorkerProcess[] {
    return [...this.workers.values()];
  }

  /** Live workers (booting or ready), oldest first. */
  live(): WorkerProcess[] {
    return this.all()
      .filter((w) => isCounted(w.state))
      .sort((a, b) => a.age - b.age);
  }

  /**
   * Live workers of the generation being kept, oldest first; a successor (`--max-memory`)
   * is not counted while the worker it replaces still is: the two hold one slot.
   */
  private current(): WorkerProcess[] {
    const generation = this.host.generation;
    return this.live().filter((w) => w.generation === generation && !this.isShadow(w));
  }

  private isShadow(w: WorkerProcess): boolean {
    if (w.successorOf === undefined) return false;
    const old = this.workers.get(w.successorOf);
    return old !== undefined && isCounted(old.state);
  }

  /**
   * Spawns the successor of a worker (`--max-memory`) into its slot, beside it; undefined
   * when the machine refuses a process now.
   */
  async spawnSuccessor(old: WorkerProcess): Promise<WorkerProcess | undefined> {
    if (this.spawnBackoff.remaining(this.host.deps.now()) > 0) return undefined;
    return this.spawn(old.slot, old.age);
  }

  /** An exit has been seen and not reaped yet. */
  get exitsPending(): boolean {
    return this.pendingExits.length > 0;
  }

  /**
   * Keeps the number of live workers of the current generation: spawns the missing ones,
   * retires the oldest excess. Workers of other generations are the reload's business
   * (retired one for one as new ones are ready, or after a rollback).
   */
  async manage(): Promise<void> {
    const target = this.host.keptWorkers;
    let live = this.current();
    this.spawnsPending = false;
    if (live.length < target) {
      const taken = new Set(live.map((w) => w.slot));
      for (let slot = 0; slot < target; slot++) {
        if (taken.has(slot)) continue;
        const now = this.host.deps.now();
        if (this.spawnBackoff.remaining(now) > 0) break;
        if (this.backoffOf(slot).remaining(now) > 0) continue;
        if (!this.takeSpawnBudget(now)) {
          this.spawnsPending = true;
          break;
        }
        if (!(await this.spawn(slot))) break;
      }
      live = this.current();
    }
    while (live.length > target) await this.retire(live.shift()!);
    if (live.length !== this.lastLoggedCount) {
      this.lastLoggedCount = live.length;
      this.host.log.debug({ workers: live.length }, `${live.length} workers`);
    }
  }

  /** The boot-failure backoff of one slot. */
  backoffOf(slot: number): Backoff {
    let b = this.slotBackoffs.get(slot);
    if (!b) {
      b = new Backoff(0.1, 10);
      this.slotBackoffs.set(slot, b);
    }
    return b;
  }

  /** Every slot may spawn at once again (a development reload after an edit: a new attempt). */
  forgetBootFailures(): void {
    for (const b of this.slotBackoffs.values()) b.reset();
  }

  /** One spawn out of this window's budget; false when it is spent. */
  private takeSpawnBudget(now: number): boolean {
    if (now >= this.spawnWindowStart + SPAWN_WINDOW_SECONDS) {
      this.spawnWindowStart = now;
      this.spawnsInWindow = 0;
    }
    if (this.spawnsInWindow >= SPAWNS_PER_WINDOW) return false;
    this.spawnsInWindow += 1;
    return true;
  }

  /**
   * The machine refused a process: one line, and no spawn until the backoff passes (the
   * next failure, one interval later, is the next line).
   */
  private spawnFailed(err: unknown, what: string): void {
    this.lastSpawnFailureAt = this.host.deps.now();
    const delay = this.spawnBackoff.fail(this.lastSpawnFailureAt);
    const code = (err as NodeJS.ErrnoException)?.code;
    this.host.log.error(
      { err, failures: this.spawnBackoff.failures },
      `${what}${code ? ` (${code})` : ''}; next spawn in ${delay.toFixed(1)}s`,
    );
  }

  /**
   * Spawns one worker into `slot` with the listeners at fd 3.., its heartbeat file after
   * them, and IPC; `successorOf`: the age of the worker it replaces.
   */
  async spawn(slot = 0, successorOf?: number): Promise<WorkerProcess | undefined> {
    const { deps, log } = this.host;
    this.age += 1;
    const s = this.host.settings;
    let heartbeat: Heartbeat | undefined;
    try {
      heartbeat = deps.createHeartbeat({
        dir: s.workerTmpDir,
        umask: s.umask,
        uid: s.user,
        gid: s.group,
      });
    } catch (err) {
      this.spawnFailed(err, 'Cannot create the worker heartbeat file');
      return undefined;
    }
    const jitter =
      s.maxRequestsJitter > 0 ? Math.floor(deps.random() * (s.maxRequestsJitter + 1)) : 0;
    const worker = new WorkerProcess(
      this.age,
      deps.now(),
      heartbeat,
      s.maxRequests > 0 ? s.maxRequests + jitter : 0,
    );
    worker.generation = this.host.generation;
    worker.slot = slot;
    worker.successorOf = successorOf;
    await runHookSafely(log, this.host.hooks, 'preFork', this.host, worker);

    const listeners = deps.handoff(this.host.listeners);
    const payload: WorkerPayload = {
      age: worker.age,
      masterPid: process.pid,
      heartbeatFd: 3 + listeners.stdio.length,
      maxRequests: worker.maxRequests,
      numWorkers: this.host.numWorkers,
      settings: { ...s, procName: this.host.procName },
      configModule: this.host.config.configModule,
    };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...listeners.env,
      [WORKER_ENV]: JSON.stringify(payload),
    };
    delete env.ARB_PID;
    let child: ChildProcess;
    try {
      child = deps.spawn(process.execPath, [...workerExecArgv(s), deps.workerEntry], {
        stdio: ['inherit', 'inherit', 'inherit', ...listeners.stdio, heartbeat.fd, 'ipc'],
        env,
        cwd: s.chdir,
      });
    } catch (err) {
      heartbeat.close();
      this.spawnFailed(err, 'Cannot spawn a worker');
      return undefined;
    }
    if (child.pid === undefined) {
      // EAGAIN, EMFILE, ENFILE: no process; the error event follows and says why
      heartbeat.close();
      const err = await new Promise<Error>((resolve) => {
        child.once('error', resolve);
      });
      this.spawnFailed(err, 'Cannot spawn a worker');
      return undefined;
    }
    worker.child = child;
    worker.pid = child.pid;
    this.workers.set(worker.age, worker);
    this.host.control.workerSpawned(worker);
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      this.pendingExits.push({ worker, exit: { code, signal } });
      this.host.signals.wake();
    };
    child.on('message', (m) => this.dispatch(worker, m));
    child.once('exit', onExit);
    child.on('error', (err) => {
      // a failed kill or IPC send: the exit event still comes
      log.debug({ err, workerPid: worker.pid, workerAge: worker.age }, 'worker process error');
    });
    log.info(
      { workerPid: worker.pid, workerAge: worker.age },
      `Booting worker with pid: ${worker.pid}`,
    );
    return worker;
  }

  private dispatch(worker: WorkerProcess, message: unknown): void {
    if (!isWorkerMessage(message)) return;
    const handle = this.onMessage[message.type] as (w: WorkerProcess, m: WorkerMessage) => void;
    handle(worker, message);
  }

  /** Sends `sig` to one worker; a worker already gone is removed (`workerExit` runs here). */
  async kill(worker: WorkerProcess, sig: NodeJS.Signals): Promise<void> {
    if (worker.pid === undefined) return;
    try {
      this.host.deps.kill(worker.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      this.workers.delete(worker.age);
      worker.on('exit');
      worker.heartbeat?.close();
      await runHookSafely(this.host.log, this.host.hooks, 'workerExit', this.host, worker);
    }
  }

  /** Retires a worker gracefully (TERM). */
  async retire(worker: WorkerProcess): Promise<void> {
    worker.on('retire');
    await this.kill(worker, 'SIGTERM');
  }

  /** SIGKILLs a worker now. */
  async killNow(worker: WorkerProcess): Promise<void> {
    worker.on('kill');
    await this.kill(worker, 'SIGKILL');
  }

  /** Sends every live worker a message (best effort: a worker on its way out may miss it). */
  tell(message: MasterMessage): void {
    for (const w of this.all()) {
      if (w.child?.connected) w.child.send(message, undefined, {}, () => {});
    }
  }

  async killAll(sig: NodeJS.Signals): Promise<void> {
    for (const w of this.all()) {
      if (sig === 'SIGTERM' || sig === 'SIGQUIT') w.on('retire');
      if (sig === 'SIGKILL') w.on('kill');
      await this.kill(w, sig);
    }
  }

  /**
   * The heartbeat check: a worker silent for more than `timeout` gets SIGABRT, and SIGKILL
   * if it is still there `ABORT_GRACE_SECONDS` later.
   */
  async murder(): Promise<void> {
    const timeout = this.host.settings.timeout;
    if (timeout <= 0) return;
    const now = this.host.deps.now();
    for (const w of this.all()) {
      if (w.state === 'killed' || w.state === 'exited') continue;
      if (w.abortedAt !== undefined) {
        if (now >= w.abortedAt + ABORT_GRACE_SECONDS) await this.killNow(w);
        continue;
      }
      const last = w.heartbeat?.lastUpdate();
      if (last === undefined || now - last <= timeout) continue;
      this.host.log.error({ workerPid: w.pid, workerAge: w.age }, `WORKER TIMEOUT (pid:${w.pid})`);
      w.abortedAt = now;
      w.on('abort');
      await this.kill(w, 'SIGABRT');
    }
  }

  /**
   * When the pool needs the loop again: the nearest heartbeat deadline (last beat +
   * timeout, or the end of an abort's grace) and the end of the spawn backoff.
   */
  nextDeadline(): number | undefined {
    const timeout = this.host.settings.timeout;
    const now = this.host.deps.now();
    let next: number | undefined;
    const sooner = (t: number) => {
      if (next === undefined || t < next) next = t;
    };
    if (this.spawnBackoff.remaining(now) > 0) sooner(this.spawnBackoff.until);
    else if (this.spawnsPending) sooner(this.spawnWindowStart + SPAWN_WINDOW_SECONDS);
    const taken = new Set(this.current().map((w) => w.slot));
    for (const [slot, b] of this.slotBackoffs) {
      if (slot < this.host.keptWorkers && !taken.has(slot) && b.remaining(now) > 0) sooner(b.until);
    }
    if (timeout <= 0) return next;
    for (const w of this.workers.values()) {
      if (w.state === 'killed' || w.state === 'exited') continue;
      if (w.abortedAt !== undefined) sooner(w.abortedAt + ABORT_GRACE_SECONDS);
      else {
        const last = w.heartbeat?.lastUpdate();
        // a timer never fires early, but fstat's mtime may round: look again just after
        if (last !== undefined) sooner(last + timeout + 0.01);
      }
    }
    return next;
  }

  /**
   * Handles the exits seen since the last pass: log, remove, `childExit`, crash-loop
   * backoff; an exit with 3 or 4 halts the master (when `halting` is allowed and the host
   * says so).
   */
  async reap(halting = true): Promise<void> {
    const { log } = this.host;
    while (this.pendingExits.length > 0) {
      const { worker, exit } = this.pendingExits.shift()!;
      if (this.workers.get(worker.age) !== worker) {
        // already removed (found gone when signalled): nothing to report twice
        log.debug(
          `Reaped unknown child process (pid:${worker.pid}, code:${exit.code}, signal:${exit.signal})`,
        );
        continue;
      }
      const before = worker.state;
      worker.exit = exit;
      worker.on('exit');
      this.host.control.workerExited(worker, before);
      const verdict = classifyExit(worker.pid, exit, {
        killedByMaster: before === 'killed',
        fatal: worker.fatal,
      });
      log[verdict.level](
        { workerPid: worker.pid, workerAge: worker.age, code: exit.code, signal: exit.signal },
        verdict.message,
      );
      this.workers.delete(worker.age);
      worker.heartbeat?.close();
      this.countBootFailure(worker, isCounted(before), exit.signal);
      await runHookSafely(log, this.host.hooks, 'childExit', this.host, worker);
      if (!verdict.halt || !halting) continue;
      if (this.host.haltsOn(worker, verdict.halt.reason)) {
        throw new HaltServer(verdict.halt.reason, verdict.halt.status, true, worker.fatalApp);
      }
    }
  }

  /**
   * The backoff is for a worker that cannot boot: it exited on its own, or crashed (SEGV,
   * ABRT, ...), before it was ready. A worker that reached ready and then died is replaced
   * at once, whatever killed it: the app boots fine, and backing off would only leave the
   * service without workers. A worker killed from outside (kill -9, the OOM killer, a stray
   * TERM) while booting is replaced at once too, as gunicorn does. Only its own slot waits.
   */
  private countBootFailure(
    worker: WorkerProcess,
    unexpected: boolean,
    signal: NodeJS.Signals | null,
  ): void {
    const backoff = this.backoffOf(worker.slot);
    if (worker.booted) {
      backoff.reset();
      return;
    }
    if (!unexpected) return;
    if (signal !== null && !CRASH_SIGNALS.has(signal)) return;
    const delay = backoff.fail(this.host.deps.now());
    if (backoff.failures > 1) {
      this.host.log.warn(
        { failures: backoff.failures, slot: worker.slot },
        `Worker ${worker.slot + 1} keeps failing to boot; next spawn in ${delay.toFixed(1)}s`,
      );
    }
  }
}

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
