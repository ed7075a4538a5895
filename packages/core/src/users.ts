import fs from 'node:fs';

/**
 * The primary group of a uid, from `/etc/passwd`; throws naming the uid when it has no
 * entry (a worker must never keep the master's group by accident).
 */
export function primaryGid(uid: number, passwd = '/etc/passwd'): number {
  let text = '';
  try {
    text = fs.readFileSync(passwd, 'utf8');
  } catch {
    // no database: the error below
  }
  for (const line of text.split('\n')) {
    const [, , id, gid] = line.split(':');
    if (id === String(uid) && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`user ${uid} has no entry in ${passwd}: give a group (-g) explicitly`);
}
