import { statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { lookupGroup, lookupUser } from '@arb/sock';
import * as v from 'valibot';
import { CompanionConfigError } from './errors.js';
import { findCycle, stopChainSeconds } from './ordering.js';
import { loadProcfile, ProcfileError } from './procfile.js';
import { FORBIDDEN_STOP_SIGNALS, isSignalName } from './signals.js';
import { splitTarget } from './target.js';

/** When a companion that exited on its own is started again. */
export type Autorestart = 'always' | 'unexpected' | 'never';

/** Keys that one companion may set, and that `defaults` may set for all of them. */
export interface CompanionOptions {
  /** Working directory (relative to the manager's base dir). Default: the base dir. */
  cwd?: string;
  /** Extra environment, merged over `defaults.env`, itself merged over the manager's env. */
  env?: Record<string, string>;
  /** First signal sent by stop and restart. Default `SIGTERM`. SIGKILL/SIGSTOP are refused. */
  stopSignal?: string;
  /** Seconds between the stop signal and SIGKILL to the group on stop. Default 60. */
  stopTimeout?: number;
  /** Same as stopTimeout, for restart (restart command, reread). Default 60. */
  reloadTimeout?: number;
  /** Seconds a new process must stay up to count as RUNNING. Default 1. */
  startSecs?: number;
  /**
   * `"inherit"` (default: the manager's log, line by line, as `{proc:"companion", companion,
   * pid, stream}` lines) or a file path, appended to and created 0644.
   */
  stdout?: string;
  /** `"inherit"` (default), `"stdout"` (follow stdout) or a file path. */
  stderr?: string;
  /** Default `always`. `unexpected`: not restarted after an exit code in `exitCodes`. */
  autorestart?: Autorestart;
  /**
   * MB (MiB) of RSS of the companion's process: above it at every sample (1 s apart) for
   * 3 s, it is restarted (stop signal, `stopTimeout`, then started again). Default: no limit.
   */
  maxMemory?: number | null;
  /** Exit codes that count as expected for `autorestart: 'unexpected'`. Default `[0]`. */
  exitCodes?: number[];
  /**
   * Consecutive failed starts (exit before `startSecs`) retried before the companion goes
   * FATAL. Default null: retry for ever with capped backoff.
   */
  startRetries?: number | null;
  /**
   * User (name or uid) the companion runs as, with that user's supplementary groups.
   * Default: the manager's `user` option (arb passes the workers' `-u`), else the manager's
   * own user. Root only when named.
   */
  user?: string | number;
  /**
   * Group (name or gid). Default: the primary group of `user` when the companion names a
   * user; else the manager's `group` option (the workers' `-g`), else the primary group of
   * the default user.
   */
  group?: string | number;
}

/** One entry of `workers`. Exactly one of `target` and `command`. */
export interface CompanionSpec extends CompanionOptions {
  name: string;
  /** `module:export` (or `module` for the default export), run in a Node process. */
  target?: string;
  /** argv array of any program; `command[0]` is looked up on PATH. */
  command?: string[];
  /**
   * Run N copies named `name.1`..`name.N` (supervisord's numprocs), each supervised on its
   * own, with `ARB_PROCESS_NUM` (1..N) in its env. Commands may use the group name.
   */
  numprocs?: number;
  /**
   * Companions (names as configured: a numprocs group means all its copies) that must be
   * RUNNING before this one starts; a graceful stop stops this one before them.
   */
  dependsOn?: string[];
}

/** The `companions` object of an arb config. */
export interface CompanionsInput {
  /** Control socket path (mode 0600). Default: none (no control socket). */
  socket?: string;
  defaults?: CompanionOptions;
  /** First backoff step in seconds. Default 5. */
  restartDelay?: number;
  /** Backoff cap in seconds. Default 60. */
  maxRestartDelay?: number;
  /** A run at least this long (seconds) resets the backoff. Default 60. */
  backoffResetAfter?: number;
  /** Seconds the arbiter gives the manager at shutdown. Default derived. */
  managerStopTimeout?: number | null;
  /** Added to the slowest stopTimeout when deriving managerStopTimeout. Default 10. */
  managerShutdownBuffer?: number;
  workers?: CompanionSpec[];
  /**
   * A foreman/Heroku Procfile (relative to the base dir): each `name: command` line becomes
   * a command companion running `sh -c command` in the Procfile's directory, with the
   * variables of the `.env` beside it. `web` lines are ignored (arb serves the web).
   */
  procfile?: string;
}

/** A validated, fully resolved companion. Every field takes part in `configHash`. */
export interface CompanionConfig {
  readonly name: string;
  /** The name as configured: the numprocs group of a copy, else `name`. */
  readonly program: string;
  /** 1..N for a copy of a numprocs group, else null. */
  readonly processNum: number | null;
  /** Names (copies, for a numprocs group) that must be RUNNING before this one starts. */
  readonly dependsOn: readonly string[];
  readonly kind: 'target' | 'command';
  /** `module:export` with a path-like module made absolute; null for commands. */
  readonly target: string | null;
  readonly command: readonly string[] | null;
  /** Absolute. */
  readonly cwd: string;
  /** defaults.env merged with the companion's env (the inherited env is added at spawn). */
  readonly env: Readonly<Record<string, string>>;
  readonly stopSignal: NodeJS.Signals;
  readonly stopTimeout: number;
  readonly reloadTimeout: number;
  readonly startSecs: number;
  /** `inherit` or an absolute path. */
  readonly stdout: string;
  /** `inherit`, `stdout` or an absolute path. */
  readonly stderr: string;
  readonly autorestart: Autorestart;
  readonly exitCodes: readonly number[];
  readonly startRetries: number | null;
  readonly restartDelay: number;
  readonly maxRestartDelay: number;
  readonly backoffResetAfter: number;
  /** MB of RSS above which the process is restarted; null: no limit. */
  readonly maxMemory: number | null;
  /** uid to switch to; null: the manager's own. */
  readonly uid: number | null;
  /** gid to switch to (with the user's groups); null: the manager's own. */
  readonly gid: number | null;
}

/** Everything the manager needs from a companions object. */
export interface CompanionsSettings {
  /** Absolute socket path, or null. */
  readonly socket: string | null;
  readonly configs: readonly CompanionConfig[];
  readonly managerStopTimeout: number;
  /** Lines worth logging once the config is applied (e.g. an ignored Procfile `web`). */
  readonly notices: readonly string[];
}

export interface BuildOptions {
  /** Base for relative `cwd` and `socket`. Default `process.cwd()`. */
  baseDir?: string;
  /** Default user of every companion (arb: the workers' `-u`). Default: the manager's own. */
  user?: string | number;
  /** Default group (arb: the workers' `-g`). Default: the primary group of `user`. */
  group?: string | number;
  /**
   * `stopTimeout` of a companion that sets none (nor `defaults.stopTimeout`). Default 60;
   * arb passes the workers' `gracefulTimeout`, so one stop budget covers the whole tree.
   */
  stopTimeout?: number;
}

export const DEFAULTS = {
  stopSignal: 'SIGTERM' as NodeJS.Signals,
  stopTimeout: 60,
  reloadTimeout: 60,
  startSecs: 1,
  stdout: 'inherit',
  stderr: 'inherit',
  autorestart: 'always' as Autorestart,
  exitCodes: [0] as readonly number[],
  startRetries: null as number | null,
  restartDelay: 5,
  maxRestartDelay: 60,
  backoffResetAfter: 60,
  managerShutdownBuffer: 10,
} as const;

/** Names are used on the command line and in `ps`; `all` addresses every companion. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/;
const RESERVED_NAMES = new Set(['all']);

/** NaN and ±Infinity are refused like any other non-number (not as a failed bound). */
const finiteNumber = (message: string) =>
  v.custom<number>((x) => typeof x === 'number' && Number.isFinite(x), message);
const seconds = v.pipe(
  finiteNumber('must be a number of seconds'),
  v.minValue(0, 'must not be negative'),
);
const nonEmptyString = v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'));

/**
 * A plain object whose own keys are strings and whose values pass `value`. By hand: valibot's
 * record accepts arrays and skips the keys `constructor` and `prototype` (and symbols).
 */
function recordOf(value: v.GenericSchema, message: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isRecord, message),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const obj = dataset.value as Record<PropertyKey, unknown>;
      for (const key of Reflect.ownKeys(obj)) {
        if (key === '__proto__' || !Object.prototype.propertyIsEnumerable.call(obj, key)) continue;
        // 'unknown': the key may be a symbol.
        const at: v.UnknownPathItem = {
          type: 'unknown',
          origin: 'value',
          input: obj,
          key,
          value: obj[key],
        };
        if (typeof key !== 'string') {
          addIssue({ message: 'Invalid key in record', input: key, path: [at] });
          continue;
        }
        for (const issue of v.safeParse(value, obj[key]).issues ?? []) {
          addIssue({
            message: issue.message,
            input: issue.input,
            path: [at, ...(issue.path ?? [])],
          });
        }
      }
    }),
  );
}

const EXIT_CODE = 'must be exit codes (integers 0-255)';

function idSchema(kind: string) {
  const message = `must be a ${kind} name or a non-negative integer id`;
  return v.union(
    [nonEmptyString, v.pipe(finiteNumber(message), v.integer(message), v.minValue(0, message))],
    message,
  );
}

const optionSchemas = {
  cwd: nonEmptyString,
  env: recordOf(v.string('values must be strings'), 'must be an object of strings'),
  stopSignal: v.string('must be a signal name such as "SIGTERM"'),
  stopTimeout: seconds,
  reloadTimeout: seconds,
  startSecs: seconds,
  stdout: nonEmptyString,
  stderr: nonEmptyString,
  autorestart: v.picklist(
    ['always', 'unexpected', 'never'],
    'must be "always", "unexpected" or "never"',
  ),
  exitCodes: v.array(
    v.pipe(
      finiteNumber(EXIT_CODE),
      v.integer(EXIT_CODE),
      v.minValue(0, EXIT_CODE),
      v.maxValue(255, EXIT_CODE),
    ),
    'must be an array of exit codes',
  ),
  startRetries: v.nullable(
    v.pipe(
      finiteNumber('must be a non-negative integer or null'),
      v.integer('must be an integer'),
      v.check((n: number) => Number.isSafeInteger(n), 'must be an integer'),
      v.minValue(0, 'must not be negative'),
    ),
  ),
  maxMemory: v.nullable(
    v.pipe(finiteNumber('must be a number of MB or null'), v.gtValue(0, 'must be > 0')),
  ),
  user: idSchema('user'),
  group: idSchema('group'),
} satisfies Record<keyof CompanionOptions, v.GenericSchema>;

const specSchemas = {
  ...optionSchemas,
  numprocs: v.pipe(
    finiteNumber('must be a whole number from 1 to 1000'),
    v.integer('must be a whole number from 1 to 1000'),
    v.minValue(1, 'must be a whole number from 1 to 1000'),
    v.maxValue(1000, 'must be a whole number from 1 to 1000'),
  ),
  dependsOn: v.array(nonEmptyString, 'must be an array of companion names'),
  name: nonEmptyString,
  target: nonEmptyString,
  command: v.pipe(
    v.array(nonEmptyString, 'must be an argv array of strings'),
    v.minLength(1, 'must not be empty'),
  ),
};

const topSchemas = {
  socket: nonEmptyString,
  defaults: recordOf(v.unknown(), 'must be an object'),
  restartDelay: seconds,
  maxRestartDelay: seconds,
  backoffResetAfter: seconds,
  managerStopTimeout: v.nullable(seconds),
  managerShutdownBuffer: seconds,
  workers: v.array(v.unknown(), 'must be an array of companions'),
  procfile: nonEmptyString,
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object literal or `Object.create(null)`; not an array, a Map or another class instance. */
function isRecord(v: unknown): v is Record<string, unknown> {
  if (!isPlainObject(v)) return false;
  const ctor = v.constructor;
  if (ctor === undefined || typeof ctor !== 'function') return true;
  const proto: unknown = ctor.prototype;
  return isPlainObject(proto) && Object.hasOwn(proto, 'isPrototypeOf');
}

function describe(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    if (s === undefined) return String(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}

function fail(companion: string | null, key: string | null, value: unknown, why: string): never {
  const who = companion === null ? 'companions' : `companion ${companion}`;
  const what = key === null ? '' : ` key "${key}"`;
  throw new CompanionConfigError(
    `${who}:${what} ${why} (got ${describe(value)})`,
    companion,
    key,
    value,
  );
}

/** Validate the keys of `obj` present in `schemas`; refuse unknown keys. */
function checkKeys(
  companion: string | null,
  prefix: string,
  obj: Record<string, unknown>,
  schemas: Record<string, v.GenericSchema>,
): void {
  const unknown = Object.keys(obj).filter((k) => !Object.hasOwn(schemas, k));
  if (unknown.length > 0) {
    const k = unknown.sort()[0]!;
    fail(
      companion,
      prefix + k,
      obj[k],
      `unknown key (allowed: ${Object.keys(schemas).join(', ')})`,
    );
  }
  for (const [key, schema] of Object.entries(schemas)) {
    if (!Object.hasOwn(obj, key) || obj[key] === undefined) continue;
    const r = v.safeParse(schema, obj[key]);
    if (!r.success) {
      const issue = r.issues[0];
      const sub = issue?.path?.length ? ` at ${issue.path.map((p) => p.key).join('.')}` : '';
      fail(companion, prefix + key, obj[key], `${issue?.message ?? 'invalid'}${sub}`);
    }
  }
}

function checkStopSignal(companion: string | null, key: string, value: string): NodeJS.Signals {
  if (!isSignalName(value)) fail(companion, key, value, 'unknown signal name');
  if (FORBIDDEN_STOP_SIGNALS.has(value)) {
    fail(companion, key, value, 'cannot be used as a stop signal');
  }
  return value;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** True for module specifiers that name a file (relative or absolute), not a package. */
function isPathLike(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec === '.';
}

function resolveOutput(
  companion: string,
  key: 'stdout' | 'stderr',
  value: string,
  cwd: string,
): string {
  if (value === 'inherit') return value;
  if (value === 'stdout') {
    if (key === 'stderr') return value;
    fail(companion, key, value, '"stdout" is only valid for stderr');
  }
  const abs = resolve(cwd, value);
  if (isDirectory(abs)) fail(companion, key, value, 'is a directory');
  if (!isDirectory(dirname(abs))) {
    fail(companion, key, value, `directory ${dirname(abs)} does not exist`);
  }
  return abs;
}

/**
 * Validate a `companions` object and resolve every companion. Throws
 * `CompanionConfigError` naming the companion and the key on the first problem found.
 */
export function parseCompanions(input: unknown, opts: BuildOptions = {}): CompanionsSettings {
  const baseDir = resolve(opts.baseDir ?? process.cwd());
  if (input === undefined || input === null) input = {};
  if (!isPlainObject(input)) fail(null, null, input, 'must be an object');
  // Accept `{ companions: {...} }` as well, the shape of a whole arb config file.
  const top = isPlainObject(input.companions) && !('workers' in input) ? input.companions : input;
  checkKeys(null, '', top, topSchemas);
  const t = top as CompanionsInput;
  const defaults = (t.defaults ?? {}) as Record<string, unknown>;
  checkKeys(null, 'defaults.', defaults, optionSchemas);
  const d = defaults as CompanionOptions;
  if (d.stopSignal !== undefined) checkStopSignal(null, 'defaults.stopSignal', d.stopSignal);
  if (d.cwd !== undefined && !isDirectory(resolve(baseDir, d.cwd))) {
    fail(null, 'defaults.cwd', d.cwd, 'directory does not exist');
  }

  const restartDelay = t.restartDelay ?? DEFAULTS.restartDelay;
  const maxRestartDelay = t.maxRestartDelay ?? DEFAULTS.maxRestartDelay;
  const backoffResetAfter = t.backoffResetAfter ?? DEFAULTS.backoffResetAfter;

  /** Where each configured name comes from, for duplicate errors naming both sources. */
  const sourceOf = new Map<string, string>();
  const programs: Program[] = [];
  const notices: string[] = [];
  const workers = (t.workers ?? []) as unknown[];
  const sources: { raw: unknown; source: string }[] = workers.map((raw, index) => ({
    raw,
    source: `companions.workers[${index}]`,
  }));
  if (t.procfile !== undefined) sources.push(...procfileSpecs(t.procfile, baseDir, notices));
  sources.forEach(({ raw, source }, index) => {
    const label =
      isPlainObject(raw) && typeof raw.name === 'string' && raw.name !== ''
        ? raw.name
        : `#${index}`;
    if (!isPlainObject(raw)) fail(label, null, raw, 'must be an object');
    if (raw.name === undefined) fail(label, 'name', raw.name, 'is required');
    checkKeys(label, '', raw, specSchemas);
    const s = raw as unknown as CompanionSpec;
    if (!NAME_RE.test(s.name)) {
      fail(label, 'name', s.name, 'must be letters, digits, "_", ".", "@" or "-"');
    }
    if (RESERVED_NAMES.has(s.name)) fail(label, 'name', s.name, 'is reserved');
    const first = sourceOf.get(s.name);
    if (first !== undefined) {
      fail(label, 'name', s.name, `duplicate companion name (${first} and ${source})`);
    }
    sourceOf.set(s.name, source);
    const hasTarget = s.target !== undefined;
    const hasCommand = s.command !== undefined;
    if (hasTarget === hasCommand) {
      fail(
        label,
        hasTarget ? 'target' : null,
        hasTarget ? s.target : raw,
        'needs exactly one of "target" and "command"',
      );
    }

    const cwdRaw = s.cwd ?? d.cwd;
    const cwd = cwdRaw === undefined ? baseDir : resolve(baseDir, cwdRaw);
    if (!isDirectory(cwd)) fail(label, 'cwd', cwdRaw, `directory ${cwd} does not exist`);

    let target: string | null = null;
    if (hasTarget) {
      const { module, exportName } = splitTarget(s.target!);
      if (module === '' || exportName === '') {
        fail(label, 'target', s.target, 'must be "module:export"');
      }
      if (isPathLike(module)) {
        const abs = resolve(cwd, module);
        if (!exists(abs)) fail(label, 'target', s.target, `module ${abs} does not exist`);
        target = `${abs}:${exportName}`;
      } else {
        target = `${module}:${exportName}`;
      }
    }
    if (hasCommand) {
      const exe = s.command![0]!;
      if (exe.includes('/') && !exists(resolve(cwd, exe))) {
        fail(label, 'command', s.command, `program ${resolve(cwd, exe)} does not exist`);
      }
    }

    const { uid, gid } = resolveIds(label, s.user ?? d.user, s.group ?? d.group, opts);

    const stopSignal =
      s.stopSignal !== undefined
        ? checkStopSignal(label, 'stopSignal', s.stopSignal)
        : ((d.stopSignal as NodeJS.Signals | undefined) ?? DEFAULTS.stopSignal);
    const stdout = resolveOutput(label, 'stdout', s.stdout ?? d.stdout ?? DEFAULTS.stdout, cwd);
    const stderr = resolveOutput(label, 'stderr', s.stderr ?? d.stderr ?? DEFAULTS.stderr, cwd);

    programs.push({
      label,
      source,
      numprocs: s.numprocs ?? null,
      dependsOn: s.dependsOn ?? [],
      name: s.name,
      program: s.name,
      processNum: null,
      kind: hasTarget ? 'target' : 'command',
      target,
      command: hasCommand ? [...s.command!] : null,
      cwd,
      env: { ...(d.env ?? {}), ...(s.env ?? {}) },
      stopSignal,
      stopTimeout: s.stopTimeout ?? d.stopTimeout ?? opts.stopTimeout ?? DEFAULTS.stopTimeout,
      reloadTimeout: s.reloadTimeout ?? d.reloadTimeout ?? DEFAULTS.reloadTimeout,
      startSecs: s.startSecs ?? d.startSecs ?? DEFAULTS.startSecs,
      stdout,
      stderr,
      autorestart: s.autorestart ?? d.autorestart ?? DEFAULTS.autorestart,
      exitCodes: [...(s.exitCodes ?? d.exitCodes ?? DEFAULTS.exitCodes)],
      startRetries:
        s.startRetries !== undefined
          ? s.startRetries
          : d.startRetries !== undefined
            ? d.startRetries
            : DEFAULTS.startRetries,
      restartDelay,
      maxRestartDelay,
      backoffResetAfter,
      maxMemory: s.maxMemory !== undefined ? s.maxMemory : (d.maxMemory ?? null),
      uid,
      gid,
    });
  });

  const configs = expand(programs, sourceOf);
  return {
    socket: t.socket === undefined ? null : resolve(baseDir, t.socket),
    configs,
    managerStopTimeout: deriveStopTimeout(t, configs),
    notices,
  };
}

/** A configured companion before its numprocs copies are made. */
interface Program extends Omit<CompanionConfig, 'dependsOn'> {
  label: string;
  source: string;
  numprocs: number | null;
  /** As configured: names of programs. */
  dependsOn: readonly string[];
}

/**
 * Check `dependsOn` (known names, no cycle) and make the numprocs copies, each depending on
 * every copy of what its program depends on.
 */
function expand(programs: Program[], sourceOf: Map<string, string>): CompanionConfig[] {
  const byName = new Map(programs.map((p) => [p.name, p]));
  for (const p of programs) {
    const unknown = p.dependsOn.find((d) => !byName.has(d));
    if (unknown !== undefined) {
      fail(p.label, 'dependsOn', p.dependsOn, `unknown companion ${JSON.stringify(unknown)}`);
    }
  }
  const cycle = findCycle(new Map(programs.map((p) => [p.name, p.dependsOn])));
  if (cycle) {
    throw new CompanionConfigError(
      `companions: dependsOn cycle: ${cycle.join(' -> ')}`,
      cycle[0]!,
      'dependsOn',
      cycle,
    );
  }
  const copiesOf = (p: Program): string[] =>
    p.numprocs === null
      ? [p.name]
      : Array.from({ length: p.numprocs }, (_, i) => `${p.name}.${i + 1}`);
  const configs: CompanionConfig[] = [];
  for (const p of programs) {
    const { label, source, numprocs, dependsOn, ...base } = p;
    const deps = dependsOn.flatMap((d) => copiesOf(byName.get(d)!));
    if (numprocs === null) {
      configs.push({ ...base, dependsOn: deps });
      continue;
    }
    copiesOf(p).forEach((name, i) => {
      const first = sourceOf.get(name);
      if (first !== undefined) {
        fail(label, 'numprocs', numprocs, `copy ${name} has the name of ${first}`);
      }
      sourceOf.set(name, `${source} copy ${i + 1}`);
      configs.push({
        ...base,
        name,
        processNum: i + 1,
        dependsOn: deps,
        env: { ...base.env, ARB_PROCESS_NUM: String(i + 1) },
      });
    });
  }
  return configs;
}

/**
 * The Procfile's entries as companion specs with their sources (`Procfile:3`); `web` is
 * skipped with a notice. Errors name the file and line.
 */
function procfileSpecs(
  procfile: string,
  baseDir: string,
  notices: string[],
): { raw: unknown; source: string }[] {
  const abs = resolve(baseDir, procfile);
  const rel = relative(baseDir, abs);
  const shown = rel === '' || rel.startsWith('..') || isAbsolute(rel) ? abs : rel;
  let loaded: ReturnType<typeof loadProcfile>;
  try {
    loaded = loadProcfile(abs, shown);
  } catch (err) {
    if (err instanceof ProcfileError) {
      throw new CompanionConfigError(err.message, null, 'procfile', procfile);
    }
    throw err;
  }
  const out: { raw: unknown; source: string }[] = [];
  for (const e of loaded.entries) {
    const source = `${shown}:${e.line}`;
    if (e.name === 'web') {
      notices.push(`${source}: web entry ignored: arb serves the web (give arb the app)`);
      continue;
    }
    out.push({
      raw: {
        name: e.name,
        command: ['sh', '-c', e.command],
        cwd: loaded.dir,
        ...(Object.keys(loaded.env).length > 0 ? { env: loaded.env } : {}),
      },
      source,
    });
  }
  return out;
}

/**
 * The ids a companion runs as. A companion (or `defaults`) naming a user gets that user's
 * primary group unless it names a group too; one naming nothing gets the manager's
 * defaults (arb's -u/-g, -g defaulting to the primary group of -u).
 */
function resolveIds(
  companion: string,
  user: string | number | undefined,
  group: string | number | undefined,
  opts: BuildOptions,
): { uid: number | null; gid: number | null } {
  const ownUser = user !== undefined;
  const userSpec = user ?? opts.user;
  const groupSpec = group ?? (ownUser ? undefined : opts.group);
  const key = ownUser ? 'user' : 'defaults (manager user)';
  let uid: number | null = null;
  let primary: number | null = null;
  if (userSpec !== undefined) {
    const u = lookupUser(userSpec);
    if (!u) fail(companion, key, userSpec, 'no such user');
    uid = u.uid;
    primary = u.gid;
  }
  let gid: number | null = null;
  if (groupSpec !== undefined) {
    const g = lookupGroup(groupSpec);
    if (g === undefined)
      fail(
        companion,
        group !== undefined ? 'group' : 'defaults (manager group)',
        groupSpec,
        'no such group',
      );
    gid = g;
  } else if (uid !== null) {
    // Never keep the manager's group (root's, typically) under another user.
    if (primary === null) fail(companion, key, userSpec, 'has no passwd entry: name a group too');
    gid = primary;
  }
  return { uid, gid };
}

function deriveStopTimeout(t: CompanionsInput, configs: readonly CompanionConfig[]): number {
  if (t.managerStopTimeout !== undefined && t.managerStopTimeout !== null) {
    return t.managerStopTimeout;
  }
  if (configs.length === 0) return 0;
  // Dependents stop before their dependencies: the longest chain, not the slowest one.
  const byName = new Map(configs.map((c) => [c.name, c]));
  const slowest = stopChainSeconds(
    new Map(configs.map((c) => [c.name, c.dependsOn])),
    (name) => byName.get(name)!.stopTimeout,
  );
  return slowest + (t.managerShutdownBuffer ?? DEFAULTS.managerShutdownBuffer);
}

/** Validate and resolve the companions of a `companions` object, in config order. */
export function buildCompanionConfigs(input: unknown, opts: BuildOptions = {}): CompanionConfig[] {
  return [...parseCompanions(input, opts).configs];
}

/**
 * Seconds the arbiter should allow the manager at shutdown: `managerStopTimeout` when set
 * (0 counts), else the slowest `stopTimeout` plus `managerShutdownBuffer`, else 0.
 */
export function managerStopTimeout(input: unknown, opts: BuildOptions = {}): number {
  return parseCompanions(input, opts).managerStopTimeout;
}
