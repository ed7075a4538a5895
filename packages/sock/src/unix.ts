import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BindError } from './errors.js';
import { bindPipeHandle, type RawHandle } from './handle.js';

/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_PATH_BYTES = 107;

export interface UnixBindOptions {
  /** Umask applied while the socket file is created (the file gets `0o777 & ~umask`). */
  umask?: number;
  uid?: number;
  gid?: number;
  /** How long the liveness probe of an existing socket file may take. */
  probeTimeout?: number;
}

export interface BoundUnix {
  handle: RawHandle;
  path: string;
  ownFile: { dev: number; ino: number };
}

/**
 * Creates a unix listener at `socketPath` (resolved against the cwd) without listening.
 *
 * The socket is bound under a temporary name in the same directory and renamed into place:
 * libuv remembers the name it bound and unlinks it when the handle closes (or when Node
 * tears its handles down at exit), so binding under the real name would delete the file on
 * every close. The rename also replaces a stale socket atomically, and applies mode and owner
 * before any client can see the path.
 */
export async function bindUnix(
  socketPath: string,
  options: UnixBindOptions = {},
): Promise<BoundUnix> {
  const abs = path.resolve(socketPath);
  const address = `unix:${abs}`;
  const bytes = Buffer.byteLength(abs);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw new BindError(
      address,
      `path too long (${bytes} bytes; unix sockets allow ${MAX_UNIX_PATH_BYTES})`,
      'ENAMETOOLONG',
    );
  }
  const dir = path.dirname(abs);
  checkDirectory(address, dir);
  await checkExisting(address, abs, options.probeTimeout ?? 1000);

  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = temporaryName(dir, bytes);
    const previous = options.umask === undefined ? undefined : process.umask(options.umask);
    let result: ReturnType<typeof bindPipeHandle>;
    try {
      result = bindPipeHandle(tmp);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    if ('errno' in result) {
      if (result.errno === 'EADDRINUSE') continue; // the random name was taken: pick another
      throw new BindError(address, describe(result.errno), result.errno);
    }
    try {
      if (options.uid !== undefined || options.gid !== undefined) {
        fs.chownSync(tmp, options.uid ?? -1, options.gid ?? -1);
      }
      fs.renameSync(tmp, abs);
      const st = fs.statSync(abs);
      return { handle: result.handle, path: abs, ownFile: { dev: st.dev, ino: st.ino } };
    } catch (err) {
      result.handle.close();
      fs.rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException;
      throw new BindError(address, e.message, e.code);
    }
  }
  throw new BindError(address, `could not create a temporary socket in ${dir}`, 'EADDRINUSE');
}

function checkDirectory(address: string, dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BindError(address, `directory ${dir} does not exist`, code);
    throw new BindError(address, `cannot use directory ${dir}: ${code}`, code);
  }
  if (!st.isDirectory()) throw new BindError(address, `${dir} is not a directory`, 'ENOTDIR');
}

/** Refuses a path that holds a live socket or a non-socket; a stale socket is left to replace. */
async function checkExisting(address: string, abs: string, timeout: number): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new BindError(address, `${abs} exists and is not a socket; not replacing it`, 'EEXIST');
  }
  if (await isLive(abs, timeout)) {
    throw new BindError(
      address,
      'address in use (another process is listening on it)',
      'EADDRINUSE',
    );
  }
}

/** True when something accepts connections on the socket file (or is too busy to answer). */
export function isLive(socketPath: string, timeout = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    const done = (live: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(live);
    };
    // A listener whose backlog is full does not answer: treat it as live, never delete it.
    const timer = setTimeout(() => done(true), timeout);
    conn.once('connect', () => done(true));
    conn.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'EAGAIN'));
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

function describe(errno: string): string {
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
