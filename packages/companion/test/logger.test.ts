import { describe, expect, it } from 'vitest';
import { normalizeLevel } from '../src/logger.js';

describe('log levels', () => {
  it('accepts pino and gunicorn names, falls back to info', () => {
    expect(normalizeLevel('debug')).toBe('debug');
    expect(normalizeLevel('WARNING')).toBe('warn');
    expect(normalizeLevel('critical')).toBe('fatal');
    expect(normalizeLevel('loud')).toBe('info');
    expect(normalizeLevel(undefined)).toBe('info');
  });
});
