import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SocketInUseError, SocketPathError } from './errors.js';
import { bindPipeHandle, type RawHandle } from './handle.js';

/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_PATH_BYTES = 107;

/**
 * Who a socket file is: device, inode and times. Inode numbers alone are reused at once on
 * tmpfs, so a file created at the same path after ours was removed could pass for ours.
 */
export type SocketFileId = string;

export interface ClaimOptions {
  /** Umask applied while the socket file is created (the file gets `0o777 & ~umask`). */
  umask?: number;
  /** Mode set on the file before it appears at the path (e.g. 0o600); wins over `umask`. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** How long the liveness probe of an existing socket file may take. Default 1000 ms. */
  probeTimeout?: number;
}

/** What {@link claimSocketPath} bound: the binder's result and the file now at `path`. */
export interface ClaimedSocket<T> {
  value: T;
  /** Absolute path of the socket file. */
  path: string;
  id: SocketFileId;
}

/**
 * Binds a unix socket at `socketPath` (resolved against the cwd) and owns the file.
 *
 * The socket is bound under a temporary name in the same directory, given its mode and
 * owner, then renamed into place: no client ever sees the path with another mode, a stale
 * socket is replaced atomically, and libuv, which unlinks the name it bound when the
 * handle closes (or when Node exits), unlinks a name that no longer exists instead of the
 * real path. A live socket (see {@link isSocketLive}) is refused with `SocketInUseError`;
 * a regular file or a directory at the path with `SocketPathError`: neither is touched.
 *
 * `bind(tmpPath)` must create the socket file before it returns (`net.Server#listen` and
 * libuv's bind do): the umask is in force only during that call. It may then settle
 * later; a rejection with `code: 'EADDRINUSE'` means the random name was taken and another
 * is tried. `release(value)` undoes a bind that could not be renamed into place.
 */
export async function claimSocketPath<T>(
  socketPath: string,
  bind: (tmpPath: string) => Promise<T>,
  release: (value: T) => void,
  options: ClaimOptions = {},
): Promise<ClaimedSocket<T>> {
  const abs = path.resolve(socketPath);
  const bytes = Buffer.byteLength(abs);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw new SocketPathError(
      abs,
      `path too long (${bytes} bytes; unix sockets allow ${MAX_UNIX_PATH_BYTES})`,
      'ENAMETOOLONG',
    );
  }
  const dir = path.dirname(abs);
  checkDirectory(abs, dir);
  await checkExisting(abs, options.probeTimeout ?? 1000);
  const umask = options.mode === undefined ? options.umask : 0o777 & ~options.mode;

  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = temporaryName(dir, bytes);
    let bound: Promise<T>;
    const previous = umask === undefined ? undefined : process.umask(umask);
    try {
      bound = bind(tmp);
    } catch (err) {
      bound = Promise.reject(err);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    let value: T;
    try {
      value = await bound;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE') continue; // the random name was taken: pick another
      throw new SocketPathError(abs, describe(e.code) ?? e.message, e.code);
    }
    try {
      if (options.mode !== undefined) fs.chmodSync(tmp, options.mode);
      if (options.uid !== undefined || options.gid !== undefined) {
        fs.chownSync(tmp, options.uid ?? -1, options.gid ?? -1);
      }
      fs.renameSync(tmp, abs);
      return { value, path: abs, id: socketFileId(abs)! };
    } catch (err) {
      release(value);
      fs.rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException;
      throw new SocketPathError(abs, e.message, e.code);
    }
  }
  throw new SocketPathError(abs, `could not create a temporary socket in ${dir}`, 'EADDRINUSE');
}

export interface BoundUnix {
  handle: RawHandle;
  path: string;
  ownFile: SocketFileId;
}

/** A unix listener at `socketPath`, bound without listening (see {@link claimSocketPath}). */
export async function bindUnix(socketPath: string, options: ClaimOptions = {}): Promise<BoundUnix> {
  const claimed = await claimSocketPath(
    socketPath,
    async (tmp) => {
      const result = bindPipeHandle(tmp);
      if ('errno' in result) throw Object.assign(new Error(result.errno), { code: result.errno });
      return result.handle;
    },
    (handle) => handle.close(),
    options,
  );
  return { handle: claimed.value, path: claimed.path, ownFile: claimed.id };
}

/** The identity of the file at `socketPath`, or undefined when there is none. */
export function socketFileId(socketPath: string): SocketFileId | undefined {
  try {
    const st = fs.lstatSync(socketPath, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.birthtimeNs}`;
  } catch {
    return undefined;
  }
}

/** Removes the socket file at `socketPath` if it is still the one identified by `id`. */
export function unlinkSocketIfOurs(socketPath: string, id: SocketFileId): boolean {
  if (socketFileId(socketPath) !== id) return false;
  try {
    fs.unlinkSync(socketPath);
    return true;
  } catch {
    return false; // gone already
  }
}

function checkDirectory(abs: string, dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SocketPathError(abs, `directory ${dir} does not exist`, code);
    throw new SocketPathError(abs, `cannot use directory ${dir}: ${code}`, code);
  }
  if (!st.isDirectory()) throw new SocketPathError(abs, `${dir} is not a directory`, 'ENOTDIR');
}

/** Refuses a path that holds a live socket or a non-socket; a stale socket is left to replace. */
async function checkExisting(abs: string, timeout: number): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new SocketPathError(abs, `cannot inspect it: ${code}`, code);
  }
  if (!st.isSocket()) {
    const what = st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket';
    throw new SocketPathError(
      abs,
      `${abs} exists and is not a socket (${what}); not replacing it`,
      'EEXIST',
    );
  }
  if (await isSocketLive(abs, timeout)) throw new SocketInUseError(abs);
}

/**
 * True when the socket file at `socketPath` may belong to a live server: something accepts
 * on it, it does not answer within `timeout` ms (a full backlog), or we may not connect to
 * it (EACCES, EPERM: another user's server is still a server). False only when nothing
 * listens there (ECONNREFUSED) or nothing is there (ENOENT): only then may it be replaced.
 */
export function isSocketLive(socketPath: string, timeout = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    const done = (live: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), timeout);
    conn.once('connect', () => done(true));
    conn.once('error', (err: NodeJS.ErrnoException) =>
      done(!(err.code === 'ECONNREFUSED' || err.code === 'ENOENT')),
    );
  });
}

/** A random name in `dir` no longer than the final path, so it fits wherever that fits. */
function temporaryName(dir: string, maxBytes: number): string {
  const room = maxBytes - Buffer.byteLength(dir) - 1;
  const length = Math.max(1, Math.min(12, room));
  const name = `.${randomHex(16)}`.slice(0, length);
  return path.join(dir, name === '.' ? randomHex(1) : name);
}

/**
 * Hex digits from Math.random: a temporary name only has to differ from its neighbours' (a
 * clash fails the bind, it never takes another socket), and node:crypto would cost a master
 * that binds a unix socket 3 MB of RSS.
 */
function randomHex(length: number): string {
  let out = '';
  while (out.length < length) out += Math.random().toString(16).slice(2);
  return out.slice(0, length);
}

function describe(errno: string | undefined): string | undefined {
  switch (errno) {
    case 'EACCES':
      return 'permission denied';
    case 'ENOENT':
      return 'directory does not exist';
    case 'EROFS':
      return 'read-only file system';
    default:
      return errno;
  }
}
