import fs from 'node:fs';
import tty from 'node:tty';
import pino from 'pino';
import type { LogLevel } from './settings.js';

export type Logger = pino.Logger;

/** A logger with the file it writes to, which USR1 reopens. */
export interface LogSink {
  readonly log: Logger;
  /** Reopen the log file (after rotation); a no-op for stderr/stdout. */
  reopen(): void;
}

export interface LoggerOptions {
  /** Which process writes: every line carries it, with the pid. */
  proc: 'master' | 'worker';
  level: LogLevel;
  /** `-` for stderr, else a file path (appended to). */
  dest: string;
  /** `-` means this fd (2 for the error log, 1 for the access log). */
  stdFd?: 1 | 2;
  /** Extra fields on every line. */
  base?: Record<string, unknown>;
}

/**
 * pino, writing synchronously (a line logged just before `process.exit` is not lost):
 * JSON lines to a file or a non-TTY stream, short readable lines on a terminal.
 */
export function createLogger(options: LoggerOptions): LogSink {
  const base = { proc: options.proc, pid: process.pid, ...options.base };
  const fd = options.stdFd ?? 2;
  if (options.dest === '-' && tty.isatty(fd)) {
    const log = pino({ level: options.level, base }, { write: (line: string) => pretty(fd, line) });
    return { log, reopen: () => {} };
  }
  const dest = pino.destination({
    dest: options.dest === '-' ? fd : options.dest,
    sync: true,
    mkdir: options.dest !== '-',
  });
  const log = pino({ level: options.level, base }, dest);
  return {
    log,
    reopen: () => {
      if (options.dest !== '-') dest.reopen();
    },
  };
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

function pretty(fd: number, line: string): void {
  try {
    const { level, time, proc, pid, msg, hostname: _h, err, ...rest } = JSON.parse(line);
    const t = new Date(time).toISOString().slice(11, 23);
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    const stack = err?.stack ? `\n${err.stack}` : '';
    fs.writeSync(
      fd,
      `${t} ${LEVEL_NAMES[level] ?? level} [${proc} ${pid}] ${msg ?? ''}${extra}${stack}\n`,
    );
  } catch {
    fs.writeSync(fd, line);
  }
}
