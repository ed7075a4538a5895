import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** A fresh temp dir with a short path (unix socket paths are limited to 107 bytes). */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'arbs-'));
}

export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Tracks every process a test starts so that cleanup can stop it and check it is gone. */
export class Procs {
  private readonly list: ChildProcess[] = [];
  readonly pids = new Set<number>();

  spawn(file: string, args: string[], opts: Parameters<typeof spawn>[2] = {}): ChildProcess {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.list.push(child);
    if (child.pid) this.pids.add(child.pid);
    return child;
  }

  async stopAll(): Promise<void> {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor(() => [...this.pids].every((p) => !alive(p)), 5000, 'processes to exit');
    this.pids.clear();
    this.list.length = 0;
  }
}

/** Reads newline-delimited JSON from a child's stdout. */
export function jsonLines(child: ChildProcess): {
  next(pred?: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
} {
  const seen: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        seen.push(JSON.parse(line));
      } catch {
        // not ours
      }
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr += d;
  });
  return {
    next: (pred = () => true) =>
      waitFor(
        () => seen.find(pred),
        10_000,
        `a message from pid ${child.pid} (stderr: ${stderr.trim()})`,
      ),
  };
}

export type Target = { port: number; host?: string } | { socketPath: string };

/** One HTTP GET on a fresh connection; resolves with status and body. */
export function get(target: Target, pathName = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: pathName, agent: false, timeout: 5000 }, (res) => {
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

/** The exit code (or signal) of a child, whether or not it has exited already. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal!)));
}
