import pino from 'pino';

export type Logger = pino.Logger;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const ALIASES: Record<string, string> = { warning: 'warn', critical: 'fatal' };

/** pino level for a name (gunicorn's `warning`/`critical` accepted); unknown → `info`. */
export function normalizeLevel(level: string | undefined): string {
  const l = (level ?? 'info').toLowerCase();
  const mapped = ALIASES[l] ?? l;
  return LEVELS.has(mapped) ? mapped : 'info';
}

/**
 * The manager's logger: JSON lines on stderr (stdout may be shared with companions that
 * inherit it), each carrying `proc` so mixed streams say which process wrote them.
 */
export function createLogger(opts: { level?: string; proc?: string } = {}): Logger {
  return pino(
    {
      level: normalizeLevel(opts.level ?? process.env.ARB_LOG_LEVEL),
      base: { proc: opts.proc ?? 'manager', pid: process.pid },
    },
    // Synchronous so the last lines before exit (and after a crash) are never lost.
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that discards everything (API users who do not want logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
