import type { RawHandle } from './handle.js';
import type { SocketFileId } from './unix.js';

/** Where a listener came from, which decides whether arb may ever unlink its socket file. */
export type ListenerOrigin = 'bound' | 'inherited' | 'systemd';

/**
 * A listening socket held by the master: bound (or inherited) but never accepted on here.
 * Children receive `fd` through `spawn`'s `stdio` array (see `handoff`).
 */
export interface Listener {
  readonly kind: 'tcp' | 'unix';
  /** The master's descriptor number. */
  readonly fd: number;
  /** Canonical address with the real port: `127.0.0.1:8000`, `[::1]:8000`, `unix:/abs/path`. */
  readonly address: string;
  /** For logs: `http://127.0.0.1:8000`, `http://[::1]:8000`, `unix:/abs/path`. */
  readonly url: string;
  readonly host?: string;
  readonly port?: number;
  /** Absolute socket path of a unix listener. */
  readonly path?: string;
  /** The backlog every adopting child passes to `listen()`. */
  readonly backlog: number;
  readonly origin: ListenerOrigin;
  /** The systemd name (`LISTEN_FDNAMES`) of a socket-activated listener. */
  readonly name?: string;
}

interface Held {
  handle: RawHandle | undefined;
  /** Identity of the socket file this process created, for a safe unlink. */
  ownFile?: SocketFileId;
  closed: boolean;
}

const held = new WeakMap<Listener, Held>();

export function register(listener: Listener, state: Omit<Held, 'closed'>): Listener {
  held.set(listener, { ...state, closed: false });
  return Object.freeze(listener);
}

export function heldState(listener: Listener): Held | undefined {
  return held.get(listener);
}

export function tcpListenerFields(host: string, port: number, family: 4 | 6) {
  const hostPart = family === 6 ? `[${host}]` : host;
  return {
    kind: 'tcp' as const,
    host,
    port,
    address: `${hostPart}:${port}`,
    url: `http://${hostPart}:${port}`,
  };
}

export function unixListenerFields(path: string) {
  return { kind: 'unix' as const, path, address: `unix:${path}`, url: `unix:${path}` };
}
