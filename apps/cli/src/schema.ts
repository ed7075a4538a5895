import { type ArbiterHooks, HOOK_NAMES, type HookName } from '@arb/core';
import { parseAddress } from '@arb/sock';
import { z } from 'zod';

export { HOOK_NAMES, type HookName };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const seconds = z.number().finite().nonnegative();
const count = (min: number) => z.number().int().min(min);
const text = z.string().min(1);
const address = text.superRefine((value, ctx) => {
  try {
    parseAddress(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** `0o22`, `022`, `0022` or a number; file-mode bits only. */
export const umask = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : parseOctal(v);
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0o777) {
    ctx.addIssue({ code: 'custom', message: 'must be an octal mode from 0 to 0o777' });
    return z.NEVER;
  }
  return n;
});

function parseOctal(s: string): number | undefined {
  const m = /^(?:0o|0)?([0-7]{1,4})$/i.exec(s.trim());
  return m ? Number.parseInt(m[1]!, 8) : undefined;
}

const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', {
  message: 'must be a function',
});

const hooks = Object.fromEntries(HOOK_NAMES.map((h) => [h, fn.optional()])) as Record<
  HookName,
  z.ZodOptional<typeof fn>
>;

/**
 * The config file (and the command line, once mapped to keys). Every key optional here;
 * `app` is required after all sources are merged. Unknown keys are errors.
 */
export const configSchema = z.strictObject({
  app: text.optional(),
  bind: z.union([address, z.array(address).min(1)]).optional(),
  workers: count(1).optional(),
  maxWorkers: count(1).optional(),
  timeout: seconds.optional(),
  gracefulTimeout: seconds.optional(),
  bootTimeout: seconds.optional(),
  keepAlive: seconds.optional(),
  backlog: count(1).optional(),
  maxRequests: count(0).optional(),
  maxRequestsJitter: count(0).optional(),
  reusePort: z.boolean().optional(),
  umask: umask.optional(),
  user: z.union([text, count(0)]).optional(),
  group: z.union([text, count(0)]).optional(),
  pidfile: text.optional(),
  procName: text.optional(),
  env: z
    .record(
      z.string().regex(/^[^=\0]+$/, 'a variable name must not be empty or hold "="'),
      z.string(),
    )
    .optional(),
  preload: z.boolean().optional(),
  chdir: text.optional(),
  workerTmpDir: text.optional(),
  logLevel: z.enum(LOG_LEVELS).optional(),
  errorLog: text.optional(),
  accessLog: text.optional(),
  accessLogFormat: text.optional(),
  certfile: text.optional(),
  keyfile: text.optional(),
  // Validated in depth by @arb/companion (names, commands, signals, times).
  companions: z.looseObject({ socket: text.optional() }).optional(),
  ctl: z.strictObject({ socket: text.optional() }).optional(),
  metrics: z.strictObject({ bind: address.optional() }).optional(),
  ...hooks,
});

/** What a config file may contain: every setting, and the hooks with their real signatures. */
export type ArbConfig = Omit<z.input<typeof configSchema>, HookName> & Partial<ArbiterHooks>;
/** A config after validation (bind as a list, umask as a number). */
export type ParsedConfig = z.output<typeof configSchema>;

/** Identity function that types an `arb.config.ts`. */
export function defineConfig(config: ArbConfig): ArbConfig {
  return config;
}

/** One line per problem: `workers: must be an integer >= 1 (got -1)`. */
export function describeIssues(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.map(String).join('.') : '(config)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length ? `${key}.` : '';
      return issue.keys.map((k) => `unknown key '${prefix}${k}'`).join('; ');
    }
    const value = valueAt(input, issue.path);
    return `${key}: ${friendly(issue)} (got ${show(value)})`;
  });
}

function friendly(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${article(issue.expected)}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array') return 'must not be empty';
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return issue.errors
        .flat()
        .map((e) => friendly(e))
        .filter((m, i, all) => all.indexOf(m) === i)
        .join(', or ');
    default:
      return issue.message;
  }
}

function article(t: string): string {
  switch (t) {
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    default:
      return t;
  }
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
