import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { monoNow, wallNow } from './clock.js';
import type { CompanionConfig } from './config.js';
import { GID_ENV, UID_ENV } from './drop-privileges.js';
import { runAsEntry, targetRunnerEntry } from './entries.js';
import { LogFile } from './log-file.js';
import type { Logger } from './logger.js';
import { memoryVerdict } from './memory-limit.js';
import { LineSplitter, type OutputLine } from './output-lines.js';
import {
  type CompanionState,
  type Effect,
  INITIAL_MACHINE,
  type Machine,
  type MachineEvent,
  transition,
} from './state-machine.js';

/** Result of a command on one companion (reference wording in `message`). */
export type CommandResult = {
  ok: boolean;
  message: string;
};

/** Everything status needs about one companion, at one instant. */
export interface CompanionInfo {
  name: string;
  /** The configured name: the numprocs group of a copy, else `name`. */
  program: string;
  /** 1..N for a copy of a numprocs group, else null. */
  processNum: number | null;
  /** Set by the manager: the dependencies a companion asked to start waits for. */
  waitingOn?: { name: string; state: CompanionState }[] | null;
  kind: 'target' | 'command';
  state: CompanionState;
  pid: number | null;
  manualStop: boolean;
  /** Seconds since the current process was spawned (null without a process). */
  uptime: number | null;
  startedAt: number | null;
  exitedAt: number | null;
  /** Counted spawns: BACKOFF retries and restarts. */
  restarts: number;
  exits: number;
  /** SIGKILLs sent after a stop deadline. */
  kills: number;
  /** Restarts because the RSS stayed above `maxMemory` (also counted in `restarts`). */
  memoryRestarts: number;
  failedStarts: number;
  lastExitCode: number | null;
  lastExitSignal: string | null;
  /** Epoch seconds of the next BACKOFF retry. */
  nextRetryAt: number | null;
  /** Seconds until that retry. */
  retryIn: number | null;
  /** The delay chosen for the current BACKOFF. */
  restartDelay: number | null;
  lastError: string | null;
}

export interface CompanionEvents {
  /** A process was started; its pid is also its process group id. */
  spawn: [pid: number];
  /** A process was reaped (its leftover group members already SIGKILLed). */
  reap: [pid: number];
  state: [state: CompanionState];
}

/** One line a companion wrote on its stdout or stderr, for the manager's log. */
export interface CompanionOutputLine extends OutputLine {
  companion: string;
  pid: number;
  stream: 'stdout' | 'stderr';
}

/** Where captured output goes (the manager process writes it as log lines). */
export type CompanionOutput = (line: CompanionOutputLine) => void;

interface Live {
  child: ChildProcess | null;
  pid: number | null;
  startedMono: number;
  startedWall: number;
  generation: number;
  sinks: LogFile[];
}

/** Environment variables meant for the manager process only. */
const MANAGER_ONLY_ENV = [
  'ARB_COMPANION_CONFIG',
  'ARB_COMPANION_CONFIG_JSON',
  'ARB_COMPANION_PARENT_PID',
  UID_ENV,
  GID_ENV,
];

/** True when `cfg` runs under other ids than this process's. */
function switchesIds(cfg: CompanionConfig): boolean {
  return (
    (cfg.uid !== null && cfg.uid !== process.getuid?.()) ||
    (cfg.gid !== null && cfg.gid !== process.getgid?.())
  );
}

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    // Negative pid: the whole process group, so grandchildren get it too.
    process.kill(-pid, signal);
    return true;
  } catch {
    // ESRCH: already gone. EPERM cannot happen for our own children.
    return false;
  }
}

/**
 * One supervised companion: owns its process (in its own process group), its timers and
 * counters. All decisions come from the pure transition table in state-machine.ts; this
 * class only carries out the effects.
 */
export class Companion extends EventEmitter<CompanionEvents> {
  private machine: Machine = INITIAL_MACHINE;
  private live: Live | null = null;
  private generation = 0;
  private promoteTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAtMono: number | null = null;
  private retryDelay: number | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private killAtMono: number | null = null;
  private killSent = false;
  private restarts = 0;
  private exits = 0;
  private kills = 0;
  private memoryRestarts = 0;
  /** Monotonic seconds since when every RSS sample of this process was above `maxMemory`. */
  private aboveSince: number | undefined;
  private exitedAt: number | null = null;
  private lastExitCode: number | null = null;
  private lastExitSignal: string | null = null;
  private lastError: string | null = null;
  private readonly log: Logger;

  constructor(
    private cfg: CompanionConfig,
    logger: Logger,
    private readonly random: () => number = Math.random,
    /**
     * Output not sent to a file (`stdout`/`stderr` "inherit") is read line by line and
     * handed here; without it, the companion inherits this process's stdout/stderr.
     */
    private readonly output?: CompanionOutput,
  ) {
    super();
    this.log = logger.child({ companion: cfg.name });
  }

  get name(): string {
    return this.cfg.name;
  }
  get config(): CompanionConfig {
    return this.cfg;
  }
  get state(): CompanionState {
    return this.machine.state;
  }
  get manualStop(): boolean {
    return this.machine.manualStop;
  }
  /** Pid of the live process, if any (also its process group id). */
  get pid(): number | null {
    return this.live?.pid ?? null;
  }
  /** True while a process of this companion may still exist. */
  get hasProcess(): boolean {
    return this.live !== null;
  }

  /** Use a new config from the next spawn on (reread). */
  setConfig(cfg: CompanionConfig): void {
    this.cfg = cfg;
  }

  start(): CommandResult {
    return this.command({ type: 'start' });
  }
  stop(cap?: number): CommandResult {
    return this.command(cap === undefined ? { type: 'stop' } : { type: 'stop', cap });
  }
  restart(): CommandResult {
    return this.command({ type: 'restart' });
  }

  /** Send any signal to the process group (control command `signal`). */
  signal(sig: NodeJS.Signals): CommandResult {
    const pid = this.pid;
    if (pid === null) return { ok: false, message: `${this.name} is not running` };
    killGroup(pid, sig);
    this.log.info(
      { childPid: pid, signal: sig },
      `companion ${this.name} signalled ${sig} (pid ${pid})`,
    );
    return { ok: true, message: `${this.name} signalled ${sig}` };
  }

  /**
   * One RSS sample of its process (`maxMemory`, see `memory-limit.ts`): above the limit
   * for long enough, a RUNNING companion is restarted with its stop signal and `stopTimeout`.
   */
  sampleMemory(now: number, rssBytes: number): void {
    const limit = this.cfg.maxMemory;
    const pid = this.pid;
    if (limit === null || this.machine.state !== 'RUNNING' || pid === null) {
      this.aboveSince = undefined;
      return;
    }
    const v = memoryVerdict(this.aboveSince, now, rssBytes, limit);
    this.aboveSince = v.since;
    if (!v.restart) return;
    this.aboveSince = undefined;
    this.memoryRestarts++;
    const seconds = Math.round(v.seconds);
    this.log.warn(
      { childPid: pid, rssMb: v.rssMb, maxMemoryMb: limit, seconds, signal: this.cfg.stopSignal },
      `companion ${this.name} (pid ${pid}) uses ${v.rssMb} MB > maxMemory ${limit} MB for ` +
        `${seconds} s: restarting it (${this.cfg.stopSignal})`,
    );
    this.dispatch({ type: 'outgrown' });
  }

  private command(ev: MachineEvent): CommandResult {
    const t = this.dispatch(ev);
    return { ok: t.ok, message: t.message ?? '' };
  }

  private dispatch(ev: MachineEvent): { ok: boolean; message: string | null } {
    const before = this.machine.state;
    const t = transition(this.machine, ev, this.cfg, this.random);
    this.machine = t.machine;
    for (const effect of t.effects) this.apply(effect);
    if (this.machine.state !== before) this.onStateChange(before, ev);
    return t;
  }

  private onStateChange(before: CompanionState, ev: MachineEvent): void {
    const n = this.name;
    const pid = this.pid;
    switch (this.machine.state) {
      case 'RUNNING':
        this.log.info({ childPid: pid }, `companion ${n} running (pid ${pid})`);
        break;
      case 'STOPPING':
        if (this.machine.stopIntent === 'restart') {
          this.log.info({ childPid: pid }, `companion ${n} restarting (pid ${pid})`);
        } else {
          this.log.info({ childPid: pid }, `companion ${n} stopping (pid ${pid})`);
        }
        break;
      case 'STOPPED':
        this.log.info(`companion ${n} stopped`);
        break;
      case 'BACKOFF':
        this.log.info(
          { delay: this.retryDelay },
          `companion ${n} backing off, retrying in ${this.retryDelay?.toFixed(2)}s`,
        );
        break;
      case 'FATAL':
        this.log.error(
          { failedStarts: this.machine.failedStarts },
          `companion ${n} failed to start ${this.machine.failedStarts} times in a row; giving up (FATAL)`,
        );
        break;
      case 'STARTING':
        if (before === 'STOPPING' && ev.type === 'exit') this.log.info(`companion ${n} restarting`);
        break;
    }
    this.emit('state', this.machine.state);
  }

  private apply(effect: Effect): void {
    switch (effect.type) {
      case 'spawn':
        if (effect.counted) this.restarts++;
        this.spawnProcess();
        break;
      case 'signal':
        if (this.live?.pid) killGroup(this.live.pid, this.cfg.stopSignal);
        break;
      case 'armKill':
        this.armKill(effect.seconds, effect.tighten);
        break;
      case 'kill':
        this.killNow();
        break;
      case 'armRetry':
        this.armRetry(effect.seconds);
        break;
      case 'cancelRetry':
        this.cancelRetry();
        break;
    }
  }

  private armKill(seconds: number, tighten: boolean): void {
    if (this.killSent || !this.live) return;
    const at = monoNow() + seconds;
    if (tighten && this.killAtMono !== null && this.killAtMono <= at) return;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killAtMono = at;
    const gen = this.generation;
    // Scheduled for the exact deadline (setTimeout runs on the monotonic loop clock).
    this.killTimer = setTimeout(
      () => {
        if (gen === this.generation) this.dispatch({ type: 'killDue' });
      },
      Math.max(0, seconds * 1000),
    );
  }

  private killNow(): void {
    const pid = this.live?.pid;
    this.killTimer = null;
    this.killAtMono = null;
    if (!pid || this.killSent) return;
    this.killSent = true;
    this.kills++;
    killGroup(pid, 'SIGKILL');
    this.log.warn({ childPid: pid }, `companion ${this.name} killed after timeout (pid ${pid})`);
  }

  private armRetry(seconds: number): void {
    this.cancelRetry();
    this.retryDelay = seconds;
    this.retryAtMono = monoNow() + seconds;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAtMono = null;
      this.dispatch({ type: 'retryDue' });
    }, seconds * 1000);
  }

  private cancelRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAtMono = null;
    this.retryDelay = null;
  }

  private spawnProcess(): void {
    const cfg = this.cfg;
    const gen = ++this.generation;
    this.killSent = false;
    this.aboveSince = undefined;
    this.lastError = null;
    const sinks: LogFile[] = [];
    let stdoutSink: LogFile | null = null;
    let stderrSink: LogFile | null = null;
    try {
      stdoutSink = cfg.stdout === 'inherit' ? null : new LogFile(cfg.stdout);
      if (cfg.stderr === 'stdout') stderrSink = stdoutSink;
      else if (cfg.stderr !== 'inherit') stderrSink = new LogFile(cfg.stderr);
    } catch (err) {
      this.lastError = String(err);
    }
    for (const s of [stdoutSink, stderrSink]) {
      if (s && !sinks.includes(s)) {
        sinks.push(s);
        s.on('failure', (err: Error) =>
          this.log.error({ err: err.message, path: s.path }, 'companion output file failed'),
        );
      }
    }
    // Captured: what would be inherited (stderr "stdout" with stdout captured is captured
    // too, as stderr).
    const captureOut = this.output !== undefined && cfg.stdout === 'inherit';
    const captureErr =
      this.output !== undefined &&
      (cfg.stderr === 'inherit' || (cfg.stderr === 'stdout' && captureOut));
    const out = stdoutSink || captureOut ? 'pipe' : 'inherit';
    // stderr "stdout" with an inherited stdout: the manager's fd 1.
    const errOut = stderrSink || captureErr ? 'pipe' : cfg.stderr === 'stdout' ? 1 : 'inherit';
    const stdio: StdioOptions = ['ignore', out, errOut];

    const inherited = { ...process.env };
    // The manager's own inputs are not the companions' business (and would confuse a
    // companion that runs arb itself).
    for (const k of MANAGER_ONLY_ENV) delete inherited[k];
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      ...cfg.env,
      ARB_COMPANION_NAME: cfg.name,
      ARB_COMPANION_MANAGER_PID: String(process.pid),
    };
    // Another user: the node process we start switches to it itself (with the user's
    // supplementary groups, which spawn's uid/gid options would clear).
    const switching = switchesIds(cfg);
    if (switching) {
      env[UID_ENV] = cfg.uid === null ? '' : String(cfg.uid);
      env[GID_ENV] = cfg.gid === null ? '' : String(cfg.gid);
    }
    let file: string;
    let args: string[];
    if (cfg.kind === 'target') {
      file = process.execPath;
      args = [targetRunnerEntry()];
      env.ARB_COMPANION_TARGET = cfg.target!;
      env.ARB_COMPANION_STOP_SIGNAL = cfg.stopSignal;
    } else if (switching) {
      file = process.execPath;
      args = [runAsEntry(), ...cfg.command!];
    } else {
      file = cfg.command![0]!;
      args = cfg.command!.slice(1);
    }
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: cfg.cwd,
        env,
        stdio,
        // New session and process group: signals reach grandchildren, and a terminal's
        // Ctrl-C aimed at the manager does not hit companions behind its back.
        detached: true,
      });
    } catch (err) {
      // Synchronous spawn failures (bad arguments): a failed start like any other.
      for (const s of sinks) s.close();
      this.lastError = (err as Error).message;
      this.log.error({ err: this.lastError }, `companion ${cfg.name} could not be started`);
      const failed: Live = {
        child: null,
        pid: null,
        startedMono: monoNow(),
        startedWall: wallNow(),
        generation: gen,
        sinks: [],
      };
      this.live = failed;
      setImmediate(() => this.reaped(failed, 127, null));
      return;
    }
    const pid = child.pid ?? null;
    const live: Live = {
      child,
      pid,
      startedMono: monoNow(),
      startedWall: wallNow(),
      generation: gen,
      sinks,
    };
    this.live = live;
    if (captureOut) this.capture(child.stdout, 'stdout', pid);
    else this.forward(child.stdout, stdoutSink);
    if (captureErr) this.capture(child.stderr, 'stderr', pid);
    else this.forward(child.stderr, stderrSink);

    let reaped = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (reaped) return;
      reaped = true;
      this.reaped(live, code, signal);
    };
    child.on('exit', onGone);
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT, EACCES) arrive here without an exit event.
      this.lastError = err.message;
      this.log.error({ err: err.message }, `companion ${cfg.name} could not be started`);
      if (live.pid === null) onGone(127, null);
    });
    child.on('close', () => {
      for (const s of sinks) s.close();
    });
    if (pid !== null) {
      this.log.info({ childPid: pid }, `companion ${cfg.name} started (pid ${pid})`);
      this.emit('spawn', pid);
    }
    const promote = () => {
      if (gen === this.generation && this.live === live) this.dispatch({ type: 'promote' });
    };
    if (cfg.startSecs <= 0) setImmediate(promote);
    else this.promoteTimer = setTimeout(promote, cfg.startSecs * 1000);
  }

  private forward(src: Readable | null, sink: LogFile | null): void {
    if (!src || !sink) return;
    src.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk)) {
        src.pause();
        sink.once('drain', () => src.resume());
      }
    });
    src.on('error', () => {});
  }

  /**
   * Reads `src` line by line into the output. Each line is written synchronously before
   * the next chunk is read, so a companion that writes faster than the log takes it is
   * slowed down by its full pipe, never dropped; a last line without newline is flushed
   * when the pipe closes.
   */
  private capture(src: Readable | null, stream: 'stdout' | 'stderr', pid: number | null): void {
    const output = this.output;
    if (!src || !output) return;
    const companion = this.cfg.name;
    const splitter = new LineSplitter((line) =>
      output({ companion, pid: pid ?? 0, stream, ...line }),
    );
    src.on('data', (chunk: Buffer) => splitter.push(chunk));
    src.on('end', () => splitter.end());
    src.on('error', () => {});
  }

  private reaped(live: Live, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.live !== live) return;
    const ranFor = monoNow() - live.startedMono;
    this.live = null;
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.promoteTimer = null;
    this.killTimer = null;
    this.killAtMono = null;
    this.exits++;
    this.exitedAt = wallNow();
    this.lastExitCode = signal ? null : code;
    this.lastExitSignal = signal;
    if (live.pid !== null) {
      // A companion's process group never outlives its leader: stragglers would otherwise
      // run unsupervised next to the replacement.
      killGroup(live.pid, 'SIGKILL');
      if (signal)
        this.log.info(
          { childPid: live.pid, signal },
          `companion ${this.name} exited on signal ${signal}`,
        );
      else
        this.log.info(
          { childPid: live.pid, code },
          `companion ${this.name} exited with status ${code}`,
        );
      this.emit('reap', live.pid);
    }
    this.dispatch({ type: 'exit', code: signal ? null : code, signal, ranFor });
  }

  /** Reopen output files (USR1), for rename-based log rotation. */
  reopenLogs(): void {
    for (const s of this.live?.sinks ?? []) s.reopen();
  }

  info(): CompanionInfo {
    const live = this.live;
    const now = monoNow();
    const m = this.machine;
    return {
      name: this.name,
      program: this.cfg.program,
      processNum: this.cfg.processNum,
      kind: this.cfg.kind,
      state: m.state,
      pid: live?.pid ?? null,
      manualStop: m.manualStop,
      uptime: live ? now - live.startedMono : null,
      startedAt: live?.startedWall ?? null,
      exitedAt: this.exitedAt,
      restarts: this.restarts,
      exits: this.exits,
      kills: this.kills,
      memoryRestarts: this.memoryRestarts,
      failedStarts: m.failedStarts,
      lastExitCode: this.lastExitCode,
      lastExitSignal: this.lastExitSignal,
      nextRetryAt:
        this.retryAtMono === null ? null : wallNow() + Math.max(0, this.retryAtMono - now),
      retryIn: this.retryAtMono === null ? null : Math.max(0, this.retryAtMono - now),
      restartDelay: this.retryDelay,
      lastError: this.lastError,
    };
  }
}
