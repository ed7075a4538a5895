import { describe, expect, it } from 'vitest';
import { masterTitle, workerTitle } from '../src/index.js';

describe('process titles', () => {
  it('names the role and the app', () => {
    expect(masterTitle('api')).toBe('arb: master [api]');
    expect(workerTitle('api')).toBe('arb: worker [api]');
  });
});
