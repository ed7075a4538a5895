import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ctlJson, httpGet, parseMetrics } from './ctl-helpers.js';
import { ArbProcess, cleanup, listeningPorts, request, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

const APP = `export default (req, res) => {
  if (req.url === '/hang') for (;;);
  if (req.url === '/missing') { res.statusCode = 404; return res.end('no'); }
  res.end(JSON.stringify({ pid: process.pid }));
};
`;
const JOBS = `export async function run() {
  await new Promise((r) => process.once('SIGTERM', r));
}
`;

function project(files: Record<string, string> = {}): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), APP);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

async function start(cwd: string, args: string[]) {
  const a = new ArbProcess(['-b', '127.0.0.1:0', '--metrics-bind', '127.0.0.1:0', ...args], {
    cwd,
  });
  running.push(a);
  const entry = await a.log((e) => typeof e.metrics === 'string', 'Metrics at');
  const url = `${entry.metrics as string}/metrics`;
  const scrape = async () => {
    const r = await httpGet(url);
    expect(r.status).toBe(200);
    return parseMetrics(r.body);
  };
  return { a, scrape, url };
}

/** Polls the metrics until `check` holds (counts arrive in batches, about once a second). */
async function until(
  scrape: () => Promise<Map<string, number>>,
  check: (m: Map<string, number>) => boolean,
  what: string,
): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  return waitFor(
    async () => {
      last = await scrape();
      return check(last) ? last : undefined;
    },
    20_000,
    what,
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}; last scrape: ${JSON.stringify([...last].filter(([k]) => k.startsWith('arb_') && !k.startsWith('arb_master_')))}`,
    );
  });
}

describe('--metrics-bind', () => {
  it('counts workers, requests, latency and exits; scraped before and after load and a worker kill', async () => {
    const cwd = project();
    const { a, scrape, url } = await start(cwd, ['-w', '2', 'app.mjs']);
    const target = await a.tcpTarget();
    const before = await until(scrape, (m) => m.get('arb_workers_alive') === 2, '2 live workers');
    expect(before.get('arb_workers_desired')).toBe(2);
    expect(before.get('arb_workers{state="ready"}')).toBe(2);
    expect(before.get('arb_worker_spawns_total')).toBe(2);
    expect(before.get('arb_http_request_duration_seconds_count{code="2xx"}')).toBe(0);
    expect(before.get('arb_worker_exits_total{reason="crash"}')).toBe(0);
    expect(before.get('arb_master_process_resident_memory_bytes')).toBeGreaterThan(0);

    for (let i = 0; i < 40; i++) await request(target);
    for (let i = 0; i < 5; i++) await request(target, { path: '/missing' });
    const after = await until(
      scrape,
      (m) =>
        m.get('arb_http_request_duration_seconds_count{code="2xx"}') === 40 &&
        m.get('arb_http_request_duration_seconds_count{code="4xx"}') === 5,
      '45 requests counted, by status class',
    );
    expect(after.get('arb_http_requests_total{code="2xx"}')).toBe(40);
    expect(after.get('arb_http_requests_total{code="4xx"}')).toBe(5);
    expect(after.get('arb_http_requests_started_total')).toBe(45);
    expect(after.get('arb_http_request_duration_seconds_bucket{le="+Inf",code="2xx"}')).toBe(40);
    expect(after.get('arb_http_request_duration_seconds_bucket{le="10",code="4xx"}')).toBe(5);
    expect(after.get('arb_http_request_duration_seconds_sum{code="2xx"}')).toBeGreaterThan(0);
    // the text is prom-client's exposition format
    const text = (await httpGet(url)).body;
    expect(text).toMatch(/# TYPE arb_http_request_duration_seconds histogram/);
    expect(text).toMatch(/# TYPE arb_worker_exits_total counter/);

    // per-worker gauges, one series per live worker, labelled by slot and pid
    const status = await ctlJson(['status'], cwd);
    const pids = (status.body.workers as { pid: number }[]).map((w) => w.pid);
    const perWorker = (m: Map<string, number>, name: string) =>
      [...m].filter(([k]) => k.startsWith(`${name}{`));
    const gauges = [
      'arb_worker_resident_memory_bytes',
      'arb_worker_cpu_seconds_total',
      'arb_worker_event_loop_lag_seconds',
      'arb_worker_heartbeat_age_seconds',
    ];
    // the lag comes with a worker's first report, about a second after it is ready
    const withLag = await until(
      scrape,
      (m) => gauges.every((name) => perWorker(m, name).length === 2),
      'the per-worker gauges of both workers',
    );
    for (const name of gauges) {
      const series = perWorker(withLag, name);
      expect(series.map(([k]) => /pid="(\d+)"/.exec(k)![1]).sort()).toEqual(
        pids.map(String).sort(),
      );
      for (const [k, v] of series) {
        expect(k).toMatch(/^\w+\{slot="[01]",pid="\d+"\}$/);
        expect(v).toBeGreaterThanOrEqual(0);
      }
    }
    for (const [, v] of perWorker(withLag, 'arb_worker_resident_memory_bytes'))
      expect(v).toBeGreaterThan(10 * 1024 * 1024);
    expect(text).toMatch(/# TYPE arb_worker_resident_memory_bytes gauge/);

    // kill a worker: a crash, a respawn, two live workers again
    const victim = pids[0]!;
    process.kill(victim, 'SIGKILL');
    const killed = await until(
      scrape,
      (m) =>
        m.get('arb_worker_exits_total{reason="crash"}') === 1 &&
        m.get('arb_workers_alive') === 2 &&
        m.get('arb_worker_spawns_total') === 3,
      'a crash counted and the worker replaced',
    );
    expect(killed.get('arb_http_requests_total{code="2xx"}')).toBe(40);
    // the dead worker's series went with it
    expect([...killed.keys()].filter((k) => k.includes(`pid="${victim}"`))).toEqual([]);

    // a reload retires the old generation
    const reload = await ctlJson(['reload'], cwd);
    expect(reload.body.ok).toBe(true);
    await until(
      scrape,
      (m) =>
        m.get('arb_worker_exits_total{reason="reload"}') === 2 &&
        m.get('arb_reloads_total{outcome="ok"}') === 1 &&
        m.get('arb_worker_spawns_total') === 5,
      'reload exits counted',
    );
    expect((await request(target)).status).toBe(200);

    // only GET and HEAD, only /metrics (and the health paths): a probe on a wrong path fails
    const metricsAt = new URL(url);
    const endpoint = { host: metricsAt.hostname, port: Number(metricsAt.port) };
    for (const p of ['/anything', '/', '/healthz']) {
      const other = await request(endpoint, { path: p });
      expect(other.status, p).toBe(404);
      expect(other.body).not.toMatch(/^# HELP arb_/m);
    }
    const head = await request(endpoint, { method: 'HEAD', path: '/metrics' });
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/^text\/plain/);
    expect(head.body).toBe('');
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const refused = await request(endpoint, { method, body: 'x' });
      expect(refused.status).toBe(405);
      expect(refused.headers.allow).toBe('GET, HEAD');
      expect(refused.body).toBe('');
    }
  });

  it('counts max-requests and timeout exits', async () => {
    const cwd = project();
    const { a, scrape } = await start(cwd, [
      '-w',
      '1',
      '--max-requests',
      '3',
      '-t',
      '1',
      'app.mjs',
    ]);
    const target = await a.tcpTarget();
    for (let i = 0; i < 7; i++) {
      await waitFor(async () => (await request(target)).status === 200, 10_000, 'a response');
    }
    await until(
      scrape,
      (m) => (m.get('arb_worker_exits_total{reason="max_requests"}') ?? 0) >= 2,
      'max-requests exits',
    );
    request(target, { path: '/hang' }).catch(() => {});
    await until(
      scrape,
      // at least: on a loaded machine a 1 s timeout may catch a slow worker too
      (m) => (m.get('arb_worker_exits_total{reason="timeout"}') ?? 0) >= 1,
      'a timeout exit',
    );
  });

  it('reports companion states and restarts', async () => {
    const cwd = project({
      'jobs.mjs': JOBS,
      'arb.config.mjs': `export default {
  app: 'app.mjs',
  companions: { socket: './companions.sock', workers: [{ name: 'jobs', target: './jobs.mjs:run' }] },
};
`,
    });
    const { a, scrape } = await start(cwd, []);
    await a.ready();
    const m = await until(
      scrape,
      (x) => x.get('arb_companion_state{name="jobs",state="RUNNING"}') === 1,
      'the companion running',
    );
    expect(m.get('arb_companions_up')).toBe(1);
    expect(m.get('arb_companion_restarts{name="jobs"}')).toBe(0);
    expect(m.get('arb_companion_state{name="jobs",state="FATAL"}')).toBe(0);
    const status = await ctlJson(['status'], cwd);
    const companions = status.body.companions as { name: string; state: string; pid: number }[];
    expect(companions).toEqual([expect.objectContaining({ name: 'jobs', state: 'RUNNING' })]);
    a.pids.add(companions[0]!.pid);
  });

  it('the master listens on a metrics port only with --metrics-bind', async () => {
    const plain = new ArbProcess(['-b', '127.0.0.1:0', 'app.mjs'], { cwd: project() });
    running.push(plain);
    const app = (await plain.tcpTarget()) as { port: number };
    expect(listeningPorts(plain.pid)).toEqual([app.port]);
    expect(plain.logs.some((e) => typeof e.metrics === 'string')).toBe(false);

    // the same check sees the metrics port when there is one
    const { a, url } = await start(project(), ['app.mjs']);
    const served = (await a.tcpTarget()) as { port: number };
    const metricsPort = Number(new URL(url).port);
    expect(listeningPorts(a.pid)).toEqual([served.port, metricsPort].sort((x, y) => x - y));
  });
});
