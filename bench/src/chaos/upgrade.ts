// USR2 then kill -9 of the old master under load: the new master must keep serving and the
// old workers must go. Skipped when the build says USR2 is not supported.
import { startArb } from '../arb.js';
import { wrkStoppable } from '../load.js';
import {
  alive,
  descendants,
  freePort,
  killQuiet,
  rmDir,
  sleep,
  tempDir,
  waitGone,
  waitServed,
} from '../util.js';
import { type ChaosResult, HANDLER } from './common.js';

export async function upgradeThenKillOld(): Promise<ChaosResult> {
  const name = 'USR2 upgrade, then kill -9 of the old master under load';
  const port = await freePort();
  const tmp = tempDir('chaos-up');
  const a = await startArb([
    '-w',
    '2',
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    HANDLER,
  ]);
  const w = wrkStoppable({ port, kind: 'close', seconds: 600, connections: 16 });
  await sleep(1000);
  const idx = a.lines.length;
  a.signal('SIGUSR2');
  const first = await Promise.race([
    a
      .waitLog((l) => /USR2/.test(l.msg) && /not supported/i.test(l.msg), 5000, idx)
      .then((l) => l ?? new Promise<undefined>(() => {})), // no such line: let the other wait decide
    a.waitLog((l) => l.pid !== a.pid && /^Serving with/.test(l.msg), 30000, idx),
  ]);
  if (!first || /not supported/i.test(first.msg)) {
    w.stop();
    await w.result;
    await a.stop();
    rmDir(tmp);
    return {
      name,
      tried: 'USR2',
      lost: first
        ? 'skipped: USR2 not supported by this build'
        : 'skipped: no new master served within 30 s',
      pass: !!first,
      skipped: !!first,
    };
  }
  const newMaster = first.pid;
  const oldWorkers = a.workerPids().filter((p) => p !== newMaster);
  killQuiet(a.pid, 'SIGKILL');
  await sleep(2000);
  const oldLeft = oldWorkers.filter(alive);
  const newAlive = alive(newMaster);
  const serves = !!(await waitServed(port, 3000));
  await sleep(1000);
  w.stop();
  const r = await w.result;
  const tree = [newMaster, ...descendants(newMaster).map((p) => p.pid)];
  killQuiet(newMaster, 'SIGTERM');
  const leaked = await waitGone(tree, 15000);
  for (const p of [...leaked, ...oldLeft]) killQuiet(p, 'SIGKILL');
  await a.stop(5000); // already dead: removes its temp cwd
  rmDir(tmp);
  return {
    name,
    tried: `USR2, new master ${newMaster} serving, then SIGKILL to the old master ${a.pid}; ${r.requests} requests (wrk -c16, Connection: close)`,
    lost: `${r.failed} failed requests ${JSON.stringify(r.errors)}; new master ${newAlive ? 'alive' : 'DEAD'}, ${serves ? 'serving' : 'NOT serving'}; old workers alive 2 s later: ${oldLeft.length ? oldLeft.join(' ') : 'none'}; leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass: newAlive && serves && oldLeft.length === 0 && leaked.length === 0,
    details: { result: r },
  };
}
