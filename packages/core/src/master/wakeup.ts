/** The signals the master handles, gunicorn's list. */
export const MASTER_SIGNALS = [
  'SIGHUP',
  'SIGQUIT',
  'SIGINT',
  'SIGTERM',
  'SIGTTIN',
  'SIGTTOU',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
] as const satisfies readonly NodeJS.Signals[];

export type MasterSignal = (typeof MASTER_SIGNALS)[number];

/** Each of these does the same whether it arrives once or twice in a row: coalesced. */
const IDEMPOTENT: ReadonlySet<MasterSignal> = new Set([
  'SIGHUP',
  'SIGQUIT',
  'SIGINT',
  'SIGTERM',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
]);

const STOP: ReadonlySet<MasterSignal> = new Set(['SIGTERM', 'SIGINT', 'SIGQUIT']);

/** With nothing to wait for, the loop still holds a timer: it keeps the event loop alive. */
const IDLE_MS = 24 * 3600 * 1000;

/**
 * The master's one waiting mechanism: the signal queue, and the wake-ups of everything else
 * (a child exit, a worker message, a caller such as the ctl socket). Signal listeners only
 * `push` (which wakes the loop); the one master loop sleeps in `wait` until a wake-up or the
 * nearest deadline it passes in. A signal already pending is not queued twice (except
 * TTIN/TTOU, which count); beyond `limit` pending signals new ones are dropped (as
 * gunicorn's fork does) — but never a stop signal, so TERM/INT/QUIT always get through.
 */
export class Wakeup {
  private readonly queue: MasterSignal[] = [];
  private waiter: (() => void) | undefined;
  private woken = false;
  private probes: (() => void)[] = [];

  constructor(readonly limit = 10) {}

  /** Queues a signal and wakes the loop. Returns false when it was coalesced or dropped. */
  push(sig: MasterSignal): boolean {
    let queued = false;
    if (IDEMPOTENT.has(sig) && this.queue.includes(sig)) queued = false;
    else if (this.queue.length >= this.limit && !STOP.has(sig)) queued = false;
    else {
      this.queue.push(sig);
      queued = true;
    }
    this.wake();
    return queued;
  }

  /** Makes the current (or next) `sleep`/`wait` return at once. */
  wake(): void {
    this.woken = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Resolves the next time the loop reports a turn (`turned`), and wakes it: how `/livez`
   * learns that the loop itself runs. A loop stuck in a pass never resolves it.
   */
  probe(): Promise<void> {
    return new Promise((resolve) => {
      this.probes.push(resolve);
      this.wake();
    });
  }

  /** The loop made a turn: every pending probe is answered. */
  turned(): void {
    for (const resolve of this.probes.splice(0)) resolve();
  }

  get size(): number {
    return this.queue.length;
  }

  /** Takes the pending signals without waiting. */
  drain(): MasterSignal[] {
    this.woken = false;
    return this.queue.splice(0);
  }

  /** Takes out the first pending signal among `which`, if any (a stop peeks for INT/QUIT). */
  take(which: readonly MasterSignal[]): MasterSignal | undefined {
    const i = this.queue.findIndex((s) => which.includes(s));
    return i < 0 ? undefined : this.queue.splice(i, 1)[0];
  }

  /**
   * Sleeps until a wake-up (or one that came since the last sleep) or `ms` milliseconds
   * (none: no deadline). Pending signals stay queued. Only one sleeper at a time.
   */
  async sleep(ms?: number): Promise<void> {
    if (this.woken || this.queue.length > 0) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => {
          this.waiter = undefined;
          resolve();
        },
        Math.max(0, Math.min(ms ?? IDLE_MS, IDLE_MS)),
      );
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.woken = false;
  }

  /** `sleep`, then every pending signal (possibly none). */
  async wait(ms?: number): Promise<MasterSignal[]> {
    await this.sleep(ms);
    return this.drain();
  }
}

/**
 * Milliseconds from `now` to the nearest of `deadlines` (monotonic seconds; undefined ones
 * are ignored), never negative; undefined when there is none.
 */
export function msUntil(
  now: number,
  deadlines: readonly (number | undefined)[],
): number | undefined {
  let nearest: number | undefined;
  for (const d of deadlines)
    if (d !== undefined && (nearest === undefined || d < nearest)) nearest = d;
  return nearest === undefined ? undefined : Math.max(0, Math.ceil((nearest - now) * 1000));
}
