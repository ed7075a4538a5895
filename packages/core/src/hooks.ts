import type { Logger } from './logger.js';
import type { ArbiterSettings } from './settings.js';

/** What a hook sees of the master (in the master: the Arbiter itself; in a worker: a snapshot). */
export interface ServerView {
  /** The master's pid. */
  readonly pid: number;
  readonly procName: string;
  /** The number of workers the master keeps. */
  readonly numWorkers: number;
  readonly settings: ArbiterSettings;
  readonly log: Logger;
}

/** What a hook sees of one worker. */
export interface WorkerInfo {
  /** 1, 2, 3, ... in spawn order; never reused. */
  readonly age: number;
  /** Undefined until the process exists. */
  readonly pid: number | undefined;
  /** The worker listens on every listener and its app is loaded. */
  readonly booted: boolean;
  /** The heartbeat timeout sent it SIGABRT. */
  readonly aborted: boolean;
}

type MaybePromise = void | Promise<void>;

/**
 * The hooks, each run in the process gunicorn runs it in (see the README's table). Worker
 * hooks come from the config module, which every worker re-imports.
 */
export interface ArbiterHooks {
  /** master: after preload and the pidfile, before signals and listeners. */
  onStarting(server: ServerView): MaybePromise;
  /** master: after the listeners exist, before any worker. */
  whenReady(server: ServerView): MaybePromise;
  /** master: on HUP, before the new workers. */
  onReload(server: ServerView): MaybePromise;
  /** master: just before each worker is spawned. */
  preFork(server: ServerView, worker: WorkerInfo): MaybePromise;
  /** worker: first thing after it has its config, before the app loads. */
  postFork(server: ServerView, worker: WorkerInfo): MaybePromise;
  /** worker: after the app is loaded and listening, before it reports ready. */
  postWorkerInit(worker: WorkerInfo): MaybePromise;
  /** worker: on INT/QUIT, before it exits at once. */
  workerInt(worker: WorkerInfo): MaybePromise;
  /** worker: on SIGABRT (the heartbeat timeout), if its event loop still runs. */
  workerAbort(worker: WorkerInfo): MaybePromise;
  /** master: just before a new master is spawned (USR2). */
  preExec(server: ServerView): MaybePromise;
  /** worker: on its way out. master: when signalling it found the process already gone. */
  workerExit(server: ServerView, worker: WorkerInfo): MaybePromise;
  /** master: after a worker's exit was reaped. */
  childExit(server: ServerView, worker: WorkerInfo): MaybePromise;
  /** master: at start (`old` undefined) and each time the number of workers changes. */
  nworkersChanged(server: ServerView, value: number, old: number | undefined): MaybePromise;
  /** master: last step of a halt, before the exit status is returned. */
  onExit(server: ServerView): MaybePromise;
}

export type HookName = keyof ArbiterHooks;

/** The process each hook runs in. */
export const HOOK_PROCESS: Readonly<Record<HookName, 'master' | 'worker' | 'both'>> = {
  onStarting: 'master',
  whenReady: 'master',
  onReload: 'master',
  preFork: 'master',
  postFork: 'worker',
  postWorkerInit: 'worker',
  workerInt: 'worker',
  workerAbort: 'worker',
  preExec: 'master',
  workerExit: 'both',
  childExit: 'master',
  nworkersChanged: 'master',
  onExit: 'master',
};

export const HOOK_NAMES = Object.keys(HOOK_PROCESS) as HookName[];

/** The hook functions among an object's properties (a config object or module). */
export function pickHooks(source: unknown): Partial<ArbiterHooks> {
  const hooks: Record<string, unknown> = {};
  if (source === null || typeof source !== 'object') return hooks;
  for (const name of HOOK_NAMES) {
    const fn = (source as Record<string, unknown>)[name];
    if (fn !== undefined && typeof fn !== 'function') {
      throw new TypeError(`hook ${name} must be a function (got ${typeof fn})`);
    }
    if (fn) hooks[name] = fn;
  }
  return hooks as Partial<ArbiterHooks>;
}

/**
 * Runs a hook that must not break the loop that calls it: an exception is logged (naming
 * the hook) and swallowed. Returns false when the hook threw.
 */
export async function runHookSafely<K extends HookName>(
  log: Logger,
  hooks: Partial<ArbiterHooks>,
  name: K,
  ...args: Parameters<ArbiterHooks[K]>
): Promise<boolean> {
  const fn = hooks[name] as ((...a: Parameters<ArbiterHooks[K]>) => MaybePromise) | undefined;
  if (!fn) return true;
  try {
    await fn(...args);
    return true;
  } catch (err) {
    log.error({ err, hook: name }, `Exception in ${name} hook`);
    return false;
  }
}

/** Runs a hook whose failure must stop what is going on (startup hooks): rethrows. */
export async function runHook<K extends HookName>(
  hooks: Partial<ArbiterHooks>,
  name: K,
  ...args: Parameters<ArbiterHooks[K]>
): Promise<void> {
  const fn = hooks[name] as ((...a: Parameters<ArbiterHooks[K]>) => MaybePromise) | undefined;
  if (fn) await fn(...args);
}
