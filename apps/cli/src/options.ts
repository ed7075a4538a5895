import { Command, InvalidArgumentError, Option } from 'commander';

/**
 * The sections of `arb --help`, in order, with their headings. A new flag names one of
 * these (or a new one added here) and lands under its heading.
 */
export const OPTION_GROUPS = {
  serving: 'Serving',
  workers: 'Workers',
  reload: 'Reload and upgrade',
  logging: 'Logging',
  security: 'Security and privileges',
  companions: 'Companions',
  observability: 'Observability and control',
  deployment: 'Deployment',
  general: 'Config and general',
} as const;

export type OptionGroup = keyof typeof OPTION_GROUPS;

/** One command-line option and the config key it sets. */
export interface OptionSpec {
  flags: string;
  /** The --help section it is listed under. */
  group: OptionGroup;
  /** Dotted config key (`companions.socket`), or undefined for CLI-only options. */
  key?: string;
  description: string;
  parse?: (value: string, previous: unknown) => unknown;
  /** Shown in --help; the real defaults live in defaults.ts. */
  defaultText?: string;
}

function whole(min: number) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < min) {
      throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    }
    return Number(value);
  };
}

function secs(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError('expected a number of seconds >= 0');
  }
  return n;
}

function megabytes(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('expected a number of MB > 0');
  }
  return n;
}

function rate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('expected a number from 0 to 1');
  }
  return n;
}

function ratio(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 1) {
    throw new InvalidArgumentError('expected a number >= 1');
  }
  return n;
}

function list(value: string, previous: unknown): string[] {
  return [...((previous as string[] | undefined) ?? []), value];
}

function envPair(value: string, previous: unknown): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('expected KEY=VALUE');
  return {
    ...((previous as Record<string, string> | undefined) ?? {}),
    [value.slice(0, i)]: value.slice(i + 1),
  };
}

function idOrName(value: string): string | number {
  return /^\d+$/.test(value) ? Number(value) : value;
}

/** Every flag of `arb [options] <app>`, in --help order. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    flags: '-c, --config <file>',
    group: 'general',
    description: 'config file (default: ./arb.config.{ts,mts,js,mjs,cjs,json} if present)',
  },
  {
    flags: '-b, --bind <address>',
    group: 'serving',
    key: 'bind',
    parse: list,
    description: 'address to listen on: host:port, [v6]:port, unix:path, fd://N (repeatable)',
    defaultText: '127.0.0.1:8000, or 0.0.0.0:$PORT',
  },
  {
    flags: '-w, --workers <n>',
    group: 'workers',
    key: 'workers',
    parse: whole(1),
    description: 'number of worker processes',
    defaultText: '$WEB_CONCURRENCY or 1',
  },
  {
    flags: '--max-workers <n>',
    group: 'workers',
    key: 'maxWorkers',
    parse: whole(1),
    description: 'the most workers -w, TTIN and `arb ctl workers add` may ask for',
    defaultText: '256',
  },
  {
    flags: '-t, --timeout <s>',
    group: 'workers',
    key: 'timeout',
    parse: secs,
    description: 'kill a worker whose event loop is blocked this long (0: never)',
    defaultText: '30',
  },
  {
    flags: '--graceful-timeout <s>',
    group: 'workers',
    key: 'gracefulTimeout',
    parse: secs,
    description: 'time workers get to finish requests on stop or reload',
    defaultText: '30',
  },
  {
    flags: '--shutdown-delay <s>',
    group: 'deployment',
    key: 'shutdownDelay',
    parse: secs,
    description:
      'on TERM, answer /readyz 503 at once and keep accepting this long before the graceful drain',
    defaultText: '0',
  },
  {
    flags: '--boot-timeout <s>',
    group: 'reload',
    key: 'bootTimeout',
    parse: secs,
    description:
      'time a new generation (reload) or a new master (upgrade) has to be ready before it is rolled back',
    defaultText: 'max(timeout, 30)',
  },
  {
    flags: '--canary-workers <n>',
    group: 'reload',
    key: 'reload.canary.workers',
    parse: whole(1),
    description:
      'reload with a canary: this many new workers serve beside the old generation first (any --canary-* flag turns it on)',
    defaultText: '1',
  },
  {
    flags: '--canary-seconds <s>',
    group: 'reload',
    key: 'reload.canary.seconds',
    parse: secs,
    description: 'how long the canary serves before it is judged',
    defaultText: '30',
  },
  {
    flags: '--canary-max-error-rate <r>',
    group: 'reload',
    key: 'reload.canary.maxErrorRate',
    parse: rate,
    description: "roll back when the canary's 5xx share is above this (and the old generation's)",
    defaultText: '0.01',
  },
  {
    flags: '--canary-max-p99-ratio <x>',
    group: 'reload',
    key: 'reload.canary.maxP99Ratio',
    parse: ratio,
    description:
      "roll back when the canary's p99 latency is above this many times the old generation's",
    defaultText: '2',
  },
  {
    flags: '--reload',
    group: 'reload',
    key: 'devReload',
    description:
      "development: watch the app's directory and the config file (not node_modules, .git), reload as HUP does on a change",
  },
  {
    flags: '--keep-alive <s>',
    group: 'serving',
    key: 'keepAlive',
    parse: secs,
    description: 'idle keep-alive connection timeout',
    defaultText: '5',
  },
  {
    flags: '--bind-retries <n>',
    group: 'serving',
    key: 'bindRetries',
    parse: whole(0),
    description:
      'retry an address in use this many times, 1 s apart (gunicorn: 4); 0 fails at once, naming the pid on the port',
    defaultText: '0',
  },
  {
    flags: '--backlog <n>',
    group: 'serving',
    key: 'backlog',
    parse: whole(1),
    description: 'listen backlog',
    defaultText: '2048',
  },
  {
    flags: '--max-requests <n>',
    group: 'workers',
    key: 'maxRequests',
    parse: whole(0),
    description: 'recycle a worker after this many requests (0: never)',
    defaultText: '0',
  },
  {
    flags: '--max-memory <mb>',
    group: 'workers',
    key: 'maxMemory',
    parse: megabytes,
    description:
      'replace a worker whose RSS stays above this many MB for 3 s: its successor first, then it drains',
    defaultText: 'none',
  },
  {
    flags: '--max-requests-jitter <n>',
    group: 'workers',
    key: 'maxRequestsJitter',
    parse: whole(0),
    description: 'random 0..n added to --max-requests per worker',
    defaultText: '0',
  },
  {
    flags: '--reuse-port',
    group: 'serving',
    key: 'reusePort',
    description:
      'SO_REUSEPORT on the listeners: another arb may bind the same address (Node.js >= 22.12)',
  },
  {
    flags: '--subreaper',
    group: 'deployment',
    key: 'subreaper',
    description:
      'reap the orphans of workers and companions as a child subreaper (Linux; as PID 1 arb always reaps)',
    defaultText: 'on in a container',
  },
  {
    flags: '--no-subreaper',
    group: 'deployment',
    key: 'subreaper',
    description: 'do not become a child subreaper',
  },
  {
    flags: '--umask <mode>',
    group: 'security',
    key: 'umask',
    description: 'umask for unix sockets and worker files, octal',
    defaultText: '0',
  },
  {
    flags: '-u, --user <user>',
    group: 'security',
    key: 'user',
    parse: idOrName,
    description: 'run workers as this user (name or uid)',
  },
  {
    flags: '-g, --group <group>',
    group: 'security',
    key: 'group',
    parse: idOrName,
    description: 'run workers as this group (name or gid)',
  },
  {
    flags: '-p, --pid <file>',
    group: 'deployment',
    key: 'pidfile',
    description: 'write the master pid to this file',
  },
  {
    flags: '-n, --name <name>',
    group: 'deployment',
    key: 'procName',
    description: 'name in process titles',
    defaultText: 'from the app path',
  },
  {
    flags: '-e, --env <key=value>',
    group: 'deployment',
    key: 'env',
    parse: envPair,
    description: 'environment variable for the master and workers (repeatable)',
  },
  {
    flags: '--preload',
    group: 'workers',
    key: 'preload',
    description: 'load the app in the master first, to fail fast',
  },
  {
    flags: '--chdir <dir>',
    group: 'deployment',
    key: 'chdir',
    description: 'change to this directory before loading the app',
  },
  {
    flags: '--worker-tmp-dir <dir>',
    group: 'workers',
    key: 'workerTmpDir',
    description: 'directory for worker heartbeat files',
    defaultText: 'OS tmp',
  },
  {
    flags: '--log-level <level>',
    group: 'logging',
    key: 'logLevel',
    description: 'fatal, error, warn, info, debug or trace',
    defaultText: 'info',
  },
  {
    flags: '--log-format <format>',
    group: 'logging',
    key: 'logFormat',
    description: 'auto (readable on a terminal), json or pretty: master, workers, companions',
    defaultText: 'auto',
  },
  {
    flags: '--error-log <path>',
    group: 'logging',
    key: 'errorLog',
    description: "error log file ('-': stderr)",
    defaultText: '-',
  },
  {
    flags: '--access-log <path>',
    group: 'logging',
    key: 'accessLog',
    description: "access log file ('-': stdout)",
    defaultText: 'none',
  },
  {
    flags: '--access-log-format <format>',
    group: 'logging',
    key: 'accessLogFormat',
    description: 'access log line format',
  },
  {
    flags: '--certfile <file>',
    group: 'security',
    key: 'certfile',
    description: 'TLS certificate (PEM); serve HTTPS with --keyfile',
  },
  {
    flags: '--keyfile <file>',
    group: 'security',
    key: 'keyfile',
    description: 'TLS private key (PEM)',
  },
  {
    flags: '--companion-socket <path>',
    group: 'companions',
    key: 'companions.socket',
    description: 'companion manager control socket',
  },
  {
    flags: '--procfile <file>',
    group: 'companions',
    key: 'companions.procfile',
    description:
      'run the entries of a foreman/Heroku Procfile as command companions (.env beside it loaded; web ignored)',
  },
  {
    flags: '--ctl-socket <path>',
    group: 'observability',
    key: 'ctl.socket',
    description: 'master control socket for arb ctl, mode 0600 ("none": no socket)',
    defaultText: './arb.ctl',
  },
  {
    flags: '--metrics-bind <address>',
    group: 'observability',
    key: 'metrics.bind',
    description: 'serve Prometheus metrics on this address (/metrics, /livez, /readyz)',
  },
  {
    flags: '--health-bind <address>',
    group: 'observability',
    key: 'health.bind',
    description: 'serve /livez and /readyz on this address (probes, load balancer checks)',
  },
  {
    flags: '--check-config',
    group: 'general',
    description: 'validate the config and load the app, then exit',
  },
  {
    flags: '--print-config',
    group: 'general',
    description: 'print the resolved config as JSON, then exit',
  },
];

/** The option name commander stores a flag under (`--graceful-timeout` → `gracefulTimeout`). */
export function attributeOf(spec: OptionSpec): string {
  return new Option(spec.flags).attributeName();
}

/** The subcommands, one line each, as `arb --help` lists them. */
export const SUBCOMMANDS: readonly (readonly [usage: string, what: string])[] = [
  ['ctl <command>', 'control a running master: status, reload, ...'],
  ['companion <command>', 'control the companions: status, start, stop, ...'],
  ['top', 'live view: req/s, latency, RSS, CPU, lag per worker'],
  ['upgrade --pid <file>', 'replace a running master, sockets kept'],
];

/** `arb <name> --help` for each subcommand, in the same order. */
const SUBCOMMAND_NAMES = SUBCOMMANDS.map(([usage]) => usage.split(' ')[0]!);

function subcommandsHelp(): string {
  const width = Math.max(...SUBCOMMANDS.map(([u]) => u.length)) + 2;
  const rows = SUBCOMMANDS.map(([u, what]) => `  arb ${u.padEnd(width)}${what}`);
  return `\nCommands (arb <command> --help for each):\n${rows.join('\n')}\n`;
}

/** A fresh `arb` command definition (one per parse: commander keeps state). */
export function buildProgram(version: string): Command {
  const general = `${OPTION_GROUPS.general}:`;
  const program = new Command('arb')
    .usage('[options] <app>\n       arb <command> ...')
    .description(
      'A pre-fork process manager for Node.js: a master that owns the sockets, N workers ' +
        'that serve the app, companions next to them.\n\n' +
        '<app> is path/to/module[:export]: a request listener, a fetch handler, an http.Server, ' +
        'a Fastify instance, or a factory of one.',
    )
    .argument('[app]', 'the app module, path/to/module[:export]')
    .allowExcessArguments(false)
    .showSuggestionAfterError(true)
    .addHelpText('after', subcommandsHelp());
  const ordered = Object.keys(OPTION_GROUPS).flatMap((g) => OPTIONS.filter((o) => o.group === g));
  for (const spec of ordered) {
    const description = spec.defaultText
      ? `${spec.description} (default: ${spec.defaultText})`
      : spec.description;
    const option = new Option(spec.flags, description).helpGroup(`${OPTION_GROUPS[spec.group]}:`);
    if (spec.parse) option.argParser(spec.parse as (v: string, p: unknown) => unknown);
    program.addOption(option);
  }
  // after the others: commander lists the groups in the order their options came
  program
    .version(version, '-v, --version', 'print the version')
    .addHelpOption(new Option('-h, --help', 'show this help').helpGroup(general));
  program.options.find((o) => o.long === '--version')?.helpGroup(general);
  return program;
}

/** Whether `name` is one of the subcommands (`ctl`, `companion`, `top`, `upgrade`). */
export function isSubcommand(name: string | undefined): boolean {
  return name !== undefined && SUBCOMMAND_NAMES.includes(name);
}
