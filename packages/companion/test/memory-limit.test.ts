import { describe, expect, it } from 'vitest';
import { MEMORY_GRACE_SECONDS, memoryVerdict } from '../src/memory-limit.js';

const MB = 1024 * 1024;

describe('memoryVerdict (maxMemory)', () => {
  it('restarts after every sample above the limit for MEMORY_GRACE_SECONDS, with the figures', () => {
    let since: number | undefined;
    const verdicts = [10, 11, 12, 13].map((now) => {
      const v = memoryVerdict(since, now, 120 * MB, 80);
      since = v.since;
      return v;
    });
    expect(verdicts.map((v) => v.restart)).toEqual([false, false, false, true]);
    expect(verdicts.at(-1)).toEqual({
      since: 10,
      restart: true,
      rssMb: 120,
      seconds: MEMORY_GRACE_SECONDS,
    });
  });

  it('a sample at or below the limit starts the count again (a spike is tolerated)', () => {
    const a = memoryVerdict(undefined, 10, 120 * MB, 80);
    const b = memoryVerdict(a.since, 11, 80 * MB, 80);
    expect(b).toEqual({ since: undefined, restart: false, rssMb: 80, seconds: 0 });
    const c = memoryVerdict(b.since, 13.5, 120 * MB, 80);
    expect(c).toMatchObject({ since: 13.5, restart: false });
  });
});
