import fs from 'node:fs';
import { ConfigError } from './errors.js';

/** A user or group given by name or number, as a numeric id (names from /etc/passwd, /etc/group). */
export function resolveId(
  kind: 'user' | 'group',
  value: string | number | undefined,
): number | undefined {
  if (value === undefined || typeof value === 'number') return value;
  const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    // no such database: fall through to the error below
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name === value && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  throw new ConfigError('config', [`${kind}: no ${kind} named ${JSON.stringify(value)}`]);
}
