import fs from 'node:fs';
import type { Server } from 'node:net';
import { decodeList, parseFdList } from './env-codec.js';
import { InheritError } from './errors.js';
import { describeSocket } from './proc-net.js';
import { systemdFds } from './systemd.js';

/** A listener a child process found among its descriptors, ready for `server.listen({ fd })`. */
export interface AdoptedListener {
  readonly fd: number;
  readonly kind: 'tcp' | 'unix';
  /** `127.0.0.1:8000`, `[::1]:8000`, `unix:/path`, or `fd://N` when nothing tells. */
  readonly address: string;
  /** The backlog the master asked for (ARB_BACKLOG); systemd sockets carry their own. */
  readonly backlog?: number;
  /** The systemd name from `LISTEN_FDNAMES`. */
  readonly name?: string;
  readonly source: 'arb' | 'systemd';
}

export interface AdoptOptions {
  env?: NodeJS.ProcessEnv;
  /** Remove the variables once read, so grandchildren do not see them. Default true. */
  unsetEnv?: boolean;
  pid?: number;
}

/**
 * The listeners handed to this process: systemd's (`LISTEN_FDS` for this pid) or arb's
 * (`ARB_FD`, `ARB_LISTENERS`, `ARB_BACKLOG`). Empty when there are none. Throws
 * {@link InheritError} when a listed descriptor is not a socket.
 */
export function adopt(options: AdoptOptions = {}): AdoptedListener[] {
  const env = options.env ?? process.env;
  const unset = options.unsetEnv ?? true;
  const sd = systemdFds({ env, unsetEnv: unset, pid: options.pid });
  if (sd.fds.length > 0) {
    return sd.fds.map((fd, i) => ({
      ...describe(fd, undefined),
      name: sd.names[i],
      source: 'systemd',
    }));
  }
  if (env.ARB_FD === undefined) return [];
  const fds = parseFdList(env.ARB_FD);
  if (!fds) throw new InheritError(-1, `ARB_FD=${JSON.stringify(env.ARB_FD)} is not a list of fds`);
  const addresses = decodeList(env.ARB_LISTENERS ?? '');
  const backlog = env.ARB_BACKLOG ? Number(env.ARB_BACKLOG) : undefined;
  if (unset) {
    delete env.ARB_FD;
    delete env.ARB_LISTENERS;
    delete env.ARB_BACKLOG;
  }
  return fds.map((fd, i) => ({
    ...describe(fd, addresses.length === fds.length ? addresses[i] : undefined),
    backlog: Number.isInteger(backlog) ? backlog : undefined,
    source: 'arb',
  }));
}

function describe(
  fd: number,
  address: string | undefined,
): { fd: number; kind: 'tcp' | 'unix'; address: string } {
  let isSocket: boolean;
  try {
    isSocket = fs.fstatSync(fd).isSocket();
  } catch (err) {
    throw new InheritError(fd, `not open (${(err as NodeJS.ErrnoException).code})`);
  }
  if (!isSocket) throw new InheritError(fd, 'not a socket');
  if (address) return { fd, kind: address.startsWith('unix:') ? 'unix' : 'tcp', address };
  const info = describeSocket(fd);
  switch (info.kind) {
    case 'unix':
      return { fd, kind: 'unix', address: `unix:${info.path}` };
    case 'tcp':
      return {
        fd,
        kind: 'tcp',
        address: info.family === 6 ? `[${info.host}]:${info.port}` : `${info.host}:${info.port}`,
      };
    default:
      return { fd, kind: 'tcp', address: `fd://${fd}` };
  }
}

/**
 * Starts `server` accepting on an adopted listener (this performs `listen(2)` with the
 * backlog the master chose). Resolves once listening.
 */
export function listenOn(
  server: Server,
  listener: Pick<AdoptedListener, 'fd' | 'backlog'>,
  defaultBacklog = 2048,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    // With `fd`, Node reads the backlog only from the positional argument, never from the
    // options object (it would silently use 511).
    server.listen({ fd: listener.fd }, listener.backlog ?? defaultBacklog, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
