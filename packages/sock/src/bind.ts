import { lookup } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, type ParsedAddress, parseAddress, type TcpAddress } from './address.js';
import { closeListeners } from './close.js';
import { BindError } from './errors.js';
import { bindTcpHandle, tcpName } from './handle.js';
import { inheritFd } from './inherit.js';
import { type Listener, register, tcpListenerFields, unixListenerFields } from './listener.js';
import { tcpListenerPid } from './proc-net.js';
import { assertReusePort } from './reuse-port.js';
import { bindUnix } from './unix.js';

export const DEFAULT_BACKLOG = 2048;

export interface BindOptions {
  /** Backlog the adopting children pass to `listen()`. Default 2048. */
  backlog?: number;
  /** Umask while unix socket files are created. Default: the process umask. */
  umask?: number;
  /** Owner of unix socket files. Default: this process's. */
  uid?: number;
  gid?: number;
  /**
   * Attempts for an address that is in use or not available, 1 s (`retryDelay`) apart.
   * Default 5, as gunicorn; 1 fails at once.
   */
  retries?: number;
  /** Pause between attempts, in milliseconds. Default 1000. */
  retryDelay?: number;
  /**
   * SO_REUSEPORT on every TCP socket (gunicorn's `reuse_port`): another process, a second
   * arb or the other half of a blue/green pair, can bind the same address and both serve.
   * Needs Node.js >= 22.12; refused with `ReusePortError` before.
   */
  reusePort?: boolean;
  /** Told about each failed attempt that will be retried. */
  onRetry?: (error: BindError, attempt: number) => void;
}

const RETRYABLE = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

/**
 * Binds every address, in order, without listening: the sockets exist and keep their port,
 * but this process never accepts; children adopt them (see `handoff`). On any failure the
 * listeners already made are closed (and their files removed) before the error is thrown.
 *
 * With `reusePort` the TCP sockets are bound with SO_REUSEPORT; on a Node.js without that
 * option it throws `ReusePortError` before binding anything.
 */
export async function bind(
  addresses: ReadonlyArray<string | ParsedAddress>,
  options: BindOptions = {},
): Promise<Listener[]> {
  const parsed = addresses.map((a) => (typeof a === 'string' ? parseAddress(a) : a));
  if (options.reusePort) assertReusePort();
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  const made: Listener[] = [];
  try {
    for (const address of parsed) made.push(await bindOne(address, backlog, options));
  } catch (err) {
    closeListeners(made, { unlink: true });
    throw err;
  }
  return made;
}

async function bindOne(address: ParsedAddress, backlog: number, options: BindOptions) {
  if (address.kind === 'fd') return inheritFd(address.fd, { backlog, origin: 'inherited' });
  const attempts = Math.max(1, options.retries ?? 5);
  const delay = options.retryDelay ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return address.kind === 'unix'
        ? await bindUnixListener(address.path, backlog, options)
        : await bindTcpListener(address, backlog, options.reusePort === true);
    } catch (err) {
      if (!(err instanceof BindError) || !RETRYABLE.has(err.errno ?? '')) throw err;
      if (attempt >= attempts) {
        if (attempts === 1) throw err;
        throw new BindError(
          err.address,
          `${err.reason} (gave up after ${attempts} attempts)`,
          err.errno,
          err.pid,
        );
      }
      options.onRetry?.(err, attempt);
      await sleep(delay);
    }
  }
}

async function bindUnixListener(path: string, backlog: number, options: BindOptions) {
  const bound = await bindUnix(path, options);
  return register(
    { ...unixListenerFields(bound.path), fd: bound.handle.fd, backlog, origin: 'bound' },
    { handle: bound.handle, ownFile: bound.ownFile },
  );
}

async function bindTcpListener(address: TcpAddress, backlog: number, reusePort: boolean) {
  const text = formatAddress(address);
  const { ip, family } = await resolve(address, text);
  const result = bindTcpHandle(ip, address.port, family, reusePort);
  if ('errno' in result) throw tcpBindError(text, ip, address.port, result.errno);
  const name = tcpName(result.handle);
  if ('errno' in name) {
    result.handle.close();
    throw tcpBindError(text, ip, address.port, name.errno);
  }
  return register(
    {
      ...tcpListenerFields(name.host, name.port, name.family),
      fd: result.handle.fd,
      backlog,
      origin: 'bound',
    },
    { handle: result.handle },
  );
}

async function resolve(address: TcpAddress, text: string): Promise<{ ip: string; family: 4 | 6 }> {
  if (address.family !== 0) return { ip: address.host, family: address.family };
  try {
    // IPv4 first, like gunicorn (which binds host names as AF_INET only).
    const all = await lookup(address.host, { all: true });
    const pick = all.find((a) => a.family === 4) ?? all[0];
    if (!pick) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
    return { ip: pick.address, family: pick.family === 6 ? 6 : 4 };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
    throw new BindError(text, `cannot resolve host '${address.host}' (${code})`, code);
  }
}

/** The error for a failed TCP bind; an address in use names the process on it when it can. */
function tcpBindError(text: string, ip: string, port: number, errno: string): BindError {
  const pid = errno === 'EADDRINUSE' ? tcpListenerPid(ip, port) : undefined;
  const reason = describeTcp(errno) + (pid === undefined ? '' : ` (by pid ${pid})`);
  return new BindError(text, reason, errno, pid);
}

function describeTcp(errno: string): string {
  switch (errno) {
    case 'EADDRINUSE':
      return 'address in use';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    default:
      return errno;
  }
}
