// A companion that exits 1 right away, for ever: the backoff must hold (growing, capped
// delays, no tight loop) and the manager's CPU must stay low.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, now, rmDir, sleep } from '../util.js';
import { arbWithCompanions, type ChaosResult, companionStatus, managerPid } from './common.js';

export async function crashLoop(o: { seconds: number }): Promise<ChaosResult> {
  const stamp = '__STAMPS__';
  const restartDelay = 0.2;
  const maxRestartDelay = 3;
  const x = await arbWithCompanions(
    [
      {
        name: 'crasher',
        command: ['sh', '-c', `date +%s%N >> ${stamp}; exit 1`],
        startSecs: 0.5,
      },
    ],
    { restartDelay, maxRestartDelay },
  );
  // the stamps file lives in the companion's cwd (the config's dir)
  const file = join(x.dir, stamp);
  let mgr = managerPid(x.arb.pid);
  for (let i = 0; i < 50 && !mgr; i++) {
    await sleep(100);
    mgr = managerPid(x.arb.pid);
  }
  const c0 = mgr ? cpuSeconds(mgr) : 0;
  const m0 = cpuSeconds(x.arb.pid);
  const t0 = now();
  await sleep(o.seconds * 1000);
  const el = (now() - t0) / 1000;
  const mgrCpu = mgr ? (100 * (cpuSeconds(mgr) - c0)) / el : Number.NaN;
  const masterCpu = (100 * (cpuSeconds(x.arb.pid) - m0)) / el;
  const status = await companionStatus(x.socket);
  const state = (status.companions ?? [])
    .map((c) => `${c.name}: ${c.state ?? c.status}`)
    .join(', ');
  let starts: number[] = [];
  try {
    starts = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((s) => Number(BigInt(s) / 1000000n));
  } catch {}
  const gaps = starts.slice(1).map((t, i) => (t - starts[i]!) / 1000);
  const leaked = await x.arb.stop();
  rmDir(x.dir);
  const minGap = gaps.length ? Math.min(...gaps) : Number.NaN;
  const maxGap = gaps.length ? Math.max(...gaps) : Number.NaN;
  // holds: never faster than the first step, reaches the cap, never beyond cap + jitter + startSecs
  const holds =
    starts.length >= 3 &&
    minGap >= restartDelay * 0.5 &&
    maxGap <= maxRestartDelay * 1.5 + 1 &&
    maxGap >= maxRestartDelay * 0.5;
  const pass = holds && mgrCpu < 5 && leaked.length === 0;
  return {
    name: `crash-looping companion (exit 1 at once; restartDelay ${restartDelay} s, maxRestartDelay ${maxRestartDelay} s) for ${o.seconds} s`,
    tried: `${starts.length} starts; gaps between starts (s): ${gaps.map((g) => g.toFixed(2)).join(' ')}`,
    lost: `manager CPU ${mgrCpu.toFixed(2)}%, master CPU ${masterCpu.toFixed(2)}%; status at the end: ${state || status.error}; leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { starts: starts.length, gaps, mgrCpu, masterCpu, state },
  };
}
