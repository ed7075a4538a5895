import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { type ArbConfig, defineConfig } from '../src/index.js';
import { configSchema, describeIssues } from '../src/schema.js';

// The type assertions below are checked by `tsc --noEmit` (the typecheck task that runs
// before the tests): a @ts-expect-error that no longer errors fails the build.
describe('defineConfig', () => {
  it('returns the config unchanged and types hooks with their real signatures', () => {
    const seen: number[] = [];
    const config = defineConfig({
      app: './app.mjs',
      bind: ['127.0.0.1:8000', 'unix:./app.sock'],
      workers: 2,
      companions: { workers: [{ name: 'jobs', target: './jobs.mjs:run' }] },
      nworkersChanged(_server, value, old) {
        const now: number = value;
        const before: number | undefined = old;
        seen.push(now, before ?? -1);
      },
      postWorkerInit(worker) {
        const age: number = worker.age;
        seen.push(age);
      },
    });
    config.nworkersChanged?.({} as never, 3, undefined);
    expect(seen).toEqual([3, -1]);
    expect(config.workers).toBe(2);

    // @ts-expect-error workers must be a number
    const badType: ArbConfig = { workers: 'two' };
    // @ts-expect-error unknown keys are not part of the type
    const unknownKey: ArbConfig = { wrokers: 2 };
    // @ts-expect-error a hook's first parameter is the server view, not a number
    const badHook: ArbConfig = { onStarting: (n: number) => n };

    // the runtime schema refuses the first two as well, naming the key
    const issues = (input: unknown) => {
      const r = v.safeParse(configSchema, input);
      return r.success ? [] : describeIssues(r.issues, input);
    };
    expect(issues(badType)).toEqual([expect.stringMatching(/^workers: /)]);
    expect(issues(unknownKey)).toEqual([expect.stringContaining('wrokers')]);
    // a function's parameters cannot be seen at run time: only the type catches this one
    expect(issues(badHook)).toEqual([]);
  });
});
