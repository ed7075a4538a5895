import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every depth, so equal values always serialise equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const src = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(src).sort().map((k) => [k, src[k]]));
    }
    return v;
  });
}

/** SHA-256 (hex) of the canonical JSON of a value. */
export function hashCanonical(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
