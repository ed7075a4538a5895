import type { ReloadState, ReloadWorker } from './reload.js';

/**
 * Where a reload stands, for `arb ctl reload` to print as it advances. Derived from the
 * reload machine's state and the workers, never part of it: `state` is the machine's phase
 * name as it is, so a phase added to the machine is reported without a change here.
 */
export interface ReloadProgress {
  /** The reload's number (`ReloadOutcome.seq`). */
  seq: number;
  state: string;
  /** The generation being booted (or rolled back). */
  generation: number;
  /** The generation that served before. */
  from: number;
  /** Workers of `generation` ready, of `total` wanted. */
  ready: number;
  total: number;
  /** Workers of other generations not yet gone. */
  old: number;
  message: string;
}

export function reloadProgress(
  s: ReloadState,
  workers: readonly ReloadWorker[],
  total: number,
): ReloadProgress {
  const ready = workers.filter((w) => w.generation === s.target && w.state === 'ready').length;
  const fresh = workers.filter((w) => w.generation === s.target).length;
  const old = workers.length - fresh;
  const p = { seq: s.seq, state: s.phase, generation: s.target, from: s.from, ready, total, old };
  return { ...p, message: describe(p, fresh) };
}

function describe(p: Omit<ReloadProgress, 'message'>, fresh: number): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  switch (p.state) {
    case 'loading-config':
      return `reload ${p.seq}: reading the config`;
    case 'booting-generation':
      return `generation ${p.generation} booting: ${p.ready}/${p.total} ready`;
    case 'retiring-old':
      return `generation ${p.generation} serving (${p.ready}/${p.total} ready); retiring generation ${p.from}: ${plural(p.old, 'old worker')} left`;
    case 'rolling-back':
      return `rolling back: generation ${p.generation} stopping (${plural(fresh, 'worker')} left), generation ${p.from} keeps serving`;
    default:
      return `reload ${p.seq}: ${p.state} (generation ${p.generation}: ${p.ready}/${p.total} ready, ${plural(p.old, 'old worker')} left)`;
  }
}

/** Equal progress is said once. */
export function sameProgress(a: ReloadProgress | undefined, b: ReloadProgress): boolean {
  return a?.message === b.message && a.seq === b.seq;
}
