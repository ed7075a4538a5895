import { describe, expect, it } from 'vitest';
import { BACKOFF_JITTER, backoffDelay } from '../src/index.js';

describe('backoffDelay', () => {
  it('doubles from the base and caps (no jitter)', () => {
    const steps = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, 5, 60, () => 0));
    expect(steps).toEqual([5, 10, 20, 40, 60, 60, 60, 60]);
  });
  it('jitter only shortens, by at most 10%', () => {
    expect(backoffDelay(3, 5, 60, () => 1)).toBeCloseTo(20 * (1 - BACKOFF_JITTER));
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(10, 5, 60);
      expect(d).toBeLessThanOrEqual(60);
      expect(d).toBeGreaterThanOrEqual(54);
    }
  });
  it('still grows step over step with the worst jitter', () => {
    expect(backoffDelay(2, 1, 60, () => 1)).toBeGreaterThan(backoffDelay(1, 1, 60, () => 0));
  });
  it('is 0 for a zero base and never overflows', () => {
    expect(backoffDelay(3, 0, 60)).toBe(0);
    expect(backoffDelay(5000, 1, 60, () => 0)).toBe(60);
  });
});
