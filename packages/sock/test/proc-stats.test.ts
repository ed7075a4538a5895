import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuPercent, readProcStats } from '../src/index.js';

describe('readProcStats', () => {
  it('reads this process: RSS as process.memoryUsage() sees it, CPU time that grows', () => {
    const a = readProcStats(process.pid)!;
    const rss = process.memoryUsage().rss;
    expect(a.pid).toBe(process.pid);
    expect(a.rssBytes).toBeGreaterThan(rss * 0.8);
    expect(a.rssBytes).toBeLessThan(rss * 1.25);
    const end = process.cpuUsage();
    while (process.cpuUsage(end).user < 150_000) {
      // spin ~150 ms of CPU
    }
    const b = readProcStats(process.pid)!;
    expect(b.cpuSeconds - a.cpuSeconds).toBeGreaterThanOrEqual(0.1);
    expect(['R', 'S']).toContain(b.state);
  });

  it('a busy child shows near one core, an idle one near none; gone is undefined', async () => {
    const busy = spawn(process.execPath, ['-e', 'for(;;){}']);
    const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const b0 = readProcStats(busy.pid!)!;
      const i0 = readProcStats(idle.pid!)!;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 600));
      const b1 = readProcStats(busy.pid!)!;
      const i1 = readProcStats(idle.pid!)!;
      const s = (performance.now() - t0) / 1000;
      expect(cpuPercent(b0, b1, s)).toBeGreaterThan(30);
      expect(cpuPercent(i0, i1, s)).toBeLessThan(10);
    } finally {
      busy.kill('SIGKILL');
      idle.kill('SIGKILL');
      await Promise.all([busy, idle].map((c) => new Promise((r) => c.once('exit', r))));
    }
    expect(readProcStats(busy.pid!)).toBeUndefined();
  });

  it('parses a command name with spaces and parentheses', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'procstat-'));
    try {
      fs.mkdirSync(path.join(root, '42'));
      const fields = ['S', '1', '42', '42', '0', '-1', '4194560', '0', '0', '0', '0', '250', '50'];
      fs.writeFileSync(path.join(root, '42', 'stat'), `42 (a (b) c) ${fields.join(' ')} 0 0\n`);
      fs.writeFileSync(path.join(root, '42', 'statm'), '1000 300 100 1 0 200 0\n');
      expect(readProcStats(42, root)).toEqual({
        pid: 42,
        rssBytes: 300 * 4096,
        cpuSeconds: 3,
        state: 'S',
      });
      expect(readProcStats(43, root)).toBeUndefined();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
