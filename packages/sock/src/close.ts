import fs from 'node:fs';
import { heldState, type Listener } from './listener.js';
import { socketFileId, unlinkSocketIfOurs } from './unix.js';

export interface CloseOptions {
  /**
   * Remove unix socket files this process created. Never removes a file arb did not
   * create (inherited, systemd), nor one that another process has since put at the path.
   */
  unlink: boolean;
}

/** Closes listeners in this process. Safe to call twice; children keep their copies. */
export function closeListeners(listeners: readonly Listener[], options: CloseOptions): void {
  for (const listener of listeners) {
    const state = heldState(listener);
    if (state?.closed) continue;
    if (state) state.closed = true;
    if (state?.handle) state.handle.close();
    else {
      try {
        fs.closeSync(listener.fd);
      } catch {
        // already closed by its owner
      }
    }
    if (options.unlink && state?.ownFile && listener.path)
      unlinkSocketIfOurs(listener.path, state.ownFile);
  }
}

/**
 * A promoted master (after a USR2 upgrade) takes over the socket file of a unix listener
 * it inherited from the master that created it, so that its own final stop removes the
 * file, as gunicorn's promoted master does. Records the inode at the path now (the
 * previous master is gone and never unlinks during an upgrade). Returns whether it did:
 * only for `inherited` unix listeners whose path holds a socket.
 */
export function claimSocketFile(listener: Listener): boolean {
  const state = heldState(listener);
  if (!state || listener.kind !== 'unix' || !listener.path || listener.origin !== 'inherited') {
    return false;
  }
  try {
    const st = fs.lstatSync(listener.path);
    if (!st.isSocket()) return false;
    state.ownFile = socketFileId(listener.path);
    return state.ownFile !== undefined;
  } catch {
    return false;
  }
}
