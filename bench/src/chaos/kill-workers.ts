// kill -9 of a random worker every 200 ms for 30 s under load: the master survives, the
// worker count comes back, and the failed requests stay near the requests in flight on the
// killed workers.
import { startArb } from '../arb.js';
import { wrkStoppable } from '../load.js';
import { alive, freePort, killQuiet, now, rmDir, sleep, tempDir, waitServed } from '../util.js';
import { type ChaosResult, HANDLER } from './common.js';

export async function killWorkers(o: { seconds: number; everyMs?: number }): Promise<ChaosResult> {
  const workers = 4;
  const connections = 32;
  const every = o.everyMs ?? 200;
  const port = await freePort();
  const tmp = tempDir('killw');
  const a = await startArb([
    '-w',
    String(workers),
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    HANDLER,
  ]);
  const w = wrkStoppable({ port, kind: 'close', seconds: 600, connections });
  await sleep(1000);
  let kills = 0;
  let noVictim = 0;
  const end = now() + o.seconds * 1000;
  while (now() < end) {
    const pids = a.workerPids();
    if (pids.length) {
      const v = pids[Math.floor(Math.random() * pids.length)]!;
      if (killQuiet(v, 'SIGKILL')) kills++;
    } else noVictim++;
    await sleep(every);
  }
  const masterAlive = alive(a.pid) && !a.exit;
  // count restored?
  const t0 = now();
  let restored = Number.NaN;
  while (now() - t0 < 30000) {
    if (a.workerPids().length === workers && (await waitServed(port, 1000))) {
      restored = now() - t0;
      break;
    }
    await sleep(100);
  }
  await sleep(1000);
  w.stop();
  const r = await w.result;
  const backoffLogs = a.lines.filter((l) => /keep dying/.test(l.msg)).length;
  const leaked = await a.stop();
  rmDir(tmp);
  // a killed worker can lose the requests it was serving: at most every connection of the
  // load generator (each has one request in flight) divided among the workers, per kill
  const bound = kills * Math.ceil(connections / workers);
  // a reset (read error) is a request in flight on a killed worker; a timeout or a refused
  // connection means no worker took the connection at all (none alive, or backing off)
  const inFlight = r.errors.read + r.errors.write;
  const notInFlight = r.errors.timeout + r.errors.connect + r.errors.status;
  const pass =
    masterAlive &&
    Number.isFinite(restored) &&
    inFlight <= bound &&
    notInFlight === 0 &&
    leaked.length === 0;
  return {
    name: `kill -9 of a random worker every ${every} ms for ${o.seconds} s (4 workers, wrk -c${connections} Connection: close)`,
    tried: `${kills} kill -9 (${noVictim} of the ${kills + noVictim} ticks found no live worker), ${r.requests} requests, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(0)} ms, max ${r.max.toFixed(0)} ms`,
    lost:
      `${r.failed} failed requests: ${inFlight} reset in flight (${(inFlight / Math.max(1, kills)).toFixed(2)} per kill; bound ${bound} = ` +
      `${Math.ceil(connections / workers)} in flight per worker x kills), ${notInFlight} never served (timeouts/refused: no worker accepting) ${JSON.stringify(r.errors)}; ` +
      `master ${masterAlive ? 'alive' : 'DEAD'}; ${workers} workers back ${Number.isFinite(restored) ? `${restored.toFixed(0)} ms after the last kill` : 'NOT within 30 s'}; ` +
      `${backoffLogs} crash-backoff warnings; leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { kills, result: r, restoredMs: restored, backoffLogs, leaked },
  };
}
