import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error; a function is called only then. */
  what?: string | (() => string);
}

/**
 * Polls `check` until it returns something truthy (which is returned), or throws after the
 * deadline naming what it waited for and the last error `check` threw. Tests wait on
 * conditions, never on fixed sleeps: the machines are small and busy.
 * Called as `waitFor(check, options)` or `waitFor(check, timeoutMs, what, intervalMs)`.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitOptions | number = {},
  what?: string,
  intervalMs?: number,
): Promise<NonNullable<T>> {
  const o: WaitOptions =
    typeof options === 'number' ? { timeoutMs: options, what, intervalMs } : options;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const name = typeof o.what === 'function' ? o.what() : (o.what ?? 'condition');
      const cause = last ? `: ${last instanceof Error ? last.message : String(last)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}${cause}`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 25));
  }
}

/**
 * The process exists and is not a zombie: an orphan that exited stays a zombie until init
 * reaps it, and must count as gone.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // no /proc (not Linux): kill(0) said it exists
    return process.platform !== 'linux';
  }
}

/** A fresh directory under the OS temp dir; short, because unix socket paths are limited. */
export function tempDir(prefix = 'arbt-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The exit code (or signal) of a child, whether or not it has exited already. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal!)));
}
export { type Backend, findHaproxy, Haproxy, haproxyBin } from './haproxy.js';
export {
  CONFORMANCE_LIMITS,
  type ConformanceCase,
  type LineSocketSubject,
  lineSocketCases,
} from './line-conformance.js';
export { NotifyReceiver } from './notify-receiver.js';
export { freePort, retryOnPortInUse } from './ports.js';
export {
  guardRun,
  RUN_MARKER,
  type RunGuardOptions,
  RunLeftovers,
  runProcesses,
} from './run-guard.js';
export { type ArbLogLine, parseArbLogLine, parseStrictJson } from './strict-json.js';
