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
export type LogFormat = 'auto' | 'json' | 'pretty';

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
}

/** A logger with its destination. */
export interface LogSink {
  readonly log: Logger;
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

/** The logger of one process: pino over a {@link LineDestination}. */
export function createLogSink(options: LogSinkOptions): LogSink {
  const dest = options.dest ?? '-';
  const stdFd = options.stdFd ?? 2;
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && dest === '-' && tty.isatty(stdFd));
  const destination = new LineDestination(dest, stdFd, pretty ? prettyLine : undefined);
  const log = pino(
    {
      level: normalizeLevel(options.level),
      base: { proc: options.proc, pid: process.pid, ...options.base },
    },
    destination,
  );
  return { log, reopen: () => destination.reopen(), dropped: () => destination.dropped };
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** `12:00:01.234 INFO [master 42] Booting worker {"worker":1}`, or the line as it was. */
export function prettyLine(line: string): string {
  try {
    const { level, time, proc, pid, msg, hostname: _h, err, ...rest } = JSON.parse(line);
    const t = new Date(time).toISOString().slice(11, 23);
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    const stack = err?.stack ? `\n${err.stack}` : '';
    return `${t} ${LEVEL_NAMES[level] ?? level} [${proc} ${pid}] ${msg ?? ''}${extra}${stack}\n`;
  } catch {
    return line;
  }
}
