import type { OwnedFile } from './owned-file.js';

/**
 * What the manager tells its guard (see guard.ts). At spawn, the whole state in the
 * environment variable `GUARD_STATE_ENV` (JSON); then each change as an IPC message:
 * `{op:'add', pgid, signal}`, `{op:'remove', pgid}`, `{op:'socket', path, dev, ino}`.
 * The guard answers `{op:'ready'}` once it listens.
 */
export const GUARD_STATE_ENV = 'ARB_COMPANION_GUARD_STATE';

export interface GuardState {
  /** The manager's pid: the guard acts when its parent is no longer this one. */
  managerPid: number;
  /** Live companion process groups and the stop signal of each. */
  groups: [pgid: number, signal: NodeJS.Signals][];
  /** The control socket file the manager created, if any. */
  socket: OwnedFile | null;
}

export type GuardMessage =
  | { op: 'add'; pgid: number; signal: NodeJS.Signals }
  | { op: 'remove'; pgid: number }
  | ({ op: 'socket' } & OwnedFile);
