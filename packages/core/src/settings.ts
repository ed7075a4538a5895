import fs from 'node:fs';
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
  /**
   * Seconds between TERM and the graceful drain: `/readyz` answers 503 at once while the
   * listeners keep accepting, so a load balancer stops routing here before they close.
   */
  shutdownDelay: number;
  /** Seconds an idle keep-alive connection is kept (`server.keepAliveTimeout`). */
  keepAlive: number;
  /** `listen()` backlog of every listener. */
  backlog: number;
  /**
   * Further attempts, 1 s apart, to bind an address that is in use or not available at
   * start (gunicorn retries 4 times, always). 0: fail at once, naming the process on it.
   */
  bindRetries: number;
  /** Recycle a worker after this many requests. 0 disables. */
  maxRequests: number;
  /** Add a random 0..N (inclusive) to `maxRequests` per worker, so they do not restart together. */
  maxRequestsJitter: number;
  /**
   * MB (MiB) of RSS: a worker above it at every sample (1 s apart) for 3 s is replaced,
   * successor first (`master/memory-limit.ts`). Unset: no limit, no sampling.
   */
  maxMemory?: number;
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
  /**
   * Linux: the master becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), so processes
   * orphaned by workers and companions are re-parented to it and reaped, not leaked. As
   * PID 1 the master reaps orphans whatever this says. Read once at start. Default: on in
   * a container ({@link inContainer}).
   */
  subreaper: boolean;
  /** How a HUP reload rolls out; `canary` set: new workers are judged before the rest boot. */
  reload?: ReloadSettings;
}

/** The rollout of a HUP reload. */
export interface ReloadSettings {
  /** Unset: every new worker boots at once (readiness-gated, one for one). */
  canary?: CanarySettings;
}

/**
 * A canary reload (`master/canary.ts`): `workers` new workers serve beside the whole old
 * generation for `seconds`, then their 5xx rate and p99 latency are compared with the old
 * generation's over the same window; the reload rolls forward or back on that verdict.
 */
export interface CanarySettings {
  /** New-generation workers in the canary (at most the new worker count). */
  workers: number;
  /** Seconds the canary serves before it is judged. */
  seconds: number;
  /** The canary fails when its 5xx share is above this (and above the old generation's). */
  maxErrorRate: number;
  /** The canary fails when its p99 latency is above this many times the old generation's. */
  maxP99Ratio: number;
}

export const CANARY_DEFAULTS: CanarySettings = {
  workers: 1,
  seconds: 30,
  maxErrorRate: 0.01,
  maxP99Ratio: 2,
};

/**
 * `reload` as a config may give it: `canary` true (the defaults), false (none), or some of
 * its numbers (the rest from {@link CANARY_DEFAULTS}).
 */
export interface ReloadInput {
  canary?: Partial<CanarySettings> | boolean;
}

export const DEFAULTS: Omit<
  ArbiterSettings,
  'app' | 'procName' | 'chdir' | 'workerTmpDir' | 'subreaper'
> = {
  bind: ['127.0.0.1:8000'],
  workers: 1,
  maxWorkers: 256,
  timeout: 30,
  gracefulTimeout: 30,
  shutdownDelay: 0,
  keepAlive: 5,
  backlog: 2048,
  bindRetries: 0,
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
  for (const k of ['timeout', 'gracefulTimeout', 'shutdownDelay', 'keepAlive'] as const)
    seconds(s, k);
  if (s.bootTimeout !== undefined) seconds(s, 'bootTimeout');
  count(s, 'backlog', 1);
  count(s, 'bindRetries', 0);
  count(s, 'maxRequests', 0);
  count(s, 'maxRequestsJitter', 0);
  if (s.maxMemory !== undefined) {
    if (typeof s.maxMemory !== 'number' || !Number.isFinite(s.maxMemory) || s.maxMemory <= 0) {
      throw new SettingError('maxMemory', s.maxMemory, 'must be a number of MB > 0');
    }
  }
  count(s, 'umask', 0);
  if (s.umask > 0o777) throw new SettingError('umask', s.umask, 'must be at most 0o777');
  for (const k of ['user', 'group'] as const) if (s[k] !== undefined) count(s, k, 0);
  if (s.subreaper === undefined) s.subreaper = inContainer();
  for (const k of ['reusePort', 'preload', 'subreaper'] as const) {
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
  if (s.reload !== undefined) s.reload = resolveReload(s.reload as ReloadInput);
  if (!Array.isArray(s.workerExecArgv)) {
    throw new SettingError('workerExecArgv', s.workerExecArgv, 'must be a list of strings');
  }
  s.chdir = path.resolve(s.chdir);
  if (!s.procName) s.procName = defaultProcName(s.app);
  return s;
}

/**
 * True when this process runs in a container: it is PID 1, or Docker's `/.dockerenv`,
 * podman's `/run/.containerenv`, Kubernetes' `KUBERNETES_SERVICE_HOST` or the `container`
 * variable (systemd-nspawn, podman) is there. The default of `subreaper`.
 */
export function inContainer(
  pid = process.pid,
  env: NodeJS.ProcessEnv = process.env,
  exists: (file: string) => boolean = fs.existsSync,
): boolean {
  return (
    pid === 1 ||
    env.KUBERNETES_SERVICE_HOST !== undefined ||
    env.container !== undefined ||
    exists('/.dockerenv') ||
    exists('/run/.containerenv')
  );
}

/** `reload` with the canary's defaults filled in and each number checked. */
function resolveReload(input: ReloadInput): ReloadSettings {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SettingError('reload', input, 'must be an object');
  }
  const c = input.canary;
  if (c === undefined || c === false) return {};
  if (c !== true && (typeof c !== 'object' || c === null || Array.isArray(c))) {
    throw new SettingError('reload.canary', c, 'must be an object or a boolean');
  }
  const canary: CanarySettings = { ...CANARY_DEFAULTS, ...(c === true ? {} : stripUndefined(c)) };
  const bad = (key: keyof CanarySettings, ok: boolean, what: string) => {
    if (!ok) throw new SettingError(`reload.canary.${key}`, canary[key], what);
  };
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  bad(
    'workers',
    Number.isInteger(canary.workers) && canary.workers >= 1,
    'must be an integer >= 1',
  );
  bad('seconds', num(canary.seconds) && canary.seconds > 0, 'must be a number of seconds > 0');
  bad(
    'maxErrorRate',
    num(canary.maxErrorRate) && canary.maxErrorRate >= 0 && canary.maxErrorRate <= 1,
    'must be a number from 0 to 1',
  );
  bad('maxP99Ratio', num(canary.maxP99Ratio) && canary.maxP99Ratio >= 1, 'must be a number >= 1');
  return { canary };
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
