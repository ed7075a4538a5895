import os from 'node:os';
import path from 'node:path';
import { SettingError } from './errors.js';

// The plain, serialisable settings (a leaf: imported by the master, the workers and the
// logger alike; the hooks, sidecar and control that make a full config are in config.ts).

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'auto' | 'json' | 'pretty';
const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/**
 * Every plain (serialisable) setting of the master and the workers, fully resolved.
 * Workers receive this object as JSON; durations are in seconds, like gunicorn's.
 */
export interface ArbiterSettings {
  /** `path/to/module[:export]`, relative to `chdir`. The default export when no `:`. */
  app: string;
  /** Addresses to bind (`host:port`, `[v6]:port`, `unix:/path`, `fd://N`). */
  bind: string[];
  /** Number of worker processes. */
  workers: number;
  /**
   * The most workers this master may keep (`workers`, TTIN, `arb ctl workers add`): a typo
   * or a runaway script must not fork the machine to death.
   */
  maxWorkers: number;
  /** A worker silent (event loop blocked) for longer than this many seconds is killed. 0 disables. */
  timeout: number;
  /** Seconds a worker may take to drain on TERM before it is killed. */
  gracefulTimeout: number;
  /** Seconds an idle keep-alive connection is kept (`server.keepAliveTimeout`). */
  keepAlive: number;
  /** `listen()` backlog of every listener. */
  backlog: number;
  /** Recycle a worker after this many requests. 0 disables. */
  maxRequests: number;
  /** Add a random 0..N (inclusive) to `maxRequests` per worker, so they do not restart together. */
  maxRequestsJitter: number;
  /** SO_REUSEPORT on the bound sockets, so another master can share the address (Node ≥ 22.12). */
  reusePort: boolean;
  /** umask applied around unix socket binds and heartbeat file creation. */
  umask: number;
  /** Numeric uid the workers switch to, and owner of unix socket files. */
  user?: number;
  /** Numeric gid the workers switch to, and group of unix socket files. */
  group?: number;
  /** Path of the pidfile; none by default. */
  pidfile?: string;
  /** Name shown in process titles (`arb: master [name]`). */
  procName: string;
  /** Variables set in the master before a preload and inherited by every worker. */
  env: Record<string, string>;
  /** Load the app in the master first, to fail fast (every worker still loads its own copy). */
  preload: boolean;
  /** Directory the app path is relative to. */
  chdir: string;
  /** Directory of the heartbeat files (tmpfs is best). */
  workerTmpDir: string;
  logLevel: LogLevel;
  /** `auto` (readable on a terminal, JSON lines elsewhere), `json` or `pretty`: every process. */
  logFormat: LogFormat;
  /** Error log: `-` for stderr, else a file path (reopened on USR1). */
  errorLog: string;
  /** Access log: `-` for stdout, a file path, or undefined for none. */
  accessLog?: string;
  /** gunicorn-style format (`%(h)s %(r)s %(s)s ...`); structured JSON fields when unset. */
  accessLogFormat?: string;
  /** TLS certificate and key (PEM files): workers serve HTTPS when both are set. */
  certfile?: string;
  keyfile?: string;
  /** Node options of the worker processes (`--enable-source-maps`, ...). */
  workerExecArgv: string[];
  /**
   * Seconds a new generation (HUP reload) or a new master (upgrade) has to be ready before
   * it is rolled back. Unset or 0: max(timeout, 30).
   */
  bootTimeout?: number;
}

export const DEFAULTS: Omit<ArbiterSettings, 'app' | 'procName' | 'chdir' | 'workerTmpDir'> = {
  bind: ['127.0.0.1:8000'],
  workers: 1,
  maxWorkers: 256,
  timeout: 30,
  gracefulTimeout: 30,
  keepAlive: 5,
  backlog: 2048,
  maxRequests: 0,
  maxRequestsJitter: 0,
  reusePort: false,
  umask: 0,
  env: {},
  preload: false,
  logLevel: 'info',
  logFormat: 'auto',
  errorLog: '-',
  workerExecArgv: [],
};

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** Fills defaults and checks every value; throws {@link SettingError} naming the bad one. */
export function resolveSettings(config: Partial<ArbiterSettings>): ArbiterSettings {
  const s = {
    ...DEFAULTS,
    procName: '',
    chdir: process.cwd(),
    workerTmpDir: os.tmpdir(),
    ...stripUndefined(config),
  } as ArbiterSettings;
  if (typeof s.app !== 'string' || s.app === '') throw new SettingError('app', s.app, 'required');
  if (!Array.isArray(s.bind) || s.bind.some((b) => typeof b !== 'string')) {
    throw new SettingError('bind', s.bind, 'must be a list of addresses');
  }
  count(s, 'workers', 0);
  count(s, 'maxWorkers', 1);
  if (s.workers > s.maxWorkers) {
    throw new SettingError('workers', s.workers, aboveMaxWorkers(s.workers, s.maxWorkers), false);
  }
  for (const k of ['timeout', 'gracefulTimeout', 'keepAlive'] as const) seconds(s, k);
  if (s.bootTimeout !== undefined) seconds(s, 'bootTimeout');
  count(s, 'backlog', 1);
  count(s, 'maxRequests', 0);
  count(s, 'maxRequestsJitter', 0);
  count(s, 'umask', 0);
  if (s.umask > 0o777) throw new SettingError('umask', s.umask, 'must be at most 0o777');
  for (const k of ['user', 'group'] as const) if (s[k] !== undefined) count(s, k, 0);
  for (const k of ['reusePort', 'preload'] as const) {
    if (typeof s[k] !== 'boolean') throw new SettingError(k, s[k], 'must be a boolean');
  }
  if (!LOG_LEVELS.includes(s.logLevel)) {
    throw new SettingError('logLevel', s.logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  if (!LOG_FORMATS.includes(s.logFormat)) {
    throw new SettingError('logFormat', s.logFormat, `must be one of ${LOG_FORMATS.join(', ')}`);
  }
  if (typeof s.env !== 'object' || s.env === null || Array.isArray(s.env)) {
    throw new SettingError('env', s.env, 'must be an object of strings');
  }
  for (const [k, v] of Object.entries(s.env)) {
    if (typeof v !== 'string' || k === '' || k.includes('=')) {
      throw new SettingError(`env.${k}`, v, 'must be a string under a name without "="');
    }
  }
  if ((s.certfile === undefined) !== (s.keyfile === undefined)) {
    throw new SettingError('certfile', s.certfile, 'certfile and keyfile go together');
  }
  if (!Array.isArray(s.workerExecArgv)) {
    throw new SettingError('workerExecArgv', s.workerExecArgv, 'must be a list of strings');
  }
  s.chdir = path.resolve(s.chdir);
  if (!s.procName) s.procName = defaultProcName(s.app);
  return s;
}

/** The one line that refuses more workers than `maxWorkers`. */
export function aboveMaxWorkers(workers: number, maxWorkers: number): string {
  return `${workers} is above maxWorkers (${maxWorkers}); raise --max-workers to run more`;
}

/** Throws {@link SettingError} when `workers` is above `maxWorkers`. */
export function checkWorkerCount(workers: number, s: Pick<ArbiterSettings, 'maxWorkers'>): void {
  if (workers > s.maxWorkers) {
    throw new SettingError('workers', workers, aboveMaxWorkers(workers, s.maxWorkers), false);
  }
}

/** The boot timeout in effect: `bootTimeout`, or max(timeout, 30) s when it is unset or 0. */
export function effectiveBootTimeout(s: ArbiterSettings): number {
  return s.bootTimeout ? s.bootTimeout : Math.max(s.timeout, 30);
}

/** `./src/app.js:handler` → `app`: the app path without directory and extension. */
export function defaultProcName(app: string): string {
  const file = splitAppSpec(app).module;
  return path.basename(file).replace(/\.[cm]?[jt]sx?$/, '') || 'arb';
}

/** Splits `module[:export]`. A Windows drive letter never occurs here (POSIX only). */
export function splitAppSpec(app: string): { module: string; exportName: string | undefined } {
  const i = app.lastIndexOf(':');
  if (i <= 0) return { module: app, exportName: undefined };
  return { module: app.slice(0, i), exportName: app.slice(i + 1) || undefined };
}

function count(s: ArbiterSettings, key: keyof ArbiterSettings, min: number): void {
  const v = s[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new SettingError(key, v, `must be an integer >= ${min}`);
  }
}

function seconds(s: ArbiterSettings, key: keyof ArbiterSettings): void {
  const v = s[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new SettingError(key, v, 'must be a number of seconds >= 0');
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
