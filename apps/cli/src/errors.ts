/** A usage or config problem: exit status 1, nothing started. `problems` are one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_ARB_CONFIG';
  constructor(
    /** Where the values came from: a config file path, `command line`, `ARB_CMD_ARGS`. */
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(problems.map((p) => `${source}: ${p}`).join('\n'));
  }
}
