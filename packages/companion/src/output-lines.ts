import { isUtf8 } from 'node:buffer';

/** One line of a companion's output. */
export interface OutputLine {
  /** The line without its newline (and without a `\r` before it), decoded as UTF-8. */
  text: string;
  /** The line was longer than the bound: it goes on in the next one. */
  continues?: true;
  /**
   * The exact bytes, base64, when they are not valid UTF-8 (binary output): `text` then
   * shows them with U+FFFD for what could not be decoded.
   */
  base64?: string;
}

/** A line longer than this many bytes is written in pieces of at most this size. */
export const MAX_OUTPUT_LINE_BYTES = 16 * 1024;

/**
 * Cuts a byte stream into lines. Nothing is held beyond one bounded line: a longer one is
 * emitted in pieces (cut between UTF-8 characters, marked `continues`), so a companion that
 * never writes a newline cannot grow the manager's memory. `end()` flushes a last line
 * that has no newline.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly emit: (line: OutputLine) => void,
    private readonly maxBytes = MAX_OUTPUT_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      this.append(chunk.subarray(start, nl === -1 ? chunk.length : nl));
      if (nl === -1) return;
      this.flush(false);
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without a newline is written as it is. */
  end(): void {
    if (this.pendingBytes > 0) this.flush(false);
  }

  private append(part: Buffer): void {
    while (this.pendingBytes + part.length > this.maxBytes) {
      const room = this.maxBytes - this.pendingBytes;
      const whole = Buffer.concat([...this.pending, part.subarray(0, room)]);
      part = part.subarray(room);
      const cut = charBoundary(whole);
      this.pending = [];
      this.pendingBytes = 0;
      this.emitLine(whole.subarray(0, cut), true);
      // the start of a character cut in two goes on into the next piece
      if (cut < whole.length) this.pending.push(whole.subarray(cut));
      this.pendingBytes = whole.length - cut;
    }
    if (part.length > 0) {
      this.pending.push(part);
      this.pendingBytes += part.length;
    }
  }

  private flush(continues: boolean): void {
    const line =
      this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
    this.emitLine(line.subarray(0, end), continues);
  }

  private emitLine(bytes: Buffer, continues: boolean): void {
    const out: OutputLine = { text: bytes.toString('utf8') };
    if (continues) out.continues = true;
    if (!isUtf8(bytes)) out.base64 = bytes.toString('base64');
    this.emit(out);
  }
}

/**
 * Where to cut `buf` (full) without splitting a UTF-8 character: before the lead byte of
 * a character that does not fit. Bytes that are not UTF-8 are cut anywhere.
 */
function charBoundary(buf: Buffer): number {
  const n = buf.length;
  // walk back over at most 3 continuation bytes (10xxxxxx) to the lead byte
  let i = n - 1;
  while (i > n - 4 && i > 0 && (buf[i]! & 0xc0) === 0x80) i--;
  const lead = buf[i]!;
  const size = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  // the character starting at i is complete: cut after it
  if (i + size <= n) return n;
  return i > 0 ? i : n;
}
