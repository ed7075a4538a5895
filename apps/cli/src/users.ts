import { lookupGroup, lookupUser } from '@arb/sock';
import { ConfigError } from './errors.js';

/** A user or group given by name or number, as a numeric id (names from /etc/passwd, /etc/group). */
export function resolveId(
  kind: 'user' | 'group',
  value: string | number | undefined,
): number | undefined {
  if (value === undefined || typeof value === 'number') return value;
  const id = kind === 'user' ? lookupUser(value)?.uid : lookupGroup(value);
  if (id !== undefined) return id;
  throw new ConfigError('config', [`${kind}: no ${kind} named ${JSON.stringify(value)}`]);
}
