import { encodeList } from './env-codec.js';
import type { Listener } from './listener.js';

export interface HandoffOptions {
  /** The child's descriptor number of the first listener. Default 3. */
  firstFd?: number;
  /**
   * Hand them on as systemd would (`LISTEN_FDS`, `LISTEN_FDNAMES`) instead of `ARB_FD`:
   * for a re-exec'd master under socket activation. Start the child through
   * {@link withListenPid} so that `LISTEN_PID` is its own pid.
   */
  systemd?: boolean;
}

export interface Handoff {
  /** The master's descriptors, in order, to append to `spawn`'s `stdio` from slot `firstFd`. */
  stdio: number[];
  /** Variables that tell the child which slots hold which listeners. */
  env: Record<string, string>;
}

/**
 * What a child needs to adopt the listeners: spawn it with
 * `stdio: ['inherit', 'inherit', 'inherit', ...handoff.stdio]` and `env: {...env, ...handoff.env}`.
 * `ARB_FD` lists the child's slot numbers (`3,4`), in bind order.
 */
export function handoff(listeners: readonly Listener[], options: HandoffOptions = {}): Handoff {
  const first = options.firstFd ?? 3;
  const slots = listeners.map((_, i) => first + i);
  const stdio = listeners.map((l) => l.fd);
  if (options.systemd) {
    if (first !== 3) throw new RangeError('systemd hands descriptors over from fd 3');
    return {
      stdio,
      env: {
        LISTEN_FDS: String(listeners.length),
        LISTEN_FDNAMES: listeners.map((l) => l.name ?? 'unknown').join(':'),
      },
    };
  }
  const backlog = Math.max(0, ...listeners.map((l) => l.backlog));
  return {
    stdio,
    env: {
      ARB_FD: slots.join(','),
      ARB_LISTENERS: encodeList(listeners.map((l) => l.address)),
      ARB_BACKLOG: String(backlog),
    },
  };
}

/**
 * `[file, args]` for `spawn` that runs `command args…` with `LISTEN_PID` set to the new
 * process's own pid: spawn cannot know the pid in advance, so a shell sets it and execs
 * in place, keeping the pid.
 */
export function withListenPid(command: string, args: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'sh', command, ...args]];
}
