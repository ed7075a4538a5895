import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import { alive, waitFor } from '@arb/testkit';
import { consumerEnv } from './npm.js';

export type Target = { host: string; port: number } | { socketPath: string };

/** One GET; resolves with the status and body, rejects on any connection error. */
export function get(target: Target): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** `127.0.0.1:8000` or `http://127.0.0.1:8000` -> a target. */
export function tcpTarget(address: string): Target {
  const hostPort = address.replace(/^http:\/\//, '');
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
}

/** Every process below `root`, by walking the parent links `ps` reports. */
export function descendants(root: number): number[] {
  const table = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of table) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

/** A process of the consumer's, its output, its JSON log lines and every pid seen below it. */
export class Proc {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly logs: Record<string, unknown>[] = [];
  /** The child and its descendants, as seen by `snapshot()`: checked gone by `stop()`. */
  readonly pids = new Set<number>();

  constructor(argv: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }) {
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? consumerEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pids.add(this.child.pid!);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
    });
    let pending = '';
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      pending += d;
      for (let i = pending.indexOf('\n'); i !== -1; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (!line.startsWith('{')) continue;
        try {
          this.logs.push(JSON.parse(line));
        } catch {
          // a line that only looks like JSON: output, not a log entry
        }
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Records the processes below this one now, for the leftovers check. */
  snapshot(): number[] {
    const now = descendants(this.pid);
    for (const pid of now) this.pids.add(pid);
    return now;
  }

  output(): string {
    return `stdout:\n${this.stdout.slice(-3000)}\nstderr:\n${this.stderr.slice(-3000)}`;
  }

  /** Waits for a log entry, or for `match` on stdout when given a RegExp. */
  waitLog(match: (e: Record<string, unknown>) => boolean, what: string, timeoutMs = 20_000) {
    return waitFor(() => this.logs.find(match), {
      timeoutMs,
      what: () => `${what}\n${this.output()}`,
    });
  }

  waitStdout(re: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpExecArray> {
    return waitFor(() => re.exec(this.stdout), {
      timeoutMs,
      what: () => `${what}\n${this.output()}`,
    });
  }

  /**
   * Sends `signal` to `pid` (default: this process; null: none, it exits by itself), waits
   * for this process to exit and for every process seen below it to be gone. Returns the
   * exit code or signal.
   */
  async stop(signal: NodeJS.Signals | null, pid = this.pid): Promise<number | string> {
    this.snapshot();
    if (signal && alive(pid)) process.kill(pid, signal);
    const c = this.child;
    await waitFor(() => c.exitCode !== null || c.signalCode !== null, {
      timeoutMs: 20_000,
      what: () => `pid ${this.pid} to exit after ${signal ?? 'nothing'}\n${this.output()}`,
    });
    await waitFor(() => [...this.pids].every((p) => !alive(p)), {
      timeoutMs: 5000,
      what: () => `no process left of ${[...this.pids].filter(alive).join(',')}`,
    });
    return c.exitCode ?? c.signalCode!;
  }

  /** Last resort after a failed test: nothing this test started may outlive it. */
  kill(): void {
    this.snapshot();
    for (const pid of this.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}
