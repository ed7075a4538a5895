import fs from 'node:fs';
import path from 'node:path';
import {
  LineServer,
  type LineServerLimits,
  type Listener,
  parseAddress,
  SocketInUseError,
} from '@arb/sock';
import { ownName } from '../master/lineage.js';
import type { ReloadOutcome } from '../master/reload.js';
import type { ReloadProgress } from '../master/reload-progress.js';
import { isCounted, type WorkerProcess, type WorkerState } from '../master/worker-state.js';
import { CTL_MAX_LINE_BYTES, encodeCtlResponse } from '../protocol/ctl.js';
import type { StatsMessage } from '../protocol/worker.js';
import { CtlHandlers, type CtlHost, masterStatus } from './ctl-handlers.js';
import {
  ENDPOINTS_VAR,
  type EndpointFd,
  type EndpointKind,
  takeInheritedEndpoints,
} from './endpoint-handoff.js';
// Types only: the endpoint server, the health routes and the metrics (prom-client) are
// loaded when --metrics-bind or --health-bind asks for them: the master's RSS budget.
import type { EndpointServer, Route } from './endpoint-server.js';
import type { HealthView } from './health.js';
import type { ArbMetrics, CompanionSummary, WorkerGauges } from './metrics.js';
import { Notifier } from './notify.js';
import { ProcSampler } from './proc-sampler.js';
import {
  READINESS_START,
  type Readiness,
  type ReadinessEvent,
  readinessTransition,
} from './readiness.js';
import { WorkerTally } from './worker-tally.js';

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
  /** Serve Prometheus metrics on this address (`host:port`, `unix:PATH`), with `/livez` and `/readyz`. */
  metricsBind?: string;
  /** Serve `/livez` and `/readyz` on this address (`host:port`, `unix:PATH`). */
  healthBind?: string;
  /** The companions' status, for `arb ctl status` and the metrics (the CLI asks the manager). */
  companions?: () => Promise<CompanionSummary[] | null>;
  /** Where NOTIFY_SOCKET and WATCHDOG_* are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** What the control needs of the master (the Arbiter has all of it). */
export interface ControlHost extends CtlHost {
  readonly procName: string;
  readonly pool: { all(): WorkerProcess[] };
  readonly listeners: readonly Listener[];
  readonly systemd: boolean;
  readonly generation: number;
  readonly startCwd: string;
  readonly serving: Promise<boolean>;
  readonly reloader: { readonly phase: string; readonly seq: number };
  /** The loop's wake-ups: `/livez` is answered by the loop's next turn. */
  readonly signals: { wake(): void; probe(): Promise<void>; turned(): void };
  now(): number;
  /** The master's log: lines it dropped because the destination failed. */
  readonly logSink?: { dropped(): number };
}

/** The `outcome` label of `arb_reloads_total`: ok, failed, or canary_failed. */
function reloadLabel(outcome: ReloadOutcome): 'ok' | 'failed' | 'canary_failed' {
  if (outcome.ok) return 'ok';
  return outcome.outcome === 'canary_failed' ? 'canary_failed' : 'failed';
}

/**
 * systemd notifications, the Prometheus metrics and the control socket of one master. The
 * Arbiter calls it at a handful of points (start, HUP, worker spawn, message and exit,
 * reload end, promotion, halt); which sd_notify message when is `readiness.ts`, the ctl
 * commands are `ctl-handlers.ts`.
 */
export class ArbiterControl {
  readonly notifier: Notifier;
  /** Present only when metrics are served (`metricsBind`). */
  metrics: ArbMetrics | undefined;
  private readiness: Readiness = READINESS_START;
  private readonly commands: CtlHandlers;
  private ctl: LineServer | undefined;
  /** The metrics and health servers, once listening. */
  private readonly servers = new Map<EndpointKind, EndpointServer>();
  /**
   * Endpoint servers on sockets inherited from the master that started us (USR2), not yet
   * accepting: the old master answers alone until our workers serve or it is gone.
   */
  private readonly deferred = new Map<EndpointKind, { server: EndpointServer; fd: number }>();
  /** The master halts (delay, drain): `/readyz` says so from the first moment. */
  private halting = false;
  private readonly startedAt = Date.now();
  private readonly tally = new WorkerTally();
  /** RSS and CPU, read when a status request or a scrape asks. */
  private readonly sampler: ProcSampler;
  private closed = false;

  constructor(
    private readonly host: ControlHost,
    private readonly options: ControlOptions = {},
  ) {
    this.notifier = new Notifier({ env: options.env ?? process.env, log: host.log });
    this.sampler = new ProcSampler(() => host.now());
    this.commands = new CtlHandlers(host, {
      stopping: () => this.stoppingNow,
      status: () => this.status(),
      upgradeEnded: (ok) => this.metrics?.upgrades.inc({ outcome: ok ? 'ok' : 'failed' }),
    });
  }

  /** The ctl socket path for this master (`.2` while waiting for promotion). */
  ctlPath(): string | undefined {
    const s = this.options.socket;
    if (!s) return undefined;
    return ownName(this.host.lineage, path.resolve(this.host.startCwd, s));
  }

  /** After the listeners: the control socket, the metrics and health endpoints, READY=1 once serving. */
  async start(): Promise<void> {
    await this.listenCtl();
    await this.serveEndpoints();
    void this.host.serving.then((serving) => {
      if (!serving) return;
      void this.acceptInherited();
      this.tell({ type: 'serving', lineage: this.host.lineage, workers: this.liveCount() });
    });
  }

  /**
   * The metrics server (`/metrics`, `/livez`, `/readyz`) and the health server (`/livez`,
   * `/readyz`); one server when both name the same address. A server that cannot listen
   * is logged and left out: the master serves on without it. A re-exec'd master takes the
   * sockets the old master handed over for the same binds (`ARB_ENDPOINTS`) and accepts
   * on them from the moment its workers serve (or it is promoted) on.
   */
  private async serveEndpoints(): Promise<void> {
    const { metricsBind, healthBind } = this.options;
    const env = this.options.env ?? process.env;
    if (!metricsBind && !healthBind && env[ENDPOINTS_VAR] === undefined) return;
    const separateHealth = healthBind && !sameAddress(healthBind, metricsBind);
    const inherited = takeInheritedEndpoints(env, {
      metrics: metricsBind,
      health: separateHealth ? healthBind : undefined,
    });
    if (!metricsBind && !healthBind) return;
    const [{ EndpointServer }, { healthRoutes }] = await Promise.all([
      import('./endpoint-server.js'),
      import('./health.js'),
    ]);
    const health = healthRoutes(this.healthView());
    const wanted: ['metrics' | 'health', string, Map<string, Route>][] = [];
    if (metricsBind) {
      const routes = new Map([['/metrics', await this.metricsRoute()], ...health]);
      wanted.push(['metrics', metricsBind, routes]);
    }
    if (healthBind && separateHealth) wanted.push(['health', healthBind, health]);
    for (const [what, bind, routes] of wanted) {
      const server = new EndpointServer(what, bind, routes, this.host.log);
      const fd = inherited.get(what);
      if (fd !== undefined && this.host.lineage.role === 'awaiting-promotion') {
        this.deferred.set(what, { server, fd });
        continue;
      }
      await this.listenEndpoint(what, server, fd);
    }
  }

  private async listenEndpoint(
    what: EndpointKind,
    server: EndpointServer,
    fd: number | undefined,
  ): Promise<void> {
    try {
      await server.listen(fd);
      this.servers.set(what, server);
    } catch (err) {
      this.host.log.error({ err }, `Cannot serve ${what} on ${server.bind}`);
    }
  }

  /** Our workers serve, or we were promoted: the inherited endpoint sockets are ours to answer. */
  private async acceptInherited(): Promise<void> {
    const waiting = [...this.deferred];
    this.deferred.clear();
    for (const [what, { server, fd }] of waiting) {
      if (this.closed) return;
      await this.listenEndpoint(what, server, fd);
    }
  }

  /** The endpoint servers' sockets, for a new master (USR2) to inherit. */
  endpointFds(): EndpointFd[] {
    const out: EndpointFd[] = [];
    for (const [what, server] of this.servers) {
      const fd = server.fd;
      if (fd !== undefined) out.push({ what, fd, bind: server.bind });
    }
    return out;
  }

  /**
   * What `/livez` and `/readyz` read: the loop's turns, the workers' states, halting. While
   * a new master we started serves on our sockets (an upgrade), we are ready whatever our
   * own workers do: the traffic a load balancer sends is served, by its workers.
   */
  private healthView(): HealthView {
    const host = this.host;
    return {
      // closing: the loop has made its last turn and the master is alive until it exits
      loopTurned: () => (this.closed ? Promise.resolve() : host.signals.probe()),
      notReady: () => {
        const l = host.lineage;
        if (l.role === 'parent' && l.childServing) return undefined;
        if (this.halting) return 'stopping';
        if (!host.pool.all().some((w) => w.state === 'ready')) return 'no worker serves';
        return undefined;
      },
    };
  }

  private async metricsRoute(): Promise<Route> {
    const { ArbMetrics, metricsRoute } = await import('./metrics.js');
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
        logDropped: () => host.logSink?.dropped() ?? 0,
        workers: () => this.workerGauges(),
      },
      { companions: this.options.companions !== undefined },
    );
    this.metrics.collectProcessMetrics();
    return metricsRoute(this.metrics, host.log);
  }

  /** Per live worker: what the metrics' per-worker gauges show. */
  private workerGauges(): WorkerGauges[] {
    const now = this.host.now();
    const live = this.host.pool.all().filter((w) => w.pid !== undefined && w.state !== 'exited');
    const procs = this.sampler.look(live.map((w) => ({ pid: w.pid!, uptime: now - w.spawnedAt })));
    return live.map((w) => {
      const p = procs.get(w.pid!);
      const beat = w.heartbeat?.lastUpdate();
      return {
        slot: w.slot,
        pid: w.pid!,
        rssBytes: p?.rssBytes,
        cpuSeconds: p?.cpuSeconds,
        lag: this.tally.figures(w.age, now).lag,
        heartbeatAge: beat === undefined ? undefined : Math.max(0, now - beat),
      };
    });
  }

  private async listenCtl(): Promise<void> {
    const p = this.ctlPath();
    if (!p) return;
    const server = new LineServer({
      maxLineBytes: CTL_MAX_LINE_BYTES,
      ...this.options.socketLimits,
      path: p,
      log: this.host.log,
      handle: (line, progress) => this.commands.handleLine(line, progress),
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

  /** Moves the readiness machine on and sends what it says. */
  private tell(event: ReadinessEvent): void {
    const { state, effects } = readinessTransition(this.readiness, event);
    this.readiness = state;
    const n = this.notifier;
    for (const e of effects) {
      if (e.type === 'ready') n.ready(e.status);
      else if (e.type === 'reloading') n.reloading();
      else if (e.type === 'main-pid') n.mainPid(e.pid, e.status, e.ready);
      else if (e.type === 'stopping') n.stopping();
      else if (e.type === 'watchdog-on') n.startWatchdog(e.force);
      else n.stopWatchdog();
    }
  }

  private get stoppingNow(): boolean {
    return this.readiness.phase === 'stopping';
  }

  private liveCount(): number {
    return this.host.pool.all().filter((w) => isCounted(w.state)).length;
  }

  // ---- the points the Arbiter calls ------------------------------------------------------

  /** HUP, before the reload begins (a HUP during a reload is coalesced: nothing to say). */
  reloadRequested(): void {
    this.tell({ type: 'reload-requested', lineage: this.host.lineage });
  }

  /** A reload ended (the reload machine says how). */
  reloadEnded(outcome: ReloadOutcome): void {
    this.metrics?.reloads.inc({ outcome: reloadLabel(outcome) });
    const lineage = this.host.lineage;
    this.tell({ type: 'reload-ended', lineage, outcome, workers: this.liveCount() });
    this.commands.reloadEnded(outcome);
  }

  /** Where a reload stands (`arb ctl reload` prints it). */
  reloadProgress(progress: ReloadProgress): void {
    this.commands.reloadProgress(progress);
  }

  workerSpawned(_worker: WorkerProcess): void {
    this.metrics?.spawns.inc();
  }

  /** A worker's batched request counts. */
  workerStats(worker: WorkerProcess, message: StatsMessage): void {
    this.tally.stats(worker, message, this.host.now());
    this.metrics?.addStats(message);
  }

  /** A worker reached `maxRequests` and is on its way out. */
  workerRetiring(worker: WorkerProcess): void {
    this.tally.retiring(worker);
  }

  /** A worker stayed above `--max-memory`: its successor serves, it is retired. */
  workerOutgrown(worker: WorkerProcess): void {
    this.tally.outgrew(worker);
  }

  /** A worker exit being reaped; `before` is its state before the exit. */
  workerExited(worker: WorkerProcess, before: WorkerState): void {
    const master = { stopping: this.stoppingNow, generation: this.host.generation };
    const reason = this.tally.exited(worker, before, master);
    this.metrics?.exits.inc({ reason });
  }

  /** A re-exec'd master was promoted: it is the main process now, at the plain ctl path. */
  promoted(): void {
    this.tell({ type: 'promoted', pid: this.host.pid, workers: this.liveCount() });
    // the old master is gone: the socket files it created are ours to remove at our stop
    for (const server of this.servers.values()) server.claimFile();
    void this.acceptInherited().then(() => {
      for (const server of this.servers.values()) server.claimFile();
    });
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
    this.halting = true;
    this.tell({ type: 'stopping', lineage: this.host.lineage });
  }

  /** Last thing of a halt: the servers go (the ctl file only if it is still ours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tell({ type: 'closed' });
    this.commands.abort(this.host.generation);
    // the loop has made its last turn: a `/livez` waiting for one is answered now (and one
    // that comes before the servers stop accepting at once, see healthView)
    this.host.signals.turned();
    // let the replies just resolved be written before the connections are ended
    await new Promise((r) => setImmediate(r));
    // a new master of ours serves on the endpoint sockets: their files stay
    const unlink = this.host.lineage.role !== 'parent';
    await Promise.all([
      this.ctl?.close(),
      ...[...this.servers.values()].map((s) => s.close(unlink)),
    ]);
    this.ctl = undefined;
    this.servers.clear();
    for (const { fd } of this.deferred.values()) closeFd(fd);
    this.deferred.clear();
  }

  /** The metrics endpoint, once listening. */
  get metricsUrl(): string | undefined {
    return this.servers.get('metrics')?.url;
  }

  /** The health endpoint (`--health-bind`), once listening. */
  get healthUrl(): string | undefined {
    return this.servers.get('health')?.url ?? this.servers.get('metrics')?.url;
  }

  private async companions(): Promise<CompanionSummary[] | null> {
    if (!this.options.companions) return null;
    return this.options.companions();
  }

  /** `arb ctl status`: the master, its listeners, workers and companions. */
  status(): Promise<Record<string, unknown>> {
    const h = this.host;
    return masterStatus({
      pid: h.pid,
      procName: h.procName,
      lineage: h.lineage,
      now: h.now(),
      startedAt: this.startedAt,
      wallNow: Date.now(),
      numWorkers: h.numWorkers,
      generation: h.generation,
      reload: h.reloader.phase,
      systemd: {
        socket_activated: h.systemd,
        notify: this.notifier.enabled,
        ready_sent: this.readiness.readySent,
      },
      ctlSocket: this.ctl?.path,
      metrics: this.metricsUrl,
      listeners: h.listeners,
      workers: h.pool.all(),
      served: (age) => this.tally.served(age),
      figures: (age) => this.tally.figures(age, h.now()),
      sample: (targets) => this.sampler.look(targets),
      companions: () => this.companions(),
    });
  }
}

function closeFd(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // closed already
  }
}

/** Two binds that name one socket (port 0 never does: each gets a port of its own). */
function sameAddress(a: string, b: string | undefined): boolean {
  if (a !== b) return false;
  try {
    const address = parseAddress(a);
    return !(address.kind === 'tcp' && address.port === 0);
  } catch {
    return false; // reported when it is bound
  }
}
