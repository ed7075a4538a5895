import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, tempDir as tempDirIn, waitFor } from '@arb/testkit';

export { alive, waitFor };
export const tempDir = (): string => tempDirIn('arbe-');

export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
export const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

/**
 * A copy of `examples/<name>` in a fresh temp dir (pushed on `dirs`), its node_modules a link
 * to the example's own: arb writes its sockets (arb.ctl, companions.sock) into the working
 * directory, which must not be the source tree.
 */
/**
 * Why a test that runs arb as PID 1 of a new PID namespace (`unshare -fp --mount-proc`)
 * cannot run here, or undefined when it can.
 */
export function namespaceUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'a new PID namespace needs root';
  const r = spawnSync('unshare', ['-fp', '--mount-proc', 'true'], { encoding: 'utf8' });
  if (r.error) return `unshare is not available (${r.error.message}); install util-linux`;
  if (r.status !== 0) return `unshare -fp --mount-proc fails here: ${r.stderr.trim()}`;
  return undefined;
}

export function copyExample(name: string, dirs: string[]): string {
  const from = path.join(EXAMPLES, name);
  const to = tempDir();
  dirs.push(to);
  fs.cpSync(from, to, {
    recursive: true,
    filter: (src) => path.relative(from, src).split(path.sep)[0] !== 'node_modules',
  });
  fs.symlinkSync(path.join(from, 'node_modules'), path.join(to, 'node_modules'));
  return to;
}

/**
 * afterEach of the e2e files: stops every arb (all of them, even when one fails to stop
 * cleanly), then removes the dirs whatever happened, then reports every failure.
 */
export async function cleanup(
  running: ArbProcess[],
  dirs: string[] = [],
  more: (() => Promise<unknown>)[] = [],
): Promise<void> {
  const results = await Promise.allSettled([
    ...running.splice(0).map((a) => a.stop()),
    ...more.map((f) => f()),
  ]);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) throw new AggregateError(failed, `${failed.length} cleanups failed`);
}

/**
 * The TCP ports a process listens on itself (its own descriptors, read from /proc): what
 * a port scan of that process would find.
 */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const rows = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      // f[1] local address:port (hex), f[3] state (0A = LISTEN), f[9] inode
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

export type Target = { port: number; host: string } | { socketPath: string };

export function request(
  target: Target,
  opts: { path?: string; method?: string; body?: string; agent?: http.Agent | false } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...target,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        agent: opts.agent ?? false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A running `arb` and what it logged (JSON lines on stderr). */
export class ArbProcess {
  readonly child: ChildProcess;
  readonly logs: Record<string, unknown>[] = [];
  stdout = '';
  stderr = '';
  /** Every worker pid seen in the logs or in responses, for the no-orphans check. */
  readonly pids = new Set<number>();

  constructor(
    args: string[],
    /** `wrap`: a command arb runs under, which execs it in place (`systemd-socket-activate ...`). */
    /** `launcher`: run this executable (the `bin/arb` script) instead of `node dist/bin.js`. */
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[]; launcher?: string } = {},
  ) {
    const { ARB_CMD_ARGS: _a, PORT: _p, WEB_CONCURRENCY: _w, ...base } = process.env;
    const argv = opts.launcher ? [opts.launcher, ...args] : [process.execPath, BIN, ...args];
    if (opts.wrap) argv.unshift(...opts.wrap);
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: { ...base, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderr += d;
      buf += d;
      for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          this.logs.push(entry);
          if (typeof entry.pid === 'number') this.pids.add(entry.pid);
        } catch {
          // not a log line
        }
      }
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.stdout += d;
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  log(match: (e: Record<string, unknown>) => boolean, what = 'a log line', timeoutMs = 15_000) {
    return waitFor(
      () => this.logs.find(match),
      timeoutMs,
      `${what} (stderr so far: ${this.stderr.slice(-2000)})`,
    );
  }

  /** The addresses the master listens on, from its `Listening at` line. */
  async listening(): Promise<string[]> {
    const entry = await this.log((e) => Array.isArray(e.listeners), 'Listening at');
    return entry.listeners as string[];
  }

  /** Resolves once the master says the first generation serves (every worker listens). */
  ready(): Promise<Record<string, unknown>> {
    return this.log(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('Serving with'),
      'Serving with N workers',
    );
  }

  async tcpTarget(): Promise<Target> {
    await this.ready();
    const address = (await this.listening()).find((a) => !a.startsWith('unix:'))!;
    const i = address.lastIndexOf(':');
    return {
      host: address.slice(0, i).replace(/^\[|\]$/g, ''),
      port: Number(address.slice(i + 1)),
    };
  }

  /** Waits until `n` distinct workers have answered; returns their pids. */
  async distinctPids(
    target: Target,
    n: number,
    pidOf = (body: string) => JSON.parse(body).pid as number,
  ): Promise<Set<number>> {
    const seen = new Set<number>();
    await waitFor(
      async () => {
        const res = await request(target);
        const pid = pidOf(res.body);
        seen.add(pid);
        this.pids.add(pid);
        return seen.size >= n;
      },
      20_000,
      `${n} distinct workers to answer`,
    );
    return seen;
  }

  exited(): Promise<number | NodeJS.Signals> {
    const c = this.child;
    if (c.exitCode !== null) return Promise.resolve(c.exitCode);
    if (c.signalCode !== null) return Promise.resolve(c.signalCode);
    return new Promise((resolve) => c.once('exit', (code, sig) => resolve(code ?? sig!)));
  }

  /** Stops arb (TERM, then KILL after a while) and checks that nothing it started survives. */
  async stop(): Promise<number | NodeJS.Signals> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exited();
    clearTimeout(timer);
    await waitFor(
      () => [...this.pids].every((p) => !alive(p)),
      5000,
      `no process left of ${[...this.pids].join(',')}`,
    ).catch((err: Error) => {
      for (const p of this.pids) if (alive(p)) process.kill(p, 'SIGKILL');
      throw err;
    });
    return code;
  }
}
