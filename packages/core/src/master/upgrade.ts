import type { SpawnOptions, StdioOptions } from 'node:child_process';
import { type handoff, type Listener, withListenPid } from '@arb/sock';

/**
 * USR2: how a master starts its successor (gunicorn's reexec(), reference §1.11 and §7.7).
 *
 * Node cannot fork+exec, so the new master is a fresh child process: the same Node binary,
 * execArgv, script and arguments, started in the directory the old master started in,
 * with the environment the old master started with plus
 *
 * - `ARB_PID=<old master pid>`: it is an unpromoted `.2` master;
 * - the listeners at fd 3, 4, … and `ARB_FD=3,4,…` (the *child's* slot numbers) with
 *   `ARB_LISTENERS`, or under socket activation `LISTEN_FDS`/`LISTEN_FDNAMES` and a
 *   `LISTEN_PID` equal to the new master's own pid (a `/bin/sh` trampoline that execs in
 *   place, since spawn cannot know the pid beforehand);
 * - an IPC channel after the listeners, on which the new master says when it serves.
 *
 * It is not detached: it must be our child, so that our exit re-parents it — which is how
 * it learns it has been promoted.
 */

/** Variables that describe *this* process's inheritance; never passed on as they were. */
const INHERITANCE_VARS = [
  'ARB_PID',
  'ARB_FD',
  'ARB_LISTENERS',
  'ARB_BACKLOG',
  'LISTEN_PID',
  'LISTEN_FDS',
  'LISTEN_FDNAMES',
  'NODE_CHANNEL_FD',
  'NODE_CHANNEL_SERIALIZATION_MODE',
] as const;

/** The IPC message a re-exec'd master sends its parent once its first generation serves. */
export interface ReexecServingMessage {
  type: 'arb:serving';
  pid: number;
}

export function isServingMessage(m: unknown): m is ReexecServingMessage {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'arb:serving' &&
    typeof (m as { pid?: unknown }).pid === 'number'
  );
}

export interface ReexecInput {
  listeners: readonly Listener[];
  /** The listeners came from systemd: hand them on as systemd would. */
  systemd: boolean;
  /** Our pid, the new master's `ARB_PID`. */
  masterPid: number;
  /** The environment as it was when this master started (before `env` settings). */
  envOrig: NodeJS.ProcessEnv;
  /** The directory this master started in. */
  startCwd: string;
  execPath: string;
  execArgv: readonly string[];
  /** `process.argv`: `[node, script, ...args]`. */
  argv: readonly string[];
  handoff: typeof handoff;
}

export interface ReexecPlan {
  command: string;
  args: string[];
  options: SpawnOptions & { env: NodeJS.ProcessEnv; stdio: StdioOptions; cwd: string };
}

/** What to `spawn` for the new master (pure: the unit tests check it field by field). */
export function reexecPlan(input: ReexecInput): ReexecPlan {
  const listeners = input.handoff(input.listeners, { systemd: input.systemd });
  const env: NodeJS.ProcessEnv = { ...input.envOrig };
  for (const k of INHERITANCE_VARS) delete env[k];
  Object.assign(env, listeners.env);
  env.ARB_PID = String(input.masterPid);
  const args = [...input.execArgv, ...input.argv.slice(1)];
  const [command, argv] = input.systemd
    ? withListenPid(input.execPath, args)
    : [input.execPath, args];
  return {
    command,
    args: argv,
    options: {
      cwd: input.startCwd,
      env,
      stdio: ['inherit', 'inherit', 'inherit', ...listeners.stdio, 'ipc'],
    },
  };
}
