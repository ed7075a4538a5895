import { type ArbiterHooks, HOOK_NAMES, type HookName } from '@arb/core';
import { parseAddress } from '@arb/sock';
import * as v from 'valibot';

export { HOOK_NAMES, type HookName };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

// Every schema carries its own message: describeIssues prints them as they are. valibot is
// loaded instead of a larger validator to keep the master's RSS down (it loads in the master).

/** An object that is not an array (valibot's object schemas alone accept arrays). */
function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Also what `Object.create(null)` and object literals are; class instances are not. */
function isPlainObject(x: unknown): x is Record<PropertyKey, unknown> {
  if (!isObject(x)) return false;
  const ctor = x.constructor;
  if (ctor === undefined || typeof ctor !== 'function') return true;
  const proto: unknown = ctor.prototype;
  return isObject(proto) && Object.hasOwn(proto, 'isPrototypeOf');
}

function objectOf<S extends v.GenericSchema>(schema: S) {
  return v.pipe(v.custom<v.InferInput<S>>(isObject, 'must be an object'), schema);
}

/** NaN and ±Infinity are not numbers here: a config value must be one that JSON can write. */
const number = v.custom<number>(
  (x) => typeof x === 'number' && Number.isFinite(x),
  'must be a number',
);
const seconds = v.pipe(number, v.minValue(0, 'must be >= 0'));
/** An integer is a type of its own: a fraction is not checked against the minimum. */
const integer = v.custom<number>(
  (x) => typeof x === 'number' && Number.isInteger(x),
  (issue) =>
    typeof issue.input === 'number' && Number.isFinite(issue.input)
      ? 'must be an integer'
      : 'must be a number',
);
const count = (min: number) =>
  v.pipe(
    integer,
    v.check(
      (n) => n <= Number.MAX_SAFE_INTEGER,
      `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`,
    ),
    v.check((n) => n >= Number.MIN_SAFE_INTEGER, `must be >= ${Number.MIN_SAFE_INTEGER}`),
    v.minValue(min, `must be >= ${min}`),
  );

/**
 * At least one element or character. Like the validator used before, it also looks at the
 * length of a value of the wrong type (an array where a string belongs, a function), so an
 * error names the same problems as it did.
 */
const nonEmpty = <T extends string | unknown[]>() =>
  v.rawCheck<T>(({ dataset, addIssue }) => {
    const x = dataset.value as { length?: unknown } | null | undefined;
    if (x === null || x === undefined || x.length === undefined || (x.length as number) >= 1)
      return;
    addIssue({
      message: typeof x === 'string' || Array.isArray(x) ? 'must not be empty' : 'must be >= 1',
    });
  });
const string = v.string('must be a string');
const text = v.pipe(string, nonEmpty<string>());
const address = v.pipe(
  text,
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    try {
      parseAddress(dataset.value);
    } catch (err) {
      addIssue({ message: (err as Error).message });
    }
  }),
);

/** `0o22`, `022`, `0022` or a number; file-mode bits only. */
export const umask = v.pipe(
  v.union([number, string]),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    const n = typeof value === 'number' ? value : parseOctal(value);
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0o777) {
      addIssue({ message: 'must be an octal mode from 0 to 0o777' });
      return NEVER;
    }
    return n;
  }),
);

function parseOctal(s: string): number | undefined {
  const m = /^(?:0o|0)?([0-7]{1,4})$/i.exec(s.trim());
  return m ? Number.parseInt(m[1]!, 8) : undefined;
}

const ENV_NAME = /^[^=\0]+$/;

/**
 * `KEY: value` strings. Checked by hand because valibot's record skips the keys `constructor`
 * and `prototype` (and symbols), which would drop them from the environment without a word.
 * A bad name is reported as such and its value is not looked at.
 */
const env = v.pipe(
  v.custom<Record<string, string>>(isPlainObject, 'must be record'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const vars = dataset.value as Record<PropertyKey, unknown>;
    for (const key of Reflect.ownKeys(vars)) {
      if (key === '__proto__' || !Object.prototype.propertyIsEnumerable.call(vars, key)) continue;
      const value = vars[key];
      // 'unknown': the key may be a symbol.
      const at: v.UnknownPathItem = { type: 'unknown', origin: 'value', input: vars, key, value };
      if (typeof key !== 'string' || !ENV_NAME.test(key)) {
        addIssue({ message: 'Invalid key in record', input: key, path: [at] });
      } else if (typeof value !== 'string') {
        addIssue({ message: 'must be a string', input: value, path: [at] });
      }
    }
  }),
  // A copy, without a `__proto__` key (JSON.parse makes one an own property).
  v.transform((vars) =>
    Object.fromEntries(Object.entries(vars).filter(([k]) => k !== '__proto__')),
  ),
);

type CompanionsSection = { socket?: string; [key: string]: unknown };

/**
 * `socket` is checked here; the rest is @arb/companion's and passes through as it is. By hand:
 * valibot's looseObject would drop inherited keys and `constructor`/`prototype`, which
 * @arb/companion must see to refuse them as unknown.
 */
const companions = v.pipe(
  v.custom<CompanionsSection>(isObject, 'must be an object'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const section = dataset.value;
    const socket = section.socket;
    if (socket === undefined) return;
    const at: v.ObjectPathItem = {
      type: 'object',
      origin: 'value',
      input: section,
      key: 'socket',
      value: socket,
    };
    for (const issue of v.safeParse(text, socket).issues ?? []) {
      addIssue({ message: issue.message, input: socket, path: [at] });
    }
  }),
  v.transform((section) => {
    const copy: CompanionsSection = {};
    for (const k in section) if (k !== '__proto__') copy[k] = section[k];
    return copy;
  }),
);

const fn = v.custom<(...args: never[]) => unknown>(
  (x) => typeof x === 'function',
  'must be a function',
);

const hooks = Object.fromEntries(HOOK_NAMES.map((h) => [h, v.optional(fn)])) as Record<
  HookName,
  v.OptionalSchema<typeof fn, undefined>
>;

const ctlEntries = { socket: v.optional(text) };
const canaryEntries = {
  workers: v.optional(count(1)),
  seconds: v.optional(v.pipe(number, v.gtValue(0, 'must be > 0'))),
  maxErrorRate: v.optional(
    v.pipe(number, v.minValue(0, 'must be >= 0'), v.maxValue(1, 'must be <= 1')),
  ),
  maxP99Ratio: v.optional(v.pipe(number, v.minValue(1, 'must be >= 1'))),
};
/** `true`: the defaults; `false`: no canary; an object: some numbers, the rest defaults. */
const canary = v.union([
  v.boolean('must be true or false'),
  objectOf(v.strictObject(canaryEntries)),
]);
const reloadEntries = { canary: v.optional(canary) };
const devReloadEntries = {
  ignore: v.optional(v.array(text, 'must be a list')),
  debounce: v.optional(v.pipe(count(0), v.maxValue(60_000, 'must be <= 60000 (ms)'))),
};
/** `true`: watch with the defaults; an object: ignore globs and the debounce in ms. */
const devReload = v.union([
  v.boolean('must be true or false'),
  objectOf(v.strictObject(devReloadEntries)),
]);
const metricsEntries = { bind: v.optional(address) };
const healthEntries = { bind: v.optional(address) };

const configEntries = {
  app: v.optional(text),
  bind: v.optional(
    v.union([address, v.pipe(v.array(address, 'must be a list'), nonEmpty<string[]>())]),
  ),
  workers: v.optional(count(1)),
  maxWorkers: v.optional(count(1)),
  timeout: v.optional(seconds),
  gracefulTimeout: v.optional(seconds),
  shutdownDelay: v.optional(seconds),
  bootTimeout: v.optional(seconds),
  keepAlive: v.optional(seconds),
  backlog: v.optional(count(1)),
  bindRetries: v.optional(count(0)),
  maxRequests: v.optional(count(0)),
  maxRequestsJitter: v.optional(count(0)),
  maxMemory: v.optional(v.pipe(number, v.gtValue(0, 'must be a number of MB > 0'))),
  reusePort: v.optional(v.boolean('must be true or false')),
  subreaper: v.optional(v.boolean('must be true or false')),
  umask: v.optional(umask),
  user: v.optional(v.union([text, count(0)])),
  group: v.optional(v.union([text, count(0)])),
  pidfile: v.optional(text),
  procName: v.optional(text),
  env: v.optional(env),
  preload: v.optional(v.boolean('must be true or false')),
  chdir: v.optional(text),
  workerTmpDir: v.optional(text),
  logLevel: v.optional(
    v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.map((l) => JSON.stringify(l)).join(', ')}`),
  ),
  logFormat: v.optional(
    v.picklist(
      LOG_FORMATS,
      `must be one of ${LOG_FORMATS.map((f) => JSON.stringify(f)).join(', ')}`,
    ),
  ),
  errorLog: v.optional(text),
  accessLog: v.optional(text),
  accessLogFormat: v.optional(text),
  certfile: v.optional(text),
  keyfile: v.optional(text),
  // Validated in depth by @arb/companion (names, commands, signals, times).
  companions: v.optional(companions),
  ctl: v.optional(objectOf(v.strictObject(ctlEntries))),
  metrics: v.optional(objectOf(v.strictObject(metricsEntries))),
  health: v.optional(objectOf(v.strictObject(healthEntries))),
  reload: v.optional(objectOf(v.strictObject(reloadEntries))),
  devReload: v.optional(devReload),
  ...hooks,
};

/** The known keys of each strict object, by its path: all unknown keys are named, not the first. */
const STRICT_ENTRIES: Record<string, object> = {
  '': configEntries,
  ctl: ctlEntries,
  metrics: metricsEntries,
  health: healthEntries,
  reload: reloadEntries,
  'reload.canary': canaryEntries,
  devReload: devReloadEntries,
};

/**
 * The config file (and the command line, once mapped to keys). Every key optional here;
 * `app` is required after all sources are merged. Unknown keys are errors.
 */
export const configSchema = objectOf(v.strictObject(configEntries));

/** What a config file may contain: every setting, and the hooks with their real signatures. */
export type ArbConfig = Omit<v.InferInput<typeof configSchema>, HookName> & Partial<ArbiterHooks>;
/** A config after validation (bind as a list, umask as a number). */
export type ParsedConfig = v.InferOutput<typeof configSchema>;

/** Identity function that types an `arb.config.ts`. */
export function defineConfig(config: ArbConfig): ArbConfig {
  return config;
}

type Issue = v.InferIssue<typeof configSchema>;

/** One line per problem: `workers: must be an integer >= 1 (got -1)`. */
export function describeIssues(issues: readonly Issue[], input: unknown): string[] {
  return objectBranches(issues).map((issue) => {
    const path = (issue.path ?? []).map((p) => p.key as PropertyKey);
    if (isUnknownKey(issue)) {
      const at = path.slice(0, -1).map(String).join('.');
      const prefix = at ? `${at}.` : '';
      return unknownKeys(issue.path!.at(-1)!.input as object, STRICT_ENTRIES[at]!)
        .map((k) => `unknown key '${prefix}${k}'`)
        .join('; ');
    }
    const key = path.length ? path.map(String).join('.') : '(config)';
    return `${key}: ${friendly(issue)} (got ${show(valueAt(input, path))})`;
  });
}

/**
 * A union given an object (`reload.canary`: a boolean or an object) failed in its object
 * branch: its problems are those of the keys in it, each named on its own line.
 */
function objectBranches(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue) => {
    // the branch's issues have paths of their own, below the union's
    const inside = (issue.issues ?? [])
      .filter((i) => (i.path?.length ?? 0) > 0)
      .map((i) => ({ ...i, path: [...(issue.path ?? []), ...i.path!] }) as Issue);
    return issue.type === 'union' && isObject(issue.input) && inside.length > 0
      ? objectBranches(inside)
      : [issue];
  });
}

function isUnknownKey(issue: v.BaseIssue<unknown>): boolean {
  return issue.type === 'strict_object' && issue.expected === 'never';
}

/** valibot reports the first unknown key of an object; every one of them is named. */
function unknownKeys(object: object, entries: object): string[] {
  const keys: string[] = [];
  for (const k in object) if (!Object.hasOwn(entries, k)) keys.push(k);
  return keys;
}

function friendly(issue: v.BaseIssue<unknown>): string {
  if (issue.type === 'union' && issue.issues) {
    return issue.issues
      .map((i) => friendly(i))
      .filter((m, i, all) => all.indexOf(m) === i)
      .join(', or ');
  }
  return issue.message;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function show(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
