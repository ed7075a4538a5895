import { constants } from 'node:os';

/** Signal names this platform knows (`SIGTERM`, ...), from `os.constants.signals`. */
export function isSignalName(value: unknown): value is NodeJS.Signals {
  return typeof value === 'string' && Object.hasOwn(constants.signals, value);
}

/** Signals that cannot ask a process to stop: uncatchable, or not a termination request. */
export const FORBIDDEN_STOP_SIGNALS: ReadonlySet<string> = new Set([
  'SIGKILL', // nothing left to escalate to, and no chance to clean up
  'SIGSTOP', // suspends instead of stopping: the stop would always run into the timeout
  'SIGCHLD',
  'SIGCONT',
  'SIGWINCH',
  'SIGURG',
]);

/** Signal name for a number, e.g. 9 → `SIGKILL`; null when unknown. */
export function signalName(signo: number): NodeJS.Signals | null {
  for (const [name, n] of Object.entries(constants.signals)) {
    if (n === signo) return name as NodeJS.Signals;
  }
  return null;
}
