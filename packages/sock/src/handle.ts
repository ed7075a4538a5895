import net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** The libuv TCP or Pipe handle behind a listener (Node-internal, not a net.Server). */
export interface RawHandle {
  readonly fd: number;
  close(callback?: () => void): void;
  getsockname?(out: Record<string, unknown>): number;
}

type CreateServerHandle = (
  address: string | undefined,
  port: number | undefined,
  addressType: number | undefined,
  fd?: number,
  flags?: number,
) => RawHandle | number;

// The helper node:cluster uses for shared handles: it binds (or wraps an fd) and never
// listens, so this process never accepts a connection meant for its children.
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })
  ._createServerHandle;

/** Result of a raw bind: the handle, or the system error name (`EADDRINUSE`, ...). */
export type RawResult = { handle: RawHandle } | { errno: string };

function wrap(result: RawHandle | number): RawResult {
  return typeof result === 'number' ? { errno: getSystemErrorName(result) } : { handle: result };
}

// libuv's UV_TCP_REUSEPORT bind flag (libuv >= 1.49, Node.js >= 22.12), which Node only
// sets from `listen({ reusePort })`; the constant is not exported, and it is ABI: it stays 2.
const UV_TCP_REUSEPORT = 2;

/**
 * Binds a TCP socket on an IP literal without listening. IPv6 sockets stay dual-stack.
 * With `reusePort` the socket gets SO_REUSEPORT first, so another process may bind the
 * same address and the kernel spreads connections over both (callers check the Node.js).
 */
export function bindTcpHandle(
  ip: string,
  port: number,
  family: 4 | 6,
  reusePort = false,
): RawResult {
  return wrap(createServerHandle(ip, port, family, undefined, reusePort ? UV_TCP_REUSEPORT : 0));
}

/** Binds a unix stream socket at `path` without listening. */
export function bindPipeHandle(path: string): RawResult {
  return wrap(createServerHandle(path, -1, -1));
}

/** Wraps an inherited descriptor; fails (EINVAL) unless it is a TCP or unix stream socket. */
export function openFdHandle(fd: number): RawResult {
  return wrap(createServerHandle(undefined, undefined, undefined, fd));
}

/** `TCP` or `Pipe`, the libuv handle kind Node picked for a wrapped descriptor. */
export function handleKind(handle: RawHandle): 'tcp' | 'unix' {
  return handle.constructor.name === 'Pipe' ? 'unix' : 'tcp';
}

/**
 * The local address of a TCP handle, or the system error name. libuv defers a TCP bind
 * error (EADDRINUSE) until the next call on the socket, so this is where it shows.
 */
export function tcpName(
  handle: RawHandle,
): { host: string; port: number; family: 4 | 6 } | { errno: string } {
  const out: Record<string, unknown> = {};
  const err = handle.getsockname?.(out) ?? -22;
  if (err !== 0) return { errno: getSystemErrorName(err) };
  return {
    host: String(out.address),
    port: Number(out.port),
    family: out.family === 'IPv6' || out.family === 6 ? 6 : 4,
  };
}
