import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCompanionConfigs,
  CompanionConfigError,
  configHash,
  managerIdentity,
  managerStopTimeout,
  parseCompanions,
} from '../src/index.js';
import { removeTmpDirs, tmp } from './helpers.js';

// Made when the tests run, not when the file is collected (an import has no cleanup).
let base = '';
beforeAll(() => {
  base = tmp();
  mkdirSync(join(base, 'ops'));
  writeFileSync(join(base, 'jobs.js'), 'export function run() {}\n');
});
afterAll(removeTmpDirs);

const build = (input: unknown) => buildCompanionConfigs(input, { baseDir: base });

function configError(input: unknown): CompanionConfigError {
  try {
    build(input);
  } catch (err) {
    expect(err).toBeInstanceOf(CompanionConfigError);
    return err as CompanionConfigError;
  }
  throw new Error('expected a CompanionConfigError');
}

const job = { name: 'jobs', target: './jobs.js:run' };

describe('buildCompanionConfigs', () => {
  it('applies defaults and resolves paths', () => {
    const [c] = build({ workers: [job] });
    expect(c).toMatchObject({
      name: 'jobs',
      kind: 'target',
      target: `${join(base, 'jobs.js')}:run`,
      command: null,
      cwd: base,
      env: {},
      stopSignal: 'SIGTERM',
      stopTimeout: 60,
      reloadTimeout: 60,
      startSecs: 1,
      stdout: 'inherit',
      stderr: 'inherit',
      autorestart: 'always',
      exitCodes: [0],
      startRetries: null,
      restartDelay: 5,
      maxRestartDelay: 60,
      backoffResetAfter: 60,
      maxMemory: null,
    });
  });

  it('maxMemory: per companion, from defaults, or none (null)', () => {
    const [a, b, c] = build({
      defaults: { maxMemory: 256 },
      workers: [
        job,
        { name: 'big', command: ['true'], maxMemory: 1024.5 },
        { name: 'free', command: ['true'], maxMemory: null },
      ],
    });
    expect(a!.maxMemory).toBe(256);
    expect(b!.maxMemory).toBe(1024.5);
    expect(c!.maxMemory).toBeNull();
  });

  it('applies global defaults, per-companion keys win, env is merged', () => {
    const [a, b] = build({
      defaults: { stopSignal: 'SIGINT', startSecs: 5, env: { A: '1', B: '1' }, stopTimeout: 7 },
      restartDelay: 42,
      maxRestartDelay: 100,
      workers: [
        job,
        {
          name: 'cron',
          command: ['sleep', '1'],
          cwd: 'ops',
          stopSignal: 'SIGTERM',
          env: { B: '2', C: '3' },
          stdout: 'out.log',
          stderr: 'stdout',
          autorestart: 'unexpected',
          exitCodes: [0, 2],
          startRetries: 3,
        },
      ],
    });
    expect(a).toMatchObject({
      stopSignal: 'SIGINT',
      startSecs: 5,
      env: { A: '1', B: '1' },
      stopTimeout: 7,
    });
    expect(a!.restartDelay).toBe(42);
    expect(b).toMatchObject({
      kind: 'command',
      command: ['sleep', '1'],
      cwd: join(base, 'ops'),
      stopSignal: 'SIGTERM',
      env: { A: '1', B: '2', C: '3' },
      stdout: join(base, 'ops', 'out.log'),
      stderr: 'stdout',
      autorestart: 'unexpected',
      exitCodes: [0, 2],
      startRetries: 3,
      restartDelay: 42,
      maxRestartDelay: 100,
    });
  });

  it('accepts a whole config with a companions key, and nothing at all', () => {
    expect(build({ companions: { workers: [job] } }).map((c) => c.name)).toEqual(['jobs']);
    expect(build(undefined)).toEqual([]);
    expect(build({ workers: [] })).toEqual([]);
  });

  it('keeps config order', () => {
    const names = ['b', 'a', 'c'];
    expect(
      build({ workers: names.map((name) => ({ name, command: ['true'] })) }).map((c) => c.name),
    ).toEqual(names);
  });

  const cases: [string, unknown, string | null, string | null, unknown][] = [
    ['missing name', { workers: [{ target: './jobs.js:run' }] }, '#0', 'name', undefined],
    ['empty name', { workers: [{ name: '', command: ['x'] }] }, '#0', 'name', ''],
    ['non-string name', { workers: [{ name: 5, command: ['x'] }] }, '#0', 'name', 5],
    ['reserved name', { workers: [{ name: 'all', command: ['true'] }] }, 'all', 'name', 'all'],
    [
      'duplicate name',
      { workers: [job, { name: 'jobs', command: ['true'] }] },
      'jobs',
      'name',
      'jobs',
    ],
    [
      'both target and command',
      { workers: [{ ...job, command: ['true'] }] },
      'jobs',
      'target',
      './jobs.js:run',
    ],
    ['neither target nor command', { workers: [{ name: 'x' }] }, 'x', null, { name: 'x' }],
    [
      'unknown companion key',
      { workers: [{ ...job, stop_sigal: 'SIGTERM' }] },
      'jobs',
      'stop_sigal',
      'SIGTERM',
    ],
    [
      'restartDelay per companion',
      { workers: [{ ...job, restartDelay: 1 }] },
      'jobs',
      'restartDelay',
      1,
    ],
    ['unknown top-level key', { workerz: [] }, null, 'workerz', []],
    ['unknown defaults key', { defaults: { bogus: 1 } }, null, 'defaults.bogus', 1],
    [
      'unknown stop signal',
      { workers: [{ ...job, stopSignal: 'SIGTRM' }] },
      'jobs',
      'stopSignal',
      'SIGTRM',
    ],
    ['numeric stop signal', { workers: [{ ...job, stopSignal: 15 }] }, 'jobs', 'stopSignal', 15],
    [
      'unknown default stop signal',
      { defaults: { stopSignal: 'NOPE' }, workers: [job] },
      null,
      'defaults.stopSignal',
      'NOPE',
    ],
    [
      'SIGKILL stop signal',
      { workers: [{ ...job, stopSignal: 'SIGKILL' }] },
      'jobs',
      'stopSignal',
      'SIGKILL',
    ],
    [
      'SIGSTOP stop signal',
      { workers: [{ ...job, stopSignal: 'SIGSTOP' }] },
      'jobs',
      'stopSignal',
      'SIGSTOP',
    ],
    ['negative stopTimeout', { workers: [{ ...job, stopTimeout: -1 }] }, 'jobs', 'stopTimeout', -1],
    ['string startSecs', { workers: [{ ...job, startSecs: '1' }] }, 'jobs', 'startSecs', '1'],
    [
      'NaN reloadTimeout',
      { workers: [{ ...job, reloadTimeout: Number.NaN }] },
      'jobs',
      'reloadTimeout',
      Number.NaN,
    ],
    ['negative restartDelay', { restartDelay: -5 }, null, 'restartDelay', -5],
    ['null startSecs', { workers: [{ ...job, startSecs: null }] }, 'jobs', 'startSecs', null],
    [
      '"stdout" for stdout',
      { workers: [{ ...job, stdout: 'stdout' }] },
      'jobs',
      'stdout',
      'stdout',
    ],
    ['empty stderr', { workers: [{ ...job, stderr: '' }] }, 'jobs', 'stderr', ''],
    ['numeric stdout', { workers: [{ ...job, stdout: 1 }] }, 'jobs', 'stdout', 1],
    [
      'stdout in a missing directory',
      { workers: [{ ...job, stdout: 'nope/x.log' }] },
      'jobs',
      'stdout',
      'nope/x.log',
    ],
    [
      'missing cwd',
      { workers: [{ ...job, cwd: 'does-not-exist' }] },
      'jobs',
      'cwd',
      'does-not-exist',
    ],
    [
      'missing default cwd',
      { defaults: { cwd: '/does/not/exist' } },
      null,
      'defaults.cwd',
      '/does/not/exist',
    ],
    [
      'missing target module',
      { workers: [{ name: 'x', target: './nope.js:run' }] },
      'x',
      'target',
      './nope.js:run',
    ],
    [
      'empty export',
      { workers: [{ name: 'x', target: './jobs.js:' }] },
      'x',
      'target',
      './jobs.js:',
    ],
    ['empty command', { workers: [{ name: 'x', command: [] }] }, 'x', 'command', []],
    [
      'command not an array',
      { workers: [{ name: 'x', command: 'sleep 1' }] },
      'x',
      'command',
      'sleep 1',
    ],
    [
      'missing program path',
      { workers: [{ name: 'x', command: ['./nope'] }] },
      'x',
      'command',
      ['./nope'],
    ],
    ['env value not a string', { workers: [{ ...job, env: { A: 1 } }] }, 'jobs', 'env', { A: 1 }],
    [
      'bad autorestart',
      { workers: [{ ...job, autorestart: 'sometimes' }] },
      'jobs',
      'autorestart',
      'sometimes',
    ],
    ['bad exit code', { workers: [{ ...job, exitCodes: [256] }] }, 'jobs', 'exitCodes', [256]],
    [
      'negative startRetries',
      { workers: [{ ...job, startRetries: -1 }] },
      'jobs',
      'startRetries',
      -1,
    ],
    ['zero maxMemory', { workers: [{ ...job, maxMemory: 0 }] }, 'jobs', 'maxMemory', 0],
    [
      'maxMemory not a number',
      { workers: [{ ...job, maxMemory: '80M' }] },
      'jobs',
      'maxMemory',
      '80M',
    ],
    ['workers not an array', { workers: { a: 1 } }, null, 'workers', { a: 1 }],
    ['worker not an object', { workers: ['jobs'] }, '#0', null, 'jobs'],
  ];
  for (const [what, input, companion, key, value] of cases) {
    it(`rejects ${what}, naming the companion and key`, () => {
      const err = configError(input);
      expect(err.companion).toBe(companion);
      expect(err.key).toBe(key);
      expect(err.value).toEqual(value);
      if (companion) expect(err.message).toContain(companion);
      if (key) expect(err.message).toContain(key);
    });
  }

  it('accepts zero times and fractional seconds', () => {
    const [c] = build({ workers: [{ ...job, stopTimeout: 0, startSecs: 0.25 }] });
    expect(c!.stopTimeout).toBe(0);
    expect(c!.startSecs).toBe(0.25);
  });
});

describe('configHash', () => {
  const spec = {
    name: 'cron',
    command: ['sleep', '5'],
    env: { A: '1', B: '2' },
    stopTimeout: 3,
    stdout: 'x.log',
  };
  it('is equal for equal configs whatever the key order', () => {
    const reordered = {
      stdout: 'x.log',
      stopTimeout: 3,
      env: { B: '2', A: '1' },
      command: ['sleep', '5'],
      name: 'cron',
    };
    const [a] = build({ workers: [spec] });
    const [b] = build({ workers: [reordered] });
    expect(configHash(a!)).toBe(configHash(b!));
    expect(configHash(a!)).toMatch(/^[0-9a-f]{64}$/);
  });

  const changes: [string, Record<string, unknown>][] = [
    ['command', { command: ['sleep', '6'] }],
    ['env', { env: { A: '1', B: '3' } }],
    ['cwd', { cwd: 'ops' }],
    ['stopSignal', { stopSignal: 'SIGINT' }],
    ['stopTimeout', { stopTimeout: 99 }],
    ['reloadTimeout', { reloadTimeout: 99 }],
    ['startSecs', { startSecs: 9 }],
    ['stdout', { stdout: 'y.log' }],
    ['stderr', { stderr: 'stdout' }],
    ['autorestart', { autorestart: 'never' }],
    ['exitCodes', { exitCodes: [0, 1] }],
    ['startRetries', { startRetries: 2 }],
    ['maxMemory', { maxMemory: 80 }],
  ];
  for (const [field, change] of changes) {
    it(`changes when ${field} changes`, () => {
      const [a] = build({ workers: [spec] });
      const [b] = build({ workers: [{ ...spec, ...change }] });
      expect(configHash(a!)).not.toBe(configHash(b!));
    });
  }
  it('changes with the restart policy (so reread applies a new restartDelay)', () => {
    const [a] = build({ restartDelay: 5, workers: [spec] });
    const [b] = build({ restartDelay: 30, workers: [spec] });
    expect(configHash(a!)).not.toBe(configHash(b!));
  });
  it('changes with the name and with target vs command', () => {
    const [a] = build({ workers: [spec] });
    const [b] = build({ workers: [{ ...spec, name: 'cron2' }] });
    const [c] = build({ workers: [job] });
    const [d] = build({ workers: [{ ...job, target: './jobs.js:other' }] });
    expect(configHash(a!)).not.toBe(configHash(b!));
    expect(configHash(c!)).not.toBe(configHash(d!));
  });
});

describe('managerIdentity', () => {
  it('ignores companion order and changes with any config or the socket', () => {
    const one = build({ workers: [job, { name: 'cron', command: ['true'] }] });
    const two = build({ workers: [{ name: 'cron', command: ['true'] }, job] });
    expect(managerIdentity(one)).toBe(managerIdentity(two));
    const changed = build({ workers: [job, { name: 'cron', command: ['true'], startSecs: 9 }] });
    expect(managerIdentity(changed)).not.toBe(managerIdentity(one));
    expect(managerIdentity(one, { socket: '/a.sock' })).not.toBe(
      managerIdentity(one, { socket: '/b.sock' }),
    );
    expect(managerIdentity([])).toBe('');
  });
});

describe('managerStopTimeout', () => {
  const opts = {
    get baseDir() {
      return base;
    },
  };
  it('uses an explicit value, 0 included', () => {
    expect(managerStopTimeout({ managerStopTimeout: 120, workers: [job] }, opts)).toBe(120);
    expect(managerStopTimeout({ managerStopTimeout: 0, workers: [job] }, opts)).toBe(0);
  });
  it('derives slowest stopTimeout plus buffer', () => {
    const workers = [
      { ...job, stopTimeout: 300 },
      { name: 'b', command: ['true'], stopTimeout: 30, reloadTimeout: 900 },
    ];
    expect(managerStopTimeout({ managerShutdownBuffer: 10, workers }, opts)).toBe(310);
    expect(managerStopTimeout({ workers: [{ ...job, stopTimeout: 5 }] }, opts)).toBe(15);
  });
  it('a caller default stopTimeout (arb: gracefulTimeout) replaces 60 for companions that set none', () => {
    const workers = [
      { ...job },
      { name: 'own', command: ['true'], stopTimeout: 45 },
      { name: 'plain', command: ['true'] },
    ];
    const byDefault = parseCompanions({ workers }, opts).configs.map((c) => c.stopTimeout);
    expect(byDefault).toEqual([60, 45, 60]);
    const arb = parseCompanions({ workers }, { baseDir: base, stopTimeout: 7 });
    expect(arb.configs.map((c) => c.stopTimeout)).toEqual([7, 45, 7]);
    expect(arb.managerStopTimeout).toBe(55);
    const viaDefaults = parseCompanions(
      { defaults: { stopTimeout: 9 }, workers: [{ ...job }] },
      { baseDir: base, stopTimeout: 7 },
    );
    expect(viaDefaults.configs[0]!.stopTimeout).toBe(9);
    expect(viaDefaults.managerStopTimeout).toBe(19);
  });
  it('is 0 without companions', () => {
    expect(managerStopTimeout({}, opts)).toBe(0);
    expect(managerStopTimeout({ workers: [] }, opts)).toBe(0);
  });
  it('parseCompanions resolves the socket path', () => {
    expect(parseCompanions({ socket: 'c.sock' }, opts).socket).toBe(join(base, 'c.sock'));
    expect(parseCompanions({}, opts).socket).toBeNull();
  });
});
