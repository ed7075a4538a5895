/*
 * `@arb/sock/log`: the one logger setup of every arb process (master, workers, companion
 * manager, companion wrappers). pino, written synchronously (a line logged just before
 * `process.exit` is not lost), JSON lines off a terminal and short readable lines on one,
 * through a destination that never throws: a log that cannot be written (disk full, EIO,
 * EACCES, a closed pipe) must not stop supervision or serving, so its lines are dropped,
 * counted and reported on stderr at most once a minute, and writing resumes by itself when
 * the destination recovers.
 */
import fs from 'node:fs';
import path from 'node:path';
import tty from 'node:tty';
import pino from 'pino';

export type Logger = pino.Logger;
/** `auto`: readable on a terminal, JSON lines elsewhere. */
export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

export interface LogSinkOptions {
  /** Which process writes (`master`, `worker`, `manager`, `companion`): on every line, with the pid. */
  proc: string;
  /** pino level name; gunicorn's `warning`/`critical` are accepted. Default `info`. */
  level?: string;
  /** `-` for the standard stream `stdFd`, else a file path (appended to, directories made). */
  dest?: string;
  /** The stream `-` means: 2 (stderr, the default) or 1 (stdout). */
  stdFd?: 1 | 2;
  /** `auto` (the default): readable on a terminal, JSON elsewhere. */
  format?: LogFormat;
  /** Extra fields on every line. */
  base?: Record<string, unknown>;
  /** The environment colours are decided from (`NO_COLOR`, `FORCE_COLOR`, `TERM`). */
  env?: NodeJS.ProcessEnv;
}

/** A line written on behalf of another process (a companion's output). */
export interface ForeignLine {
  /** Which process wrote it, and its pid: they replace the sink's own `proc`/`pid`. */
  proc: string;
  pid: number;
  /** More fields (`companion`, `stream`, ...), none of `level`, `time`, `msg`. */
  [field: string]: unknown;
}

/** A logger with its destination. */
export interface LogSink {
  readonly log: Logger;
  /** True when lines are written readable (for a person), false for JSON lines. */
  readonly pretty: boolean;
  /**
   * Writes `msg` as one info line of another process, whatever the level: its output is
   * its own business, not this logger's verbosity.
   */
  foreign(fields: ForeignLine, msg: string): void;
  /** Reopens the file (after rotation). Never throws: on failure the old file is kept. */
  reopen(): void;
  /** Lines dropped so far because the destination failed. */
  dropped(): number;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const ALIASES: Record<string, string> = { warning: 'warn', critical: 'fatal' };

/** pino level for a name (gunicorn's `warning`/`critical` accepted); unknown → `info`. */
export function normalizeLevel(level: string | undefined): string {
  const l = (level ?? 'info').toLowerCase();
  const mapped = ALIASES[l] ?? l;
  return LEVELS.has(mapped) ? mapped : 'info';
}

/** How often a failing destination is reported on stderr. */
const WARN_EVERY_MS = 60_000;

/**
 * A synchronous line destination that swallows its own failures. `write` is what pino
 * calls for each line.
 */
export class LineDestination {
  private fd: number;
  private lost = 0;
  private lostSinceWarning = 0;
  private lastWarning = Number.NEGATIVE_INFINITY;

  constructor(
    /** `-` or a file path. */
    readonly dest: string,
    private readonly stdFd: 1 | 2 = 2,
    private readonly transform?: (line: string) => string,
  ) {
    this.fd = dest === '-' ? stdFd : openLog(dest);
  }

  write(line: string): boolean {
    const text = this.transform ? this.transform(line) : line;
    try {
      writeAll(this.fd, text);
    } catch (err) {
      this.drop(err as NodeJS.ErrnoException);
    }
    return true;
  }

  /** Lines dropped so far. */
  get dropped(): number {
    return this.lost;
  }

  reopen(): void {
    if (this.dest === '-') return;
    let fd: number;
    try {
      fd = openLog(this.dest);
    } catch (err) {
      this.warn(`cannot reopen ${this.dest}: ${describe(err)}; still writing to the old file`);
      return;
    }
    const old = this.fd;
    this.fd = fd;
    try {
      fs.closeSync(old);
    } catch {
      // already gone
    }
  }

  private drop(err: NodeJS.ErrnoException): void {
    this.lost += 1;
    this.lostSinceWarning += 1;
    const now = performance.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    const where = this.dest === '-' ? (this.stdFd === 1 ? 'stdout' : 'stderr') : this.dest;
    this.warn(
      `cannot write the log to ${where}: ${describe(err)}; ${this.lostSinceWarning} line(s) dropped (${this.lost} in all)`,
    );
    this.lostSinceWarning = 0;
  }

  private warn(message: string): void {
    this.lastWarning = performance.now();
    try {
      // Straight to stderr: when stderr is the failing destination this fails too, quietly.
      fs.writeSync(2, `arb[${process.pid}]: ${message}\n`);
    } catch {
      // nowhere left to say it
    }
  }
}

function openLog(file: string): number {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return fs.openSync(file, 'a');
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Writes the whole string; a full non-blocking pipe (EAGAIN) is waited on briefly. */
function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  let again = 0;
  while (buf.length > 0) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
      again = 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++again > 100) throw err;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}

/** Fields every line has: a logged object repeating one is renamed (`_pid`), never repeated. */
const OWN_KEYS = ['level', 'time', 'msg'];

/** True when `format` makes readable lines for a destination (`-` is the fd `stdFd`). */
export function isPretty(format: LogFormat, dest: string, stdFd: 1 | 2): boolean {
  return format === 'pretty' || (format === 'auto' && dest === '-' && tty.isatty(stdFd));
}

/**
 * Whether readable lines are coloured, as Node decides for its own output: `FORCE_COLOR`
 * (`0`/`false` off, anything else on) wins, then `NO_COLOR` or `NODE_DISABLE_COLORS` (any
 * non-empty value) turn colours off, then `TERM=dumb`; otherwise a terminal gets colours.
 */
export function colorsWanted(env: NodeJS.ProcessEnv, terminal: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR || env.NODE_DISABLE_COLORS) return false;
  if (env.TERM === 'dumb') return false;
  return terminal;
}

/** The logger of one process: pino over a {@link LineDestination}. */
export function createLogSink(options: LogSinkOptions): LogSink {
  const dest = options.dest ?? '-';
  const stdFd = options.stdFd ?? 2;
  const pretty = isPretty(options.format ?? 'auto', dest, stdFd);
  const color =
    pretty && colorsWanted(options.env ?? process.env, dest === '-' && tty.isatty(stdFd));
  const destination = new LineDestination(
    dest,
    stdFd,
    pretty ? (line) => prettyLine(line, { color }) : undefined,
  );
  const base = { proc: options.proc, pid: process.pid, ...options.base };
  const reserved = [...OWN_KEYS, ...Object.keys(base)];
  const log = pino(
    {
      level: normalizeLevel(options.level),
      base,
      formatters: { log: (obj) => renameReserved(obj, reserved) },
    },
    destination,
  );
  return {
    log,
    pretty,
    foreign(fields, msg) {
      destination.write(foreignJson(fields, msg));
    },
    reopen: () => destination.reopen(),
    dropped: () => destination.dropped,
  };
}

/**
 * `obj` without keys every line already has (a hook logging `{ pid }` about another
 * process): those become `_pid`, so a line never carries a key twice.
 */
function renameReserved(obj: Record<string, unknown>, reserved: string[]): Record<string, unknown> {
  let out = obj;
  for (const key of reserved) {
    if (!Object.hasOwn(obj, key)) continue;
    if (out === obj) out = { ...obj };
    let to = `_${key}`;
    while (Object.hasOwn(out, to)) to = `_${to}`;
    out[to] = out[key];
    delete out[key];
  }
  return out;
}

/** One JSON line, shaped as pino's: level, time, the fields, msg. */
function foreignJson(fields: ForeignLine, msg: string): string {
  let line = `{"level":30,"time":${Date.now()}`;
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined || OWN_KEYS.includes(key)) continue;
    line += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  }
  return `${line},"msg":${JSON.stringify(msg)}}\n`;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

const LEVEL_COLORS: Record<number, string> = {
  10: '90',
  20: '34',
  30: '32',
  40: '33',
  50: '31',
  60: '1;31',
};

/** `2026-12-01 02:40:04.816+01:00`: local time, with its zone. */
export function localTimestamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${zone}`;
}

/** Fields shown by the prefix, not again as `key=value`. */
const SHOWN = new Set(['level', 'time', 'proc', 'pid', 'msg', 'hostname', 'err']);
const COMPANION_SHOWN = new Set([...SHOWN, 'companion', 'stream', 'continues', 'base64']);

/**
 * A JSON line made readable: `2026-12-01 02:40:04.816+01:00 INFO  [master 42] Booting
 * worker workerPid=43 age=1`; a companion's output `... OUT   [jobs 1234] text` (`ERR` for
 * its stderr). An error's stack follows on the next lines. Anything that is not a JSON
 * line is returned as it is.
 */
export function prettyLine(line: string, opts: { color?: boolean } = {}): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null) return line;
  const paint = opts.color
    ? (code: string, text: string) => `\x1b[${code}m${text}\x1b[0m`
    : (_code: string, text: string) => text;
  const level = Number(entry.level);
  const companion = entry.proc === 'companion';
  const time = paint('2', localTimestamp(Number(entry.time)));
  let label: string;
  let who: string;
  if (companion) {
    const err = entry.stream === 'stderr';
    label = paint(err ? '33' : '32', (err ? 'ERR' : 'OUT').padEnd(5));
    who = paint('35', `[${entry.companion} ${entry.pid}]`);
  } else {
    label = paint(
      LEVEL_COLORS[level] ?? '0',
      (LEVEL_NAMES[level] ?? String(entry.level)).padEnd(5),
    );
    who = paint('36', `[${entry.proc} ${entry.pid}]`);
  }
  const shown = companion ? COMPANION_SHOWN : SHOWN;
  let extra = '';
  for (const [key, value] of Object.entries(entry)) {
    if (shown.has(key) || value === undefined) continue;
    extra += ` ${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
  }
  const err = entry.err as { stack?: unknown; message?: unknown } | string | undefined;
  if (typeof err === 'string') extra += ` err=${JSON.stringify(err)}`;
  else if (err && typeof err === 'object' && typeof err.stack !== 'string')
    extra += ` err=${JSON.stringify(err.message ?? err)}`;
  if (companion && entry.base64 !== undefined) extra += ' (not UTF-8)';
  if (companion && entry.continues) extra += ' …';
  const stack =
    err && typeof err === 'object' && typeof err.stack === 'string' ? `\n${err.stack}` : '';
  const msg = typeof entry.msg === 'string' ? entry.msg : JSON.stringify(entry.msg ?? '');
  return `${time} ${label} ${who} ${msg}${extra ? paint('90', extra) : ''}${stack}\n`;
}
