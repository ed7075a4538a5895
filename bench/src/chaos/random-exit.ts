// An app whose workers exit at random while serving: each one that had reached ready is
// replaced at once (no crash backoff, which is for workers that cannot boot), so arb never
// spends time with no worker serving, and the failed requests stay near those in flight on
// the dying workers.
import { join } from 'node:path';
import { startArb } from '../arb.js';
import { wrkStoppable } from '../load.js';
import { APPS_DIR, alive, freePort, now, rmDir, sleep, tempDir } from '../util.js';
import { type ChaosResult, ctlRequest } from './common.js';

export async function randomExit(o: { seconds: number }): Promise<ChaosResult> {
  const dir = tempDir('randexit');
  const port = await freePort();
  const ctl = join(dir, 'arb.ctl');
  const a = await startArb(
    [
      '-w',
      '2',
      '-b',
      `127.0.0.1:${port}`,
      '--worker-tmp-dir',
      dir,
      '--ctl-socket',
      ctl,
      join(APPS_DIR, 'random-exit.cjs'),
    ],
    { RANDOM_EXIT_EVERY: '200' },
  );
  const w = wrkStoppable({ port, kind: 'close', seconds: 600, connections: 16 });
  // sample the ready workers every 50 ms: the longest stretch with none is the outage
  let longestZero = 0;
  let zeroSince: number | undefined;
  let samples = 0;
  const end = now() + o.seconds * 1000;
  while (now() < end) {
    const s = await ctlRequest(ctl, { cmd: 'status' }, 1000);
    const ready = ((s?.workers as { state: string }[] | undefined) ?? []).filter(
      (x) => x.state === 'ready',
    ).length;
    samples++;
    const t = now();
    if (ready === 0) zeroSince ??= t;
    else if (zeroSince !== undefined) {
      longestZero = Math.max(longestZero, t - zeroSince);
      zeroSince = undefined;
    }
    await sleep(50);
  }
  if (zeroSince !== undefined) longestZero = Math.max(longestZero, now() - zeroSince);
  w.stop();
  const r = await w.result;
  const deaths = a.lines.filter((l) => /exited with code 1/.test(l.msg)).length;
  const backoff = a.lines.filter((l) => /keep dying/.test(l.msg)).length;
  const masterAlive = alive(a.pid) && !a.exit;
  const leaked = await a.stop();
  rmDir(dir);
  const notInFlight = r.errors.timeout + r.errors.connect + r.errors.status;
  const pass = masterAlive && longestZero < 1000 && notInFlight === 0 && leaked.length === 0;
  return {
    name: `app exits at random (1 request in 200) under wrk -c16 for ${o.seconds} s, 2 workers`,
    tried: `${r.requests} requests, ${deaths} worker deaths, ${samples} status samples`,
    lost:
      `${r.failed} failed requests (${r.errors.read + r.errors.write} reset in flight on dying workers; ${notInFlight} never served); ` +
      `longest time with no ready worker ${longestZero.toFixed(0)} ms; ${backoff} crash-backoff warnings; ` +
      `leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { result: r, deaths, longestZero, backoff },
  };
}
