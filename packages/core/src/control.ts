import path from 'node:path';
import { LineServer, type LineServerLimits, type Listener, SocketInUseError } from '@arb/sock';
import type { Logger } from './logger.js';
import { type Lineage, newMasterPid, ownName, parentMasterPid } from './master/lineage.js';
import type { ReloadOutcome } from './master/reload.js';
import type { MasterSignal } from './master/wakeup.js';
import { isCounted, type WorkerProcess, type WorkerState } from './master/worker-state.js';
// Types only: the metrics module (and prom-client) is loaded when --metrics-bind is set.
import type { ArbMetrics, CompanionSummary, ExitReason, MetricsServer } from './ops/metrics.js';
import { Notifier } from './ops/notify.js';
import {
  CTL_MAX_LINE_BYTES,
  type CtlRequest,
  type CtlResponse,
  decodeCtlRequest,
  encodeCtlResponse,
} from './protocol/ctl.js';
import type { StatsMessage } from './protocol/worker.js';

/** The master's operator interfaces, as `ArbiterConfig.control` configures them. */
export interface ControlOptions {
  /**
   * Path of the master control socket (`arb ctl`), mode 0600; relative to the directory the
   * master started in. Unset: no control socket (the `arb` command defaults to `./arb.ctl`).
   * An unpromoted re-exec'd master listens at `<socket>.2` and moves to `<socket>` once
   * promoted.
   */
  socket?: string;
  /** Limits of the control socket (connections, line length, idle timeout...); defaults: @arb/sock's. */
  socketLimits?: LineServerLimits;
  /** Serve Prometheus metrics on this address (`host:port`, `unix:PATH`). */
  metricsBind?: string;
  /** The companions' status, for `arb ctl status` and the metrics (the CLI asks the manager). */
  companions?: () => Promise<CompanionSummary[] | null>;
  /** Where NOTIFY_SOCKET and WATCHDOG_* are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** What the control needs of the master (the Arbiter has all of it). */
export interface ControlHost {
  readonly log: Logger;
  readonly pid: number;
  readonly procName: string;
  readonly numWorkers: number;
  readonly pool: { all(): WorkerProcess[] };
  readonly listeners: readonly Listener[];
  readonly systemd: boolean;
  readonly lineage: Lineage;
  readonly generation: number;
  readonly startCwd: string;
  readonly serving: Promise<boolean>;
  readonly reloader: { readonly active: boolean; readonly phase: string; readonly seq: number };
  readonly signals: { wake(): void };
  now(): number;
  signal(sig: MasterSignal): void;
  setNumWorkers(value: number): Promise<void>;
  upgrade?(options?: {
    timeout?: number;
  }): Promise<{ ok: boolean; newPid?: number; error?: string }>;
}

interface ReloadWaiter {
  /** Resolved by the first outcome of a reload numbered at least this. */
  minSeq: number;
  resolve(outcome: ReloadOutcome): void;
}

/**
 * systemd notifications, the Prometheus metrics and the control socket of one master. The
 * Arbiter calls it at a handful of points (start, each loop pass, HUP, worker spawn,
 * message and exit, promotion, halt); everything else lives here.
 */
export class ArbiterControl {
  readonly notifier: Notifier;
  /** Present only when metrics are served (`metricsBind`). */
  metrics: ArbMetrics | undefined;
  private ctl: LineServer | undefined;
  private metricsServer: MetricsServer | undefined;
  private readonly startedAt = Date.now();
  /** Requests served per worker age (from the batched stats). */
  private readonly served = new Map<number, number>();
  private readonly maxRequestsRetired = new Set<number>();
  private stoppingNow = false;
  private closed = false;
  private reloadWaiters: ReloadWaiter[] = [];
  private readyOnce = false;

  constructor(
    private readonly host: ControlHost,
    private readonly options: ControlOptions = {},
  ) {
    this.notifier = new Notifier({ env: options.env ?? process.env, log: host.log });
  }

  /** The ctl socket path for this master (`.2` while waiting for promotion). */
  ctlPath(): string | undefined {
    const s = this.options.socket;
    if (!s) return undefined;
    return ownName(this.host.lineage, path.resolve(this.host.startCwd, s));
  }

  /** After the listeners: the control socket, the metrics endpoint, READY=1 once serving. */
  async start(): Promise<void> {
    await this.listenCtl();
    if (this.options.metricsBind) {
      const { ArbMetrics, MetricsServer } = await import('./ops/metrics.js');
      const host = this.host;
      this.metrics = new ArbMetrics(
        {
          workersDesired: () => host.numWorkers,
          workersByState: () => {
            const out: Record<string, number> = {};
            for (const w of host.pool.all()) out[w.state] = (out[w.state] ?? 0) + 1;
            return out;
          },
          companions: () => this.companions(),
        },
        { companions: this.options.companions !== undefined },
      );
      this.metrics.collectProcessMetrics();
      const server = new MetricsServer(this.options.metricsBind, this.metrics, this.host.log);
      try {
        await server.listen();
        this.metricsServer = server;
      } catch (err) {
        this.host.log.error({ err }, `Cannot serve metrics on ${this.options.metricsBind}`);
      }
    }
    void this.host.serving.then((serving) => {
      if (!serving || this.stoppingNow || this.host.lineage.role === 'awaiting-promotion') return;
      this.sendReady();
    });
  }

  private sendReady(extra: string[] = []): void {
    this.readyOnce = true;
    this.notifier.ready(`Serving with ${this.liveCount()} workers`, extra);
    this.notifier.startWatchdog(extra.length > 0);
  }

  private liveCount(): number {
    return this.host.pool.all().filter((w) => isCounted(w.state)).length;
  }

  private async listenCtl(): Promise<void> {
    const p = this.ctlPath();
    if (!p) return;
    const server = new LineServer({
      maxLineBytes: CTL_MAX_LINE_BYTES,
      ...this.options.socketLimits,
      path: p,
      log: this.host.log,
      handle: (line) => this.handleLine(line),
      errorLine: (error) => encodeCtlResponse({ ok: false, error }),
    });
    try {
      await server.listen();
      this.ctl = server;
      this.host.log.info({ ctl: p }, `Control socket listening at ${p}`);
    } catch (err) {
      const why =
        err instanceof SocketInUseError ? 'in use by another process' : (err as Error).message;
      this.host.log.warn({ ctl: p }, `Failed to start control socket ${p}: ${why}`);
    }
  }

  // ---- the points the Arbiter calls ------------------------------------------------------

  /** A reload ended (the reload machine says how). */
  reloadEnded(outcome: ReloadOutcome): void {
    this.metrics?.reloads.inc({ outcome: outcome.ok ? 'ok' : 'failed' });
    if (this.host.lineage.role !== 'awaiting-promotion' && !this.stoppingNow) {
      const status = outcome.ok
        ? `Serving with ${this.liveCount()} workers (reloaded)`
        : `Serving with ${this.liveCount()} workers (reload ${outcome.outcome.replace('_', ' ')})`;
      this.notifier.ready(status);
    }
    this.settleReload(outcome);
  }

  private settleReload(outcome: ReloadOutcome): void {
    const keep: ReloadWaiter[] = [];
    for (const w of this.reloadWaiters) {
      if (outcome.seq >= w.minSeq) w.resolve(outcome);
      else keep.push(w);
    }
    this.reloadWaiters = keep;
  }

  /** HUP, before the reload begins (a HUP during a reload is coalesced: nothing to say). */
  reloadRequested(): void {
    if (this.host.reloader.active) return;
    if (this.host.lineage.role !== 'awaiting-promotion') this.notifier.reloading();
  }

  workerSpawned(_worker: WorkerProcess): void {
    this.metrics?.spawns.inc();
  }

  /** A worker's batched request counts. */
  workerStats(worker: WorkerProcess, message: StatsMessage): void {
    this.served.set(worker.age, (this.served.get(worker.age) ?? 0) + message.requests);
    this.metrics?.addStats(message);
  }

  /** A worker reached `maxRequests` and is on its way out. */
  workerRetiring(worker: WorkerProcess): void {
    this.maxRequestsRetired.add(worker.age);
  }

  /** A worker exit being reaped; `before` is its state before the exit. */
  workerExited(worker: WorkerProcess, before: WorkerState): void {
    this.metrics?.exits.inc({ reason: this.exitReason(worker, before) });
    this.served.delete(worker.age);
    this.maxRequestsRetired.delete(worker.age);
  }

  private exitReason(worker: WorkerProcess, before: WorkerState): ExitReason {
    if (worker.aborted) return 'timeout';
    if (this.maxRequestsRetired.has(worker.age)) return 'max_requests';
    if (isCounted(before)) {
      const code = worker.exit?.code;
      return code === 3 || code === 4 ? 'boot_failure' : 'crash';
    }
    if (this.stoppingNow) return 'shutdown';
    if (worker.generation !== this.host.generation) return 'reload';
    return 'scale_down';
  }

  /** A re-exec'd master was promoted: it is the main process now, at the plain ctl path. */
  promoted(): void {
    this.notifier.mainPid(
      this.host.pid,
      `Serving with ${this.liveCount()} workers (upgraded)`,
      true,
    );
    this.readyOnce = true;
    this.notifier.startWatchdog(true);
    void (async () => {
      await this.ctl?.close();
      this.ctl = undefined;
      await this.listenCtl();
    })().catch((err: unknown) => this.host.log.error({ err }, 'Cannot move the control socket'));
  }

  /**
   * The master halts. With a new master of ours alive (an upgrade), systemd is told the
   * new main pid instead of STOPPING=1: the service goes on.
   */
  stopping(): void {
    if (this.stoppingNow) return;
    this.stoppingNow = true;
    this.notifier.stopWatchdog();
    const l = this.host.lineage;
    if (l.role === 'awaiting-promotion') return; // not the main process: not ours to tell
    if (l.role === 'parent') {
      this.notifier.mainPid(l.childPid, `Handing over to the new master ${l.childPid}`);
    } else this.notifier.stopping();
  }

  /** Last thing of a halt: the servers go (the ctl file only if it is still ours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stoppingNow = true;
    this.notifier.stopWatchdog();
    for (const w of this.reloadWaiters) {
      w.resolve({
        ok: false,
        outcome: 'aborted',
        generation: this.host.generation,
        seq: this.host.reloader.seq,
        error: 'the master stopped',
      });
    }
    this.reloadWaiters = [];
    // let the replies just resolved be written before the connections are ended
    await new Promise((r) => setImmediate(r));
    await Promise.all([this.ctl?.close(), this.metricsServer?.close()]);
    this.ctl = undefined;
    this.metricsServer = undefined;
  }

  /** The metrics endpoint, once listening. */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  // ---- ctl commands ------------------------------------------------------------------------

  private async handleLine(line: Buffer): Promise<string> {
    const decoded = decodeCtlRequest(line);
    if (!decoded.ok) return encodeCtlResponse(decoded.response);
    let response: CtlResponse;
    try {
      response = await this.dispatch(decoded.request);
    } catch (err) {
      this.host.log.error({ err }, 'control command failed');
      response = { ok: false, error: `command failed: ${(err as Error).message}` };
    }
    if (decoded.id !== undefined) response = { id: decoded.id, ...response };
    return encodeCtlResponse(response);
  }

  private async dispatch(req: CtlRequest): Promise<CtlResponse> {
    if (this.stoppingNow && req.cmd !== 'status') {
      return { ok: false, error: 'the master is shutting down' };
    }
    switch (req.cmd) {
      case 'status':
        return { ok: true, ...(await this.status()) };
      case 'workers':
        return this.scale(req.action, req.count);
      case 'reload':
        return this.reload();
      case 'reopen':
        this.host.signal('SIGUSR1');
        return { ok: true, message: 'reopening log files' };
      case 'upgrade':
        return this.upgrade(req.timeout);
      case 'shutdown': {
        const sig: MasterSignal = req.quick ? 'SIGINT' : 'SIGTERM';
        // after this reply is written
        setImmediate(() => this.host.signal(sig));
        return { ok: true, mode: req.quick ? 'quick' : 'graceful', message: 'shutting down' };
      }
    }
  }

  private async scale(action: 'add' | 'remove', count: number): Promise<CtlResponse> {
    if (this.host.lineage.role === 'awaiting-promotion') {
      return { ok: false, error: 'this master waits for promotion; scale the serving one' };
    }
    const previous = this.host.numWorkers;
    const total = action === 'add' ? previous + count : Math.max(1, previous - count);
    if (total !== previous) await this.host.setNumWorkers(total);
    this.host.signals.wake();
    return action === 'add'
      ? { ok: true, added: total - previous, previous, total }
      : { ok: true, removed: previous - total, previous, total };
  }

  private reload(): Promise<CtlResponse> {
    if (this.host.lineage.role === 'awaiting-promotion') {
      return Promise.resolve({
        ok: false,
        error: 'this master waits for promotion; reload the serving one',
      });
    }
    return new Promise((resolve) => {
      this.reloadWaiters.push({
        minSeq: this.host.reloader.seq + 1,
        resolve: ({ seq: _seq, ...o }) =>
          resolve({ ...o, ...(o.ok ? { message: 'reloaded' } : {}) }),
      });
      this.host.signal('SIGHUP');
    });
  }

  private async upgrade(timeout: number | undefined): Promise<CtlResponse> {
    if (!this.host.upgrade) return { ok: false, error: 'this master cannot upgrade' };
    const r = await this.host.upgrade(timeout === undefined ? {} : { timeout });
    this.metrics?.upgrades.inc({ outcome: r.ok ? 'ok' : 'failed' });
    const out: CtlResponse = { ok: r.ok };
    if (r.newPid !== undefined) out.new_pid = r.newPid;
    if (r.error !== undefined) out.error = r.error;
    out.old_pid = this.host.pid;
    return out;
  }

  private async companions(): Promise<CompanionSummary[] | null> {
    if (!this.options.companions) return null;
    return this.options.companions();
  }

  /** `arb ctl status`: the master, its listeners, workers and companions. */
  async status(): Promise<Record<string, unknown>> {
    const h = this.host;
    const now = h.now();
    const round = (n: number) => Math.round(n * 100) / 100;
    const workers = h.pool
      .all()
      .sort((a, b) => a.age - b.age)
      .map((w) => {
        const last = w.heartbeat?.lastUpdate();
        return {
          pid: w.pid ?? null,
          age: w.age,
          generation: w.generation,
          state: w.state,
          booted: w.booted,
          uptime: round(now - w.spawnedAt),
          requests: this.served.get(w.age) ?? 0,
          last_heartbeat: last === undefined ? null : round(Math.max(0, now - last)),
        };
      });
    let companions: unknown = null;
    try {
      companions = await this.companions();
    } catch (err) {
      companions = { error: (err as Error).message };
    }
    return {
      master: {
        pid: h.pid,
        proc_name: h.procName,
        role:
          h.lineage.role === 'awaiting-promotion' ? 'new master (waiting for promotion)' : 'master',
        parent_master_pid: parentMasterPid(h.lineage) || null,
        new_master_pid: newMasterPid(h.lineage) || null,
        started_at: Math.round(this.startedAt / 1000),
        uptime: round((Date.now() - this.startedAt) / 1000),
        workers_target: h.numWorkers,
        generation: h.generation,
        reload: h.reloader.phase,
        systemd: {
          socket_activated: h.systemd,
          notify: this.notifier.enabled,
          ready_sent: this.readyOnce,
        },
        ctl_socket: this.ctl?.path ?? null,
        metrics: this.metricsUrl ?? null,
      },
      listeners: h.listeners.map((l) => ({ address: l.address, url: l.url })),
      workers,
      companions,
    };
  }
}
