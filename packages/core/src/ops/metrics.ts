import client from 'prom-client';
import type { Logger } from '../logger.js';
import { LATENCY_BUCKETS, type StatsMessage } from '../protocol/worker.js';
import type { Route } from './endpoint-server.js';

/** Why a worker exited, as counted in `arb_worker_exits_total{reason}`. */
export type ExitReason =
  | 'crash'
  | 'timeout'
  | 'max_requests'
  | 'max_memory'
  | 'reload'
  | 'scale_down'
  | 'shutdown'
  | 'boot_failure';

/** One companion as the manager reports it (its `status` entries). */
export interface CompanionSummary {
  name: string;
  state: string;
  pid: number | null;
  restarts?: number;
  [key: string]: unknown;
}

/** One live worker's per-worker gauges; a figure that could not be read is left out. */
export interface WorkerGauges {
  /** Its place among the workers kept (0..workers-1). */
  slot: number;
  pid: number;
  rssBytes?: number | undefined;
  cpuSeconds?: number | undefined;
  /** Event-loop lag of its last report, seconds. */
  lag?: number | undefined;
  /** Seconds since its last heartbeat stamp. */
  heartbeatAge?: number | undefined;
}

/** The label of a status class the histogram and the counter accept (`2xx`, `5xx`...). */
const STATUS_CLASS = /^\dxx$/;

/** What the metrics read from the master at scrape time. */
export interface MetricsView {
  workersDesired(): number;
  /** Live workers by state (`booting`, `ready`, `retiring`, ...). */
  workersByState(): Record<string, number>;
  /** The companions, or null when there are none (or the manager does not answer). */
  companions(): Promise<CompanionSummary[] | null>;
  /** Log lines the master dropped so far (its log destination failed). */
  logDropped?(): number;
  /**
   * The live workers' gauges (read at each scrape: an exited worker's series are gone from
   * the next scrape on, so pids do not pile up as label values).
   */
  workers?(): WorkerGauges[];
}

/** The companion states a `arb_companion_state` series exists for. */
const COMPANION_STATES = ['STOPPED', 'STARTING', 'RUNNING', 'BACKOFF', 'STOPPING', 'FATAL'];

/**
 * The master's Prometheus metrics (prom-client, a registry of its own). Request counts
 * and the latency histogram are added up from the workers' batched stats messages; the
 * histogram is a prom-client metric object fed with bucket counts, since prom-client's
 * own Histogram only takes single observations.
 */
export class ArbMetrics {
  readonly registry = new client.Registry();
  readonly spawns: client.Counter;
  readonly exits: client.Counter<'reason'>;
  readonly reloads: client.Counter<'outcome'>;
  readonly upgrades: client.Counter<'outcome'>;
  readonly requests: client.Counter<'code'>;
  /** Per status class: its latency buckets (not cumulative) and their sum. */
  private readonly latency = new Map<string, { buckets: number[]; sum: number }>();
  private requestsStarted = 0;
  private workerLogDropped = 0;

  constructor(view: MetricsView, options: { companions?: boolean } = {}) {
    const registers = [this.registry];
    new client.Gauge({
      name: 'arb_workers_desired',
      help: 'Number of workers the master keeps',
      registers,
      collect() {
        this.set(view.workersDesired());
      },
    });
    new client.Gauge({
      name: 'arb_workers',
      help: 'Worker processes by state (booting and ready ones are alive and counted)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const byState = view.workersByState();
        for (const state of ['booting', 'ready', 'retiring', 'aborting', 'killed']) {
          this.set({ state }, byState[state] ?? 0);
        }
      },
    });
    new client.Gauge({
      name: 'arb_workers_alive',
      help: 'Live workers (booting or ready)',
      registers,
      collect() {
        const byState = view.workersByState();
        this.set((byState.booting ?? 0) + (byState.ready ?? 0));
      },
    });
    this.spawns = new client.Counter({
      name: 'arb_worker_spawns_total',
      help: 'Workers spawned',
      registers,
    });
    this.exits = new client.Counter({
      name: 'arb_worker_exits_total',
      help: 'Worker exits by reason (crash, timeout, max_requests, max_memory, reload, scale_down, shutdown, boot_failure)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['crash', 'timeout', 'max_requests', 'reload'])
      this.exits.inc({ reason }, 0);
    this.reloads = new client.Counter({
      name: 'arb_reloads_total',
      help: 'Reloads (HUP) by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.reloads.inc({ outcome: 'ok' }, 0);
    this.reloads.inc({ outcome: 'failed' }, 0);
    this.reloads.inc({ outcome: 'canary_failed' }, 0);
    this.upgrades = new client.Counter({
      name: 'arb_upgrades_total',
      help: 'Upgrades (re-exec of the master) by outcome',
      labelNames: ['outcome'],
      registers,
    });
    const self = this;
    new client.Counter({
      name: 'arb_http_requests_started_total',
      help: 'Requests the workers started to serve (counted in batches, about once a second)',
      registers,
      collect() {
        this.reset();
        this.inc(self.requestsStarted);
      },
    });
    new client.Counter({
      name: 'arb_log_lines_dropped_total',
      help: 'Log lines dropped because their destination failed (disk full, EIO, EACCES), by process',
      labelNames: ['proc'],
      registers,
      collect() {
        this.reset();
        this.inc({ proc: 'master' }, view.logDropped?.() ?? 0);
        this.inc({ proc: 'worker' }, self.workerLogDropped);
      },
    });
    this.requests = new client.Counter({
      name: 'arb_http_requests_total',
      help: 'Responses the workers finished, by status class',
      labelNames: ['code'],
      registers,
    });
    // the usual class is there from the start: a dashboard sees 0, not "no data"
    this.addLatency('2xx', [], 0);
    this.registry.registerMetric(this.latencyMetric() as unknown as client.Metric);
    if (view.workers) this.workerMetrics(view.workers.bind(view));
    this.beforeScrape = options.companions ? this.companionMetrics(view) : async () => {};
  }

  /** Runs before each scrape (the companions are read then). */
  private readonly beforeScrape: () => Promise<void>;

  /**
   * The master's own process metrics (`arb_master_process_*`, `arb_master_nodejs_*`): only
   * with a metrics endpoint, since they keep an event-loop delay monitor running.
   */
  collectProcessMetrics(): void {
    client.collectDefaultMetrics({
      register: this.registry,
      prefix: 'arb_master_',
      eventLoopMonitoringPrecision: 100,
    });
  }

  /** Companion states and restarts, read from the manager once per scrape. */
  private companionMetrics(view: MetricsView): () => Promise<void> {
    const registers = [this.registry];
    const companionState = new client.Gauge({
      name: 'arb_companion_state',
      help: 'Companion states (1 for the current state of each companion)',
      labelNames: ['name', 'state'],
      registers,
    });
    const companionRestarts = new client.Gauge({
      name: 'arb_companion_restarts',
      help: 'Restarts of each companion since the manager started',
      labelNames: ['name'],
      registers,
    });
    const companionUp = new client.Gauge({
      name: 'arb_companions_up',
      help: '1 when the companion manager answered this scrape, 0 when it did not, absent without companions',
      registers,
    });
    return async () => {
      companionState.reset();
      companionRestarts.reset();
      companionUp.reset();
      let list: CompanionSummary[] | null;
      try {
        list = await view.companions();
      } catch {
        companionUp.set(0);
        return;
      }
      if (list === null) return;
      companionUp.set(1);
      for (const c of list) {
        for (const state of COMPANION_STATES) {
          companionState.set({ name: c.name, state }, c.state === state ? 1 : 0);
        }
        companionRestarts.set({ name: c.name }, Number(c.restarts ?? 0));
      }
    };
  }

  /**
   * Per-worker gauges, labelled by slot and pid, set from `workers()` at each scrape (one
   * `/proc` reading of the workers serves all four).
   */
  private workerMetrics(workers: () => WorkerGauges[]): void {
    const registers = [this.registry];
    const labelNames = ['slot', 'pid'] as const;
    // the first gauge collected reads the workers once for all four
    const collect = () => {
      for (const g of Object.values(gauges)) g.reset();
      for (const w of workers()) {
        const labels = { slot: String(w.slot), pid: String(w.pid) };
        for (const key of Object.keys(gauges) as (keyof typeof gauges)[]) {
          const value = w[key];
          if (typeof value === 'number' && Number.isFinite(value)) gauges[key].set(labels, value);
        }
      }
    };
    const gauges = {
      rssBytes: new client.Gauge({
        name: 'arb_worker_resident_memory_bytes',
        help: 'Resident set size of each live worker, bytes',
        labelNames,
        registers,
        collect,
      }),
      cpuSeconds: new client.Gauge({
        name: 'arb_worker_cpu_seconds_total',
        help: 'CPU time (user + system) each live worker used so far, seconds',
        labelNames,
        registers,
      }),
      lag: new client.Gauge({
        name: 'arb_worker_event_loop_lag_seconds',
        help: 'Longest event-loop delay of each live worker over its last report (about a second; idle workers report on change or every 5 s)',
        labelNames,
        registers,
      }),
      heartbeatAge: new client.Gauge({
        name: 'arb_worker_heartbeat_age_seconds',
        help: "Seconds since each live worker's last heartbeat (a worker is killed past --timeout)",
        labelNames,
        registers,
      }),
    };
  }

  /** Adds one worker's batch. */
  addStats(m: StatsMessage): void {
    this.requestsStarted += m.requests;
    if (typeof m.logDropped === 'number' && Number.isFinite(m.logDropped))
      this.workerLogDropped += m.logDropped;
    const classes: string[] = [];
    for (const [code, n] of Object.entries(m.codes)) {
      if (STATUS_CLASS.test(code) && Number.isFinite(n)) {
        this.requests.inc({ code }, n);
        classes.push(code);
      }
    }
    const n = LATENCY_BUCKETS.length + 1;
    if (m.byCode && typeof m.byCode === 'object') {
      for (const [code, own] of Object.entries(m.byCode)) {
        if (STATUS_CLASS.test(code) && Array.isArray(own) && own.length === n + 1)
          this.addLatency(code, own.slice(0, n), own[n]!);
      }
    } else if (classes.length === 1) {
      this.addLatency(classes[0]!, m.buckets, m.sum);
    }
  }

  private addLatency(code: string, buckets: readonly number[], sum: number): void {
    let own = this.latency.get(code);
    if (!own) {
      own = { buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0 };
      this.latency.set(code, own);
    }
    for (let i = 0; i < own.buckets.length; i++) {
      const v = buckets[i];
      if (typeof v === 'number' && Number.isFinite(v)) own.buckets[i]! += v;
    }
    if (Number.isFinite(sum)) own.sum += sum;
  }

  /** The text exposition. */
  async render(): Promise<string> {
    await this.beforeScrape();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A histogram in prom-client's metric shape (what `Histogram.get()` returns). */
  private latencyMetric() {
    const name = 'arb_http_request_duration_seconds';
    const help =
      'Request latency in the workers, from the request to the end of the response, by status class';
    return {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const values: {
          labels: Record<string, string | number>;
          value: number;
          metricName: string;
        }[] = [];
        for (const code of [...this.latency.keys()].sort()) {
          const own = this.latency.get(code)!;
          let cumulative = 0;
          for (let i = 0; i < own.buckets.length; i++) {
            cumulative += own.buckets[i]!;
            values.push({
              labels: { le: i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i]! : '+Inf', code },
              value: cumulative,
              metricName: `${name}_bucket`,
            });
          }
          values.push({ labels: { code }, value: own.sum, metricName: `${name}_sum` });
          values.push({ labels: { code }, value: cumulative, metricName: `${name}_count` });
        }
        return { name, help, type: 'histogram', values, aggregator: 'sum' };
      },
    };
  }
}

/** `GET /metrics`: the text exposition (the companions are read from the manager first). */
export function metricsRoute(metrics: ArbMetrics, log: Logger): Route {
  return (req, res) => {
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': metrics.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        log.error({ err }, 'Cannot render the metrics');
        res.writeHead(500).end();
      },
    );
  };
}
