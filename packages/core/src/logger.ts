import { createLogSink, type Logger, type LogSink } from '@arb/sock/log';
import type { LogFormat, LogLevel } from './settings.js';

export type { Logger, LogSink };

export interface LoggerOptions {
  /** Which process writes: every line carries it, with the pid. */
  proc: 'master' | 'worker';
  level: LogLevel;
  /** Default `auto`: readable on a terminal. */
  format?: LogFormat;
  /** `-` for stderr, else a file path (appended to). */
  dest: string;
  /** `-` means this fd (2 for the error log, 1 for the access log). */
  stdFd?: 1 | 2;
  /** Extra fields on every line. */
  base?: Record<string, unknown>;
}

/**
 * The master's and the workers' logger: @arb/sock's one setup for every arb process (JSON
 * lines, readable on a terminal; a failing destination drops and counts lines, never throws).
 */
export function createLogger(options: LoggerOptions): LogSink {
  return createLogSink(options);
}
