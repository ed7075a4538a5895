import { aboveMaxWorkers } from '@arb/core';
import { formatAddress, parseAddress } from '@arb/sock';
import { CommanderError } from 'commander';
import * as v from 'valibot';
import { findConfigFile } from './config-file.js';
import { loadConfigLean } from './config-load.js';
import { defaultsFrom } from './defaults.js';
import { ConfigError } from './errors.js';
import { attributeOf, buildProgram, OPTIONS } from './options.js';
import {
  configSchema,
  describeIssues,
  HOOK_NAMES,
  type HookName,
  type ParsedConfig,
} from './schema.js';
import { ShellSplitError, shellSplit } from './shell-split.js';

export type Action = 'run' | 'check' | 'print';

/** Everything `arb` runs with, after defaults < config file < ARB_CMD_ARGS < command line. */
export interface ResolvedConfig extends Omit<ParsedConfig, HookName | 'bind' | 'app'> {
  app: string;
  bind: string[];
  workers: number;
  timeout: number;
  gracefulTimeout: number;
  shutdownDelay: number;
  keepAlive: number;
  backlog: number;
  maxRequests: number;
  maxRequestsJitter: number;
  reusePort: boolean;
  subreaper: boolean;
  umask: number;
  env: Record<string, string>;
  preload: boolean;
  logLevel: NonNullable<ParsedConfig['logLevel']>;
  logFormat: NonNullable<ParsedConfig['logFormat']>;
  errorLog: string;
  /** The config file used, absolute; workers re-import it for their hooks. */
  configFile?: string;
  hooks: Partial<Record<HookName, (...args: never[]) => unknown>>;
}

export interface Invocation {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  version: string;
}

/** Thrown for --help and --version: print nothing more, exit 0. */
export class EarlyExit extends Error {
  constructor(readonly exitCode: number) {
    super('early exit');
  }
}

interface CliLayer {
  values: Record<string, unknown>;
  app?: string;
  configFile?: string;
  check: boolean;
  print: boolean;
}

/** Parses the command line and config, validates every source, merges them. */
export async function resolveConfig(
  inv: Invocation,
): Promise<{ action: Action; config: ResolvedConfig }> {
  const cli = parseFlags([...inv.argv], 'command line', inv.version);
  const fromEnv = inv.env.ARB_CMD_ARGS
    ? parseFlags(splitArgs(inv.env.ARB_CMD_ARGS), 'ARB_CMD_ARGS', inv.version)
    : undefined;
  const defaults = defaultsFrom(inv.env);

  const configFile = findConfigFile(cli.configFile ?? fromEnv?.configFile, inv.cwd);
  const fileValues = configFile ? validate(await loadConfigLean(configFile), configFile) : {};

  const layers = [defaults, fileValues, fromEnv?.values ?? {}, cli.values];
  const merged: Record<string, unknown> = {};
  for (const layer of layers) mergeInto(merged, layer);
  const app = cli.app ?? fromEnv?.app ?? (merged.app as string | undefined);
  if (!app) {
    throw new ConfigError('command line', [
      'no app given: arb [options] <path/to/module[:export]> (or set app in the config file)',
    ]);
  }
  const workers = merged.workers as number;
  const maxWorkers = merged.maxWorkers as number;
  if (workers > maxWorkers) {
    throw new ConfigError('config', [`workers: ${aboveMaxWorkers(workers, maxWorkers)}`]);
  }
  const twice = repeatedBind((merged.bind as string[] | undefined) ?? []);
  if (twice) {
    // Both copies would reach the workers as two listeners on one socket: EADDRINUSE.
    throw new ConfigError('config', [`bind: ${twice} is given twice; list each address once`]);
  }
  if ((merged.certfile === undefined) !== (merged.keyfile === undefined)) {
    throw new ConfigError('config', ['certfile and keyfile go together: set both or neither']);
  }

  const hooks: ResolvedConfig['hooks'] = {};
  for (const h of HOOK_NAMES) {
    if (typeof merged[h] === 'function') hooks[h] = merged[h] as (...args: never[]) => unknown;
    delete merged[h];
  }
  const config = { ...merged, app, configFile, hooks } as ResolvedConfig;
  return { action: cli.print ? 'print' : cli.check ? 'check' : 'run', config };
}

/** Split as gunicorn splits `GUNICORN_CMD_ARGS` (shlex): quotes and backslashes, no expansion. */
function splitArgs(text: string): string[] {
  try {
    return shellSplit(text);
  } catch (err) {
    if (err instanceof ShellSplitError) throw new ConfigError('ARB_CMD_ARGS', [err.message]);
    throw err;
  }
}

const FLAG_OF_KEY = new Map(
  OPTIONS.filter((o) => o.key).map((o) => [o.key!, o.flags.split(/,\s*/).at(-1)!.split(' ')[0]!]),
);

/**
 * One line for a commander error, as `arb` prints it: without commander's `error: ` and
 * with its suggestion on the same line (`unknown option '--wrokers' (did you mean --workers?)`).
 */
function commanderMessage(err: CommanderError, written = ''): string {
  const [first = err.message, second = ''] = (written || err.message).trim().split('\n');
  const hint = /^\(Did you mean (.+)\?\)$/.exec(second.trim());
  return first.replace(/^error: /, '') + (hint ? ` (did you mean ${hint[1]}?)` : '');
}

function parseFlags(args: string[], source: string, version: string): CliLayer {
  const program = buildProgram(version).exitOverride();
  let outErr = '';
  program.configureOutput({ writeErr: (s) => (outErr += s) });
  try {
    program.parse(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')
        throw new EarlyExit(0);
      throw new ConfigError(source, [commanderMessage(err, outErr)]);
    }
    throw err;
  }
  const opts = program.opts();
  const values: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const v = opts[attributeOf(spec)];
    if (v !== undefined && spec.key) setPath(values, spec.key, v);
  }
  const checked = validate(values, source, FLAG_OF_KEY);
  return {
    values: checked,
    app: program.args[0],
    configFile: opts.config as string | undefined,
    check: Boolean(opts.checkConfig),
    print: Boolean(opts.printConfig),
  };
}

/** Validates one source; problems name the key (or the flag) and the value. */
function validate(
  values: Record<string, unknown>,
  source: string,
  flags?: Map<string, string>,
): Record<string, unknown> {
  const result = v.safeParse(configSchema, values);
  if (result.success) return stripUndefined(result.output as Record<string, unknown>);
  const lines = describeIssues(result.issues, values).map((line) => {
    const colon = line.indexOf(':');
    if (!flags || colon < 0) return line;
    const key = line.slice(0, colon);
    const flag = flags.get(key) ?? flags.get(key.split('.')[0]!);
    return flag ? `${flag}${line.slice(key.length)}` : line;
  });
  throw new ConfigError(source, lines);
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    node[p] ??= {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

/** Later layers win; `env` and the nested sections merge key by key. */
function mergeInto(target: Record<string, unknown>, layer: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(layer)) {
    const cur = target[k];
    if (
      isPlainObject(v) &&
      isPlainObject(cur) &&
      (k === 'env' || k === 'ctl' || k === 'metrics' || k === 'health' || k === 'companions')
    ) {
      target[k] = { ...cur, ...v };
    } else if (k === 'devReload' && v === true && isPlainObject(cur)) {
      // `--reload` over `devReload: { ignore }`: on, with the file's settings
    } else if (k === 'reload' && isPlainObject(v) && isPlainObject(cur)) {
      target[k] = { ...cur, ...v, canary: mergeCanary(cur.canary, v.canary) };
    } else target[k] = v;
  }
}

/**
 * `reload.canary` of a later layer over an earlier one: numbers merge key by key; a
 * boolean replaces; numbers over a boolean turn the canary on (a flag over `canary: false`).
 */
function mergeCanary(cur: unknown, next: unknown): unknown {
  if (next === undefined) return cur;
  if (isPlainObject(next) && isPlainObject(cur)) return { ...cur, ...next };
  return next;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    out[k] = k === 'bind' && typeof v === 'string' ? [v] : v;
  }
  return out;
}

/**
 * The first address listed twice, compared in canonical form (`[0:0::1]:80` = `[::1]:80`).
 * Port 0 is not a duplicate: each one gets a port of its own.
 */
function repeatedBind(binds: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const b of binds) {
    let key = b;
    try {
      const a = parseAddress(b);
      if (a.kind === 'tcp' && a.port === 0) continue;
      key = formatAddress(
        a.kind === 'tcp' && a.family === 6
          ? { ...a, host: new URL(`http://[${a.host}]/`).hostname.slice(1, -1) }
          : a,
      );
    } catch {
      // a bad address is reported where it is bound, with its own message
    }
    if (seen.has(key)) return b;
    seen.add(key);
  }
  return undefined;
}
