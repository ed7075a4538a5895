// kill -9 of the companion manager's guard, then of the manager itself: the guard comes
// back (or the manager restarts cleanly), the companion is never orphaned, and at no moment
// do two copies of it run.
import { now, procTable, rmDir, sleep } from '../util.js';
import { arbWithCompanions, type ChaosResult, companionStatus, managerPid } from './common.js';

const MARK = 'arb-chaos-guard-kill-companion';

/** The companion's processes: its command line carries the marker. */
function copies(): number[] {
  return [...procTable().values()].filter((p) => p.cmd.includes(MARK)).map((p) => p.pid);
}

function guardOf(manager: number): number | undefined {
  return [...procTable().values()].find((p) => p.ppid === manager && /guard/.test(p.cmd))?.pid;
}

export async function guardKill(): Promise<ChaosResult> {
  const x = await arbWithCompanions([
    { name: 'jobs', command: ['sh', '-c', `sleep 3600; : ${MARK}`], startSecs: 0.5 },
  ]);
  let maxCopies = 0;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxCopies = Math.max(maxCopies, copies().length);
      samples++;
      await sleep(25);
    }
  })();
  const steps: string[] = [];
  const waitFor = async (what: string, ok: () => boolean, ms = 15000) => {
    const t0 = now();
    while (!ok()) {
      if (now() - t0 > ms) {
        steps.push(`${what}: NOT within ${ms} ms`);
        return false;
      }
      await sleep(50);
    }
    steps.push(`${what} in ${(now() - t0).toFixed(0)} ms`);
    return true;
  };
  let ok = await waitFor('companion running', () => copies().length === 1);
  const mgr = managerPid(x.arb.pid);
  const guard = mgr ? guardOf(mgr) : undefined;
  if (mgr && guard) {
    process.kill(guard, 'SIGKILL');
    ok =
      (await waitFor('a new guard (or a new manager)', () => {
        const m = managerPid(x.arb.pid);
        const g = m ? guardOf(m) : undefined;
        return g !== undefined && g !== guard;
      })) && ok;
    const mgr2 = managerPid(x.arb.pid)!;
    process.kill(mgr2, 'SIGKILL');
    ok =
      (await waitFor('a new manager with the companion running again', () => {
        const m = managerPid(x.arb.pid);
        return m !== undefined && m !== mgr2 && copies().length === 1;
      })) && ok;
  } else {
    ok = false;
    steps.push('no manager or guard found');
  }
  await sleep(1000);
  const status = await companionStatus(x.socket);
  const state = (status.companions ?? []).map((c) => `${c.name}: ${c.state}`).join(', ');
  sampling = false;
  await sampler;
  const leaked = await x.arb.stop();
  const after = copies();
  rmDir(x.dir);
  const pass = ok && maxCopies === 1 && after.length === 0 && leaked.length === 0;
  return {
    name: 'kill -9 of the companion guard, then of the manager (a command companion)',
    tried: steps.join('; '),
    lost: `at most ${maxCopies} cop${maxCopies === 1 ? 'y' : 'ies'} of the companion at once over ${samples} samples; status at the end: ${state || status.error}; companions left after stop: ${after.length}; leaked: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { maxCopies, steps, state },
  };
}
