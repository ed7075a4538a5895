// kill -9 of the master, and of the companion manager: nothing may stay orphaned 2 s later.
import { readdirSync } from 'node:fs';
import { alive, descendants, killQuiet, now, rmDir, sleep, waitGone } from '../util.js';
import { arbWithCompanions, type ChaosResult, companionStatus, managerPid } from './common.js';

const SLEEPER = {
  name: 'sleeper',
  command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
};
const SLEEPER2 = {
  name: 'sleeper2',
  command: ['sh', '-c', 'sleep 1000 & sleep 1000 & wait'],
};

async function waitRunning(socket: string, n: number, ms: number): Promise<boolean> {
  const end = now() + ms;
  while (now() < end) {
    const s = await companionStatus(socket);
    const running = (s.companions ?? []).filter(
      (c) => String(c.state ?? c.status).toUpperCase() === 'RUNNING',
    );
    if (running.length >= n) return true;
    await sleep(200);
  }
  return false;
}

export async function killMaster(): Promise<ChaosResult> {
  const x = await arbWithCompanions([SLEEPER, SLEEPER2], { restartDelay: 0.5 });
  const running = await waitRunning(x.socket, 2, 10000);
  const tree = descendants(x.arb.pid);
  killQuiet(x.arb.pid, 'SIGKILL');
  await x.arb.waitExit(2000);
  await sleep(2000);
  const orphans = tree.filter((p) => alive(p.pid));
  for (const p of orphans) killQuiet(p.pid, 'SIGKILL');
  await waitGone(
    orphans.map((p) => p.pid),
    2000,
  );
  rmDir(x.dir);
  return {
    name: 'kill -9 of the master (2 workers, companion manager, 2 companions, one a shell with 2 children)',
    tried: `SIGKILL to the master; its tree had ${tree.length} processes${running ? '' : ' (companions not all RUNNING before the kill)'}`,
    lost: `orphans alive 2 s later: ${orphans.length ? orphans.map((p) => `${p.pid} ${p.cmd.slice(0, 40)}`).join('; ') : 'none'}`,
    pass: orphans.length === 0,
    details: { tree: tree.map((p) => `${p.pid} ${p.cmd}`), orphans },
  };
}

export async function killManager(): Promise<ChaosResult> {
  const x = await arbWithCompanions([SLEEPER, SLEEPER2], { restartDelay: 0.5 });
  await waitRunning(x.socket, 2, 10000);
  const mgr = managerPid(x.arb.pid);
  if (!mgr) {
    await x.arb.stop();
    rmDir(x.dir);
    return {
      name: 'kill -9 of the companion manager',
      tried: 'no manager process found',
      lost: '-',
      pass: false,
    };
  }
  const under = descendants(mgr);
  killQuiet(mgr, 'SIGKILL');
  await sleep(2000);
  const orphans = under.filter((p) => alive(p.pid));
  const masterAlive = alive(x.arb.pid) && !x.arb.exit;
  const t0 = now();
  const back = await waitRunning(x.socket, 2, 20000);
  const backMs = now() - t0 + 2000;
  const newMgr = managerPid(x.arb.pid);
  const leaked = await x.arb.stop();
  for (const p of orphans) killQuiet(p.pid, 'SIGKILL');
  const files = readdirSync(x.dir).filter((f) => !/\.json$/.test(f));
  rmDir(x.dir);
  return {
    name: 'kill -9 of the companion manager (2 companions, one a shell with 2 children)',
    tried: `SIGKILL to the manager ${mgr} (${under.length} processes under it)`,
    lost:
      `orphans of the old manager alive 2 s later: ${orphans.length ? orphans.map((p) => `${p.pid} ${p.cmd.slice(0, 40)}`).join('; ') : 'none'}; ` +
      `master ${masterAlive ? 'alive' : 'DEAD'}; new manager ${newMgr ?? 'none'}, companions RUNNING again ${back ? `within ${backMs.toFixed(0)} ms of the kill` : 'NOT within 22 s'}; ` +
      `after stop: leaked ${leaked.length ? leaked.join(' ') : 'none'}, files left ${files.length ? files.join(' ') : 'none'}`,
    pass: orphans.length === 0 && masterAlive && back && leaked.length === 0,
    details: { orphans, backMs, files },
  };
}
