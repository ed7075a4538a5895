import type { ArbiterHooks } from './hooks.js';
import type { SidecarSpec } from './master/sidecar.js';
import type { ControlOptions } from './ops/control.js';
import { type ArbiterSettings, type ReloadInput, resolveSettings } from './settings.js';

/**
 * What `new Arbiter()` takes: the settings (each optional but `app`), the hooks, and the
 * two things that are not plain values.
 */
export type ArbiterConfig = Partial<Omit<ArbiterSettings, 'reload'>> &
  Pick<ArbiterSettings, 'app'> &
  Partial<ArbiterHooks> & {
    /** The rollout of a HUP reload (a canary, see `CanarySettings`). */
    reload?: ReloadInput;
    /**
     * The config module (a file path) workers re-import to get their hooks (`postFork`,
     * `postWorkerInit`, `workerInt`, `workerAbort`, `workerExit`): functions cannot cross a
     * process boundary. Its default export (or `module.exports`) is an object whose
     * properties named after hooks are used. A `.json` file is not re-imported (no hooks).
     */
    configModule?: string;
    /** The one supervised sidecar process (the companion manager), if any. */
    sidecar?: SidecarSpec;
    /**
     * Reads the configuration afresh for a reload (HUP): the CLI re-imports the config file
     * and rebuilds settings, hooks and sidecar. Throws (a `SettingError` or any error) when
     * the new config is invalid; the running config is then kept.
     */
    reloadConfig?: () => Promise<ArbiterConfig>;
    /**
     * The control socket (`arb ctl`), the Prometheus endpoint and the companions' status
     * (see `ops/control.ts`). Read once at start: a reload does not change them.
     */
    control?: ControlOptions;
    /**
     * Development mode (`arb --reload`): watch the app's directory and the config file, and
     * reload as HUP does on a change. Read once at start: a reload does not change it.
     */
    devReload?: DevReloadConfig;
  };

/** The watch of `devReload`. */
export interface DevReloadConfig {
  /**
   * Globs of paths not to watch, relative to a watched directory (picomatch). A glob without
   * a `/` matches a name at any depth (`*.log`, `tmp`); a directory that matches is not
   * watched at all. `node_modules` and `.git` are always left out.
   */
  ignore?: readonly string[];
  /** Milliseconds of quiet after a change before the reload (default 150). */
  debounce?: number;
  /**
   * Files and directories arb writes besides those the master knows (the companions' log
   * files and socket): a change there is never a reason to reload.
   */
  writes?: readonly string[];
}

/** The plain settings of a config: everything but hooks, `configModule` and `sidecar`. */
export function settingsOf(config: ArbiterConfig): ArbiterSettings {
  const plain: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (
      typeof v !== 'function' &&
      k !== 'configModule' &&
      k !== 'sidecar' &&
      k !== 'reloadConfig' &&
      k !== 'control' &&
      k !== 'devReload'
    ) {
      plain[k] = v;
    }
  }
  return resolveSettings(plain as Partial<ArbiterSettings>);
}
