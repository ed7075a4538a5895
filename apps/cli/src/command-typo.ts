/** Commands of `arb ctl` and `arb companion` that a user may type without the subcommand. */
const LIKELY: Readonly<Record<string, string>> = {
  status: 'arb ctl status',
  reload: 'arb ctl reload',
  reopen: 'arb ctl reopen',
  shutdown: 'arb ctl shutdown',
  stop: 'arb ctl shutdown',
  workers: 'arb ctl workers',
  reread: 'arb companion reread',
  restart: 'arb companion restart',
};

/**
 * For an app path that names no file and is a command of `arb ctl` or `arb companion`
 * (`arb status`): the line that points at the command meant. Undefined otherwise.
 */
export function commandTypo(app: string): string | undefined {
  const meant = Object.hasOwn(LIKELY, app) ? LIKELY[app] : undefined;
  return meant ? `no app '${app}'; did you mean '${meant}'?` : undefined;
}
