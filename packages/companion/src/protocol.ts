/**
 * The control protocol: gunicorn-companion's wire format (one JSON object per line, same
 * commands, same response keys and error envelopes, §4.2–4.4), plus additions that are
 * new keys only: `all` as a name, the `signal` command, richer status entries.
 */
import type { CompanionInfo } from './companion.js';
import { isSignalName } from './signals.js';

/** Longest unterminated line a server buffers before answering an error and closing. */
export const MAX_LINE_BYTES = 1024 * 1024;

export const COMMANDS = ['status', 'start', 'stop', 'restart', 'reread', 'signal'] as const;
export type CommandName = (typeof COMMANDS)[number];
/** Commands that act on one companion, or on every one with the name `all`. */
export const NAMED_COMMANDS: readonly CommandName[] = ['start', 'stop', 'restart', 'signal'];

export type Request =
  | { cmd: 'status'; name?: string }
  | { cmd: 'reread' }
  | { cmd: 'start' | 'stop' | 'restart'; name: string }
  | { cmd: 'signal'; name: string; signal: NodeJS.Signals };

/** One companion in a `status` reply. The first seven keys are the reference's. */
export interface StatusEntry {
  name: string;
  state: string;
  pid: number | null;
  description: string;
  /** Epoch seconds of the next retry; in BACKOFF only (reference), else null. */
  next_retry_at: number | null;
  /** Delay of the current backoff in seconds; in BACKOFF only, else null. */
  restart_delay: number | null;
  /** Last exit code; in BACKOFF only (reference), else null. See `exit_code`. */
  last_exit_code: number | null;
  kind: 'target' | 'command';
  /** Seconds since the current process started, or null. */
  uptime: number | null;
  started_at: number | null;
  exited_at: number | null;
  restarts: number;
  exits: number;
  kills: number;
  /** Restarts because its RSS stayed above `maxMemory` (also counted in `restarts`). */
  memory_restarts: number;
  failed_starts: number;
  /** Last exit code in any state (null if it never exited or died by a signal). */
  exit_code: number | null;
  /** Signal name (`SIGKILL`) if the last exit was by a signal. */
  exit_signal: string | null;
  /** Seconds until the next retry (BACKOFF), else null. */
  retry_in: number | null;
  manual_stop: boolean;
  /** Last spawn error, e.g. ENOENT for a missing program. */
  error: string | null;
  /** The numprocs group of a copy (`jobs` for `jobs.2`), else null. */
  group: string | null;
  /** 1..N for a copy of a numprocs group, else null. */
  process_num: number | null;
  /** Asked to start but waiting for these `dependsOn` to be RUNNING; else null. */
  waiting_on: string[] | null;
}

export type ErrorResponse = {
  ok: false;
  error: string;
  kept_old_config?: true;
};

export type Response = { ok: boolean; [key: string]: unknown };

export type Decoded = { ok: true; request: Request } | { ok: false; response: ErrorResponse };

const decoder = new TextDecoder('utf-8', { fatal: true });

function err(error: string): { ok: false; response: ErrorResponse } {
  return { ok: false, response: { ok: false, error } };
}

/** Python-style repr of a string, as the reference prints command names. */
function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Normalise `TERM`/`sigterm`/`SIGTERM` to `SIGTERM`; null if not a signal here. */
export function parseSignalName(value: unknown): NodeJS.Signals | null {
  if (typeof value !== 'string') return null;
  const up = value.trim().toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  return isSignalName(name) ? name : null;
}

/** Decode and validate one request line (without its newline). */
export function decodeRequest(line: Buffer | string): Decoded {
  let value: unknown;
  try {
    const text = typeof line === 'string' ? line : decoder.decode(line);
    value = JSON.parse(text);
  } catch {
    return err('invalid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return err('request must be a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const cmd = obj.cmd;
  if (typeof cmd !== 'string') return err("missing 'cmd'");
  // Unknown before name: the reference told a nameless `bogus` it "requires a 'name'".
  if (!(COMMANDS as readonly string[]).includes(cmd)) return err(`unknown command ${quote(cmd)}`);
  const c = cmd as CommandName;
  if (c === 'status') {
    return {
      ok: true,
      request: typeof obj.name === 'string' ? { cmd: c, name: obj.name } : { cmd: c },
    };
  }
  if (c === 'reread') return { ok: true, request: { cmd: c } };
  if (typeof obj.name !== 'string' || obj.name === '') return err(`${quote(c)} requires a 'name'`);
  if (c === 'signal') {
    if (obj.signal === undefined) return err("'signal' requires a 'signal' such as \"SIGUSR1\"");
    const sig = parseSignalName(obj.signal);
    if (!sig) return err(`unknown signal ${quote(String(obj.signal))}`);
    return { ok: true, request: { cmd: c, name: obj.name, signal: sig } };
  }
  return { ok: true, request: { cmd: c, name: obj.name } };
}

/** One response line: compact JSON and a newline. */
export function encodeResponse(response: Response): string {
  return `${JSON.stringify(response)}\n`;
}

/** Supervisor-style uptime: `H:MM:SS` under a day, then `D day(s), HH:MM:SS`. */
export function formatUptime(seconds: number): string {
  const total = Math.max(0, Math.floor(seconds));
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(s).padStart(2, '0');
  if (days === 0) return `${h}:${mm}:${ss}`;
  return `${days} ${days === 1 ? 'day' : 'days'}, ${String(h).padStart(2, '0')}:${mm}:${ss}`;
}

function exitText(i: CompanionInfo): string {
  return i.lastExitSignal
    ? `exited with signal ${i.lastExitSignal}`
    : `exited with status ${i.lastExitCode}`;
}

/** The reference's `description`: lowercase state, then details. Signals by name. */
export function describeCompanion(i: CompanionInfo): string {
  switch (i.state) {
    case 'RUNNING':
      return `running, pid ${i.pid}, uptime ${formatUptime(i.uptime ?? 0)}`;
    case 'STARTING':
      return 'starting';
    case 'STOPPING':
      return 'stopping';
    case 'BACKOFF':
      return i.retryIn === null
        ? `backoff, ${exitText(i)}`
        : `backoff, ${exitText(i)}, retrying in ${Math.floor(i.retryIn)}s`;
    case 'FATAL':
      return `fatal, ${exitText(i)}, gave up after ${i.failedStarts} failed starts`;
    case 'STOPPED':
      if (i.waitingOn && i.waitingOn.length > 0) {
        return `stopped, waiting on ${i.waitingOn.map((w) => `${w.name} (${w.state})`).join(', ')}`;
      }
      if (i.manualStop) return 'stopped, stopped manually';
      if (i.exits > 0) return `stopped, ${exitText(i)}`;
      return 'stopped, not started';
  }
}

const round3 = (n: number | null) => (n === null ? null : Math.round(n * 1000) / 1000);

export function statusEntry(i: CompanionInfo): StatusEntry {
  const backoff = i.state === 'BACKOFF';
  return {
    name: i.name,
    state: i.state,
    pid: i.pid,
    description: describeCompanion(i),
    next_retry_at: backoff ? round3(i.nextRetryAt) : null,
    restart_delay: backoff ? round3(i.restartDelay) : null,
    last_exit_code: backoff ? i.lastExitCode : null,
    kind: i.kind,
    uptime: round3(i.uptime),
    started_at: round3(i.startedAt),
    exited_at: round3(i.exitedAt),
    restarts: i.restarts,
    exits: i.exits,
    kills: i.kills,
    memory_restarts: i.memoryRestarts,
    failed_starts: i.failedStarts,
    exit_code: i.lastExitCode,
    exit_signal: i.lastExitSignal,
    retry_in: round3(i.retryIn),
    manual_stop: i.manualStop,
    error: i.lastError,
    group: i.processNum === null ? null : i.program,
    process_num: i.processNum,
    waiting_on: i.waitingOn && i.waitingOn.length > 0 ? i.waitingOn.map((w) => w.name) : null,
  };
}
