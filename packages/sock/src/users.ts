// The passwd and group databases, read the way every arb process needs them: the owner of
// a unix socket file, the user and group of the workers and of each companion.
import { readFileSync } from 'node:fs';

/** A user from the passwd database: its id and primary group. */
export interface UserEntry {
  readonly uid: number;
  readonly gid: number;
}

function rows(file: string): string[][] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No database (a bare container): only numeric ids resolve.
  }
  return text.split('\n').map((line) => line.split(':'));
}

/**
 * A user given by name or number. The primary group is null for a numeric uid that has no
 * passwd entry; undefined when a name is unknown.
 */
export function lookupUser(
  value: string | number,
): { uid: number; gid: number | null } | undefined {
  const byId = typeof value === 'number' || /^\d+$/.test(value);
  for (const [name, , uid, gid] of rows('/etc/passwd')) {
    if (uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid))
      continue;
    if (byId ? Number(uid) === Number(value) : name === value)
      return { uid: Number(uid), gid: Number(gid) };
  }
  return byId ? { uid: Number(value), gid: null } : undefined;
}

/** A group given by name or number, as its id; undefined when a name is unknown. */
export function lookupGroup(value: string | number): number | undefined {
  if (typeof value === 'number' || /^\d+$/.test(value)) return Number(value);
  for (const [name, , gid] of rows('/etc/group')) {
    if (name === value && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}
