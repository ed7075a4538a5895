import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompanionConfigError,
  managerEntry,
  managerIdentity,
  parseCompanions,
} from '@arb/companion';
import { type ArbiterConfig, primaryGid, type SidecarSpec } from '@arb/core';
import { controlOptions } from './control-options.js';
import { ConfigError } from './errors.js';
import type { ResolvedConfig } from './resolve.js';
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
    user,
    group,
    ...plain
  } = config;
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
      config.logLevel,
    ),
    control: controlOptions(config, cwd, path.resolve(cwd, config.chdir ?? '.')),
  } as ArbiterConfig;
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
    try {
      gid = primaryGid(uid);
    } catch (err) {
      throw new ConfigError('config', [`user: ${(err as Error).message}`]);
    }
  }
  return { user: uid, group: gid };
}

/**
 * The companion manager in the arbiter's sidecar slot, when companions are configured. Its
 * identity is the sorted companion config hashes (plus the socket), so a reload restarts it
 * only when a companion changed.
 */
export function companionSidecar(
  companions: ResolvedConfig['companions'],
  configFile: string | undefined,
  baseDir: string,
  logLevel: string,
): SidecarSpec | undefined {
  if (!companions) return undefined;
  let settings: ReturnType<typeof parseCompanions>;
  try {
    settings = parseCompanions(companions, { baseDir });
  } catch (err) {
    if (err instanceof CompanionConfigError)
      throw new ConfigError(configFile ?? 'config', [err.message]);
    throw err;
  }
  if (settings.configs.length === 0) return undefined;
  // With a config file the manager re-imports it itself on `arb companion reread` (through
  // the CLI's loader, so TypeScript works); companions given otherwise travel as JSON.
  const source = configFile ? ['--config', configFile, '--loader', LOADER] : [];
  const env = configFile ? {} : { ARB_COMPANION_CONFIG_JSON: JSON.stringify(companions) };
  return {
    name: 'companion manager',
    identity: managerIdentity(settings.configs, { socket: settings.socket }),
    stopTimeout: settings.managerStopTimeout,
    // The manager stops gracefully on TERM and INT; QUIT is its quick stop.
    quickStopSignal: 'SIGQUIT',
    spawn: (ctx) =>
      spawn(
        process.execPath,
        [
          managerEntry(),
          ...source,
          '--base-dir',
          baseDir,
          '--parent-pid',
          String(ctx.masterPid),
          '--log-level',
          logLevel,
        ],
        { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } },
      ),
  };
}
