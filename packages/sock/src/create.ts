import { type ParsedAddress, parseAddress } from './address.js';
import { type BindOptions, bind, DEFAULT_BACKLOG } from './bind.js';
import { closeListeners } from './close.js';
import { decodeList, parseFdList } from './env-codec.js';
import { InheritError } from './errors.js';
import { inheritFd } from './inherit.js';
import type { Listener } from './listener.js';
import { assertReusePort } from './reuse-port.js';
import { systemdFds } from './systemd.js';

export interface CreateListenersOptions extends BindOptions {
  /** The configured addresses. */
  bind: ReadonlyArray<string>;
  env?: NodeJS.ProcessEnv;
  pid?: number;
}

export interface MasterListeners {
  listeners: Listener[];
  /** Socket-activated: systemd owns the sockets and their files. */
  systemd: boolean;
}

/**
 * The master's listeners, by gunicorn's precedence: systemd's `LISTEN_FDS` (for this pid)
 * wins; else a re-exec'd master (`ARB_PID` set) takes `ARB_FD`; `fd://N` entries are added
 * to either. When any descriptor was inherited, the other configured addresses are not
 * bound (the inherited sockets are the service). Otherwise every address is bound.
 * Consumes the variables it reads.
 */
export async function createListeners(options: CreateListenersOptions): Promise<MasterListeners> {
  const env = options.env ?? process.env;
  const parsed: ParsedAddress[] = options.bind.map((a) => parseAddress(a));
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  const sd = systemdFds({ env, pid: options.pid });
  if (options.reusePort) assertReusePort();

  const made: Listener[] = [];
  try {
    if (sd.fds.length > 0) {
      sd.fds.forEach((fd, i) => {
        made.push(inheritFd(fd, { backlog, origin: 'systemd', name: sd.names[i] }));
      });
    } else if (env.ARB_PID && env.ARB_FD !== undefined) {
      const fds = parseFdList(env.ARB_FD);
      if (!fds)
        throw new InheritError(-1, `ARB_FD=${JSON.stringify(env.ARB_FD)} is not a list of fds`);
      const addresses = decodeList(env.ARB_LISTENERS ?? '');
      fds.forEach((fd, i) => {
        made.push(inheritFd(fd, { backlog, origin: 'inherited', address: addresses[i] }));
      });
      delete env.ARB_FD;
      delete env.ARB_LISTENERS;
      delete env.ARB_BACKLOG;
    }
    for (const a of parsed)
      if (a.kind === 'fd') made.push(inheritFd(a.fd, { backlog, origin: 'inherited' }));
  } catch (err) {
    closeListeners(made, { unlink: false });
    throw err;
  }
  if (made.length > 0) return { listeners: made, systemd: sd.fds.length > 0 };
  return { listeners: await bind(parsed, options), systemd: false };
}
