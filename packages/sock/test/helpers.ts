import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { alive, exited, tempDir as tempDirIn, waitFor } from '@arb/testkit';

export { alive, exited, waitFor };

/** A fresh temp dir with a short path (unix socket paths are limited to 107 bytes). */
export const tempDir = (): string => tempDirIn('arbs-');

export const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

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
