import { Command, CommanderError } from 'commander';

/** A command line that does not parse; the message is what the user is told. */
export class UsageError extends Error {}

/**
 * One line for a commander error, as `arb` prints it: without commander's `error: ` and
 * with its suggestion on the same line (`unknown option '--wrokers' (did you mean --workers?)`).
 */
export function commanderMessage(err: CommanderError, written = ''): string {
  const [first = err.message, second = ''] = (written || err.message).trim().split('\n');
  const hint = /^\(Did you mean (.+)\?\)$/.exec(second.trim());
  return first.replace(/^error: /, '') + (hint ? ` (did you mean ${hint[1]}?)` : '');
}

/** A subcommand's definition: its options (commander flags) and free arguments. */
export function subcommand(name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .helpOption('-h, --help')
    .argument('[args...]')
    .showSuggestionAfterError(true);
}

export interface ParsedSubcommand<T> {
  help: boolean;
  options: T;
  args: string[];
}

/**
 * Parses `argv` (after the subcommand's name) with `command`; `--help` is reported, not
 * printed (the subcommand prints its own usage). Throws {@link UsageError}.
 */
export function parseSubcommand<T>(command: Command, argv: readonly string[]): ParsedSubcommand<T> {
  try {
    command.parse(argv as string[], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed') return { help: true, options: {} as T, args: [] };
    throw new UsageError(commanderMessage(err));
  }
  return { help: false, options: command.opts<T & Record<string, unknown>>(), args: command.args };
}
