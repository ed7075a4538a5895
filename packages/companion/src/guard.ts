/**
 * The guard: a tiny node process started by the manager, connected to it by an IPC
 * channel. The manager reports every companion process group it creates and reaps, and the
 * control socket file it created. If the channel closes (the manager died, even by
 * SIGKILL), the guard removes that socket file if it is still the same file (same device
 * and inode: never a socket a newer manager put there), sends each group its stop signal,
 * SIGKILLs what is left after a short grace, and exits; so no companion, nor any of its
 * children, outlives the manager by more than ~1 s. The master respawns a dead manager
 * only after 1 s, so the old group is gone before a new copy starts.
 *
 * The protocol (guard-protocol.ts): the state known at spawn in an environment variable,
 * then messages manager → guard, and `{op:'ready'}` guard → manager.
 */
import { unlinkSync } from 'node:fs';
import { GUARD_STATE_ENV, type GuardMessage, type GuardState } from './guard-protocol.js';
import { type OwnedFile, stillOwned } from './owned-file.js';

/** Grace between the stop signal and SIGKILL when the manager has died. */
const GRACE_MS = 700;

function removeIfSame(file: OwnedFile): void {
  if (!stillOwned(file)) return;
  try {
    unlinkSync(file.path);
  } catch {
    // Removed meanwhile.
  }
}

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
  const initial = JSON.parse(process.env[GUARD_STATE_ENV] ?? '{}') as Partial<GuardState>;
  delete process.env[GUARD_STATE_ENV];
  const groups = new Map<number, NodeJS.Signals>(initial.groups ?? []);
  // From the state, not process.ppid: the manager may have died before this line ran.
  const managerPid = initial.managerPid ?? process.ppid;
  let socket: OwnedFile | null = initial.socket ?? null;
  let finishing = false;

  const finish = () => {
    if (finishing) return;
    finishing = true;
    // A manager that stopped cleanly removed its socket already (then this finds another
    // file or none); a killed one left it behind.
    if (socket) removeIfSame(socket);
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
    else if (msg.op === 'socket') socket = { path: msg.path, dev: msg.dev, ino: msg.ino };
  });
  process.on('disconnect', finish);
  if (!process.connected || process.ppid !== managerPid) finish();
  // Belt and braces: a manager that is gone but somehow left the channel open.
  setInterval(() => {
    if (process.ppid !== managerPid) finish();
  }, 250);
  // Terminal signals aimed at the manager's group must not take out the safety net.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  // The manager may be gone already (then 'disconnect' follows): a failed send must not
  // throw, or the guard would die before doing its job.
  if (process.connected) process.send({ op: 'ready' }, () => {});
}

main();
