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

  it('a child that burned 300 ms of CPU shows it, an idle one none; gone is undefined', async () => {
    // the child spins until its own CPU clock says 300 ms, then says so and idles: whatever
    // the machine's load, /proc must account those 300 ms to it
    const busy = spawn(
      process.execPath,
      [
        '-e',
        `const t = process.cpuUsage();
         while (process.cpuUsage(t).user + process.cpuUsage(t).system < 300000) {}
         process.stdout.write('done');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const b0 = readProcStats(busy.pid!)!;
      const i0 = readProcStats(idle.pid!)!;
      await new Promise((r) => busy.stdout!.once('data', r));
      const b1 = readProcStats(busy.pid!)!;
      const i1 = readProcStats(idle.pid!)!;
      // the child may have spun a little before b0: at least the rest of the 300 ms remains
      expect(b1.cpuSeconds).toBeGreaterThanOrEqual(0.3 - 0.02);
      expect(b1.cpuSeconds - b0.cpuSeconds).toBeGreaterThan(0);
      expect(i1.cpuSeconds - i0.cpuSeconds).toBeLessThan(0.05);
    } finally {
      busy.kill('SIGKILL');
      idle.kill('SIGKILL');
      await Promise.all([busy, idle].map((c) => new Promise((r) => c.once('exit', r))));
    }
    expect(readProcStats(busy.pid!)).toBeUndefined();
  });

  it('cpuPercent: CPU seconds per elapsed second, in percent of one core', () => {
    const at = (cpuSeconds: number) => ({ pid: 1, rssBytes: 0, cpuSeconds, state: 'R' });
    expect(cpuPercent(at(1), at(1.5), 1)).toBe(50);
    expect(cpuPercent(at(1), at(3), 1)).toBe(200);
    expect(cpuPercent(at(2), at(1), 1)).toBe(0);
    expect(cpuPercent(at(1), at(2), 0)).toBe(0);
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
