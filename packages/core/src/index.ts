export {
  Arbiter,
  type ArbiterDeps,
  CRASH_WINDOW_SECONDS,
  MASTER_ONLY_NODE_FLAGS,
  type UpgradeResult,
  WORKER_ENTRY,
} from './arbiter.js';
export { Backoff } from './backoff.js';
export { monotonic } from './clock.js';
export {
  type ArbiterConfig,
  type ArbiterSettings,
  DEFAULTS,
  defaultProcName,
  effectiveBootTimeout,
  type LogLevel,
  resolveSettings,
  settingsOf,
  splitAppSpec,
} from './config.js';
export {
  ArbiterControl,
  type ControlHost,
  type ControlOptions,
  type ReloadOutcome,
} from './control.js';
export {
  CTL_COMMANDS,
  CTL_MAX_LINE_BYTES,
  type CtlCommand,
  type CtlDecoded,
  type CtlRequest,
  type CtlResponse,
  decodeCtlRequest,
  encodeCtlResponse,
} from './ctl-protocol.js';
export { AppLoadError, ArbError, ConfigError, HaltServer, PidfileError } from './errors.js';
export {
  createHeartbeat,
  type Heartbeat,
  type HeartbeatOptions,
  heartbeatInterval,
} from './heartbeat.js';
export {
  type ArbiterHooks,
  HOOK_NAMES,
  HOOK_PROCESS,
  type HookName,
  pickHooks,
  type ServerView,
  type WorkerInfo,
} from './hooks.js';
export { createLogger, type Logger, type LoggerOptions, type LogSink } from './logger.js';
// Types only: a master loads the metrics module (and prom-client) when it serves metrics.
export type {
  ArbMetrics,
  CompanionSummary,
  ExitReason,
  MetricsServer,
  MetricsView,
} from './metrics.js';
export {
  type DatagramSender,
  loadDatagramSender,
  monotonicUsec,
  Notifier,
  type NotifierOptions,
  sockaddrUn,
} from './notify.js';
export { type KillFn, Pidfile } from './pidfile.js';
export { APP_LOAD_ERROR, classifyExit, type ExitVerdict, WORKER_BOOT_ERROR } from './reap.js';
export {
  isServingMessage,
  type ReexecInput,
  type ReexecPlan,
  type ReexecServingMessage,
  reexecPlan,
} from './reexec.js';
export { Reload, type ReloadHost, type ReloadState } from './reload.js';
export {
  bucketOf,
  isStatsMessage,
  LATENCY_BUCKETS,
  STATS_INTERVAL_MS,
  type StatsMessage,
  WorkerRequestStats,
} from './request-stats.js';
export {
  SIDECAR_STABLE_SECONDS,
  type SidecarContext,
  SidecarSlot,
  type SidecarSpec,
} from './sidecar.js';
export { MASTER_SIGNALS, type MasterSignal, SignalQueue } from './signals.js';
export { masterTitle, workerTitle } from './titles.js';
export {
  appFile,
  type FastifyLike,
  type FetchHandler,
  type LoadedApp,
  loadApp,
} from './worker/load-app.js';
export { WORKER_ENV, type WorkerMessage, type WorkerPayload } from './worker-protocol.js';
export {
  isLive,
  nextState,
  type WorkerEvent,
  type WorkerExit,
  WorkerProcess,
  type WorkerState,
} from './worker-state.js';
