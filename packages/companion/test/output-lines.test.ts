import { describe, expect, it } from 'vitest';
import { LineSplitter, type OutputLine } from '../src/output-lines.js';

function split(chunks: Buffer[], max?: number): OutputLine[] {
  const out: OutputLine[] = [];
  const s = new LineSplitter((l) => out.push(l), max);
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

describe('LineSplitter', () => {
  it('cuts at newlines across chunks, drops a \\r before the newline, keeps empty lines', () => {
    expect(split([Buffer.from('a\r\nb'), Buffer.from('c\n\nd\n')])).toEqual([
      { text: 'a' },
      { text: 'bc' },
      { text: '' },
      { text: 'd' },
    ]);
  });

  it('flushes a last line without newline at the end, and nothing when there is none', () => {
    expect(split([Buffer.from('x\nlast')])).toEqual([{ text: 'x' }, { text: 'last' }]);
    expect(split([Buffer.from('x\n')])).toEqual([{ text: 'x' }]);
  });

  it('writes a long line in bounded pieces marked continues, never cutting a character', () => {
    // 'é' is 2 bytes: with 5-byte pieces, a piece ends before a character that does not fit
    const out = split([Buffer.from('abcdé'), Buffer.from('fghijklm\n')], 5);
    expect(out).toEqual([
      { text: 'abcd', continues: true },
      { text: 'éfgh', continues: true },
      // exactly the bound, then the newline: one whole line, no empty piece after it
      { text: 'ijklm' },
    ]);
    expect(out.map((l) => l.text).join('')).toBe('abcdéfghijklm');
    for (const l of out) expect(Buffer.byteLength(l.text)).toBeLessThanOrEqual(5);
  });

  it('gives the exact bytes of output that is not UTF-8, base64', () => {
    const bytes = Buffer.from([0x41, 0xff, 0xfe, 0x00, 0x42]);
    expect(split([bytes, Buffer.from('\nok\n')])).toEqual([
      { text: 'A\ufffd\ufffd\u0000B', base64: bytes.toString('base64') },
      { text: 'ok' },
    ]);
    // invalid bytes in a long line: cut anywhere, every piece carries its bytes
    const junk = Buffer.alloc(7, 0x80);
    const out = split([junk], 3);
    expect(out.map((l) => Buffer.from(l.base64!, 'base64'))).toEqual([
      junk.subarray(0, 3),
      junk.subarray(3, 6),
      junk.subarray(6),
    ]);
  });
});
