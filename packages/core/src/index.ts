// The public face of @arb/core: what the `arb` command and another tool need to run a
// master. Everything else is internal (the tests import it from src/ directly).

/** What `new Arbiter()` takes: settings, hooks, `configModule`, `sidecar`, `control`, `reloadConfig`. */
export type { ArbiterConfig, DevReloadConfig } from './config.js';
/** The errors a caller may want to tell apart. */
export { AppLoadError, PidfileError, SettingError } from './errors.js';
/** The hooks a config may define, their names, and how to pick them out of a module. */
export {
  type ArbiterHooks,
  HOOK_NAMES,
  type HookName,
  pickHooks,
  type ServerView,
  type WorkerInfo,
} from './hooks.js';
/** The master: `new Arbiter(config).run()` resolves with the exit status. */
export { Arbiter, type RunOptions, type UpgradeResult } from './master/arbiter.js';
/** The one supervised sidecar process (`config.sidecar`). */
export type { SidecarSpec } from './master/sidecar.js';
/** Why a master that is PID 1 of its PID namespace refuses USR2 and `upgrade()`. */
export { PID1_UPGRADE_REFUSED } from './master/upgrade.js';
/** The operator interfaces (`config.control`) and the companions' status they report. */
export type { ControlOptions } from './ops/control.js';
export type { CompanionSummary } from './ops/metrics.js';
/** The kernel signals this process when its parent dies (Linux, koffi): see `arb`'s npx guard. */
export { signalOnParentDeath } from './ops/parent-death.js';
/** Why the app could not be loaded (`arbiter.appFailure`), and where. */
export type { AppFailure } from './protocol/worker.js';
/** The plain settings and their defaults (the CLI shows and merges them). */
export { type ArbiterSettings, aboveMaxWorkers, DEFAULTS, inContainer } from './settings.js';
export type { SourceLocation } from './worker/error-location.js';
/** The app loader the workers use (the CLI's `--check-config` loads the app the same way). */
export { appFile, loadApp } from './worker/load-app.js';
