import type { WorkerState } from './worker-state.js';

/**
 * `--max-memory` as a pure state machine; the master samples the workers' RSS and carries
 * out the effects (`memory-watch.ts`). The policy:
 *
 * - Sampled every {@link MEMORY_SAMPLE_SECONDS} (only when the limit is set): the RSS of
 *   each ready worker.
 * - "Stays above": a worker is replaced when every sample over {@link MEMORY_GRACE_SECONDS}
 *   was above the limit (at 1 s, four samples in a row: the first above and three more).
 *   One sample at or below the limit starts the count again: a short spike is tolerated.
 * - Replaced the arb way: its successor is spawned first (into the same slot, not counted
 *   while the old one still serves), and only once the successor is ready is the old one
 *   retired (TERM: it drains). No request fails, the pool never has fewer than `workers`
 *   ready workers, and never more than one worker extra: one replacement at a time.
 * - A successor that exits before it is ready, or is not ready within the boot timeout, is
 *   given up (SIGKILL when it is late) and the old worker keeps serving; that worker is not tried again for
 *   {@link SUCCESSOR_RETRY_SECONDS}.
 * - No replacement starts while a reload is in progress (the reload replaces every worker
 *   anyway), and one in flight when a reload begins is given up: its successor is retired.
 *   A replaced worker that goes another way first (it crashed, reached `maxRequests`, was
 *   scaled down) ends the replacement: the successor stays, as a plain worker.
 *
 * No clock is read and no process is touched here: time and figures come in the events.
 */

/** Seconds between two samples of the workers' RSS. */
export const MEMORY_SAMPLE_SECONDS = 1;
/** Seconds every sample must be above the limit before the worker is replaced. */
export const MEMORY_GRACE_SECONDS = 3;
/** Seconds before a worker whose successor failed is tried again. */
export const SUCCESSOR_RETRY_SECONDS = 10;

const MB = 1024 * 1024;

/** A worker above the limit at every sample since `since`. */
export interface AboveLimit {
  /** Monotonic seconds of the first sample above. */
  readonly since: number;
  /** The last sample, bytes. */
  readonly rssBytes: number;
}

/** One replacement in flight: the old worker, and its successor once spawned. */
export interface Replacement {
  readonly old: number;
  readonly oldPid: number | undefined;
  readonly successor: number | undefined;
  readonly successorPid: number | undefined;
  /** The successor must be ready by then (monotonic seconds). */
  readonly deadline: number;
}

export interface MemoryState {
  /** By worker age: those above the limit at every sample so far. */
  readonly above: ReadonlyMap<number, AboveLimit>;
  /** At most one. */
  readonly replacements: readonly Replacement[];
  /** By worker age: no new replacement of it before then (its successor failed). */
  readonly retryAt: ReadonlyMap<number, number>;
  /** Monotonic seconds of the last sample; undefined before the first. */
  readonly lastSampleAt: number | undefined;
}

export const MEMORY_IDLE: MemoryState = {
  above: new Map(),
  replacements: [],
  retryAt: new Map(),
  lastSampleAt: undefined,
};

/** A worker as the policy sees it at a step. */
export interface MemoryWorker {
  readonly age: number;
  readonly pid: number | undefined;
  readonly state: WorkerState;
}

/** One worker's RSS at a sample. */
export interface RssSample {
  readonly age: number;
  readonly pid: number | undefined;
  readonly rssBytes: number;
}

export type MemoryEvent =
  /** The RSS of the ready workers (one that could not be read is left out). */
  | {
      type: 'sample';
      now: number;
      /** `--max-memory`, MB. */
      limitMb: number;
      /** Seconds a successor has to be ready. */
      bootTimeout: number;
      /** A reload is in progress: no replacement starts. */
      reloading: boolean;
      samples: readonly RssSample[];
    }
  /** The answer to `spawn-successor`: the successor's age and pid, or undefined (refused). */
  | { type: 'successor-spawned'; now: number; old: number; successor?: MemoryWorker }
  /** A loop pass: every worker the master knows. */
  | { type: 'step'; now: number; reloading: boolean; workers: readonly MemoryWorker[] };

export type MemoryEffect =
  | { type: 'log'; level: 'info' | 'warn'; msg: string; fields: Record<string, unknown> }
  /** Spawn a successor into the old worker's slot; answer with successor-spawned. */
  | { type: 'spawn-successor'; old: number }
  /** TERM a worker: the old one (its successor serves), or a successor given up. */
  | { type: 'retire'; age: number; why: 'max_memory' | 'successor_given_up' }
  /** SIGKILL a successor not ready in time (stuck in its import, it may ignore TERM). */
  | { type: 'kill'; age: number };

export interface MemoryTransition {
  readonly state: MemoryState;
  readonly effects: readonly MemoryEffect[];
}

const counted = (w: MemoryWorker | undefined) =>
  w !== undefined && (w.state === 'booting' || w.state === 'ready');

/** Bytes as whole MB (MiB, as `--max-memory` counts them). */
export function megabytes(bytes: number): number {
  return Math.round(bytes / MB);
}

export function memoryTransition(s: MemoryState, event: MemoryEvent): MemoryTransition {
  switch (event.type) {
    case 'sample':
      return sample(s, event);
    case 'successor-spawned':
      return spawned(s, event);
    case 'step':
      return step(s, event);
  }
}

/** When the loop must look again: the next sample, or a successor's boot deadline. */
export function memoryDeadline(s: MemoryState, limitMb: number | undefined): number | undefined {
  const times: number[] = s.replacements.map((r) => r.deadline);
  if (limitMb !== undefined && limitMb > 0) {
    times.push(s.lastSampleAt === undefined ? 0 : s.lastSampleAt + MEMORY_SAMPLE_SECONDS);
  }
  return times.length === 0 ? undefined : Math.min(...times);
}

/** A sample is due (the limit is set and a sample period has passed). */
export function sampleDue(s: MemoryState, now: number, limitMb: number | undefined): boolean {
  if (limitMb === undefined || limitMb <= 0) return false;
  return s.lastSampleAt === undefined || now >= s.lastSampleAt + MEMORY_SAMPLE_SECONDS;
}

type SampleEvent = Extract<MemoryEvent, { type: 'sample' }>;

function sample(s: MemoryState, ev: SampleEvent): MemoryTransition {
  const limitBytes = ev.limitMb * MB;
  const inFlight = new Set(s.replacements.flatMap((r) => [r.old, r.successor]));
  const above = new Map<number, AboveLimit>();
  for (const x of ev.samples) {
    if (inFlight.has(x.age) || x.rssBytes <= limitBytes) continue;
    above.set(x.age, { since: s.above.get(x.age)?.since ?? ev.now, rssBytes: x.rssBytes });
  }
  const retryAt = new Map([...s.retryAt].filter(([, t]) => t > ev.now));
  const next: MemoryState = { ...s, above, retryAt, lastSampleAt: ev.now };
  if (ev.reloading || s.replacements.length > 0) return { state: next, effects: [] };
  // the longest above first: one replacement at a time keeps the pool at workers + 1
  const due = [...above]
    .filter(([age, a]) => ev.now - a.since >= MEMORY_GRACE_SECONDS && !retryAt.has(age))
    .sort((a, b) => a[1].since - b[1].since || a[0] - b[0]);
  if (due.length === 0) return { state: next, effects: [] };
  const [age, a] = due[0]!;
  const pid = ev.samples.find((x) => x.age === age)?.pid;
  const seconds = Math.round(ev.now - a.since);
  const rss = megabytes(a.rssBytes);
  return {
    state: {
      ...next,
      replacements: [
        {
          old: age,
          oldPid: pid,
          successor: undefined,
          successorPid: undefined,
          deadline: ev.now + ev.bootTimeout,
        },
      ],
    },
    effects: [
      {
        type: 'log',
        level: 'warn',
        msg:
          `Worker (pid:${pid}) uses ${rss} MB > --max-memory ${ev.limitMb} MB for ${seconds} s: ` +
          'replacing it (successor first)',
        fields: { workerPid: pid, rssMb: rss, maxMemoryMb: ev.limitMb, seconds },
      },
      { type: 'spawn-successor', old: age },
    ],
  };
}

function spawned(
  s: MemoryState,
  ev: Extract<MemoryEvent, { type: 'successor-spawned' }>,
): MemoryTransition {
  const r = s.replacements.find((x) => x.old === ev.old);
  if (r === undefined) return { state: s, effects: [] };
  if (ev.successor === undefined) {
    return giveUp(s, r, ev.now, 'its successor could not be spawned', []);
  }
  const updated: Replacement = {
    ...r,
    successor: ev.successor.age,
    successorPid: ev.successor.pid,
  };
  return {
    state: { ...s, replacements: s.replacements.map((x) => (x === r ? updated : x)) },
    effects: [],
  };
}

function step(s: MemoryState, ev: Extract<MemoryEvent, { type: 'step' }>): MemoryTransition {
  const byAge = new Map(ev.workers.map((w) => [w.age, w]));
  let state = s;
  const effects: MemoryEffect[] = [];
  for (const r of s.replacements) {
    if (r.successor === undefined) continue; // spawning: answered by successor-spawned
    const old = byAge.get(r.old);
    const successor = byAge.get(r.successor);
    const fields = { workerPid: r.oldPid, successorPid: r.successorPid };
    if (successor?.state === 'ready') {
      state = without(state, r);
      if (!counted(old)) continue; // it went another way meanwhile: nothing to retire
      effects.push(
        {
          type: 'log',
          level: 'info',
          msg: `Worker (pid:${r.successorPid}) serves in place of worker (pid:${r.oldPid}): draining it`,
          fields,
        },
        { type: 'retire', age: r.old, why: 'max_memory' },
      );
      continue;
    }
    if (!counted(successor)) {
      const t = giveUp(state, r, ev.now, 'its successor exited before it was ready', []);
      state = t.state;
      effects.push(...t.effects);
      continue;
    }
    if (!counted(old)) {
      // crashed, recycled or scaled down first: the successor stays as a plain worker
      state = without(state, r);
      continue;
    }
    if (ev.reloading) {
      state = without(state, r);
      effects.push(
        {
          type: 'log',
          level: 'info',
          msg: `Replacement of worker (pid:${r.oldPid}) given up: the reload replaces it`,
          fields,
        },
        { type: 'retire', age: r.successor, why: 'successor_given_up' },
      );
      continue;
    }
    if (ev.now >= r.deadline) {
      const t = giveUp(state, r, ev.now, 'its successor was not ready in time', [
        { type: 'kill', age: r.successor },
      ]);
      state = t.state;
      effects.push(...t.effects);
    }
  }
  // forget the workers that are gone
  const above = new Map([...state.above].filter(([age]) => counted(byAge.get(age))));
  const retryAt = new Map([...state.retryAt].filter(([age]) => counted(byAge.get(age))));
  return { state: { ...state, above, retryAt }, effects };
}

/** The old worker keeps serving; it is not tried again for a while. */
function giveUp(
  s: MemoryState,
  r: Replacement,
  now: number,
  why: string,
  more: MemoryEffect[],
): MemoryTransition {
  const retryAt = new Map(s.retryAt).set(r.old, now + SUCCESSOR_RETRY_SECONDS);
  const above = new Map(s.above);
  above.delete(r.old);
  return {
    state: { ...without(s, r), retryAt, above },
    effects: [
      {
        type: 'log',
        level: 'warn',
        msg:
          `Worker (pid:${r.oldPid}) above --max-memory keeps serving: ${why}; ` +
          `next attempt in ${SUCCESSOR_RETRY_SECONDS} s`,
        fields: { workerPid: r.oldPid, successorPid: r.successorPid },
      },
      ...more,
    ],
  };
}

function without(s: MemoryState, r: Replacement): MemoryState {
  return { ...s, replacements: s.replacements.filter((x) => x !== r) };
}
