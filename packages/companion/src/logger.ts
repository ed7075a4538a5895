import { createLogSink, type LogFormat, type Logger, normalizeLevel } from '@arb/sock/log';
import pino from 'pino';

export { type Logger, normalizeLevel };

/**
 * The manager's logger: @arb/sock's one setup for every arb process, on stderr (stdout may
 * be shared with companions that inherit it), readable on a terminal, JSON lines elsewhere,
 * each line carrying `proc` so mixed streams say which process wrote them.
 */
export function createLogger(
  opts: { level?: string; proc?: string; format?: LogFormat } = {},
): Logger {
  return createLogSink({
    proc: opts.proc ?? 'manager',
    level: opts.level ?? process.env.ARB_LOG_LEVEL,
    format: opts.format,
  }).log;
}

/** A logger that discards everything (API users who do not want logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
