import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompanionConfigError, configHash, parseCompanions } from '../src/index.js';
import { removeTmpDirs, tmp } from './helpers.js';

let base = '';
beforeAll(() => {
  base = tmp();
});
afterAll(removeTmpDirs);

const parse = (input: unknown) => parseCompanions(input, { baseDir: base });
const sleep = ['sleep', '1'];

function configError(input: unknown): CompanionConfigError {
  try {
    parse(input);
  } catch (err) {
    expect(err).toBeInstanceOf(CompanionConfigError);
    return err as CompanionConfigError;
  }
  throw new Error('expected a CompanionConfigError');
}

describe('numprocs', () => {
  it('makes copies name.1..N with ARB_PROCESS_NUM, each its own hash', () => {
    const { configs } = parse({
      workers: [
        { name: 'jobs', command: sleep, numprocs: 3, env: { A: '1' } },
        { name: 'x', command: sleep },
      ],
    });
    expect(configs.map((c) => [c.name, c.program, c.processNum, c.env])).toEqual([
      ['jobs.1', 'jobs', 1, { A: '1', ARB_PROCESS_NUM: '1' }],
      ['jobs.2', 'jobs', 2, { A: '1', ARB_PROCESS_NUM: '2' }],
      ['jobs.3', 'jobs', 3, { A: '1', ARB_PROCESS_NUM: '3' }],
      ['x', 'x', null, {}],
    ]);
    expect(new Set(configs.map(configHash)).size).toBe(4);
  });

  it('refuses bad counts, defaults.numprocs and copies clashing with a name', () => {
    for (const n of [0, 1.5, -1, 1001, '2']) {
      expect(configError({ workers: [{ name: 'j', command: sleep, numprocs: n }] }).key).toBe(
        'numprocs',
      );
    }
    expect(configError({ defaults: { numprocs: 2 }, workers: [] }).key).toBe('defaults.numprocs');
    const e = configError({
      workers: [
        { name: 'jobs', command: sleep, numprocs: 2 },
        { name: 'jobs.2', command: sleep },
      ],
    });
    expect(e.message).toContain('copy jobs.2 has the name of companions.workers[1]');
  });
});

describe('dependsOn', () => {
  it('resolves names to copies of numprocs groups', () => {
    const { configs } = parse({
      workers: [
        { name: 'api', command: sleep, dependsOn: ['db', 'jobs'] },
        { name: 'db', command: sleep },
        { name: 'jobs', command: sleep, numprocs: 2, dependsOn: ['db'] },
      ],
    });
    expect(configs.map((c) => [c.name, c.dependsOn])).toEqual([
      ['api', ['db', 'jobs.1', 'jobs.2']],
      ['db', []],
      ['jobs.1', ['db']],
      ['jobs.2', ['db']],
    ]);
  });

  it('refuses unknown names and cycles in one line naming the cycle', () => {
    let e = configError({ workers: [{ name: 'a', command: sleep, dependsOn: ['nope'] }] });
    expect(e.message).toBe('companion a: key "dependsOn" unknown companion "nope" (got ["nope"])');
    e = configError({
      workers: [
        { name: 'a', command: sleep, dependsOn: ['c'] },
        { name: 'b', command: sleep, dependsOn: ['a'] },
        { name: 'c', command: sleep, dependsOn: ['b'] },
      ],
    });
    expect(e.message).toBe('companions: dependsOn cycle: a -> c -> b -> a');
    expect(e.message).not.toContain('\n');
    e = configError({ workers: [{ name: 'a', command: sleep, dependsOn: ['a'] }] });
    expect(e.message).toBe('companions: dependsOn cycle: a -> a');
    expect(configError({ defaults: { dependsOn: [] }, workers: [] }).key).toBe(
      'defaults.dependsOn',
    );
  });

  it('sizes the manager stop budget by the longest chain', () => {
    const s = parse({
      managerShutdownBuffer: 1,
      workers: [
        { name: 'db', command: sleep, stopTimeout: 10 },
        { name: 'api', command: sleep, stopTimeout: 5, dependsOn: ['db'] },
        { name: 'lone', command: sleep, stopTimeout: 12 },
      ],
    });
    expect(s.managerStopTimeout).toBe(16);
  });
});
