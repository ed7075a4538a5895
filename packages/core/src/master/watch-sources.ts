import fs from 'node:fs';
import path from 'node:path';
import type { DevReloadConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { ArbiterSettings } from '../settings.js';
import { appFile } from '../worker/load-app.js';
import type { Lineage } from './lineage.js';

/** What development mode needs of the master (the Arbiter has all of it). */
export interface WatchHost {
  readonly log: Logger;
  readonly settings: ArbiterSettings;
  readonly config: { configModule?: string; control?: { socket?: string } };
  readonly listeners: readonly { path?: string }[];
  readonly lineage: Lineage;
  /** The directory the master started in (the ctl socket path is relative to it). */
  readonly startCwd: string;
  readonly pool: { forgetBootFailures(): void };
  signal(sig: 'SIGHUP'): void;
}

/**
 * Development mode: watches the app's directory and the config file's (everything below
 * them but node_modules, .git and the ignored globs) and, once a burst of changes is over,
 * queues a HUP: the same readiness-gated reload, so an edit that does not load leaves the
 * old generation serving. The watcher's code is imported only here, when the mode is on.
 */
export async function watchSources(
  host: WatchHost,
  options: DevReloadConfig,
): Promise<{ close(): void }> {
  const { SourceWatcher } = await import('./dev-reload.js');
  const s = host.settings;
  const app = appFile(s.app, s.chdir);
  const dirs = [path.dirname(app)];
  const files: string[] = [];
  const configModule = host.config.configModule;
  if (configModule) {
    dirs.push(path.dirname(configModule));
    files.push(configModule);
  }
  const watcher = await SourceWatcher.start({
    dirs,
    files,
    ignore: options.ignore,
    debounce: options.debounce,
    own: ownPaths(host, options),
    onChange: (changed) => {
      // a master in an upgrade (USR2) leaves the reload to the one that stays
      if (host.lineage.role !== 'sole') return;
      const names = changed.map((p) => path.relative(s.chdir, p) || p);
      const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')}, ...` : names.join(', ');
      host.log.info({ changed: names }, `Files changed: ${shown}; reloading`);
      // an edit is a new attempt: the backoff earned by the broken ones must not delay it
      host.pool.forgetBootFailures();
      host.signal('SIGHUP');
    },
    onWarning: (message) => host.log.warn(message),
  });
  host.log.info(
    { watched: watcher.roots, directories: watcher.watched },
    `Reload on change: watching ${watcher.roots.join(', ')} (${watcher.watched} directories)`,
  );
  return watcher;
}

/** Everything this master writes: changes there are its own doing, not an edit. */
function ownPaths(host: WatchHost, options: DevReloadConfig): string[] {
  const s = host.settings;
  const out = [s.workerTmpDir, ...(options.writes ?? [])];
  if (s.pidfile) out.push(s.pidfile, `${s.pidfile}.2`);
  for (const log of [s.errorLog, s.accessLog]) if (log && log !== '-') out.push(log);
  const ctl = host.config.control?.socket;
  if (ctl) {
    const abs = path.resolve(host.startCwd, ctl);
    out.push(abs, `${abs}.2`);
  }
  for (const l of host.listeners) if (l.path) out.push(l.path);
  out.push(...redirected());
  return out.map((p) => path.resolve(host.startCwd, p));
}

/** The files this process's stdout and stderr go to (`arb ... > out.log 2>&1`), on Linux. */
function redirected(): string[] {
  const out: string[] = [];
  for (const fd of [1, 2]) {
    try {
      if (!fs.fstatSync(fd).isFile()) continue;
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('/')) out.push(target);
    } catch {
      // no /proc, or the descriptor is closed: nothing of ours to leave out
    }
  }
  return out;
}
