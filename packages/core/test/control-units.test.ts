import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ArbMetrics } from '../src/ops/metrics.js';
import { decodeCtlRequest } from '../src/protocol/ctl.js';
import { LATENCY_BUCKETS, type StatsMessage } from '../src/protocol/worker.js';
import { bucketOf, WorkerRequestStats } from '../src/worker/request-stats.js';

describe('decodeCtlRequest', () => {
  it('accepts every command', () => {
    expect(decodeCtlRequest('{"cmd":"status"}')).toEqual({ ok: true, request: { cmd: 'status' } });
    expect(decodeCtlRequest('{"cmd":"workers","action":"add"}')).toEqual({
      ok: true,
      request: { cmd: 'workers', action: 'add', count: 1 },
    });
    expect(decodeCtlRequest('{"cmd":"workers","action":"remove","count":3,"id":9}')).toEqual({
      ok: true,
      id: 9,
      request: { cmd: 'workers', action: 'remove', count: 3 },
    });
    expect(decodeCtlRequest('{"cmd":"upgrade","timeout":30}')).toEqual({
      ok: true,
      request: { cmd: 'upgrade', timeout: 30 },
    });
    expect(decodeCtlRequest('{"cmd":"shutdown"}')).toEqual({
      ok: true,
      request: { cmd: 'shutdown', quick: false },
    });
    for (const cmd of ['reload', 'reopen']) {
      expect(decodeCtlRequest(JSON.stringify({ cmd }))).toEqual({ ok: true, request: { cmd } });
    }
  });
  it('rejects what is not a request', () => {
    const error = (line: string) => {
      const d = decodeCtlRequest(line);
      return d.ok ? undefined : d.response.error;
    };
    expect(error('{')).toBe('invalid JSON');
    expect(error('null')).toBe('request must be a JSON object');
    expect(error('{"cmd":1}')).toBe("missing 'cmd'");
    expect(error('{"cmd":"x"}')).toBe("unknown command 'x'");
    expect(error('{"cmd":"workers","action":"add","count":1.5}')).toMatch(/whole number/);
    expect(error('{"cmd":"workers","action":"add","count":100000}')).toMatch(/whole number/);
  });
});

describe('request stats', () => {
  it('puts latencies in buckets', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.005)).toBe(0);
    expect(bucketOf(0.006)).toBe(1);
    expect(bucketOf(11)).toBe(LATENCY_BUCKETS.length);
  });

  it('batches a worker counts into one message per flush, none when idle', () => {
    const sent: StatsMessage[] = [];
    const stats = new WorkerRequestStats((m) => sent.push(m));
    stats.flush();
    expect(sent).toEqual([]);
    const responses = [200, 200, 503].map((statusCode) => {
      const res = Object.assign(new EventEmitter(), { statusCode });
      stats.track({} as IncomingMessage, res as unknown as ServerResponse);
      return res;
    });
    for (const r of responses) r.emit('finish');
    stats.track({} as IncomingMessage, new EventEmitter() as unknown as ServerResponse); // in flight
    stats.flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: 'stats', requests: 4, codes: { '2xx': 2, '5xx': 1 } });
    expect(sent[0]!.buckets.reduce((a, b) => a + b, 0)).toBe(3);
    stats.flush();
    expect(sent).toHaveLength(1);
  });

  it('adds the batches of all workers up in the master', async () => {
    const metrics = new ArbMetrics({
      workersDesired: () => 3,
      workersByState: () => ({ ready: 2, booting: 1, retiring: 1 }),
      companions: async () => null,
    });
    const buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    buckets[0] = 2;
    buckets[LATENCY_BUCKETS.length] = 1;
    metrics.addStats({ type: 'stats', requests: 3, codes: { '2xx': 3 }, buckets, sum: 20 });
    metrics.addStats({
      type: 'stats',
      requests: 1,
      codes: { '2xx': 1, bogus: 5 },
      buckets,
      sum: 20,
    });
    const text = await metrics.render();
    expect(text).toContain('arb_workers_desired 3');
    expect(text).toContain('arb_workers_alive 3');
    expect(text).toContain('arb_workers{state="retiring"} 1');
    expect(text).toContain('arb_http_requests_started_total 4');
    expect(text).toContain('arb_http_requests_total{code="2xx"} 4');
    expect(text).not.toContain('bogus');
    // one status class in a batch: its buckets are the batch's
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="0.005",code="2xx"} 4');
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="10",code="2xx"} 4');
    expect(text).toContain('arb_http_request_duration_seconds_bucket{le="+Inf",code="2xx"} 6');
    expect(text).toContain('arb_http_request_duration_seconds_sum{code="2xx"} 40');
    expect(text).toContain('arb_http_request_duration_seconds_count{code="2xx"} 6');
    expect(text).not.toContain('arb_companion');
    expect(text).not.toContain('arb_master_process');
  });
});
