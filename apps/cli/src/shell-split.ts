/** `ARB_CMD_ARGS` that does not split: an open quote, or a backslash at the very end. */
export class ShellSplitError extends Error {
  override readonly name = 'ShellSplitError';
  constructor(
    readonly text: string,
    reason: string,
  ) {
    super(reason);
  }
}

const BLANK = /[ \t\n\r]/;

/**
 * Splits `text` into words as a POSIX shell reads them, without expanding anything: the
 * rules of Python's `shlex.split` (what gunicorn applies to `GUNICORN_CMD_ARGS`). Blanks
 * separate words; `'...'` is literal; in `"..."` a backslash escapes only `"` and `\`;
 * elsewhere a backslash makes the next character literal. `$HOME`, `*.js`, `|` and `#`
 * are plain characters: nothing is expanded, globbed, piped or commented out.
 */
export function shellSplit(text: string): string[] {
  const words: string[] = [];
  let word = '';
  // a word exists once anything, even an empty '' or "", was read for it
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (BLANK.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new ShellSplitError(text, `no closing quotation (' at ${i + 1})`);
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= text.length) {
          throw new ShellSplitError(text, `no closing quotation (" at ${i + 1})`);
        }
        const d = text[j]!;
        if (d === '"') break;
        if (d === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) {
          word += text[j + 1];
          j += 2;
        } else {
          word += d;
          j++;
        }
      }
      inWord = true;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new ShellSplitError(text, 'no character after the last \\');
      word += text[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
