import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import {
  close as closeListeners,
  createListeners,
  handoff,
  type ProcStats,
  readProcStats,
} from '@arb/sock';
import { monotonic } from '../clock.js';
import type { LogSink } from '../logger.js';
import { createHeartbeat, type Heartbeat, type HeartbeatOptions } from '../protocol/heartbeat.js';
import type { KillFn } from './pidfile.js';

/** The built worker entry, next to the bundle in `dist/` (ESM and CJS alike). */
export const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** Everything the arbiter does to the outside world; tests replace parts of it. */
export interface ArbiterDeps {
  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess;
  kill: KillFn;
  /** Monotonic seconds. */
  now(): number;
  random(): number;
  createListeners: typeof createListeners;
  handoff: typeof handoff;
  closeListeners: typeof closeListeners;
  createHeartbeat(options: HeartbeatOptions): Heartbeat;
  /** The master is attached to a terminal (WINCH is then ignored). */
  isTerminal(): boolean;
  /** Where the master logs; by default from `errorLog`/`logLevel`. */
  logSink?: LogSink;
  /** Install process signal listeners (off in unit tests). Default true. */
  installSignals: boolean;
  /** Path of the worker entry module. */
  workerEntry: string;
  /** Our parent's pid now (a re-exec'd master is promoted when it changes). */
  ppid(): number;
  /** Sends a message to the parent over IPC, if there is a channel (the re-exec'd master). */
  sendToParent(message: unknown): void;
  /** A process's RSS and CPU time (`--max-memory` samples the workers with it). */
  procStats(pid: number): ProcStats | undefined;
}

export const DEFAULT_DEPS: ArbiterDeps = {
  spawn: (command, args, options) => spawn(command, args, options),
  kill: process.kill.bind(process) as KillFn,
  now: monotonic,
  random: Math.random,
  createListeners,
  handoff,
  closeListeners,
  createHeartbeat,
  isTerminal: () => tty.isatty(0),
  installSignals: true,
  workerEntry: WORKER_ENTRY,
  ppid: () => process.ppid,
  sendToParent: (message) => {
    if (process.send && process.connected) process.send(message, undefined, {}, () => {});
  },
  procStats: (pid) => readProcStats(pid),
};
