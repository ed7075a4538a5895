/**
 * The manager process entry: `node <managerEntry()> [--config FILE] [--socket PATH]
 * [--base-dir DIR] [--parent-pid PID] [--log-level LEVEL] [--log-format auto|json|pretty]
 * [--user USER] [--group GROUP] [--stop-timeout S]`. `--stop-timeout`: the stopTimeout of
 * companions that set none (arb passes the workers' gracefulTimeout).
 * `--user`/`--group`: the ids companions run as unless they name their own (arb passes the
 * workers' -u/-g); the manager itself keeps its ids, to signal companions of any user.
 *
 * `--procfile FILE`: a foreman Procfile whose entries join the config's companions (it
 * replaces the config's own `procfile`); re-read with the config on every reread/HUP.
 *
 * Config: `--config FILE` (or env `ARB_COMPANION_CONFIG`) names a .json/.js/.mjs/.cjs file,
 * re-imported fresh on every reread/HUP; or env `ARB_COMPANION_CONFIG_JSON` holds the
 * companions object as JSON (reread re-parses the same text, so it changes nothing).
 * `--loader MODULE` replaces the built-in file loader: MODULE exports
 * `loadCompanions(file)` (or a default function) returning the companions object, which is
 * how arb's CLI lets a reread re-import an `arb.config.ts`.
 *
 * Logs: the manager's own lines and its companions' output (what no config sends to a
 * file, captured line by line: `{proc:"companion", companion, pid, stream}`) on stderr, JSON
 * lines or, on a terminal, readable lines (`--log-format`).
 *
 * Readiness: once the socket is bound and every companion has been started, the manager
 * sends `{ type: 'ready', pid, socket, identity }` over the IPC channel when it has one, and
 * logs `companion manager running`. After each applied reread it sends
 * `{ type: 'identity', identity }` (`Manager.identity`: what it runs now).
 *
 * Signals: TERM/INT graceful stop and exit 0 (a second one makes it quick); QUIT quick
 * stop (SIGKILL after at most 1 s); HUP reread; USR1 reopen companion output files.
 * Parent death (ppid change or IPC disconnect, polled every 200 ms): quick stop (0.5 s
 * cap) and exit, well within 1 s.
 *
 * Exit status: 0 stopped; 1 config error (nothing started); 2 control socket unusable
 * (nothing started); 70 internal error (companions were stopped first).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SocketInUseError, SocketPathError } from '@arb/sock';
import { createLogSink, LOG_FORMATS, type LogFormat } from '@arb/sock/log';
import { CompanionConfigError } from './errors.js';
import { loadCompanionsFile } from './load-config.js';
import { Manager } from './manager.js';

/** Cap on stop deadlines when the parent died: stop signal, then SIGKILL within 0.5 s. */
const PARENT_GONE_CAP = 0.5;
const PARENT_POLL_MS = 200;

const USAGE = `usage: node manager-main.js [--config FILE [--loader MODULE]] [--socket PATH]
                            [--base-dir DIR] [--parent-pid PID] [--log-level LEVEL]
                            [--log-format auto|json|pretty]
                            [--user USER] [--group GROUP] [--stop-timeout S]
                            [--procfile FILE]
config: --config FILE (.json/.js/.mjs/.cjs), or $ARB_COMPANION_CONFIG, or $ARB_COMPANION_CONFIG_JSON
`;

type Loader = (file: string) => unknown | Promise<unknown>;

/** The `--loader` module's function, or an error line. */
async function importLoader(spec: string): Promise<Loader | string> {
  try {
    const mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
    const fn = mod.loadCompanions ?? mod.default;
    return typeof fn === 'function'
      ? (fn as Loader)
      : `--loader ${spec} exports no loadCompanions function`;
  } catch (err) {
    return `--loader ${spec} could not be imported: ${(err as Error).message}`;
  }
}

/** The companions object with `procfile` set (a whole arb config's `companions` too). */
function withProcfile(companions: unknown, procfile: string): unknown {
  if (companions === undefined || companions === null) return { procfile };
  if (typeof companions !== 'object' || Array.isArray(companions)) return companions;
  const obj = companions as Record<string, unknown>;
  const inner = obj.companions;
  if (inner && typeof inner === 'object' && !Array.isArray(inner) && !('workers' in obj)) {
    return { ...(inner as Record<string, unknown>), procfile };
  }
  return { ...obj, procfile };
}

async function main(): Promise<number> {
  let values: {
    config?: string;
    loader?: string;
    socket?: string;
    'base-dir'?: string;
    'parent-pid'?: string;
    'log-level'?: string;
    'log-format'?: string;
    user?: string;
    group?: string;
    'stop-timeout'?: string;
    procfile?: string;
    help?: boolean;
  };
  try {
    values = parseArgs({
      options: {
        config: { type: 'string', short: 'c' },
        loader: { type: 'string' },
        socket: { type: 'string', short: 's' },
        'base-dir': { type: 'string' },
        'parent-pid': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        user: { type: 'string' },
        group: { type: 'string' },
        'stop-timeout': { type: 'string' },
        procfile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`arb companion manager: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const stopTimeoutArg = values['stop-timeout'];
  const stopTimeout = stopTimeoutArg === undefined ? undefined : Number(stopTimeoutArg);
  if (
    stopTimeout !== undefined &&
    !(stopTimeoutArg!.trim() !== '' && Number.isFinite(stopTimeout) && stopTimeout >= 0)
  ) {
    process.stderr.write(
      `arb companion manager: --stop-timeout ${JSON.stringify(stopTimeoutArg)} is not a number of seconds >= 0\n${USAGE}`,
    );
    return 1;
  }
  const format = values['log-format'] ?? 'auto';
  if (!LOG_FORMATS.includes(format as LogFormat)) {
    process.stderr.write(
      `arb companion manager: --log-format must be one of ${LOG_FORMATS.join(', ')}, not ${JSON.stringify(format)}\n${USAGE}`,
    );
    return 1;
  }
  // stderr: stdout may be shared with companions that inherit it (API use without capture).
  const sink = createLogSink({
    proc: 'manager',
    level: values['log-level'] ?? process.env.ARB_LOG_LEVEL,
    format: format as LogFormat,
  });
  const log = sink.log;
  process.title = 'arb companion manager';

  const expectedParent = Number(values['parent-pid'] ?? process.env.ARB_COMPANION_PARENT_PID ?? 0);
  const parentPid = expectedParent > 0 ? expectedParent : process.ppid;
  if (process.ppid !== parentPid) {
    // The parent died before we got here: start nothing.
    log.info('companion manager parent gone before start; exiting');
    return 0;
  }

  const file = values.config ?? process.env.ARB_COMPANION_CONFIG;
  const json = process.env.ARB_COMPANION_CONFIG_JSON;
  let load: () => Promise<unknown>;
  if (file && values.loader) {
    const loader = await importLoader(values.loader);
    if (typeof loader === 'string') {
      log.error(loader);
      return 1;
    }
    load = async () => loader(file);
  } else if (file) load = () => loadCompanionsFile(file);
  else if (json !== undefined) load = async () => JSON.parse(json) as unknown;
  else if (values.procfile !== undefined) load = async () => ({});
  else {
    log.error(
      'no companions config: pass --config FILE or --procfile FILE, or set ARB_COMPANION_CONFIG_JSON',
    );
    return 1;
  }
  const procfile = values.procfile;
  if (procfile !== undefined) {
    const base = load;
    // Read afresh with the config on every load, so a reread picks up Procfile edits.
    load = async () => withProcfile(await base(), procfile);
  }

  let companions: unknown;
  try {
    companions = await load();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not load companions config');
    return 1;
  }
  let manager: Manager;
  try {
    manager = new Manager({
      companions,
      load,
      baseDir: values['base-dir'],
      user: values.user,
      group: values.group,
      stopTimeout,
      ...(values.socket !== undefined ? { socket: values.socket } : {}),
      logger: log,
      output: (line) =>
        sink.foreign(
          {
            proc: 'companion',
            pid: line.pid,
            companion: line.companion,
            stream: line.stream,
            continues: line.continues,
            base64: line.base64,
          },
          line.text,
        ),
    });
  } catch (err) {
    if (err instanceof CompanionConfigError) {
      log.error(
        { companion: err.companion, key: err.key, value: err.value },
        `invalid companions config: ${err.message}`,
      );
      return 1;
    }
    throw err;
  }

  let exitCode = 0;
  const done = new Promise<void>((resolve) => {
    let requested = false;
    const stop = (why: string, opts: { quick?: boolean; cap?: number }) => {
      log.info({ reason: why }, requested ? 'stop requested again' : 'stop requested');
      requested = true;
      manager.stop(opts).then(resolve, (err: Error) => {
        log.error({ err: err.message }, 'error while stopping');
        exitCode = 70;
        resolve();
      });
    };
    let graceful = 0;
    const onGraceful = (sig: string) => {
      graceful++;
      stop(sig, graceful > 1 ? { quick: true } : {});
    };
    process.on('SIGTERM', () => onGraceful('SIGTERM'));
    process.on('SIGINT', () => onGraceful('SIGINT'));
    process.on('SIGQUIT', () => stop('SIGQUIT', { quick: true }));
    process.on('SIGHUP', () => {
      log.info('SIGHUP: rereading companions config');
      manager.reread().then(
        (r) => {
          if (!r.ok) log.error(r, 'reread failed; old config kept');
        },
        (err: Error) => log.error({ err: err.message }, 'reread failed'),
      );
    });
    process.on('SIGUSR1', () => manager.reopenLogs());
    process.on('SIGUSR2', () => log.info('SIGUSR2 ignored by the companion manager'));

    const parentGone = () => {
      if (requested) return;
      log.info('companion manager parent gone, stopping');
      stop('parent gone', { cap: PARENT_GONE_CAP });
    };
    setInterval(() => {
      if (process.ppid !== parentPid) parentGone();
    }, PARENT_POLL_MS);
    process.on('disconnect', parentGone);

    process.on('uncaughtException', (err) => {
      log.fatal({ err: err.message, stack: err.stack }, 'companion manager internal error');
      exitCode = 70;
      setTimeout(() => process.exit(70), 3000).unref();
      stop('internal error', { quick: true });
    });
  });

  try {
    await manager.start();
  } catch (err) {
    if (err instanceof SocketInUseError || err instanceof SocketPathError) {
      log.error({ path: err.path }, err.message);
      await manager.stop({ quick: true });
      return 2;
    }
    throw err;
  }
  // The identity (see Manager.identity) is repeated after every applied reread, so that the
  // parent compares a reload with what runs now, not with what ran at spawn.
  const tell = (msg: Record<string, unknown>) => {
    if (process.send && process.connected) process.send(msg);
  };
  tell({ type: 'ready', pid: process.pid, socket: manager.socket, identity: manager.identity });
  manager.on('reread', (_result, identity) => tell({ type: 'identity', identity }));

  await done;
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`arb companion manager: ${err.stack ?? err.message}\n`);
    process.exit(70);
  },
);
