/** systemd passes socket-activated descriptors starting here. */
export const SD_LISTEN_FDS_START = 3;

export interface ListenFdsOptions {
  env?: NodeJS.ProcessEnv;
  /** Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES once read. Default true. */
  unsetEnv?: boolean;
  pid?: number;
}

/** Descriptors systemd passed to this process, with their `LISTEN_FDNAMES` names. */
export interface SystemdFds {
  fds: number[];
  names: (string | undefined)[];
}

/**
 * systemd socket activation: the descriptors meant for this process, or none. When
 * `LISTEN_PID` is not this process the variables were meant for another (a parent that
 * leaked them) and are left untouched, whatever `unsetEnv` says, as gunicorn and libsystemd do.
 */
export function systemdFds(options: ListenFdsOptions = {}): SystemdFds {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const count = Number.parseInt(env.LISTEN_FDS ?? '0', 10);
  if (Number.parseInt(env.LISTEN_PID ?? '0', 10) !== pid) return { fds: [], names: [] };
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  if (options.unsetEnv ?? true) {
    delete env.LISTEN_PID;
    delete env.LISTEN_FDS;
    delete env.LISTEN_FDNAMES;
  }
  if (!Number.isInteger(count) || count <= 0) return { fds: [], names: [] };
  const fds = Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
  return { fds, names: fds.map((_, i) => (names[i] ? names[i] : undefined)) };
}

/** gunicorn's `systemd.listen_fds()`: how many descriptors systemd passed to this process. */
export function listenFds(options: ListenFdsOptions = {}): number {
  return systemdFds(options).fds.length;
}
