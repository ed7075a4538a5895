// --max-memory with the real arb: a worker that leaks on purpose is replaced successor
// first under continuous load (0 failed requests, one line with the figures, the metric
// counted); a companion that grows beyond its maxMemory is restarted with its stop signal.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { httpGet, parseMetrics } from './ctl-helpers.js';
import { ArbProcess, alive, BIN, cleanup, tempDir, waitFor } from './harness.js';
import { LoadLoop } from './load.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

// The first worker to create `leaker` leaks 10 MB every 100 ms (touched pages: real RSS),
// up to 200 MB; the others, its successor included, do not. A little work per request so
// that requests are in flight when the leaker drains.
const APP = `import fs from 'node:fs';
let leaker = false;
try { fs.closeSync(fs.openSync('leaker', 'wx')); leaker = true; } catch {}
const kept = [];
if (leaker) {
  const t = setInterval(() => {
    kept.push(Buffer.alloc(10 * 1024 * 1024, 1));
    if (kept.length >= 20) clearInterval(t);
  }, 100);
}
export default (req, res) => {
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version: leaker ? 'leaker' : 'plain', pid: process.pid }));
  }, 2);
};
`;

// A companion that grows by 20 MB every 200 ms (its first run only: a marker file) and
// writes the signal it receives before exiting on it.
const GROWER = `import fs from 'node:fs';
let first = false;
try { fs.closeSync(fs.openSync('grown', 'wx')); first = true; } catch {}
const kept = [];
if (first) {
  const t = setInterval(() => {
    kept.push(Buffer.alloc(20 * 1024 * 1024, 1));
    if (kept.length >= 10) clearInterval(t);
  }, 200);
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    fs.appendFileSync('signals', sig + ' ' + process.pid + '\\n');
    process.exit(0);
  });
}
setInterval(() => {}, 1000);
`;

function project(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

const REPLACING =
  /^Worker \(pid:(\d+)\) uses (\d+) MB > --max-memory 80 MB for (\d+) s: replacing it \(successor first\)$/;

describe('--max-memory: workers', () => {
  it('the leaking worker is replaced successor first under load: 0 failed requests, one line with the figures, the metric counted', async () => {
    const cwd = project({ 'app.mjs': APP });
    const a = new ArbProcess(
      [
        '-b',
        '127.0.0.1:0',
        '-w',
        '2',
        '--max-memory',
        '80',
        '--metrics-bind',
        '127.0.0.1:0',
        '--ctl-socket',
        'none',
        '--graceful-timeout',
        '10',
        'app.mjs',
      ],
      { cwd },
    );
    running.push(a);
    const target = await a.tcpTarget();
    const metricsAt = await a.log((e) => typeof e.metrics === 'string', 'Metrics at');
    const load = new LoadLoop([target]);
    try {
      await load.progress(50);
      const line = await a.log(
        (e) => typeof e.msg === 'string' && REPLACING.test(e.msg),
        'the --max-memory line',
        30_000,
      );
      const [, pidText, mbText, secondsText] = REPLACING.exec(line.msg as string)!;
      const oldPid = Number(pidText);
      expect(Number(mbText)).toBeGreaterThan(80);
      expect(Number(secondsText)).toBeGreaterThanOrEqual(3);
      expect(line).toMatchObject({ workerPid: oldPid, maxMemoryMb: 80, level: 40 });
      // the leaker was serving until then
      expect(load.answers.some((x) => x.pid === oldPid && x.version === 'leaker')).toBe(true);

      const served = await a.log(
        (e) => typeof e.msg === 'string' && e.msg.includes(`in place of worker (pid:${oldPid})`),
        'the successor serving',
        30_000,
      );
      const successorPid = served.successorPid as number;
      a.pids.add(successorPid);
      // successor first: it booted after the line and before the old one was told to drain
      const at = (match: (e: Record<string, unknown>) => boolean) => a.logs.findIndex(match);
      const booted = at((e) => e.msg === `Booting worker with pid: ${successorPid}`);
      expect(booted).toBeGreaterThan(a.logs.indexOf(line));
      expect(booted).toBeLessThan(a.logs.indexOf(served));
      await waitFor(() => !alive(oldPid), 15_000, `the old worker ${oldPid} gone`);
      const since = Date.now();
      await load.progress(50);
      const pids = new Set(load.answers.filter((x) => x.sentAt >= since).map((x) => x.pid));
      expect(pids.has(successorPid)).toBe(true);
      expect(pids.has(oldPid)).toBe(false);
      expect(load.versionsSince(since)).toEqual(new Set(['plain']));

      const metrics = await waitFor(
        async () => {
          const m = parseMetrics((await httpGet(`${metricsAt.metrics as string}/metrics`)).body);
          return m.get('arb_worker_exits_total{reason="max_memory"}') === 1 ? m : undefined;
        },
        15_000,
        'arb_worker_exits_total{reason="max_memory"} 1',
      );
      expect(metrics.get('arb_workers_alive')).toBe(2);
      // one replacement: the successor does not leak
      expect(a.logs.filter((e) => REPLACING.test(String(e.msg)))).toHaveLength(1);
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(load.retried).toBe(0);
    expect(await a.stop()).toBe(0);
  }, 90_000);
});

type Status = {
  manager: { pid: number; guard_pid: number | null };
  companions: {
    name: string;
    pid: number;
    state: string;
    restarts: number;
    memory_restarts: number;
  }[];
};

function companionStatus(cwd: string, socket: string): Status | undefined {
  const r = spawnSync(
    process.execPath,
    [BIN, 'companion', 'status', '--json', '--socket', socket],
    {
      cwd,
      encoding: 'utf8',
    },
  );
  return r.status === 0 ? (JSON.parse(r.stdout) as Status) : undefined;
}

describe('maxMemory: companions', () => {
  it('a companion above its maxMemory is restarted with its stop signal, logged with the figure and counted', async () => {
    const config = JSON.stringify({
      app: './app.mjs',
      bind: '127.0.0.1:0',
      companions: {
        socket: './c.sock',
        workers: [
          {
            name: 'grower',
            command: [process.execPath, 'grower.mjs'],
            stopSignal: 'SIGINT',
            stopTimeout: 5,
            startSecs: 0.2,
            maxMemory: 80,
          },
        ],
      },
    });
    const cwd = project({
      'app.mjs': 'export default (req, res) => res.end("ok");\n',
      'grower.mjs': GROWER,
      'arb.config.json': config,
    });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const first = await waitFor(
      () => companionStatus(cwd, socket)?.companions.find((c) => c.state === 'RUNNING'),
      20_000,
      'the companion running',
    );
    a.pids.add(first.pid);
    const line = await a.log(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('companion grower (pid '),
      'the maxMemory line',
      30_000,
    );
    expect(line.msg).toMatch(
      new RegExp(
        `^companion grower \\(pid ${first.pid}\\) uses \\d+ MB > maxMemory 80 MB for \\d+ s: restarting it \\(SIGINT\\)$`,
      ),
    );
    expect(line.rssMb as number).toBeGreaterThan(80);
    expect(line).toMatchObject({ childPid: first.pid, maxMemoryMb: 80, signal: 'SIGINT' });
    const after = await waitFor(
      () => {
        const s = companionStatus(cwd, socket);
        const c = s?.companions[0];
        if (s) a.pids.add(s.manager.pid);
        return c && c.state === 'RUNNING' && c.pid !== first.pid ? c : undefined;
      },
      20_000,
      'the companion running again with a new pid',
    );
    a.pids.add(after.pid);
    expect(after).toMatchObject({ restarts: 1, memory_restarts: 1 });
    expect(fs.readFileSync(path.join(cwd, 'signals'), 'utf8')).toBe(`SIGINT ${first.pid}\n`);
    expect(alive(first.pid)).toBe(false);
    expect(await a.stop()).toBe(0);
  }, 60_000);
});
