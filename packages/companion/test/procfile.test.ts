import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompanionConfigError, parseCompanions } from '../src/index.js';
import { ProcfileError, parseProcfile } from '../src/procfile.js';
import { removeTmpDirs, tmp } from './helpers.js';

let base = '';
beforeAll(() => {
  base = tmp();
  mkdirSync(join(base, 'app'));
});
afterAll(removeTmpDirs);

function configError(input: unknown): CompanionConfigError {
  try {
    parseCompanions(input, { baseDir: base });
  } catch (err) {
    expect(err).toBeInstanceOf(CompanionConfigError);
    return err as CompanionConfigError;
  }
  throw new Error('expected a CompanionConfigError');
}

describe('parseProcfile', () => {
  it('reads name: command lines, skipping comments and blank lines', () => {
    const text = '# processes\n\nworker: node worker.js --queue=$QUEUE\r\nclock:python3 clock.py\n';
    expect(parseProcfile(text, 'Procfile')).toEqual([
      { name: 'worker', command: 'node worker.js --queue=$QUEUE', line: 3 },
      { name: 'clock', command: 'python3 clock.py', line: 4 },
    ]);
  });

  it('names the file and line of a bad or duplicate entry', () => {
    const bad = (text: string) => {
      try {
        parseProcfile(text, 'Procfile');
      } catch (err) {
        expect(err).toBeInstanceOf(ProcfileError);
        return (err as Error).message;
      }
      throw new Error('expected a ProcfileError');
    };
    expect(bad('a: x\n\nno colon here\n')).toBe("Procfile:3: expected 'name: command'");
    expect(bad('bad.name: x')).toBe("Procfile:1: expected 'name: command'");
    expect(bad('empty:   ')).toBe("Procfile:1: expected 'name: command'");
    expect(bad('a: x\na: y')).toBe('Procfile:2: duplicate name "a" (first at line 1)');
  });
});

describe('companions.procfile', () => {
  it('makes sh -c command companions in the Procfile directory with the .env beside it', () => {
    writeFileSync(
      join(base, 'app', 'Procfile'),
      'web: node server.js\nworker: echo $GREETING\nclock: sleep 1\n',
    );
    writeFileSync(join(base, 'app', '.env'), 'GREETING="hi there"\n');
    const s = parseCompanions(
      {
        procfile: 'app/Procfile',
        defaults: { stopTimeout: 3, env: { GREETING: 'overridden', OTHER: '1' } },
        workers: [{ name: 'jobs', command: ['sleep', '1'] }],
      },
      { baseDir: base },
    );
    expect(s.configs.map((c) => c.name)).toEqual(['jobs', 'worker', 'clock']);
    expect(s.configs[1]).toMatchObject({
      kind: 'command',
      command: ['sh', '-c', 'echo $GREETING'],
      cwd: join(base, 'app'),
      env: { GREETING: 'hi there', OTHER: '1' },
      stopTimeout: 3,
    });
    expect(s.notices).toEqual([
      'app/Procfile:1: web entry ignored: arb serves the web (give arb the app)',
    ]);
  });

  it('works without a .env', () => {
    mkdirSync(join(base, 'noenv'));
    writeFileSync(join(base, 'noenv', 'Procfile'), 'worker: sleep 1\n');
    const s = parseCompanions({ procfile: 'noenv/Procfile' }, { baseDir: base });
    expect(s.configs[0]).toMatchObject({ name: 'worker', env: {} });
  });

  it('refuses a bad line, a bad .env line and a missing file, naming file and line', () => {
    mkdirSync(join(base, 'bad'));
    writeFileSync(join(base, 'bad', 'Procfile'), 'worker: x\n# ok\noops\n');
    let e = configError({ procfile: 'bad/Procfile' });
    expect(e.message).toBe("bad/Procfile:3: expected 'name: command'");
    expect(e.key).toBe('procfile');
    mkdirSync(join(base, 'badenv'));
    writeFileSync(join(base, 'badenv', 'Procfile'), 'worker: x\n');
    writeFileSync(join(base, 'badenv', '.env'), 'A=1\nB\n');
    e = configError({ procfile: 'badenv/Procfile' });
    expect(e.message).toBe("badenv/.env:2: expected 'KEY=VALUE'");
    e = configError({ procfile: 'nope/Procfile' });
    expect(e.message).toBe('nope/Procfile: cannot read the Procfile (ENOENT)');
  });

  it('refuses a name in both the Procfile and workers, naming both sources', () => {
    writeFileSync(join(base, 'Procfile'), '# x\nworker: sleep 1\n');
    const e = configError({
      procfile: 'Procfile',
      workers: [{ name: 'worker', command: ['sleep', '1'] }],
    });
    expect(e.message).toContain('duplicate companion name (companions.workers[0] and Procfile:2)');
  });
});
