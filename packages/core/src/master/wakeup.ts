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

/**
 * The master's signal queue. Signal listeners only `push` (which wakes the loop); the one
 * master loop takes them with `wait`. A signal already pending is not queued twice (except
 * TTIN/TTOU, which count); beyond `limit` pending signals new ones are dropped (as
 * gunicorn's fork does) — but never a stop signal, so TERM/INT/QUIT always get through.
 */
export class SignalQueue {
  private readonly queue: MasterSignal[] = [];
  private waiter: (() => void) | undefined;
  private woken = false;

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

  /** Makes the current (or next) `wait` return at once. */
  wake(): void {
    this.woken = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
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
   * Waits up to `ms` for a signal or a wake-up, then returns every pending signal (possibly
   * none). Only one waiter at a time: the master loop.
   */
  async wait(ms: number): Promise<MasterSignal[]> {
    if (!this.woken && this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, ms);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.drain();
  }
}
