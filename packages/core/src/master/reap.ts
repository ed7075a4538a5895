import { APP_LOAD_ERROR, WORKER_BOOT_ERROR } from '../protocol/worker.js';
import type { WorkerExit } from './worker-state.js';

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

/** What the master does about one exit. */
export interface ExitVerdict {
  level: LogLevelName;
  message: string;
  /** Set when the whole server must stop with this status. */
  halt?: { status: number; reason: string };
}

/**
 * Classifies a worker's exit (gunicorn's `reap_workers`, upstream flavour): code 3 or 4
 * halts the master with that code; another non-zero code is an error; death by SIGTERM is
 * info, by SIGKILL an error with an out-of-memory hint unless the master killed it itself,
 * by another signal a warning.
 */
export function classifyExit(
  pid: number | undefined,
  exit: WorkerExit,
  context: { killedByMaster?: boolean; fatal?: string } = {},
): ExitVerdict {
  const who = `Worker (pid:${pid ?? '?'})`;
  const why = context.fatal ? `: ${context.fatal}` : '';
  if (exit.code === WORKER_BOOT_ERROR) {
    return {
      level: 'error',
      message: `${who} exited with code 3`,
      halt: { status: WORKER_BOOT_ERROR, reason: `${who} failed to boot${why}` },
    };
  }
  if (exit.code === APP_LOAD_ERROR) {
    return {
      level: 'error',
      message: `${who} exited with code 4`,
      halt: { status: APP_LOAD_ERROR, reason: `${who} could not load the app${why}` },
    };
  }
  if (exit.code !== null && exit.code !== 0) {
    return { level: 'error', message: `${who} exited with code ${exit.code}` };
  }
  if (exit.signal === 'SIGTERM') return { level: 'info', message: `${who} was sent SIGTERM!` };
  if (exit.signal === 'SIGKILL') {
    return context.killedByMaster
      ? { level: 'error', message: `${who} was sent SIGKILL!` }
      : { level: 'error', message: `${who} was sent SIGKILL! Perhaps out of memory?` };
  }
  if (exit.signal) return { level: 'warn', message: `${who} was sent ${exit.signal}!` };
  return { level: 'info', message: `${who} exited` };
}
