/**
 * @arb/companion: supervise companion processes (queue consumers, schedulers, any
 * command) with a manager process, a control socket and a client. Of the other @arb
 * packages it uses only @arb/sock (the line socket).
 */
export { BACKOFF_JITTER, backoffDelay } from './backoff.js';
export { CompanionClient, type RequestOptions, request } from './client.js';
export {
  COMPANION_USAGE,
  type CommandIO,
  formatStatusTable,
  runCompanionCommand,
} from './command.js';
export {
  type CommandResult,
  Companion,
  type CompanionInfo,
  type CompanionOutput,
  type CompanionOutputLine,
} from './companion.js';
export {
  type Autorestart,
  type BuildOptions,
  buildCompanionConfigs,
  type CompanionConfig,
  type CompanionOptions,
  type CompanionSpec,
  type CompanionsInput,
  type CompanionsSettings,
  DEFAULTS,
  managerStopTimeout,
  parseCompanions,
} from './config.js';
export { ControlServer, type ControlServerOptions } from './control-server.js';
export { guardEntry, managerEntry, runAsEntry, targetRunnerEntry } from './entries.js';
export { CompanionConfigError } from './errors.js';
export { canonicalJson, configHash, hashCanonical, managerIdentity } from './hash.js';
export { loadCompanionsFile } from './load-config.js';
export { createLogger, type Logger, silentLogger } from './logger.js';
export {
  Manager,
  type ManagerEvents,
  type ManagerOptions,
  QUICK_STOP_SECONDS,
  type RereadResult,
  type StopOptions,
} from './manager.js';
export { LineSplitter, MAX_OUTPUT_LINE_BYTES, type OutputLine } from './output-lines.js';
export {
  COMMANDS,
  decodeRequest,
  describeCompanion,
  encodeResponse,
  formatUptime,
  MAX_LINE_BYTES,
  type Request,
  type Response,
  type StatusEntry,
  statusEntry,
} from './protocol.js';
export { refuseNonSocket } from './socket-path.js';
export {
  type CompanionState,
  type Effect,
  INITIAL_MACHINE,
  type Machine,
  type MachineEvent,
  type Policy,
  STATES,
  type Transition,
  transition,
} from './state-machine.js';
