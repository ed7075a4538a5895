// The figures of `arb ctl status`, `arb top` and the per-worker metrics: latency quantiles
// from bucket counts, a worker's last interval, the on-demand /proc sampler, the worker's
// lag reports, and the metrics' per-worker gauges and `code` label.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { WorkerProcess } from '../src/master/worker-state.js';
import { masterStatus, type StatusView } from '../src/ops/ctl-handlers.js';
import { ArbMetrics, type WorkerGauges } from '../src/ops/metrics.js';
import { ProcSampler, SAMPLE_MIN_INTERVAL_SECONDS } from '../src/ops/proc-sampler.js';
import { quantileOf } from '../src/ops/quantile.js';
import { WorkerTally } from '../src/ops/worker-tally.js';
import { LATENCY_BUCKETS, type StatsMessage } from '../src/protocol/worker.js';
import { LoopLag } from '../src/worker/loop-lag.js';
import { bucketOf, WorkerRequestStats } from '../src/worker/request-stats.js';

const N = LATENCY_BUCKETS.length + 1;
/** Bucket counts with `n` responses in the bucket of `seconds` each. */
function buckets(...pairs: [seconds: number, n: number][]): number[] {
  const b = new Array<number>(N).fill(0);
  for (const [s, n] of pairs) b[bucketOf(s)]! += n;
  return b;
}
function stats(over: Partial<StatsMessage> = {}): StatsMessage {
  return { type: 'stats', requests: 0, codes: {}, buckets: buckets(), sum: 0, ...over };
}

describe('quantileOf', () => {
  it('interpolates within the bucket, as histogram_quantile does', () => {
    // 100 responses in (0.01, 0.025]: p50 halfway, p99 near the top
    const b = buckets([0.02, 100]);
    expect(quantileOf(b, 0.5)).toBeCloseTo(0.0175, 6);
    expect(quantileOf(b, 0.99)).toBeCloseTo(0.02485, 6);
  });
  it('finds the bucket of the rank across buckets', () => {
    const b = buckets([0.003, 90], [0.4, 10]); // 90 fast, 10 in (0.25, 0.5]
    expect(quantileOf(b, 0.5)!).toBeLessThanOrEqual(0.005);
    expect(quantileOf(b, 0.99)!).toBeGreaterThan(0.25);
    expect(quantileOf(b, 0.99)!).toBeLessThanOrEqual(0.5);
  });
  it('is undefined without responses and the last bound in +Inf', () => {
    expect(quantileOf(buckets(), 0.99)).toBeUndefined();
    expect(quantileOf(buckets([60, 3]), 0.5)).toBe(10);
  });
});

describe('WorkerTally figures', () => {
  const worker = (age: number) => new WorkerProcess(age, 0, undefined, 0);
  it('req/s and quantiles of the last interval, zero once it is stale; lag kept', () => {
    const t = new WorkerTally();
    const w = worker(1);
    expect(t.figures(1, 10)).toEqual({
      reqPerSec: 0,
      p50: undefined,
      p99: undefined,
      lag: undefined,
    });
    t.stats(
      w,
      stats({ requests: 50, codes: { '2xx': 50 }, buckets: buckets([0.02, 50]), lag: 0.21 }),
      10,
    );
    const f = t.figures(1, 10.5);
    expect(f.reqPerSec).toBe(50);
    expect(f.p99).toBeGreaterThan(0.01);
    expect(f.p99).toBeLessThanOrEqual(0.025);
    expect(f.lag).toBe(0.21);
    // idle since: no batch for 3 s
    expect(t.figures(1, 13)).toMatchObject({ reqPerSec: 0, p50: undefined, lag: 0.21 });
    // an idle lag report (no requests) updates the lag only
    t.stats(w, stats({ lag: 0 }), 14);
    expect(t.figures(1, 14)).toMatchObject({ reqPerSec: 0, p99: undefined, lag: 0 });
    expect(t.served(1)).toBe(50);
    // gone with the worker
    t.exited(w, 'ready', { stopping: true, generation: 0 });
    expect(t.figures(1, 14).lag).toBeUndefined();
  });
});

describe('ProcSampler', () => {
  it('reads on demand at most about once a second; CPU % between two reads', () => {
    let now = 100;
    const reads: number[] = [];
    let cpu = 1;
    const s = new ProcSampler(
      () => now,
      (pid) => {
        reads.push(pid);
        return pid === 9 ? undefined : { pid, rssBytes: 4096 * pid, cpuSeconds: cpu, state: 'S' };
      },
    );
    // first look: the average since the process started (1 s of CPU in 4 s)
    expect(s.look([{ pid: 5, uptime: 4 }]).get(5)).toEqual({
      rssBytes: 20480,
      cpuSeconds: 1,
      cpuPercent: 25,
    });
    now += SAMPLE_MIN_INTERVAL_SECONDS / 2;
    cpu = 3;
    expect(s.look([{ pid: 5, uptime: 4 }]).get(5)?.cpuSeconds).toBe(1); // too soon: reused
    expect(reads).toEqual([5]);
    now += 1;
    // 2 s of CPU over 1.4 s since the first read
    expect(s.look([{ pid: 5, uptime: 5 }]).get(5)?.cpuPercent).toBeCloseTo(142.9, 1);
    expect(reads).toEqual([5, 5]);
    // a process that cannot be read has no figures
    expect(s.look([{ pid: 9, uptime: 1 }]).has(9)).toBe(false);
  });
  it('reads this process from /proc', () => {
    const s = new ProcSampler(() => performance.now() / 1000);
    const me = s.look([{ pid: process.pid, uptime: process.uptime() }]).get(process.pid);
    expect(me?.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(me?.cpuSeconds).toBeGreaterThan(0);
    expect(me?.cpuPercent).toBeGreaterThanOrEqual(0);
  });
});

describe('worker lag reports', () => {
  it('an idle worker sends its lag when it changes or every idle interval, no more', () => {
    const sent: StatsMessage[] = [];
    let now = 0;
    let lag = 0;
    const s = new WorkerRequestStats(
      (m) => sent.push(m),
      1000,
      () => 0,
      {
        lag: () => lag,
        now: () => now,
        idleIntervalMs: 5000,
      },
    );
    s.flush(); // the first one says where the lag stands
    expect(sent).toEqual([stats({ lag: 0 })]);
    for (let i = 1; i <= 4; i++) {
      now = i * 1000;
      s.flush();
    }
    expect(sent).toHaveLength(1); // idle, unchanged: silent
    now = 4500;
    lag = 0.2; // the loop stalled
    s.flush();
    expect(sent.at(-1)).toEqual(stats({ lag: 0.2 }));
    now = 5500;
    lag = 0.005;
    s.flush();
    expect(sent.at(-1)?.lag).toBe(0.005);
    now = 10_400;
    s.flush(); // idle interval not over
    expect(sent).toHaveLength(3);
    now = 10_500;
    s.flush();
    expect(sent).toHaveLength(4);
  });

  it('splits buckets by status class only when there are two classes', () => {
    const sent: StatsMessage[] = [];
    const s = new WorkerRequestStats((m) => sent.push(m));
    const serve = (statusCode: number) => {
      const res = Object.assign(new EventEmitter(), { statusCode });
      s.track({} as IncomingMessage, res as unknown as ServerResponse);
      res.emit('finish');
    };
    serve(200);
    serve(204);
    s.flush();
    expect(sent[0]!.byCode).toBeUndefined();
    serve(200);
    serve(503);
    serve(503);
    s.flush();
    const byCode = sent[1]!.byCode!;
    expect(Object.keys(byCode).sort()).toEqual(['2xx', '5xx']);
    expect(byCode['5xx']!.slice(0, N).reduce((a, b) => a + b, 0)).toBe(2);
    expect(byCode['2xx']).toHaveLength(N + 1); // the sum last
  });

  it('LoopLag sees a 200 ms stall of the loop, and nothing on an idle loop', async () => {
    const lag = new LoopLag();
    try {
      await new Promise((r) => setTimeout(r, 150));
      lag.take();
      await new Promise((r) => setTimeout(r, 300));
      expect(lag.take()).toBeLessThan(0.1);
      await new Promise((r) => setTimeout(r, 50));
      const until = Date.now() + 200;
      while (Date.now() < until) {} // blocks the loop
      await new Promise((r) => setTimeout(r, 100));
      expect(lag.take()).toBeGreaterThan(0.15);
    } finally {
      lag.stop();
    }
  });
});

describe('metrics: per-worker gauges and the code label', () => {
  it('labels the latency histogram by status class', async () => {
    const metrics = new ArbMetrics({
      workersDesired: () => 1,
      workersByState: () => ({ ready: 1 }),
      companions: async () => null,
    });
    metrics.addStats(
      stats({ requests: 2, codes: { '2xx': 2 }, buckets: buckets([0.02, 2]), sum: 0.04 }),
    );
    const own = (s: number, n: number, sum: number) => [...buckets([s, n]), sum];
    metrics.addStats(
      stats({
        requests: 3,
        codes: { '2xx': 1, '5xx': 2 },
        buckets: buckets([0.02, 1], [3, 2]),
        sum: 6.02,
        byCode: { '2xx': own(0.02, 1, 0.02), '5xx': own(3, 2, 6) },
      }),
    );
    const text = await metrics.render();
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="0.025",code="2xx"} 3');
    expect(text).toContain('arb_http_request_duration_seconds_count{code="2xx"} 3');
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="2.5",code="5xx"} 0');
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="5",code="5xx"} 2');
    expect(text).toContain('arb_http_request_duration_seconds_sum{code="5xx"} 6');
    expect(text).not.toMatch(/arb_http_request_duration_seconds_count \d/); // no unlabelled series
  });

  it("per-worker gauges follow the live workers: an exited worker's series go", async () => {
    let live: WorkerGauges[] = [
      { slot: 0, pid: 101, rssBytes: 5e7, cpuSeconds: 1.5, lag: 0.2, heartbeatAge: 0.4 },
      { slot: 1, pid: 102, rssBytes: 6e7, cpuSeconds: 0.5, lag: 0, heartbeatAge: 0.1 },
    ];
    const metrics = new ArbMetrics({
      workersDesired: () => 2,
      workersByState: () => ({ ready: live.length }),
      companions: async () => null,
      workers: () => live,
    });
    let text = await metrics.render();
    expect(text).toContain('arb_worker_resident_memory_bytes{slot="0",pid="101"} 50000000');
    expect(text).toContain('arb_worker_cpu_seconds_total{slot="1",pid="102"} 0.5');
    expect(text).toContain('arb_worker_event_loop_lag_seconds{slot="0",pid="101"} 0.2');
    expect(text).toContain('arb_worker_heartbeat_age_seconds{slot="1",pid="102"} 0.1');
    live = [
      { slot: 1, pid: 102 },
      { slot: 0, pid: 103, rssBytes: 1e6 },
    ];
    text = await metrics.render();
    expect(text).not.toContain('pid="101"');
    expect(text).toContain('arb_worker_resident_memory_bytes{slot="0",pid="103"} 1000000');
    // a figure that could not be read is left out, not shown as 0
    expect(text).not.toMatch(/arb_worker_resident_memory_bytes\{slot="1",pid="102"\}/);
  });
});

describe('masterStatus', () => {
  it('adds RSS and CPU to the master, each worker and each companion with a pid', async () => {
    const w = new WorkerProcess(1, 0, undefined, 0);
    w.pid = 201;
    w.state = 'ready';
    const tally = new WorkerTally();
    tally.stats(
      w,
      stats({ requests: 10, codes: { '2xx': 10 }, buckets: buckets([0.02, 10]), lag: 0.3 }),
      5,
    );
    const asked: number[] = [];
    const v: StatusView = {
      pid: 200,
      procName: 'app',
      lineage: { role: 'sole' },
      now: 5.5,
      startedAt: 0,
      wallNow: 6000,
      numWorkers: 1,
      generation: 0,
      reload: 'idle',
      systemd: { socket_activated: false, notify: false, ready_sent: false },
      ctlSocket: undefined,
      metrics: undefined,
      listeners: [],
      workers: [w],
      served: (age) => tally.served(age),
      figures: (age) => tally.figures(age, 5.5),
      sample: (targets) => {
        asked.push(...targets.map((t) => t.pid));
        return new Map(
          targets
            .filter((t) => t.pid !== 301)
            .map((t) => [t.pid, { rssBytes: t.pid * 1000, cpuSeconds: 1, cpuPercent: 2.5 }]),
        );
      },
      companions: async () => [
        { name: 'jobs', state: 'RUNNING', pid: 300, uptime: 3 },
        { name: 'cron', state: 'RUNNING', pid: 301, uptime: 3 },
        { name: 'off', state: 'STOPPED', pid: null },
      ],
    };
    const s = (await masterStatus(v)) as {
      master: Record<string, unknown>;
      workers: Record<string, unknown>[];
      companions: Record<string, unknown>[];
    };
    expect(asked.sort()).toEqual([200, 201, 300, 301]);
    expect(s.master).toMatchObject({ rss_bytes: 200_000, cpu_percent: 2.5, cpu_seconds: 1 });
    expect(s.workers[0]).toMatchObject({ pid: 201, rss_bytes: 201_000, req_per_sec: 10, lag: 0.3 });
    expect(s.workers[0]!.p99).toBeGreaterThan(0.01);
    expect(s.companions.map((c) => c.rss_bytes)).toEqual([300_000, null, null]);
  });
});
