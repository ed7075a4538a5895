// The text of `arb top` and the size helpers it shares with `arb ctl status`.
import { describe, expect, it } from 'vitest';
import { bytes, duration, percent } from '../src/format.js';
import { topLines } from '../src/top-view.js';

const worker = (pid: number, over: Record<string, unknown> = {}) => ({
  pid,
  age: pid - 100,
  state: 'ready',
  uptime: 65,
  req_per_sec: 12.5,
  p50: 0.0175,
  p99: 0.0249,
  lag: 0.21,
  last_heartbeat: 0.4,
  rss_bytes: 52_428_800,
  cpu_percent: 3.25,
  ...over,
});
const status = (workers: unknown[]) => ({
  ok: true,
  master: {
    pid: 100,
    proc_name: 'app',
    uptime: 3723,
    generation: 2,
    reload: 'idle',
    workers_target: 2,
    rss_bytes: 40 * 1024 * 1024,
    cpu_percent: 0.1,
  },
  workers,
  companions: [
    {
      name: 'jobs',
      state: 'RUNNING',
      pid: 300,
      uptime: 61,
      restarts: 1,
      rss_bytes: 1536,
      cpu_percent: 0,
    },
  ],
});

describe('topLines', () => {
  it('the master, each worker and each companion, with their figures', () => {
    const lines = topLines(
      status([worker(101), worker(102, { req_per_sec: 0, p50: null, p99: null })]),
    );
    expect(lines[0]).toBe('arb top - master 100 (app), up 1:02:03, generation 2, reload idle');
    expect(lines[1]).toBe('workers 2/2, 12.5 req/s; master RSS 40.0M, CPU 0.1%');
    const row = lines.find((l) => l.startsWith('101 '))!.split(/ +/);
    expect(row).toEqual([
      '101',
      '1',
      'ready',
      '0:01:05',
      '12.5',
      '17.5ms',
      '24.9ms',
      '50.0M',
      '3.3%',
      '210ms',
      '0.4s',
    ]);
    expect(
      lines
        .find((l) => l.startsWith('102 '))!
        .split(/ +/)
        .slice(4, 7),
    ).toEqual(['0.0', '-', '-']);
    expect(lines.find((l) => l.startsWith('jobs '))!.split(/ +/)).toEqual([
      'jobs',
      'RUNNING',
      '300',
      '0:01:01',
      '1',
      '1.5K',
      '0.0%',
    ]);
  });

  it('fits the screen: lines cut to its width, extra workers counted', () => {
    const many = Array.from({ length: 30 }, (_, i) => worker(200 + i));
    const lines = topLines(status(many), { columns: 40, rows: 15 });
    expect(lines.length).toBeLessThanOrEqual(14); // a row for the footer
    expect(lines.every((l) => l.length <= 40)).toBe(true);
    expect(lines.some((l) => /^\.\.\. \d+ more workers$/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('jobs '))).toBe(true); // companions stay
    // a wider, taller screen shows them all
    const all = topLines(status(many), { columns: 200, rows: 60 });
    expect(all.filter((l) => /^2\d\d /.test(l))).toHaveLength(30);
  });

  it('says why when the master does not answer', () => {
    expect(topLines({}, { columns: 80, rows: 24 }, 'cannot reach the master')).toContain(
      '! cannot reach the master',
    );
  });
});

describe('format', () => {
  it('sizes, percentages and durations', () => {
    expect([bytes(512), bytes(2048), bytes(52_428_800), bytes(3 * 1024 ** 3), bytes(null)]).toEqual(
      ['512B', '2.0K', '50.0M', '3.0G', '-'],
    );
    expect([percent(0), percent(142.86), percent(undefined)]).toEqual(['0.0%', '142.9%', '-']);
    expect([
      duration(0.0004),
      duration(0.0175),
      duration(0.21),
      duration(1.5),
      duration(null),
    ]).toEqual(['400us', '17.5ms', '210ms', '1.50s', '-']);
  });
});
