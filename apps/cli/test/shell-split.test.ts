import { describe, expect, it } from 'vitest';
import { ShellSplitError, shellSplit } from '../src/shell-split.js';

// The cases are Python's shlex.split (posix) answers, which gunicorn applies to
// GUNICORN_CMD_ARGS: `python3 -c 'import shlex; print(shlex.split(...))'`.
describe('shellSplit: shlex.split without expansion', () => {
  it.each([
    ['-w 2  -b 127.0.0.1:80', ['-w', '2', '-b', '127.0.0.1:80']],
    ['  \t-w\n2 ', ['-w', '2']],
    ['', []],
    ['-e GREETING=$HOME', ['-e', 'GREETING=$HOME']],
    ['-e A=*.js', ['-e', 'A=*.js']],
    ['a|b c;d #e', ['a|b', 'c;d', '#e']],
    [`'single $HOME "x"'`, ['single $HOME "x"']],
    [`"double \\"q\\" \\\\ \\$HOME \\n"`, ['double "q" \\ \\$HOME \\n']],
    [`it\\'s a\\ b \\\\`, ["it's", 'a b', '\\']],
    [`-e "C=with space"`, ['-e', 'C=with space']],
    [`x'y'"z" '' ""`, ['xyz', '', '']],
    [`--name='my app'x`, ['--name=my appx']],
  ])('%j', (text, words) => {
    expect(shellSplit(text)).toEqual(words);
  });

  it.each([
    [`-e 'A=b`, "no closing quotation (' at 4)"],
    [`-e "A=b\\"`, 'no closing quotation (" at 4)'],
    ['-e A\\', 'no character after the last \\'],
  ])('%j does not split: %s', (text, message) => {
    let caught: unknown;
    try {
      shellSplit(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ShellSplitError);
    expect((caught as ShellSplitError).message).toBe(message);
    expect((caught as ShellSplitError).text).toBe(text);
  });
});
