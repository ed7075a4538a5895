import { lookupUser } from '@arb/sock';

/**
 * The primary group of a uid, from `/etc/passwd`; throws naming the uid when it has no
 * entry (a worker must never keep the master's group by accident).
 */
export function primaryGid(uid: number): number {
  const gid = lookupUser(uid)?.gid;
  if (gid === undefined || gid === null) {
    throw new Error(`user ${uid} has no entry in /etc/passwd: give a group (-g) explicitly`);
  }
  return gid;
}
