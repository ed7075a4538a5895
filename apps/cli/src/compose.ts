import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompanionConfigError,
  type CompanionsInput,
  managerEntry,
  managerIdentity,
  parseCompanions,
  refuseNonSocket,
} from '@arb/companion';
import type { ArbiterConfig, SidecarSpec } from '@arb/core';
import { lookupUser, SocketPathError } from '@arb/sock';
import { controlOptions } from './control-options.js';
import { ConfigError } from './errors.js';
import type { ResolvedConfig } from './resolve.js';
import { type StopBudget, stopBudgetWarnings } from './stop-budget.js';
import { resolveId } from './users.js';

/** The built `--loader` module for the manager (next to this file in dist/). */
const LOADER = fileURLToPath(new URL('./companion-loader.js', import.meta.url));

/** What the arbiter runs with: plain settings, hooks, the config module, the companion manager. */
export function toArbiterConfig(config: ResolvedConfig, cwd: string): ArbiterConfig {
  const {
    hooks,
    configFile,
    companions,
    ctl: _ctl,
    metrics: _metrics,
    health: _health,
    user,
    group,
    devReload,
    ...plain
  } = config;
  const baseDir = path.resolve(cwd, config.chdir ?? '.');
  return {
    ...plain,
    ...hooks,
    ...userAndGroup(user, group),
    chdir: path.resolve(cwd, config.chdir ?? '.'),
    configModule: configFile,
    sidecar: companionSidecar(
      companions,
      configFile,
      path.resolve(cwd, config.chdir ?? '.'),
      { level: config.logLevel, format: config.logFormat },
      { user: resolveId('user', user), group: resolveId('group', group) },
      { shutdownDelay: config.shutdownDelay, gracefulTimeout: config.gracefulTimeout },
    ),
    control: controlOptions(config, cwd, path.resolve(cwd, config.chdir ?? '.')),
    devReload: devReload
      ? { ...(devReload === true ? {} : devReload), writes: companionWrites(companions, baseDir) }
      : undefined,
  } as ArbiterConfig;
}

/**
 * The files the companions write in the tree development mode watches (their socket, their
 * stdout/stderr files): a companion logging must not reload the app.
 */
function companionWrites(companions: ResolvedConfig['companions'], baseDir: string): string[] {
  if (!companions) return [];
  try {
    const settings = parseCompanions(companions, { baseDir });
    const files = settings.configs.flatMap((c) =>
      [c.stdout, c.stderr].filter((f) => f !== 'inherit' && f !== 'stdout'),
    );
    return settings.socket ? [settings.socket, ...files] : files;
  } catch {
    return []; // reported where the sidecar is built
  }
}

/**
 * The manager this master runs, as far as a reload is concerned: the identity the arbiter
 * recorded when it spawned it, and the identity of what it runs now, which a reread
 * (`arb companion reread`, or HUP to the manager) changes behind the master's back. The
 * manager reports the latter on its IPC channel after every applied reread.
 */
interface RunningManager {
  readonly child: ChildProcess;
  readonly spawnedAs: string;
  runs: string;
}
let running: RunningManager | undefined;

/**
 * The identity to hand the arbiter for companions that hash to `fresh`. The arbiter restarts
 * the manager when this differs from the one it spawned it with, so: the spawn-time one
 * when the manager already runs `fresh` (a reread got there first: nothing to restart);
 * `fresh` otherwise; and a distinct value when `fresh` equals the spawn-time identity but
 * a reread moved the manager away from it (the file went back: the manager must follow).
 */
function identityFor(fresh: string): string {
  const m = running;
  if (!m || m.child.exitCode !== null || m.child.signalCode !== null) return fresh;
  if (m.runs === fresh) return m.spawnedAs;
  if (fresh === m.spawnedAs) return `${fresh};after-reread`;
  return fresh;
}

/**
 * Numeric user and group; `-u` alone brings the user's primary group (never the master's
 * own group 0), as nginx and supervisord do. The workers add the user's supplementary groups.
 */
function userAndGroup(
  user: string | number | undefined,
  group: string | number | undefined,
): { user?: number; group?: number } {
  const uid = resolveId('user', user);
  let gid = resolveId('group', group);
  if (uid !== undefined && gid === undefined) {
    gid = lookupUser(uid)?.gid ?? undefined;
    if (gid === undefined) {
      throw new ConfigError('config', [
        `user: user ${uid} has no entry in /etc/passwd: give a group (-g) explicitly`,
      ]);
    }
  }
  return { user: uid, group: gid };
}

/**
 * The companion manager in the arbiter's sidecar slot, when companions are configured. Its
 * identity is the sorted companion config hashes (plus the socket), so a reload restarts it
 * only when a companion changed, compared with what the manager runs now (rereads
 * included). Companions run as `ids` (the workers' -u/-g) unless they name a user. A
 * companion without a stopTimeout gets the workers' gracefulTimeout: one stop budget
 * (shutdownDelay + gracefulTimeout) for the tree, and a warning for each that exceeds it.
 */
export function companionSidecar(
  companions: ResolvedConfig['companions'],
  configFile: string | undefined,
  baseDir: string,
  log: { level: string; format: string },
  ids: { user?: number; group?: number },
  budget: StopBudget,
): SidecarSpec | undefined {
  if (!companions) return undefined;
  let settings: ReturnType<typeof parseCompanions>;
  try {
    settings = parseCompanions(companions, {
      baseDir,
      ...ids,
      stopTimeout: budget.gracefulTimeout,
    });
    // A file or directory at the socket path would make every manager fail to bind, and
    // the master respawn it for ever: refuse it now, before anything starts.
    if (settings.socket) refuseNonSocket(settings.socket);
  } catch (err) {
    if (err instanceof CompanionConfigError || err instanceof SocketPathError)
      throw new ConfigError(configFile ?? 'config', [err.message]);
    throw err;
  }
  if (settings.configs.length === 0) return undefined;
  // With a config file the manager re-imports it itself on `arb companion reread` (through
  // the CLI's loader, so TypeScript works); companions given otherwise travel as JSON. The
  // socket is passed as resolved here (the command line may have set it).
  const source = configFile ? ['--config', configFile, '--loader', LOADER] : [];
  const env = configFile ? {} : { ARB_COMPANION_CONFIG_JSON: JSON.stringify(companions) };
  const idArgs = [
    ...(ids.user !== undefined ? ['--user', String(ids.user)] : []),
    ...(ids.group !== undefined ? ['--group', String(ids.group)] : []),
    '--stop-timeout',
    String(budget.gracefulTimeout),
  ];
  // A Procfile from the command line is not in the file the manager re-imports: name it.
  const procfile = (companions as CompanionsInput).procfile;
  const procfileArgs =
    configFile && procfile !== undefined ? ['--procfile', path.resolve(baseDir, procfile)] : [];
  const fresh = managerIdentity(settings.configs, { socket: settings.socket });
  const identity = identityFor(fresh);
  return {
    name: 'companion manager',
    identity,
    stopTimeout: settings.managerStopTimeout,
    warnings: stopBudgetWarnings(companions as CompanionsInput, settings, budget),
    // The manager stops gracefully on TERM and INT; QUIT is its quick stop.
    quickStopSignal: 'SIGQUIT',
    spawn: (ctx) => {
      const child = spawn(
        process.execPath,
        [
          managerEntry(),
          ...source,
          ...procfileArgs,
          ...(settings.socket ? ['--socket', settings.socket] : []),
          ...idArgs,
          '--base-dir',
          baseDir,
          '--parent-pid',
          String(ctx.masterPid),
          '--log-level',
          log.level,
          '--log-format',
          log.format,
        ],
        { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } },
      );
      const me: RunningManager = { child, spawnedAs: identity, runs: fresh };
      running = me;
      child.on('message', (msg: { type?: unknown; identity?: unknown }) => {
        if (msg?.type === 'identity' && typeof msg.identity === 'string') me.runs = msg.identity;
      });
      // The channel must not keep a master that is done from exiting.
      child.channel?.unref();
      return child;
    },
  };
}
