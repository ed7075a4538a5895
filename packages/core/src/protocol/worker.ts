import type { ArbiterSettings } from '../settings.js';
import type { SourceLocation } from '../worker/error-location.js';

/** Why the app could not be loaded, as a worker reports it and the master keeps it. */
export interface AppFailure {
  /** `cannot load app 'app.mjs': ...` */
  message: string;
  /** What importing the app threw: `SyntaxError: Unexpected end of input`. */
  thrown?: string;
  where?: SourceLocation;
}

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

/** Upper bounds (seconds) of the latency histogram buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** How often a worker sends its counts (only when it counted something). */
export const STATS_INTERVAL_MS = 1000;

/**
 * An idle worker's longest silence: it sends a stats message with only its event-loop lag
 * at least this often (sooner when the lag changes), so the view never shows a stale lag
 * and the master is not woken every second by idle workers.
 */
export const STATS_IDLE_INTERVAL_MS = 5000;

/** Worker → master: what was counted since the previous message. */
export interface StatsMessage {
  type: 'stats';
  /** Requests started. */
  requests: number;
  /** Responses finished, by status class (`2xx`, `5xx`, ...). */
  codes: Record<string, number>;
  /** Finished responses per latency bucket (not cumulative), `LATENCY_BUCKETS.length + 1` long. */
  buckets: number[];
  /** Sum of the latencies of the finished responses, seconds. */
  sum: number;
  /**
   * With more than one status class in `codes` only: `buckets` and `sum` split by class
   * (`{"2xx": [...buckets, sum]}`); with one class, `buckets` and `sum` are that class's.
   */
  byCode?: Record<string, number[]>;
  /** The longest event-loop delay since the previous message, seconds (the timer's resolution taken off). */
  lag?: number;
  /** Log lines the worker dropped since the previous message (its log destination failed). */
  logDropped?: number;
}

export function isStatsMessage(m: unknown): m is StatsMessage {
  const s = m as Partial<StatsMessage> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    s.type === 'stats' &&
    typeof s.requests === 'number' &&
    typeof s.sum === 'number' &&
    Array.isArray(s.buckets) &&
    s.buckets.length === LATENCY_BUCKETS.length + 1 &&
    typeof s.codes === 'object' &&
    s.codes !== null
  );
}

/** Exit status of a worker that failed before serving (gunicorn's WORKER_BOOT_ERROR). */
export const WORKER_BOOT_ERROR = 3;
/** Exit status of a worker whose app could not be loaded (gunicorn's APP_LOAD_ERROR). */
export const APP_LOAD_ERROR = 4;

/** Worker → master, over the IPC channel: every message a worker sends. */
export type WorkerMessage =
  /** Listening on every listener, app loaded, `postWorkerInit` done. */
  | { type: 'ready' }
  /** Reached `maxRequests`: finishing the current request, then exiting; replace me now. */
  | { type: 'retiring' }
  /** About to exit with 3 (boot failure) or 4 (app load failure), and why. */
  | {
      type: 'fatal';
      code: typeof WORKER_BOOT_ERROR | typeof APP_LOAD_ERROR;
      message: string;
      /** The app's own error, when importing it failed (`AppLoadError`'s fields). */
      app?: AppFailure;
    }
  /** Requests counted since the previous one (every `STATS_INTERVAL_MS`, when any). */
  | StatsMessage;

/** Master → worker, over the IPC channel. */
export type MasterMessage =
  /** The master was promoted (an upgrade): take the plain title, `arb: worker [name]`. */
  { type: 'title'; procName: string };

/** A message the master acts on; anything else on the channel is ignored. */
export function isWorkerMessage(m: unknown): m is WorkerMessage {
  if (typeof m !== 'object' || m === null) return false;
  const type = (m as { type?: unknown }).type;
  if (type === 'stats') return isStatsMessage(m);
  return type === 'ready' || type === 'retiring' || type === 'fatal';
}
