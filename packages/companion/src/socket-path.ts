import { lstatSync, type Stats } from 'node:fs';
import { SocketPathError } from '@arb/sock';

/**
 * Throws `SocketPathError` when `path` exists and is not a unix socket (a regular file, a
 * directory...): such a path is never replaced, and refusing it before anything is started
 * turns a manager that would fail to bind on every respawn into one clear error.
 */
export function refuseNonSocket(path: string): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there (or unreadable: binding reports it)
  }
  if (!st.isSocket()) {
    const what = st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket';
    throw new SocketPathError(path, `it is ${what}; not replacing it`);
  }
}
