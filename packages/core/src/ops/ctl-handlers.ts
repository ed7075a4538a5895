import type { Listener } from '@arb/sock';
import { SettingError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type Lineage, newMasterPid, parentMasterPid } from '../master/lineage.js';
import type { ReloadOutcome } from '../master/reload.js';
import type { ReloadProgress } from '../master/reload-progress.js';
import type { UpgradeProgress } from '../master/upgrade.js';
import type { MasterSignal } from '../master/wakeup.js';
import type { WorkerProcess } from '../master/worker-state.js';
import {
  type CtlProgress,
  type CtlRequest,
  type CtlResponse,
  decodeCtlRequest,
  encodeCtlProgress,
  encodeCtlResponse,
} from '../protocol/ctl.js';
import type { CompanionSummary } from './metrics.js';
import type { ProcFigures, SampleTarget } from './proc-sampler.js';
import type { WorkerFigures } from './worker-tally.js';

/** What the ctl commands need of the master (the Arbiter has all of it). */
export interface CtlHost {
  readonly log: Logger;
  readonly pid: number;
  readonly lineage: Lineage;
  readonly numWorkers: number;
  /** Reloads begun so far: a `reload` waits for the outcome of a later one. */
  readonly reloader: { readonly seq: number };
  /** Wakes the master loop (it keeps the new worker count at once). */
  readonly signals: { wake(): void };
  /** Queues a signal for the master loop. */
  signal(sig: MasterSignal): void;
  setNumWorkers(value: number): Promise<void>;
  /** The one-step upgrade; absent when this master cannot upgrade. */
  upgrade?(options?: {
    timeout?: number;
    onProgress?: (p: UpgradeProgress) => void;
  }): Promise<{ ok: boolean; newPid?: number; error?: string }>;
}

/** What the ctl commands need of the operator side (`control.ts`). */
export interface CtlSide {
  /** The master halts: only `status` is answered. */
  stopping(): boolean;
  /** `arb ctl status` (see `masterStatus`). */
  status(): Promise<Record<string, unknown>>;
  /** An upgrade asked for by `arb ctl upgrade` ended (metrics). */
  upgradeEnded(ok: boolean): void;
}

interface ReloadWaiter {
  /** Resolved by the first outcome of a reload numbered at least this. */
  minSeq: number;
  resolve(outcome: ReloadOutcome): void;
  /** The caller asked for the reload's steps. */
  progress?(p: ReloadProgress): void;
}

/**
 * The ctl commands (`protocol/ctl.ts`): one request line in, one reply line out. `reload`
 * and `upgrade` answer once the master says how they ended.
 */
export class CtlHandlers {
  private reloadWaiters: ReloadWaiter[] = [];

  constructor(
    private readonly host: CtlHost,
    private readonly side: CtlSide,
  ) {}

  /**
   * One request line (without its newline) → one reply line; a `reload` or `upgrade` that
   * asked for progress writes its steps with `write` before.
   */
  async handleLine(line: Buffer | string, write?: (line: string) => void): Promise<string> {
    const decoded = decodeCtlRequest(line);
    if (!decoded.ok) return encodeCtlResponse(decoded.response);
    const id = decoded.id;
    const emit =
      write && ((p: CtlProgress) => write(encodeCtlProgress(id === undefined ? p : { id, ...p })));
    let response: CtlResponse;
    try {
      response = await this.dispatch(decoded.request, emit);
    } catch (err) {
      this.host.log.error({ err }, 'control command failed');
      response = { ok: false, error: `command failed: ${(err as Error).message}` };
    }
    if (decoded.id !== undefined) response = { id: decoded.id, ...response };
    return encodeCtlResponse(response);
  }

  /** Where a reload stands: the `reload` commands waiting for it and asking, hear it. */
  reloadProgress(p: ReloadProgress): void {
    for (const w of this.reloadWaiters) if (p.seq >= w.minSeq) w.progress?.(p);
  }

  /** A reload ended: the `reload` commands waiting for it answer. */
  reloadEnded(outcome: ReloadOutcome): void {
    const keep: ReloadWaiter[] = [];
    for (const w of this.reloadWaiters) {
      if (outcome.seq >= w.minSeq) w.resolve(outcome);
      else keep.push(w);
    }
    this.reloadWaiters = keep;
  }

  /** The master stopped: every `reload` still waiting answers `aborted`. */
  abort(generation: number): void {
    for (const w of this.reloadWaiters) {
      w.resolve({
        ok: false,
        outcome: 'aborted',
        generation,
        seq: this.host.reloader.seq,
        error: 'the master stopped',
      });
    }
    this.reloadWaiters = [];
  }

  async dispatch(req: CtlRequest, emit?: (p: CtlProgress) => void): Promise<CtlResponse> {
    if (this.side.stopping() && req.cmd !== 'status') {
      return { ok: false, error: 'the master is shutting down' };
    }
    switch (req.cmd) {
      case 'status':
        return { ok: true, ...(await this.side.status()) };
      case 'workers':
        return this.scale(req.action, req.count);
      case 'reload':
        return this.reload(req.progress === true ? emit : undefined);
      case 'reopen':
        this.host.signal('SIGUSR1');
        return { ok: true, message: 'reopening log files' };
      case 'upgrade':
        return this.upgrade(req.timeout, req.progress === true ? emit : undefined);
      case 'shutdown': {
        const sig: MasterSignal = req.quick ? 'SIGINT' : 'SIGTERM';
        // after this reply is written
        setImmediate(() => this.host.signal(sig));
        const mode = req.quick ? 'quick' : 'graceful';
        return { ok: true, mode, message: 'shutting down' };
      }
    }
  }

  private async scale(action: 'add' | 'remove', count: number): Promise<CtlResponse> {
    if (this.host.lineage.role === 'awaiting-promotion') {
      return { ok: false, error: 'this master waits for promotion; scale the serving one' };
    }
    const previous = this.host.numWorkers;
    const total = action === 'add' ? previous + count : Math.max(1, previous - count);
    try {
      if (total !== previous) await this.host.setNumWorkers(total);
    } catch (err) {
      // above maxWorkers: a refusal for the caller, not an error of the master
      if (err instanceof SettingError) return { ok: false, error: err.message };
      throw err;
    }
    this.host.signals.wake();
    return action === 'add'
      ? { ok: true, added: total - previous, previous, total }
      : { ok: true, removed: previous - total, previous, total };
  }

  /**
   * HUP, answered with the outcome of the reload it started (or was coalesced into); with
   * `emit`, each step of that reload, and how long it took, before.
   */
  private reload(emit?: (p: CtlProgress) => void): Promise<CtlResponse> {
    if (this.host.lineage.role === 'awaiting-promotion') {
      return Promise.resolve({
        ok: false,
        error: 'this master waits for promotion; reload the serving one',
      });
    }
    const started = performance.now();
    let from: number | undefined;
    return new Promise((resolve) => {
      this.reloadWaiters.push({
        minSeq: this.host.reloader.seq + 1,
        resolve: ({ seq: _seq, ...o }) => {
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          if (emit && o.outcome === 'completed') {
            const old = from === undefined ? 'old generation' : `generation ${from}`;
            emit({
              event: 'progress',
              cmd: 'reload',
              state: 'completed',
              generation: o.generation,
              seconds: Number(seconds),
              message: `${old} retired; reload complete in ${seconds} s`,
            });
          } else if (emit && o.outcome === 'rolled_back') {
            emit({
              event: 'progress',
              cmd: 'reload',
              state: 'rolled_back',
              generation: o.generation,
              seconds: Number(seconds),
              message: `rolled back in ${seconds} s`,
            });
          }
          resolve({ ...o, ...(o.ok ? { message: 'reloaded' } : {}) });
        },
        ...(emit && {
          progress: ({ message, ...p }: ReloadProgress) => {
            from = p.from;
            emit({ event: 'progress', cmd: 'reload', ...p, message });
          },
        }),
      });
      this.host.signal('SIGHUP');
    });
  }

  private async upgrade(
    timeout: number | undefined,
    emit?: (p: CtlProgress) => void,
  ): Promise<CtlResponse> {
    if (!this.host.upgrade) return { ok: false, error: 'this master cannot upgrade' };
    const r = await this.host.upgrade({
      ...(timeout === undefined ? {} : { timeout }),
      ...(emit && {
        onProgress: ({ newPid, message, ...p }: UpgradeProgress) =>
          emit({
            event: 'progress',
            cmd: 'upgrade',
            ...p,
            ...(newPid === undefined ? {} : { new_pid: newPid }),
            message,
          }),
      }),
    });
    this.side.upgradeEnded(r.ok);
    const out: CtlResponse = { ok: r.ok };
    if (r.newPid !== undefined) out.new_pid = r.newPid;
    if (r.error !== undefined) out.error = r.error;
    out.old_pid = this.host.pid;
    return out;
  }
}

/** What `arb ctl status` reports, gathered by `control.ts`. */
export interface StatusView {
  pid: number;
  procName: string;
  lineage: Lineage;
  /** Monotonic seconds (worker uptimes and heartbeats). */
  now: number;
  /** Wall-clock milliseconds when the master started, and now. */
  startedAt: number;
  wallNow: number;
  numWorkers: number;
  generation: number;
  reload: string;
  systemd: { socket_activated: boolean; notify: boolean; ready_sent: boolean };
  ctlSocket: string | undefined;
  metrics: string | undefined;
  listeners: readonly Listener[];
  workers: readonly WorkerProcess[];
  /** Requests a worker served (from its batched stats). */
  served(age: number): number;
  /** A worker's req/s, latency quantiles and lag (from its batched stats). */
  figures(age: number): WorkerFigures;
  /** RSS and CPU of these processes (`ProcSampler.look`). */
  sample(targets: readonly SampleTarget[]): Map<number, ProcFigures>;
  companions(): Promise<CompanionSummary[] | null>;
}

/** The status keys of one process's RSS and CPU; null when it could not be read. */
function procKeys(p: ProcFigures | undefined): Record<string, number | null> {
  return {
    rss_bytes: p?.rssBytes ?? null,
    cpu_percent: p?.cpuPercent ?? null,
    cpu_seconds: p?.cpuSeconds ?? null,
  };
}

/** `arb ctl status`: the master, its listeners, workers and companions. */
export async function masterStatus(v: StatusView): Promise<Record<string, unknown>> {
  const round = (n: number) => Math.round(n * 100) / 100;
  const ms = (n: number | undefined) => (n === undefined ? null : Math.round(n * 1e4) / 1e4);
  let companions: unknown = null;
  try {
    companions = await v.companions();
  } catch (err) {
    companions = { error: (err as Error).message };
  }
  const masterUptime = (v.wallNow - v.startedAt) / 1000;
  const targets: SampleTarget[] = [{ pid: v.pid, uptime: masterUptime }];
  for (const w of v.workers) {
    if (w.pid !== undefined && w.state !== 'exited')
      targets.push({ pid: w.pid, uptime: v.now - w.spawnedAt });
  }
  if (Array.isArray(companions)) {
    for (const c of companions as CompanionSummary[]) {
      if (typeof c.pid === 'number' && c.pid > 0)
        targets.push({ pid: c.pid, uptime: Number(c.uptime ?? 0) });
    }
  }
  const procs = v.sample(targets);
  if (Array.isArray(companions)) {
    companions = (companions as CompanionSummary[]).map((c) => ({
      ...c,
      ...procKeys(typeof c.pid === 'number' ? procs.get(c.pid) : undefined),
    }));
  }
  const workers = [...v.workers]
    .sort((a, b) => a.age - b.age)
    .map((w) => {
      const last = w.heartbeat?.lastUpdate();
      const f = v.figures(w.age);
      return {
        pid: w.pid ?? null,
        age: w.age,
        generation: w.generation,
        state: w.state,
        booted: w.booted,
        uptime: round(v.now - w.spawnedAt),
        requests: v.served(w.age),
        last_heartbeat: last === undefined ? null : round(Math.max(0, v.now - last)),
        req_per_sec: round(f.reqPerSec),
        p50: ms(f.p50),
        p99: ms(f.p99),
        lag: ms(f.lag),
        ...procKeys(w.pid === undefined ? undefined : procs.get(w.pid)),
      };
    });
  return {
    master: {
      pid: v.pid,
      proc_name: v.procName,
      role:
        v.lineage.role === 'awaiting-promotion' ? 'new master (waiting for promotion)' : 'master',
      parent_master_pid: parentMasterPid(v.lineage) || null,
      new_master_pid: newMasterPid(v.lineage) || null,
      started_at: Math.round(v.startedAt / 1000),
      uptime: round(masterUptime),
      workers_target: v.numWorkers,
      generation: v.generation,
      reload: v.reload,
      systemd: v.systemd,
      ctl_socket: v.ctlSocket ?? null,
      metrics: v.metrics ?? null,
      ...procKeys(procs.get(v.pid)),
    },
    listeners: v.listeners.map((l) => ({ address: l.address, url: l.url })),
    workers,
    companions,
  };
}
