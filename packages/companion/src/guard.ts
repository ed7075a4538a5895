/**
 * The guard: a tiny node process started by the manager, connected to it by an IPC
 * channel. The manager reports every companion process group it creates and reaps. If the
 * channel closes while groups are still known (the manager died, even by SIGKILL), the
 * guard sends each group its stop signal, SIGKILLs what is left after a short grace, and
 * exits; so no companion, nor any of its children, outlives the manager by more than ~1 s.
 *
 * Messages (manager → guard): `{op:'add', pgid, signal}`, `{op:'remove', pgid}`.
 * Message (guard → manager): `{op:'ready'}`.
 */

/** Grace between the stop signal and SIGKILL when the manager has died. */
const GRACE_MS = 700;

export type GuardMessage =
  | { op: 'add'; pgid: number; signal: NodeJS.Signals }
  | { op: 'remove'; pgid: number };

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Group already gone.
  }
}

function main(): void {
  if (!process.send) {
    process.stderr.write('arb companion guard must be started by the manager (IPC)\n');
    process.exit(2);
  }
  process.title = 'arb companion guard';
  const groups = new Map<number, NodeJS.Signals>();
  const managerPid = process.ppid;
  let finishing = false;

  const finish = () => {
    if (finishing) return;
    finishing = true;
    if (groups.size === 0) process.exit(0);
    for (const [pgid, sig] of groups) killGroup(pgid, sig);
    setTimeout(() => {
      for (const pgid of groups.keys()) killGroup(pgid, 'SIGKILL');
      process.exit(0);
    }, GRACE_MS);
  };

  process.on('message', (msg: GuardMessage) => {
    if (msg.op === 'add') groups.set(msg.pgid, msg.signal);
    else if (msg.op === 'remove') groups.delete(msg.pgid);
  });
  process.on('disconnect', finish);
  // Belt and braces: a manager that is gone but somehow left the channel open.
  setInterval(() => {
    if (process.ppid !== managerPid) finish();
  }, 250);
  // Terminal signals aimed at the manager's group must not take out the safety net.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  process.send({ op: 'ready' });
}

main();
