// Every JS/TS block in the READMEs either is an example file, shown verbatim and run by
// consumer.test.ts, or is marked `no-run` (type signatures, fragments of a config object,
// snippets that need a test's variables). An unmarked block fails: nothing silently rots.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeBlocks, EXAMPLES, PROGRAM_LANGS, readExample, readmes } from './examples.js';

const blocks = readmes().flatMap(codeBlocks);
const programs = blocks.filter((b) => PROGRAM_LANGS.has(b.lang));

describe('README code blocks', () => {
  it('finds the program blocks of every README', () => {
    expect(readmes()).toEqual(
      expect.arrayContaining([
        'README.md',
        'apps/cli/README.md',
        'packages/companion/README.md',
        'packages/core/README.md',
        'packages/sock/README.md',
      ]),
    );
    expect(programs.length).toBeGreaterThanOrEqual(Object.keys(EXAMPLES).length);
  });

  it.each(programs.map((b) => [`${b.readme}:${b.line}`, b] as const))(
    '%s is a verbatim example file or says no-run',
    (_where, block) => {
      if (block.tag === 'no-run') return;
      expect(block.tag, 'info string: `js <file>` or `ts no-run`').not.toBe('');
      const file = path.posix.join(path.posix.dirname(block.readme), block.tag);
      expect(Object.values(EXAMPLES), `${file} is run by consumer.test.ts`).toContain(file);
      expect(block.body).toBe(readExample(file));
    },
  );

  it('shows every example the consumer suite runs in some README', () => {
    const shown = programs
      .filter((b) => b.tag !== 'no-run')
      .map((b) => path.posix.join(path.posix.dirname(b.readme), b.tag));
    expect(new Set(shown)).toEqual(new Set(Object.values(EXAMPLES)));
  });
});
