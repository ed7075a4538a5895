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
  };

/** The plain settings of a config: everything but hooks, `configModule` and `sidecar`. */
export function settingsOf(config: ArbiterConfig): ArbiterSettings {
  const plain: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (
      typeof v !== 'function' &&
      k !== 'configModule' &&
      k !== 'sidecar' &&
      k !== 'reloadConfig' &&
      k !== 'control'
    ) {
      plain[k] = v;
    }
  }
  return resolveSettings(plain as Partial<ArbiterSettings>);
}
