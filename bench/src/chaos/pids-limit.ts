// A spawn storm in a pids-limited cgroup (root only): `-w 200` where only a handful of
// processes fit. Spawns fail (EAGAIN); arb must back off with one log line per interval,
// keep serving with the workers it has, keep its memory and log small, and answer TERM.
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArbProcess } from '../arb.js';
import {
  ARB_LAUNCHER,
  alive,
  freePort,
  now,
  probe,
  rmDir,
  rssMB,
  sleep,
  tempDir,
} from '../util.js';
import { type ChaosResult, HANDLER } from './common.js';

const PIDS_ROOT = '/sys/fs/cgroup/pids';

export async function pidsLimit(o: { seconds: number }): Promise<ChaosResult> {
  const name = 'spawn storm under a pids cgroup limit (pids.max 64, -w 200)';
  if (process.getuid?.() !== 0 || !existsSync(PIDS_ROOT)) {
    return {
      name,
      tried: 'nothing',
      lost: 'needs root and the cgroup v1 pids controller',
      pass: true,
      skipped: true,
    };
  }
  const cg = join(PIDS_ROOT, `arb-chaos-${process.pid}`);
  mkdirSync(cg);
  writeFileSync(join(cg, 'pids.max'), '64');
  const dir = tempDir('pids');
  const port = await freePort();
  // the master enters the cgroup before it starts anything (the shell execs it in place)
  const a = new ArbProcess(
    [
      '-c',
      `echo $$ > ${join(cg, 'cgroup.procs')} && exec "$0" "$@"`,
      ARB_LAUNCHER,
      '-w',
      '200',
      '--max-workers',
      '500',
      '-b',
      `127.0.0.1:${port}`,
      '--worker-tmp-dir',
      dir,
      HANDLER,
    ],
    {},
    dir,
    '/bin/sh',
  );
  let rssPeak = 0;
  let served = 0;
  let probes = 0;
  const end = now() + o.seconds * 1000;
  await sleep(1000);
  while (now() < end) {
    rssPeak = Math.max(rssPeak, alive(a.pid) ? rssMB(a.pid) : 0);
    probes++;
    if ((await probe(port, '/', 1000)).status === 200) served++;
    await sleep(250);
  }
  const logBytes = a.lines.reduce((n, l) => n + JSON.stringify(l.raw).length + 1, 0);
  const spawnFailures = a.lines.filter((l) => /spawn|fork/i.test(l.msg) && l.level >= 40).length;
  const t0 = now();
  a.signal('SIGTERM');
  const exited = await a.waitExit(15000);
  const termMs = now() - t0;
  const leaked = await a.stop();
  // the cgroup is empty once everything is gone
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(cg);
      break;
    } catch {
      await sleep(100);
    }
  }
  rmDir(dir);
  const pass =
    exited &&
    termMs < 1000 + 30_000 &&
    served > 0 &&
    logBytes < 200_000 &&
    rssPeak < 120 &&
    leaked.length === 0;
  return {
    name,
    tried: `${o.seconds} s; ${probes} probes`,
    lost:
      `${served}/${probes} probes served; master RSS peak ${rssPeak.toFixed(1)} MB; log ${(logBytes / 1024).toFixed(1)} KB ` +
      `(${a.lines.length} lines, ${spawnFailures} spawn-failure warnings); TERM -> exit ${exited ? `${termMs.toFixed(0)} ms` : 'NOT within 15 s'}; ` +
      `leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { served, probes, rssPeak, logBytes, termMs, spawnFailures },
  };
}
