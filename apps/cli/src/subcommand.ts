import { parseArgs } from 'node:util';

// The client subcommands (`arb ctl`, `arb upgrade`) parse with node:util rather than
// commander: commander's eight modules (and the child_process it pulls in) cost more than
// the rest of `arb ctl status` on Node 24 (issue 15, docs/BENCHMARKS.md). The messages
// are commander's, so both kinds of command line read alike.

/** A command line that does not parse; the message is what the user is told. */
export class UsageError extends Error {}

/** One option of a subcommand. `-h, --help` is always there. */
export interface SubcommandOption {
  type: 'string' | 'boolean';
  /** One letter: `-s`. */
  short?: string;
  /** A string option's value as the messages name it: `path` in `--socket <path>`. */
  value?: string;
}

export interface ParsedSubcommand<T> {
  help: boolean;
  options: T;
  args: string[];
}

/** The option as commander spells it in its messages: `-s, --socket <path>`. */
function flags(name: string, o: SubcommandOption): string {
  const long = `${o.short ? `-${o.short}, ` : ''}--${name}`;
  return o.type === 'string' ? `${long} <${o.value ?? 'value'}>` : long;
}

/** Optimal string alignment distance (commander's measure for its suggestions). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(
        d[i - 1]![j]! + 1,
        row[j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * ` (did you mean --json?)` for a mistyped long option, as commander suggests: the closest
 * names within 3 edits and more alike than not; empty when none is.
 */
export function suggestion(raw: string, names: readonly string[]): string {
  if (!raw.startsWith('--')) return '';
  const word = raw.slice(2);
  let best = 3;
  let similar: string[] = [];
  for (const name of names) {
    if (name.length <= 1) continue;
    const dist = distance(word, name);
    const length = Math.max(word.length, name.length);
    if ((length - dist) / length <= 0.4) continue;
    if (dist < best) {
      best = dist;
      similar = [name];
    } else if (dist === best) similar.push(name);
  }
  similar.sort((x, y) => x.localeCompare(y));
  const list = similar.map((n) => `--${n}`);
  if (list.length > 1) return ` (did you mean one of ${list.join(', ')}?)`;
  return list.length === 1 ? ` (did you mean ${list[0]}?)` : '';
}

/**
 * Parses `argv` (after the subcommand's name): options anywhere, `--` ends them, the rest
 * are `args`. `--help` is reported, not printed (the subcommand prints its own usage).
 * Throws {@link UsageError}.
 */
export function parseSubcommand<T>(
  spec: Readonly<Record<string, SubcommandOption>>,
  argv: readonly string[],
): ParsedSubcommand<T> {
  const all: Record<string, SubcommandOption> = { ...spec, help: { type: 'boolean', short: 'h' } };
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(all).map(([name, o]) => [
        name,
        o.short ? { type: o.type, short: o.short } : { type: o.type },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const options: Record<string, string | boolean> = {};
  const args: string[] = [];
  let error: string | undefined;
  for (const t of tokens) {
    if (t.kind === 'positional') args.push(t.value);
    if (t.kind !== 'option' || error !== undefined) continue;
    const o = Object.hasOwn(all, t.name) ? all[t.name] : undefined;
    if (o === undefined) {
      error = `unknown option '${t.rawName}'${suggestion(t.rawName, Object.keys(all))}`;
    } else if (o.type === 'string' && t.value === undefined) {
      error = `option '${flags(t.name, o)}' argument missing`;
    } else if (o.type === 'boolean' && t.value !== undefined) {
      error = `option '${flags(t.name, o)}' takes no value`;
    } else options[t.name] = t.value ?? true;
  }
  // as commander: --help wins over any mistake next to it
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    return { help: true, options: {} as T, args: [] };
  }
  if (error !== undefined) throw new UsageError(error);
  return { help: false, options: options as T, args };
}
