import type { ArbiterSettings } from './config.js';

/** The variable carrying a worker's {@link WorkerPayload} as JSON. */
export const WORKER_ENV = 'ARB_WORKER';

/** Everything a worker needs from its master, besides the listeners (`ARB_FD`, ...). */
export interface WorkerPayload {
  age: number;
  masterPid: number;
  /** The worker's fd of its heartbeat file. */
  heartbeatFd?: number;
  /** Requests before the worker recycles itself, jitter applied (0: never). */
  maxRequests: number;
  /** The number of workers the master keeps (for the hooks' server view). */
  numWorkers: number;
  settings: ArbiterSettings;
  /** The config module to re-import for the worker hooks. */
  configModule?: string;
}

/** Worker → master, over the IPC channel. */
export type WorkerMessage =
  /** Listening on every listener, app loaded, `postWorkerInit` done. */
  | { type: 'ready' }
  /** Reached `maxRequests`: finishing the current request, then exiting; replace me now. */
  | { type: 'retiring' }
  /** About to exit with 3 (boot failure) or 4 (app load failure), and why. */
  | { type: 'fatal'; code: 3 | 4; message: string };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
