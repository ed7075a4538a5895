// 200 mixed HUP/TTIN/TTOU signals in 2 s: the final worker count must be what the handled
// signals say, nothing may crash, and nothing may be left behind after stop.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startArb } from '../arb.js';
import {
  alive,
  freePort,
  killQuiet,
  now,
  procTable,
  rmDir,
  sleep,
  tempDir,
  waitServed,
} from '../util.js';
import { type ChaosResult, ctlRequest, HANDLER } from './common.js';

export async function signalStorm(
  o: { count?: number; seconds?: number } = {},
): Promise<ChaosResult> {
  const count = o.count ?? 200;
  const seconds = o.seconds ?? 2;
  const start = 2;
  const port = await freePort();
  const tmp = tempDir('storm');
  const a = await startArb([
    '-w',
    String(start),
    '-b',
    `127.0.0.1:${port}`,
    '--worker-tmp-dir',
    tmp,
    HANDLER,
  ]);
  const idx = a.lines.length;
  const sigs: NodeJS.Signals[] = ['SIGHUP', 'SIGTTIN', 'SIGTTOU'];
  const sent: Record<string, number> = { SIGHUP: 0, SIGTTIN: 0, SIGTTOU: 0 };
  const gap = (seconds * 1000) / count;
  const t0 = now();
  for (let i = 0; i < count; i++) {
    const s = sigs[Math.floor(Math.random() * 3)]!;
    if (!killQuiet(a.pid, s)) break;
    sent[s]!++;
    const wait = t0 + (i + 1) * gap - now();
    if (wait > 0) await sleep(wait);
  }
  // what the master says it handled, in order
  await sleep(500);
  const handledLines = () =>
    a.lines.slice(idx).filter((l) => /^Handling signal: (hup|ttin|ttou)$/.test(l.msg));
  // the expected count under both readings of HUP: gunicorn re-reads the config (workers
  // back to the configured 2), or HUP keeps the current count
  const expect = (hupResets: boolean) => {
    let n = start;
    for (const l of handledLines()) {
      const s = l.msg.slice(17);
      if (s === 'ttin') n++;
      else if (s === 'ttou') n = n > 1 ? n - 1 : n;
      else if (hupResets) n = start;
    }
    return n;
  };
  // wait for the dust to settle: same worker count for 3 s, and all handled
  const settleStart = now();
  let last = -1;
  let stableSince = now();
  let handledCount = handledLines().length;
  while (now() - settleStart < 90000) {
    const n = a.workerPids().length;
    const h = handledLines().length;
    if (n !== last || h !== handledCount) {
      last = n;
      handledCount = h;
      stableSince = now();
    } else if (now() - stableSince > 3000) break;
    await sleep(100);
  }
  const settleMs = now() - settleStart;
  const final = a.workerPids().length;
  // the master's own view, when this build has the ctl socket
  const st = await ctlRequest(join(a.cwd, 'arb.ctl'), { cmd: 'status' });
  const master = st?.master as { workers_target?: number; reload?: string } | undefined;
  const ws = (st?.workers as Array<{ state?: string }> | undefined) ?? [];
  const ctlView = st
    ? `ctl status: target ${master?.workers_target}, reload ${master?.reload}, workers ${ws.map((w) => w.state).join(',')}`
    : 'no ctl socket';
  const masterAlive = alive(a.pid) && !a.exit;
  const serves = !!(await waitServed(port, 3000));
  const byHupReset = expect(true);
  const byHupKeep = expect(false);
  const handled = handledLines();
  const handledBy: Record<string, number> = { hup: 0, ttin: 0, ttou: 0 };
  for (const l of handled) handledBy[l.msg.slice(17)]!++;
  const errors = a.lines.slice(idx).filter((l) => l.level >= 50 && !/WORKER TIMEOUT/.test(l.msg));
  // stop and look for leftovers: processes, heartbeat files, files in the cwd
  const before = new Set(procTable().keys());
  const tree = a.workerPids();
  const leaked = await a.stop(60000);
  const stillThere = tree.filter((p) => alive(p) && before.has(p));
  const tmpFiles = readdirSync(tmp);
  rmDir(tmp);
  const countRight = final === byHupReset || final === byHupKeep;
  const pass =
    masterAlive &&
    serves &&
    countRight &&
    leaked.length === 0 &&
    stillThere.length === 0 &&
    tmpFiles.length === 0 &&
    a.leftFiles.length === 0;
  return {
    name: `${count} mixed HUP/TTIN/TTOU signals in ${seconds} s (start: ${start} workers)`,
    tried: `sent HUP ${sent.SIGHUP}, TTIN ${sent.SIGTTIN}, TTOU ${sent.SIGTTOU}; master logged handling HUP ${handledBy.hup}, TTIN ${handledBy.ttin}, TTOU ${handledBy.ttou} (the rest were coalesced: arb's signal queue keeps one pending HUP and at most 10 signals, as gunicorn's does, and the kernel merges a signal that is already pending)`,
    lost:
      `final workers ${final} (expected ${byHupReset} if HUP resets to the configured count as gunicorn does, ${byHupKeep} if HUP keeps it: ${countRight ? (final === byHupReset ? 'matches the gunicorn reading' : 'matches the keep reading') : 'WRONG'}); ` +
      `${ctlView}; settled ${(settleMs / 1000).toFixed(1)} s after the storm; master ${masterAlive ? 'alive' : 'DEAD'}, ${serves ? 'serving' : 'NOT serving'}; ` +
      `${errors.length} error lines${errors.length ? ` (${[...new Set(errors.map((e) => e.msg))].slice(0, 3).join(' | ')})` : ''}; ` +
      `after stop: leaked processes ${leaked.length + stillThere.length ? [...leaked, ...stillThere].join(' ') : 'none'}, heartbeat files ${tmpFiles.length}, files in cwd ${a.leftFiles.length ? a.leftFiles.join(' ') : 'none'}`,
    pass,
    details: {
      sent,
      handledBy,
      final,
      byHupReset,
      byHupKeep,
      settleMs,
      errors: errors.length,
      ctl: st,
    },
  };
}
