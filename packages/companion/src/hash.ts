import { createRequire } from 'node:module';

// node:crypto costs 3 MB of RSS: the master loads it only when it has companions to hash.
const require = createRequire(import.meta.url);
const sha256 = (text: string): string =>
  (require('node:crypto') as typeof import('node:crypto'))
    .createHash('sha256')
    .update(text)
    .digest('hex');

import type { CompanionConfig } from './config.js';

/** JSON with object keys sorted at every depth, so equal values always serialise equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const src = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(src)
          .sort()
          .map((k) => [k, src[k]]),
      );
    }
    return v;
  });
}

/** SHA-256 (hex) of the canonical JSON of a value. */
export function hashCanonical(value: unknown): string {
  return sha256(canonicalJson(value));
}

/**
 * Fingerprint of one companion: SHA-256 of the canonical JSON of every resolved field
 * (command or target, cwd, env, signals, timeouts, output, restart policy). Equal configs
 * hash equal whatever the key order; any change that alters how the process is run or
 * supervised changes the hash, so `reread` restarts it.
 */
export function configHash(config: CompanionConfig): string {
  return hashCanonical(config);
}

/**
 * Identity of a manager for the arbiter's reload comparison: the sorted config hashes
 * joined by `,` (order of companions does not matter). Pass the control socket path too so
 * that moving the socket also counts as a change.
 */
export function managerIdentity(
  configs: readonly CompanionConfig[],
  extra: { socket?: string | null } = {},
): string {
  const ids = configs.map(configHash).sort();
  if (extra.socket) ids.push(`socket=${extra.socket}`);
  return ids.join(',');
}
