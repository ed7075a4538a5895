/**
 * The master's place in an upgrade (USR2), as a named state:
 *
 *   sole ─reexec→ parent ─child exits→ sole          (the old master)
 *   awaiting-promotion ─parent gone→ sole            (the new, `.2` master)
 *
 * - sole: the only master; it owns the socket files, the pidfile, the ctl socket and the
 *   sidecar.
 * - parent: a new master we started runs beside us on the same sockets; `childServing`
 *   once it said its workers serve. Its socket files are shared: never unlinked by us.
 * - awaiting-promotion: we were started by `parentPid` (ARB_PID) and wait for it to go;
 *   our files carry `.2`, we run no sidecar, and we unlink nothing.
 *
 * `lineageTransition` is pure; the master carries out the effects. Everything that used to
 * depend on `masterPid`/`reexecPid` is derived here.
 */
export type Lineage =
  | { readonly role: 'sole' }
  | { readonly role: 'parent'; readonly childPid: number; readonly childServing: boolean }
  | { readonly role: 'awaiting-promotion'; readonly parentPid: number };

export type LineageEvent =
  /** USR2 started a new master. */
  | { type: 'reexec-started'; pid: number }
  /** The new master says its first generation serves. */
  | { type: 'child-serving'; pid: number }
  /** The new master exited. */
  | { type: 'child-exited'; pid: number }
  /** Our parent pid is no longer the master that started us. */
  | { type: 'parent-gone' };

export type LineageEffect =
  | { type: 'log-child-serving'; pid: number }
  | { type: 'log-child-exited'; pid: number }
  /** Take over: plain pidfile, title and ctl socket, claim the socket files, start the sidecar. */
  | { type: 'promote' };

export interface LineageTransition {
  readonly state: Lineage;
  readonly effects: readonly LineageEffect[];
}

export const SOLE: Lineage = { role: 'sole' };

/** The lineage a master starts with: awaiting promotion when ARB_PID names its parent. */
export function initialLineage(env: NodeJS.ProcessEnv): Lineage {
  const parentPid = Number(env.ARB_PID ?? 0);
  return parentPid > 0 ? { role: 'awaiting-promotion', parentPid } : SOLE;
}

export function lineageTransition(state: Lineage, event: LineageEvent): LineageTransition {
  const same = { state, effects: [] };
  switch (event.type) {
    case 'reexec-started':
      if (state.role !== 'sole') return same;
      return { state: { role: 'parent', childPid: event.pid, childServing: false }, effects: [] };
    case 'child-serving':
      if (state.role !== 'parent' || state.childPid !== event.pid || state.childServing)
        return same;
      return {
        state: { ...state, childServing: true },
        effects: [{ type: 'log-child-serving', pid: event.pid }],
      };
    case 'child-exited':
      if (state.role !== 'parent' || state.childPid !== event.pid) return same;
      return { state: SOLE, effects: [{ type: 'log-child-exited', pid: event.pid }] };
    case 'parent-gone':
      if (state.role !== 'awaiting-promotion') return same;
      return { state: SOLE, effects: [{ type: 'promote' }] };
  }
}

/** Only the one master that bound the files removes them (the four seed cases). */
export function mayUnlink(
  l: Lineage,
  listeners: { systemd: boolean; reusePort: boolean },
): boolean {
  return l.role === 'sole' && !listeners.systemd && !listeners.reusePort;
}

/** A file of ours (pidfile, ctl socket) under its name for this lineage: `.2` until promoted. */
export function ownName(l: Lineage, name: string): string {
  return l.role === 'awaiting-promotion' ? `${name}.2` : name;
}

/** The sidecar runs only in a master that is not waiting for promotion (never twice). */
export function runsSidecar(l: Lineage): boolean {
  return l.role !== 'awaiting-promotion';
}

/** The pid of the master that started us, 0 when none. */
export function parentMasterPid(l: Lineage): number {
  return l.role === 'awaiting-promotion' ? l.parentPid : 0;
}

/** The pid of the new master we started, 0 when none. */
export function newMasterPid(l: Lineage): number {
  return l.role === 'parent' ? l.childPid : 0;
}
