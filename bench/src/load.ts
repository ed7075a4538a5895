// Load generation with wrk (Debian package `wrk`): one run, results as JSON via a Lua `done` hook.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rmDir, tempDir } from './util.js';

export type LoadKind = 'keepalive' | 'close';

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  /** latency percentiles in ms */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** every kind of failure added up (socket errors, non-2xx, timeouts) */
  failed: number;
}

const LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

let luaFile: string | undefined;

export function wrkAvailable(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    // wrk --version exits 1 after printing its version
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export function requireWrk(): void {
  if (!wrkAvailable()) {
    console.error(
      'pnpm bench / pnpm chaos need wrk (a C HTTP load generator, Debian package `wrk`).\n' +
        'Install it with:  sudo apt-get install -y wrk   (then run the command again)',
    );
    process.exit(2);
  }
}

export interface LoadOptions {
  port: number;
  path?: string;
  kind: LoadKind;
  seconds: number;
  connections?: number;
  threads?: number;
}

/** Runs wrk for `o.seconds`; resolves with its summary. */
export function wrk(o: LoadOptions): Promise<LoadResult> {
  return wrkStoppable(o).result;
}

/** Runs wrk; `stop()` ends it early (SIGINT: wrk still prints its summary). */
export function wrkStoppable(o: LoadOptions): { result: Promise<LoadResult>; stop: () => void } {
  let stopper: () => void = () => {};
  const result = runWrk(o, (s) => {
    stopper = s;
  });
  return { result, stop: () => stopper() };
}

function runWrk(o: LoadOptions, onStop: (stop: () => void) => void): Promise<LoadResult> {
  if (!luaFile) {
    const dir = tempDir('wrk');
    luaFile = join(dir, 'json.lua');
    writeFileSync(luaFile, LUA);
    process.once('exit', () => rmDir(dir));
  }
  const args = [
    '-t',
    String(o.threads ?? 1),
    '-c',
    String(o.connections ?? 32),
    '-d',
    `${Math.max(1, Math.round(o.seconds))}s`,
    '--timeout',
    '5s',
    '-s',
    luaFile,
  ];
  if (o.kind === 'close') args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${o.port}${o.path ?? '/'}`);
  return new Promise((res, rej) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    onStop(() => child.kill('SIGINT'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', rej);
    child.on('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
      if (!line) return rej(new Error(`wrk gave no result: ${out}\n${err}`));
      const j = JSON.parse(line.slice(8));
      const seconds = j.duration_us / 1e6;
      const errors = {
        connect: j.connect,
        read: j.read,
        write: j.write,
        status: j.status,
        timeout: j.timeout,
      };
      res({
        requests: j.requests,
        seconds,
        rps: j.requests / seconds,
        p50: j.p50 / 1000,
        p90: j.p90 / 1000,
        p99: j.p99 / 1000,
        max: j.max / 1000,
        errors,
        failed: errors.connect + errors.read + errors.write + errors.status + errors.timeout,
      });
    });
  });
}
