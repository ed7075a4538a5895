/** Environment variables that carry a companion's ids to the process that switches to them. */
export const UID_ENV = 'ARB_COMPANION_UID';
export const GID_ENV = 'ARB_COMPANION_GID';

/**
 * Switch this process to `uid`/`gid` for good, the way nginx and supervisord do: the
 * supplementary groups of that user (initgroups, plus `gid`), then the group, then the
 * user (the order matters: after setuid the rest is no longer allowed). A uid without a
 * passwd entry gets `gid` alone as its groups.
 */
export function dropPrivileges(uid: number | null, gid: number | null): void {
  if (gid !== null) {
    if (uid === null) process.setgroups!([gid]);
    else {
      // POSIX-only, and missing from @types/node 20's Process.
      const p = process as { initgroups?: (user: number, group: number) => void };
      try {
        p.initgroups!(uid, gid);
      } catch {
        // A uid without a passwd entry has no groups to look up.
        process.setgroups!([gid]);
      }
    }
    process.setgid!(gid);
  }
  if (uid !== null) process.setuid!(uid);
}

/** Reads and removes the ids set by the manager (`UID_ENV`/`GID_ENV`), then switches to them. */
export function dropFromEnv(): void {
  const num = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  const uid = num(process.env[UID_ENV]);
  const gid = num(process.env[GID_ENV]);
  delete process.env[UID_ENV];
  delete process.env[GID_ENV];
  if (uid !== null || gid !== null) dropPrivileges(uid, gid);
}
