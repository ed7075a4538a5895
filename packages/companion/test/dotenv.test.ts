import { describe, expect, it } from 'vitest';
import { DotenvError, parseDotenv } from '../src/dotenv.js';

describe('parseDotenv', () => {
  it('reads KEY=VALUE lines, comments, blanks, export, quotes', () => {
    const text = [
      '# a comment',
      '',
      'PLAIN=hello world  ',
      'export EXPORTED=1',
      "SINGLE='lit $HOME \\n'",
      'DOUBLE="a\\nb \\"q\\" # not a comment"',
      'TRAILING=value # a comment',
      'HASH=a#b',
      'EMPTY=',
      '  SPACED = x ',
      'CRLF=y\r',
      'PLAIN=later wins',
    ].join('\n');
    expect(parseDotenv(text, '.env')).toEqual({
      PLAIN: 'later wins',
      EXPORTED: '1',
      SINGLE: 'lit $HOME \\n',
      DOUBLE: 'a\nb "q" # not a comment',
      TRAILING: 'value',
      HASH: 'a#b',
      EMPTY: '',
      SPACED: 'x',
      CRLF: 'y',
    });
  });

  it('names the file and the line of a bad line', () => {
    const bad = (text: string) => {
      try {
        parseDotenv(text, 'app/.env');
      } catch (err) {
        expect(err).toBeInstanceOf(DotenvError);
        return (err as DotenvError).message;
      }
      throw new Error('expected a DotenvError');
    };
    expect(bad('A=1\nnot a pair\n')).toBe("app/.env:2: expected 'KEY=VALUE'");
    expect(bad('A="open\n')).toBe('app/.env:1: unterminated " quote');
    expect(bad("A='x' y\n")).toBe('app/.env:1: unexpected text after the closing quote');
    expect(bad('1A=x')).toBe("app/.env:1: expected 'KEY=VALUE'");
  });

  it('never sets a prototype key', () => {
    const env = parseDotenv('__proto__=x\nA=1', '.env');
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(env).toEqual({ A: '1' });
  });
});
