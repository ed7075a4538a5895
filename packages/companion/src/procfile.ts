/**
 * foreman/Heroku Procfiles: `name: command` lines, `#` comment lines and blank lines.
 * Each entry becomes a command companion running `sh -c <command>` as foreman does, so
 * `$VAR` interpolation, pipes and `&&` happen in the shell, with the companion's env.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DotenvError, parseDotenv } from './dotenv.js';

/** One `name: command` line. */
export interface ProcfileEntry {
  name: string;
  command: string;
  /** 1-based line number, for messages that point at it. */
  line: number;
}

/** A Procfile (or its `.env`) that cannot be used; `file:line` leads the message. */
export class ProcfileError extends Error {
  override readonly name = 'ProcfileError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number | null,
  ) {
    super(message);
  }
}

/** foreman's own pattern: the name is letters, digits, `_` and `-`. */
const ENTRY_RE = /^([A-Za-z0-9_-]+):\s*(.*)$/;

/** Parse a Procfile's text; `file` names it in errors. Names must be unique. */
export function parseProcfile(text: string, file: string): ProcfileEntry[] {
  const entries: ProcfileEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = ENTRY_RE.exec(line);
    if (!m || m[2]!.trim() === '') {
      throw new ProcfileError(`${file}:${i + 1}: expected 'name: command'`, file, i + 1);
    }
    const name = m[1]!;
    const first = seen.get(name);
    if (first !== undefined) {
      throw new ProcfileError(
        `${file}:${i + 1}: duplicate name ${JSON.stringify(name)} (first at line ${first})`,
        file,
        i + 1,
      );
    }
    seen.set(name, i + 1);
    entries.push({ name, command: m[2]!.trim(), line: i + 1 });
  }
  return entries;
}

/** A Procfile read from disk with the `.env` next to it. */
export interface LoadedProcfile {
  entries: ProcfileEntry[];
  /** The `.env` variables ({} without the file). */
  env: Record<string, string>;
  /** The directory of the Procfile: the entries' working directory, as foreman's root. */
  dir: string;
}

/**
 * Read the Procfile at `abs` (named `shown` in messages) and the optional `.env` beside it.
 * Throws `ProcfileError` for a missing file, a bad line or a bad `.env` line.
 */
export function loadProcfile(abs: string, shown: string): LoadedProcfile {
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ProcfileError(
      `${shown}: cannot read the Procfile (${e.code ?? e.message})`,
      shown,
      null,
    );
  }
  const entries = parseProcfile(text, shown);
  const dir = dirname(abs);
  const envPath = join(dir, '.env');
  const envShown = join(dirname(shown), '.env');
  let envText: string | null = null;
  try {
    envText = readFileSync(envPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      const e = err as NodeJS.ErrnoException;
      throw new ProcfileError(`${envShown}: cannot read (${e.code ?? e.message})`, envShown, null);
    }
  }
  let env: Record<string, string> = {};
  if (envText !== null) {
    try {
      env = parseDotenv(envText, envShown);
    } catch (err) {
      if (err instanceof DotenvError) throw new ProcfileError(err.message, err.file, err.line);
      throw err;
    }
  }
  return { entries, env, dir };
}
