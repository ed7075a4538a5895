import { lstatSync } from 'node:fs';

/**
 * A file a process created and may remove later only if it is still that very file: same
 * device and inode (decimal strings: inode numbers can exceed 2^53), so a file another
 * process put at the same path since is never removed.
 */
export interface OwnedFile {
  readonly path: string;
  readonly dev: string;
  readonly ino: string;
}

/** Identity of the file at `path` now (not following a symlink), or null when there is none. */
export function fileIdentity(path: string): OwnedFile | null {
  try {
    const st = lstatSync(path, { bigint: true });
    return { path, dev: st.dev.toString(), ino: st.ino.toString() };
  } catch {
    return null;
  }
}

/** True when `file` is still at its path (same device and inode). */
export function stillOwned(file: OwnedFile): boolean {
  const now = fileIdentity(file.path);
  return now !== null && now.dev === file.dev && now.ino === file.ino;
}
