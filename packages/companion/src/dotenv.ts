/**
 * A `.env` file as foreman reads it: `KEY=VALUE` lines, `export KEY=VALUE` too, `#` comment
 * lines and blank lines skipped. Values: `'single'` kept literally; `"double"` with `\n`,
 * `\r`, `\t`, `\"` and `\\` escapes; unquoted ones trimmed, a ` #` starting a comment.
 * Written here rather than `util.parseEnv`, which Node 20 only has from 20.12 on and
 * which reports no line for a broken one.
 */

/** A line of a `.env` file that is not `KEY=VALUE`; `file:line` leads the message. */
export class DotenvError extends Error {
  override readonly name = 'DotenvError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number,
    readonly text: string,
  ) {
    super(message);
  }
}

const LINE_RE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

/** Parse the text of a `.env` file; `file` names it in errors. Later keys win. */
export function parseDotenv(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE_RE.exec(line);
    if (!m) {
      throw new DotenvError(`${file}:${i + 1}: expected 'KEY=VALUE'`, file, i + 1, raw);
    }
    const key = m[1]!;
    const rest = m[2]!;
    const quote = rest[0];
    let value: string;
    if (quote === '"' || quote === "'") {
      const end = closingQuote(rest, quote);
      if (end < 0) {
        throw new DotenvError(`${file}:${i + 1}: unterminated ${quote} quote`, file, i + 1, raw);
      }
      const after = rest.slice(end + 1).trim();
      if (after !== '' && !after.startsWith('#')) {
        throw new DotenvError(
          `${file}:${i + 1}: unexpected text after the closing quote`,
          file,
          i + 1,
          raw,
        );
      }
      const body = rest.slice(1, end);
      value = quote === "'" ? body : body.replace(/\\(.)/g, (s, c: string) => ESCAPES[c] ?? s);
    } else {
      const hash = rest.search(/\s#/);
      value = (hash < 0 ? rest : rest.slice(0, hash)).trim();
    }
    // Never a prototype key: the result is merged into companion envs.
    if (key !== '__proto__') out[key] = value;
  }
  return out;
}

/** Index of the quote closing the one at 0 (backslash escapes count in double quotes). */
function closingQuote(s: string, quote: string): number {
  for (let i = 1; i < s.length; i++) {
    if (quote === '"' && s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === quote) return i;
  }
  return -1;
}
