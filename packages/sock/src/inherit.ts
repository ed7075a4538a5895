import { InheritError } from './errors.js';
import { handleKind, openFdHandle, tcpName } from './handle.js';
import {
  type Listener,
  type ListenerOrigin,
  register,
  tcpListenerFields,
  unixListenerFields,
} from './listener.js';
import { describeSocket } from './proc-net.js';

export interface InheritOptions {
  backlog: number;
  origin: Exclude<ListenerOrigin, 'bound'>;
  /** The address when known (from ARB_LISTENERS), e.g. `unix:/run/app.sock`. */
  address?: string;
  name?: string;
}

/**
 * Takes over a listening descriptor this process inherited (fd://N, a re-exec'd master's
 * ARB_FD, systemd's LISTEN_FDS). It is never unlinked by arb: its file belongs to whoever
 * created it.
 */
export function inheritFd(fd: number, options: InheritOptions): Listener {
  const info = describeSocket(fd);
  if (info.kind === 'unix' && info.path === '' && !info.listening) {
    throw new InheritError(fd, 'a connected socket (a pipe), not a listener');
  }
  const opened = openFdHandle(fd);
  if ('errno' in opened) {
    throw new InheritError(fd, `not a TCP or unix stream socket (${opened.errno})`);
  }
  const { handle } = opened;
  const common = { fd, backlog: options.backlog, origin: options.origin, name: options.name };
  if (handleKind(handle) === 'tcp') {
    const n = tcpName(handle);
    if ('errno' in n) {
      handle.close();
      throw new InheritError(fd, `getsockname failed (${n.errno})`);
    }
    return register({ ...tcpListenerFields(n.host, n.port, n.family), ...common }, { handle });
  }
  const path = options.address?.startsWith('unix:')
    ? options.address.slice(5)
    : info.kind === 'unix' && info.path
      ? info.path
      : `fd://${fd}`;
  return register({ ...unixListenerFields(path), ...common }, { handle });
}
