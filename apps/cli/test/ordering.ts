// Proof of order for the reload and upgrade e2e tests: not only "it ended well" but "no old
// worker stopped accepting before a new one listened". The end state cannot show it: while a
// fast app boots, connections wait in the listen backlog and every request still succeeds.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Target } from './harness.js';

/** How long the slow test app sleeps at import: long enough to see who serves meanwhile. */
export const SLOW_BOOT_MS = 1500;

/** The line the ordering hook writes to stderr once a worker listens. */
export const LISTENING = 'test: worker listening';

/**
 * Writes `arb.config.mjs` with a `postWorkerInit` hook that writes a LISTENING line (JSON,
 * with the worker's pid) to stderr. The hook runs once the worker listens and before it
 * reports ready, and the write is synchronous (fd 2 is the pipe the test reads, shared by
 * every process of both masters): so in that stream a worker's LISTENING line comes before
 * anything the master does because the worker is ready, such as retiring an old worker.
 */
export function writeOrderingConfig(dir: string, settings: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'arb.config.mjs');
  fs.writeFileSync(
    file,
    `import fs from 'node:fs';
export default {
  ...${JSON.stringify(settings)},
  postWorkerInit() {
    fs.writeSync(2, JSON.stringify({ msg: ${JSON.stringify(LISTENING)}, pid: process.pid, time: Date.now() }) + '\\n');
  },
};
`,
  );
  return file;
}

type LogLine = Record<string, unknown>;

const msgOf = (e: LogLine): string => (typeof e.msg === 'string' ? e.msg : '');

/** The worker pid a line says stopped accepting or is gone, if it says so. */
function leaving(e: LogLine): number | undefined {
  const msg = msgOf(e);
  // the worker itself, on TERM: it closes its servers next
  if (msg.startsWith('Worker exiting') && typeof e.pid === 'number') return e.pid;
  // the master reaping an exit (a crash says no "Worker exiting")
  const reaped = /^Worker \(pid:(\d+)\)/.exec(msg);
  return reaped ? Number(reaped[1]) : undefined;
}

export interface Fewest {
  /** The fewest workers listening at any point of the window. */
  count: number;
  /** The log line at which it was that few (for the failure message). */
  at: string;
}

/**
 * Replays the log: a worker serves from its LISTENING line until it says it is exiting (or
 * the master reaps it). Returns the fewest serving at any point in `logs[from..to)`.
 * Needs the ordering hook (`writeOrderingConfig`) in every generation.
 */
export function fewestServing(logs: readonly LogLine[], from: number, to = logs.length): Fewest {
  const serving = new Set<number>();
  let fewest: Fewest | undefined;
  for (let i = 0; i < to; i++) {
    const e = logs[i]!;
    if (msgOf(e) === LISTENING && typeof e.pid === 'number') serving.add(e.pid);
    const gone = leaving(e);
    if (gone !== undefined) serving.delete(gone);
    if (i >= from && (fewest === undefined || serving.size < fewest.count)) {
      fewest = { count: serving.size, at: `line ${i}: ${JSON.stringify(e)}` };
    }
  }
  return fewest ?? { count: serving.size, at: 'an empty window' };
}

/** Index of the first line at or after `from` that matches, or -1. */
export function indexOf(
  logs: readonly LogLine[],
  match: (e: LogLine) => boolean,
  from = 0,
): number {
  for (let i = from; i < logs.length; i++) if (match(logs[i]!)) return i;
  return -1;
}

/** The pids of the workers a master booted (its "Booting worker with pid" lines) in a window. */
export function bootedPids(
  logs: readonly LogLine[],
  master: number,
  from = 0,
  to = logs.length,
): number[] {
  const pids: number[] = [];
  for (let i = from; i < to; i++) {
    const m = /^Booting worker with pid: (\d+)$/.exec(msgOf(logs[i]!));
    if (m && logs[i]!.pid === master) pids.push(Number(m[1]));
  }
  return pids;
}

export interface Sample {
  /** Date.now() when the request was sent. */
  sentAt: number;
  /** Milliseconds until the whole response was in. */
  ms: number;
}

/**
 * Requests on new connections, back to back, timing each: a request that arrives while no
 * worker accepts waits in the backlog, and its latency shows the gap.
 */
export class LatencyProbe {
  readonly samples: Sample[] = [];
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(targets: Target[], loops = 2) {
    this.loops = Array.from({ length: loops }, (_, i) => this.loop(targets[i % targets.length]!));
  }

  /** The slowest request sent in [from, to] (Date.now() values), with when it was sent. */
  slowest(from: number, to: number): Sample {
    let worst: Sample = { sentAt: from, ms: 0 };
    for (const s of this.samples)
      if (s.sentAt >= from && s.sentAt <= to && s.ms > worst.ms) worst = s;
    return worst;
  }

  countBetween(from: number, to: number): number {
    return this.samples.filter((s) => s.sentAt >= from && s.sentAt <= to).length;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(target: Target): Promise<void> {
    while (this.running) {
      const sentAt = Date.now();
      try {
        await get(target);
        this.samples.push({ sentAt, ms: Date.now() - sentAt });
      } catch (err) {
        this.failures.push((err as Error).message);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

function get(target: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path: '/', agent: false, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
