import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A place in a source file: where an app has a syntax error, or where its import threw. */
export interface SourceLocation {
  /** Absolute path. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based; unknown when V8 did not mark one. */
  column?: number;
  /** The text of that line, for a caret under `column`. */
  text?: string;
}

/** How V8 decorates a syntax error it can place: `file:LINE\n<line>\n<caret>\n\n`. */
const ARROW = /^(.+):(\d+)\n(.*)\n([ \t]*\^*)\n/;
/** jiti's parse errors: `ParseError: Unexpected token \n /path/app.ts:3:0`. */
const JITI = /\n\s*(\/\S+):(\d+):(\d+)\s*$/;
/** A stack frame with a position: `at fn (file:///a.mjs:2:6)` or `at /a.cjs:2:6`. */
const FRAME = /^\s*at (?:.*? \()?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/;

/**
 * Where `err`, thrown while importing `file`, comes from: for a syntax error, the place V8
 * (or jiti, for TypeScript) points at; for another throw, the first stack frame in a file of
 * the app (not Node's own, not node_modules). Undefined when nothing tells.
 *
 * Node decorates a CommonJS syntax error's stack with its place, but keeps an ES module's
 * to itself (it prints it only for an uncaught error); so for an ES module the file is
 * compiled once more by `node --check`, which prints the same decoration. That costs a
 * process, on this failure path only.
 */
export function locateError(err: unknown, file: string): SourceLocation | undefined {
  if (!(err instanceof Error)) return undefined;
  const stack = String(err.stack ?? '');
  if (err instanceof SyntaxError) {
    return lastToken(fromArrow(stack) ?? fromArrow(checkSyntax(file)));
  }
  const jiti = /ParseError/.test(err.message) ? JITI.exec(err.message) : null;
  if (jiti) return lastToken(at(jiti[1]!, Number(jiti[2]), Number(jiti[3]) + 1));
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line);
    if (!m || m[1]!.includes('/node_modules/')) continue;
    const path = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    return at(path, Number(m[2]), Number(m[3]));
  }
  return undefined;
}

function fromArrow(text: string | undefined): SourceLocation | undefined {
  const m = text ? ARROW.exec(text) : null;
  if (!m) return undefined;
  const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
  const caret = m[4]!;
  // V8 underlines the offending token; a zero-length mark (end of input) has none
  const column = caret.includes('^') ? caret.indexOf('^') + 1 : m[3]!.length + 1;
  return { file, line: Number(m[2]), column, text: m[3] };
}

/** `node --check file`'s report (stderr), or undefined when it found nothing or could not run. */
function checkSyntax(file: string): string | undefined {
  const r = spawnSync(process.execPath, ['--check', file], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return r.status === 0 ? undefined : r.stderr;
}

/**
 * An error at the end of the input (an unclosed brace) is placed by V8 on the empty line
 * after the last one; the person wants the end of the last line that has code.
 */
function lastToken(loc: SourceLocation | undefined): SourceLocation | undefined {
  if (loc?.text === undefined || loc.text.trim() !== '') return loc;
  let lines: string[];
  try {
    lines = fs.readFileSync(loc.file, 'utf8').split('\n');
  } catch {
    return loc;
  }
  if (lines.slice(loc.line - 1).some((l) => l.trim() !== '')) return loc;
  for (let i = Math.min(loc.line - 1, lines.length) - 1; i >= 0; i--) {
    const text = lines[i]!.trimEnd();
    if (text !== '') return { file: loc.file, line: i + 1, column: text.length + 1, text };
  }
  return loc;
}

function at(file: string, line: number, column: number): SourceLocation {
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, 'utf8').split('\n')[line - 1];
  } catch {
    // the location stands without its text
  }
  return { file, line, column, text };
}
