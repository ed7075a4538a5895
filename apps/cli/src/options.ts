import { Command, InvalidArgumentError, Option } from 'commander';

/** One command-line option and the config key it sets. */
interface OptionSpec {
  flags: string;
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
    description: 'config file (default: ./arb.config.{ts,mts,js,mjs,cjs,json} if present)',
  },
  {
    flags: '-b, --bind <address>',
    key: 'bind',
    parse: list,
    description: 'address to listen on: host:port, [v6]:port, unix:path, fd://N (repeatable)',
    defaultText: '127.0.0.1:8000, or 0.0.0.0:$PORT',
  },
  {
    flags: '-w, --workers <n>',
    key: 'workers',
    parse: whole(1),
    description: 'number of worker processes',
    defaultText: '$WEB_CONCURRENCY or 1',
  },
  {
    flags: '--max-workers <n>',
    key: 'maxWorkers',
    parse: whole(1),
    description: 'the most workers -w, TTIN and `arb ctl workers add` may ask for',
    defaultText: '256',
  },
  {
    flags: '-t, --timeout <s>',
    key: 'timeout',
    parse: secs,
    description: 'kill a worker whose event loop is blocked this long (0: never)',
    defaultText: '30',
  },
  {
    flags: '--graceful-timeout <s>',
    key: 'gracefulTimeout',
    parse: secs,
    description: 'time workers get to finish requests on stop or reload',
    defaultText: '30',
  },
  {
    flags: '--boot-timeout <s>',
    key: 'bootTimeout',
    parse: secs,
    description:
      'time a new generation (reload) or a new master (upgrade) has to be ready before it is rolled back',
    defaultText: 'max(timeout, 30)',
  },
  {
    flags: '--keep-alive <s>',
    key: 'keepAlive',
    parse: secs,
    description: 'idle keep-alive connection timeout',
    defaultText: '5',
  },
  {
    flags: '--backlog <n>',
    key: 'backlog',
    parse: whole(1),
    description: 'listen backlog',
    defaultText: '2048',
  },
  {
    flags: '--max-requests <n>',
    key: 'maxRequests',
    parse: whole(0),
    description: 'recycle a worker after this many requests (0: never)',
    defaultText: '0',
  },
  {
    flags: '--max-requests-jitter <n>',
    key: 'maxRequestsJitter',
    parse: whole(0),
    description: 'random 0..n added to --max-requests per worker',
    defaultText: '0',
  },
  {
    flags: '--reuse-port',
    key: 'reusePort',
    description:
      'SO_REUSEPORT on the listeners: another arb may bind the same address (Node.js >= 22.12)',
  },
  {
    flags: '--umask <mode>',
    key: 'umask',
    description: 'umask for unix sockets and worker files, octal',
    defaultText: '0',
  },
  {
    flags: '-u, --user <user>',
    key: 'user',
    parse: idOrName,
    description: 'run workers as this user (name or uid)',
  },
  {
    flags: '-g, --group <group>',
    key: 'group',
    parse: idOrName,
    description: 'run workers as this group (name or gid)',
  },
  { flags: '-p, --pid <file>', key: 'pidfile', description: 'write the master pid to this file' },
  {
    flags: '-n, --name <name>',
    key: 'procName',
    description: 'name in process titles',
    defaultText: 'from the app path',
  },
  {
    flags: '-e, --env <key=value>',
    key: 'env',
    parse: envPair,
    description: 'environment variable for the master and workers (repeatable)',
  },
  {
    flags: '--preload',
    key: 'preload',
    description: 'load the app in the master first, to fail fast',
  },
  {
    flags: '--chdir <dir>',
    key: 'chdir',
    description: 'change to this directory before loading the app',
  },
  {
    flags: '--worker-tmp-dir <dir>',
    key: 'workerTmpDir',
    description: 'directory for worker heartbeat files',
    defaultText: 'OS tmp',
  },
  {
    flags: '--log-level <level>',
    key: 'logLevel',
    description: 'fatal, error, warn, info, debug or trace',
    defaultText: 'info',
  },
  {
    flags: '--log-format <format>',
    key: 'logFormat',
    description: 'auto (readable on a terminal), json or pretty: master, workers, companions',
    defaultText: 'auto',
  },
  {
    flags: '--error-log <path>',
    key: 'errorLog',
    description: "error log file ('-': stderr)",
    defaultText: '-',
  },
  {
    flags: '--access-log <path>',
    key: 'accessLog',
    description: "access log file ('-': stdout)",
    defaultText: 'none',
  },
  {
    flags: '--access-log-format <format>',
    key: 'accessLogFormat',
    description: 'access log line format',
  },
  {
    flags: '--certfile <file>',
    key: 'certfile',
    description: 'TLS certificate (PEM); serve HTTPS with --keyfile',
  },
  { flags: '--keyfile <file>', key: 'keyfile', description: 'TLS private key (PEM)' },
  {
    flags: '--companion-socket <path>',
    key: 'companions.socket',
    description: 'companion manager control socket',
  },
  {
    flags: '--ctl-socket <path>',
    key: 'ctl.socket',
    description: 'master control socket for arb ctl, mode 0600 ("none": no socket)',
    defaultText: './arb.ctl',
  },
  {
    flags: '--metrics-bind <address>',
    key: 'metrics.bind',
    description: 'serve Prometheus metrics on this address',
  },
  { flags: '--check-config', description: 'validate the config and load the app, then exit' },
  { flags: '--print-config', description: 'print the resolved config as JSON, then exit' },
];

/** The option name commander stores a flag under (`--graceful-timeout` → `gracefulTimeout`). */
export function attributeOf(spec: OptionSpec): string {
  return new Option(spec.flags).attributeName();
}

/** A fresh `arb` command definition (one per parse: commander keeps state). */
export function buildProgram(version: string): Command {
  const program = new Command('arb')
    .usage('[options] <app>')
    .description(
      'A pre-fork process manager for Node.js: a master that owns the sockets, N workers ' +
        'that serve the app, companions next to them.\n\n' +
        '<app> is path/to/module[:export]. Also: arb companion --help, arb ctl --help,\n' +
        'arb upgrade --help',
    )
    .argument('[app]', 'the app module, path/to/module[:export]')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .showSuggestionAfterError(true);
  for (const spec of OPTIONS) {
    const description = spec.defaultText
      ? `${spec.description} (default: ${spec.defaultText})`
      : spec.description;
    const option = new Option(spec.flags, description);
    if (spec.parse) option.argParser(spec.parse as (v: string, p: unknown) => unknown);
    program.addOption(option);
  }
  return program;
}
