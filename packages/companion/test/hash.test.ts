import { describe, expect, it } from 'vitest';
import { canonicalJson, hashCanonical } from '../src/index.js';

describe('canonical hashing', () => {
  it('ignores key order at every depth', () => {
    const a = { name: 'jobs', env: { B: '2', A: '1' }, command: ['node', 'x.js'] };
    const b = { command: ['node', 'x.js'], env: { A: '1', B: '2' }, name: 'jobs' };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(hashCanonical(a)).toBe(hashCanonical(b));
  });
  it('changes when a value changes', () => {
    expect(hashCanonical({ a: 1 })).not.toBe(hashCanonical({ a: 2 }));
    expect(hashCanonical({ argv: ['a', 'b'] })).not.toBe(hashCanonical({ argv: ['b', 'a'] }));
  });
});
