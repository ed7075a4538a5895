import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Listener } from '@arb/sock';
import { alive, tempDir as tempDirIn, waitFor } from '@arb/testkit';
import pino from 'pino';
import { vi } from 'vitest';
import type { ArbiterConfig } from '../src/config.js';
import type { LogSink } from '../src/logger.js';
import { Arbiter } from '../src/master/arbiter.js';
import type { ArbiterDeps } from '../src/master/deps.js';
import type { Heartbeat } from '../src/protocol/heartbeat.js';

export { waitFor };
/** The process exists and is not a zombie. */
export const isAlive = alive;
export const tempDir = (): string => tempDirIn('arbk-');

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

// ---- unit-test fakes ------------------------------------------------------------------

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger that records its lines. */
export function recordingLog(): LogSink & {
  lines: LogLine[];
  at(level: 'debug' | 'info' | 'warn' | 'error'): LogLine[];
} {
  const lines: LogLine[] = [];
  const log = pino({ level: 'trace' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const levels = { debug: 20, info: 30, warn: 40, error: 50 };
  return {
    log,
    pretty: false,
    foreign: (fields, msg) => lines.push({ level: 30, ...fields, msg }),
    reopen: vi.fn(),
    dropped: () => 0,
    lines,
    at: (level) => lines.filter((l) => l.level === levels[level]),
  };
}

export class FakeChild extends EventEmitter {
  connected = true;
  constructor(readonly pid: number | undefined) {
    super();
  }
  send: (...args: unknown[]) => unknown = vi.fn();
  kill: (...args: unknown[]) => unknown = vi.fn();
  /** Simulates the process ending. */
  die(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.emit('exit', code, signal);
  }
}

export function fakeHeartbeat(): Heartbeat & {
  last: number | undefined;
  close: ReturnType<typeof vi.fn>;
} {
  const hb = {
    fd: 99,
    last: 0 as number | undefined,
    lastUpdate: () => hb.last,
    close: vi.fn(),
  };
  return hb;
}

export interface Fakes {
  deps: Partial<ArbiterDeps>;
  clock: { t: number };
  children: FakeChild[];
  heartbeats: ReturnType<typeof fakeHeartbeat>[];
  kill: ReturnType<typeof vi.fn>;
  closeListeners: ReturnType<typeof vi.fn>;
  log: ReturnType<typeof recordingLog>;
  /** Moves the clock; every worker's event loop ran meanwhile (its heartbeat is fresh). */
  advance(seconds: number): void;
}

/** Deps for an Arbiter that spawns fake children with pids 101, 102, ... */
export function fakes(): Fakes {
  const clock = { t: 1000 };
  const children: FakeChild[] = [];
  const heartbeats: ReturnType<typeof fakeHeartbeat>[] = [];
  let nextPid = 101;
  const kill = vi.fn();
  const closeListeners = vi.fn();
  const log = recordingLog();
  const deps: Partial<ArbiterDeps> = {
    spawn: vi.fn(() => {
      const c = new FakeChild(nextPid++);
      children.push(c);
      return c as unknown as ChildProcess;
    }),
    kill,
    now: () => clock.t,
    random: () => 0.5,
    createListeners: vi.fn(async () => ({ listeners: [], systemd: false })),
    handoff: vi.fn(() => ({ stdio: [], env: {} })),
    closeListeners,
    createHeartbeat: vi.fn(() => {
      const hb = fakeHeartbeat();
      hb.last = clock.t;
      heartbeats.push(hb);
      return hb;
    }),
    isTerminal: () => false,
    installSignals: false,
    workerEntry: '/nonexistent/worker-main.js',
    logSink: log,
  };
  const advance = (seconds: number) => {
    clock.t += seconds;
    for (const hb of heartbeats) hb.last = clock.t;
  };
  return { deps, clock, children, heartbeats, kill, closeListeners, log, advance };
}

/** The app of the unit tests' arbiters (never loaded: their workers are fakes). */
export const UNIT_APP = path.join(FIXTURES, 'app-pid.mjs');

/** An Arbiter on fakes, with short timeouts (config: anything `ArbiterConfig` takes). */
export function makeArbiter(
  config: Partial<ArbiterConfig> | Record<string, unknown> = {},
  f: Fakes = fakes(),
) {
  const full = { app: UNIT_APP, timeout: 2, gracefulTimeout: 0.2, ...config } as ArbiterConfig;
  const arbiter = new Arbiter(full, f.deps);
  return { arbiter, f };
}

/** A listener record as `@arb/sock` makes them (no socket behind it). */
export function fakeListener(address: string, fd = 10, name?: string): Listener {
  return {
    kind: 'tcp',
    fd,
    address,
    url: `http://${address}`,
    backlog: 2048,
    origin: 'bound',
    name,
  } as Listener;
}

// ---- e2e ----------------------------------------------------------------------------

export interface Master {
  proc: ChildProcess;
  pid: number;
  dir: string;
  port: number | undefined;
  sock: string | undefined;
  /** Everything the master and its workers wrote to stderr so far. */
  log(): string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
  /** Worker pids seen in responses or logs, checked dead after the test. */
  seenPids: Set<number>;
}

const running = new Set<Master>();

/**
 * Starts `run-arbiter.mjs` with the config (a TCP port 0 and a unix socket in a temp dir
 * by default) and, unless `waitReady` is false, waits until the first generation serves.
 */
export async function startMaster(
  config: Record<string, unknown>,
  options: { waitReady?: boolean; dir?: string } = {},
): Promise<Master> {
  const dir = options.dir ?? tempDir();
  const readyFile = path.join(dir, 'ready.json');
  const full = {
    bind: ['127.0.0.1:0', `unix:${path.join(dir, 's.sock')}`],
    timeout: 2,
    gracefulTimeout: 3,
    readyFile,
    ...config,
  };
  let output = '';
  const proc = spawn(
    process.execPath,
    [path.join(FIXTURES, 'run-arbiter.mjs'), JSON.stringify(full)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  proc.stdout!.on('data', (d) => {
    output += d;
  });
  proc.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number>((resolve) => {
    proc.once('exit', (code, signal) =>
      resolve(code ?? 128 + (os.constants.signals[signal!] ?? 0)),
    );
  });
  const master: Master = {
    proc,
    pid: proc.pid!,
    dir,
    port: undefined,
    sock: undefined,
    log: () => output,
    exited,
    seenPids: new Set(),
  };
  running.add(master);
  if (options.waitReady !== false) {
    const ready = await waitFor(
      () => (fs.existsSync(readyFile) ? JSON.parse(fs.readFileSync(readyFile, 'utf8')) : undefined),
      { what: () => `master ready (log: ${output.slice(-2000)})`, timeoutMs: 15_000 },
    );
    for (const l of ready.listeners as { port?: number; path?: string }[]) {
      if (l.port !== undefined) master.port ??= l.port;
      if (l.path !== undefined) master.sock ??= l.path;
    }
  }
  return master;
}

/** Worker pids the master logged (`Booting worker with pid: N`). */
export function loggedWorkerPids(master: Master): number[] {
  return [...master.log().matchAll(/Booting worker with pid: (\d+)/g)].map((m) => Number(m[1]));
}

/**
 * Stops every master still running (SIGKILL after a grace) and checks all pids are gone;
 * every master is stopped and every dir removed even when one check fails, and the
 * failures are thrown at the end.
 */
export async function cleanupMasters(): Promise<void> {
  const failures: unknown[] = [];
  for (const m of [...running]) {
    running.delete(m);
    try {
      if (m.proc.exitCode === null && m.proc.signalCode === null) {
        m.proc.kill('SIGTERM');
        const timer = setTimeout(() => m.proc.kill('SIGKILL'), 8000);
        await m.exited;
        clearTimeout(timer);
      }
      const pids = [...m.seenPids, ...loggedWorkerPids(m)];
      // orphaned workers exit within a second of their master's death
      await waitFor(() => pids.every((p) => !isAlive(p)), {
        what: `workers ${pids} gone`,
        timeoutMs: 5000,
      }).catch((err) => {
        for (const p of pids) if (isAlive(p)) process.kill(p, 'SIGKILL');
        throw err;
      });
    } catch (err) {
      failures.push(err);
    } finally {
      fs.rmSync(m.dir, { recursive: true, force: true });
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1)
    throw new AggregateError(failures, `${failures.length} masters left processes`);
}

export interface Reply {
  status: number;
  body: string;
  json:
    | { pid: number; path: string; env: string | null; uid: number; gid: number; groups: number[] }
    | undefined;
  headers: http.IncomingHttpHeaders;
}

/** One request on a fresh connection (over TCP, or the unix socket with `via: 'unix'`). */
export function request(
  master: Master,
  urlPath = '/',
  options: { via?: 'tcp' | 'unix'; method?: string; body?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target =
      options.via === 'unix'
        ? { socketPath: master.sock }
        : { host: '127.0.0.1', port: master.port };
    const req = http.request(
      {
        ...target,
        path: urlPath,
        method: options.method ?? 'GET',
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => {
          let json: Reply['json'];
          try {
            json = JSON.parse(body);
            if (json?.pid) master.seenPids.add(json.pid);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, json, headers: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}

/** Distinct worker pids answering `n` requests. */
export async function pidsAnswering(
  master: Master,
  n: number,
  via: 'tcp' | 'unix' = 'tcp',
): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) {
    const r = await request(master, '/', { via });
    if (r.json) pids.add(r.json.pid);
  }
  return pids;
}

/** Sends concurrent requests that each hold their worker a little until `n` distinct pids answered. */
export async function distinctPids(
  master: Master,
  n: number,
  via: 'tcp' | 'unix' = 'tcp',
): Promise<Set<number>> {
  const pids = new Set<number>();
  await waitFor(
    async () => {
      const replies = await Promise.all(
        Array.from({ length: n * 2 }, () => request(master, '/block?ms=20', { via })),
      );
      for (const r of replies) if (r.json) pids.add(r.json.pid);
      return pids.size >= n;
    },
    { what: `${n} distinct workers answering over ${via}`, timeoutMs: 15_000, intervalMs: 1 },
  );
  return pids;
}
