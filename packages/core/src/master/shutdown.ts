import type { Logger } from '../logger.js';
import type { ArbiterSettings } from '../settings.js';
import type { ArbiterDeps } from './deps.js';
import type { Orphans } from './orphans.js';
import type { SidecarSlot } from './sidecar.js';
import { msUntil, type Wakeup } from './wakeup.js';
import type { WorkerPool } from './workers.js';

/** What stopping needs of the master. */
export interface StoppingMaster {
  readonly deps: Pick<ArbiterDeps, 'now'>;
  readonly settings: ArbiterSettings;
  readonly pool: WorkerPool;
  readonly sidecar: SidecarSlot;
  readonly signals: Wakeup;
  readonly log: Logger;
  /** Orphans exit during a stop too (a worker's children when it is killed). */
  readonly orphans?: Pick<Orphans, 'reap'>;
}

/**
 * Signals the workers (TERM graceful, QUIT quick) and the sidecar, waits up to
 * `gracefulTimeout` for workers and max(gracefulTimeout, sidecar stop timeout) for the
 * sidecar, then SIGKILLs what is left. During a graceful stop a queued INT/QUIT turns it
 * into a quick one; other signals are dropped. Woken by child exits and signals like the
 * main loop, never polling.
 */
export async function stopChildren(a: StoppingMaster, graceful: boolean): Promise<void> {
  const now = a.deps.now();
  let workerLimit = now + a.settings.gracefulTimeout;
  let sidecarLimit = now + Math.max(a.settings.gracefulTimeout, a.sidecar.stopTimeout());
  await a.pool.killAll(graceful ? 'SIGTERM' : 'SIGQUIT');
  a.sidecar.stop(a.sidecar.stopSignalOf(graceful ? 'graceful' : 'quick'));
  let workersKilled = false;
  for (;;) {
    await a.pool.reap(false);
    a.orphans?.reap();
    const t = a.deps.now();
    // every signal is taken each turn: one left queued would make each sleep return at
    // once, a loop of microtasks in which libuv never reports the exits it waits for
    const sigs = a.signals.drain();
    for (const sig of sigs) {
      if (sig !== 'SIGINT' && sig !== 'SIGQUIT') a.log.info(`Signal ${sig} ignored: shutting down`);
    }
    if (graceful && (sigs.includes('SIGINT') || sigs.includes('SIGQUIT'))) {
      a.log.info('Quick shutdown requested');
      graceful = false;
      await a.pool.killAll('SIGQUIT');
      a.sidecar.stop(a.sidecar.stopSignalOf('quick'));
      workerLimit = Math.min(workerLimit, t + 2);
      sidecarLimit = Math.min(sidecarLimit, t + 2);
    }
    if (!workersKilled && a.pool.size > 0 && t >= workerLimit) {
      workersKilled = true;
      await a.pool.killAll('SIGKILL');
    }
    a.signals.turned();
    const waitWorkers = a.pool.size > 0 && !workersKilled;
    const waitSidecar = a.sidecar.running && t < sidecarLimit;
    if (!waitWorkers && !waitSidecar) break;
    await a.signals.sleep(msUntil(t, [waitWorkers ? workerLimit : undefined, sidecarLimit]));
  }
  if (a.pool.size > 0 && !workersKilled) await a.pool.killAll('SIGKILL');
  a.sidecar.stop('SIGKILL');
  // let the kernel report the last deaths, so they are logged and nothing is left behind
  const until = a.deps.now() + 2;
  while ((a.pool.size > 0 || a.sidecar.running) && a.deps.now() < until) {
    await a.signals.sleep(msUntil(a.deps.now(), [until]));
    a.signals.drain();
    await a.pool.reap(false);
    a.orphans?.reap();
  }
}
