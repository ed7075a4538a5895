import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { alive, waitFor } from './index.js';

/** The haproxy binary (Debian package `haproxy`; `.ci/run` installs it), or undefined. */
export function findHaproxy(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(dir, 'haproxy');
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

/** The haproxy binary, or an error saying how to install it. */
export function haproxyBin(): string {
  const bin = findHaproxy();
  if (!bin)
    throw new Error('haproxy not found: install it (apt-get install -y haproxy), as .ci/run does');
  return bin;
}

/** One backend server: the app port and the port of its `/readyz`. */
export interface Backend {
  name: string;
  port: number;
  healthPort: number;
}

/**
 * haproxy in front of `backends`, checking `/readyz` on their health ports every 200 ms
 * (`fall 1 rise 1`: one answer flips a server), with a stats socket to read what it sees.
 */
export class Haproxy {
  readonly child: ChildProcess;
  readonly socket: string;
  stderr = '';

  constructor(
    dir: string,
    readonly port: number,
    backends: readonly Backend[],
  ) {
    this.socket = path.join(dir, 'haproxy.sock');
    const servers = backends.map(
      (b) =>
        `  server ${b.name} 127.0.0.1:${b.port} check port ${b.healthPort} inter 200ms fall 1 rise 1`,
    );
    const cfg = [
      'global',
      `  stats socket ${this.socket} mode 600 level admin`,
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout check 1s',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      '  balance roundrobin',
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      ...servers,
      '',
    ].join('\n');
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, cfg);
    // -db: stay in the foreground, one process, no daemon: its pid is all there is to stop
    this.child = spawn(haproxyBin(), ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderr += d;
    });
  }

  /** `show stat` on the stats socket: server name -> status (`UP`, `DOWN`, `MAINT`...). */
  async statuses(): Promise<Map<string, string>> {
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect(this.socket);
      let out = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        out += d;
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.end('show stat\n');
    });
    const [header, ...rows] = text.trim().split('\n');
    const cols = header!.replace(/^# /, '').split(',');
    const px = cols.indexOf('pxname');
    const sv = cols.indexOf('svname');
    const st = cols.indexOf('status');
    const out = new Map<string, string>();
    for (const row of rows) {
      const f = row.split(',');
      if (f[px] === 'be' && f[sv] !== 'BACKEND') out.set(f[sv]!, f[st]!);
    }
    return out;
  }

  /** Waits until haproxy reports `server` in `status` (its checks saw the change). */
  async waitStatus(server: string, status: 'UP' | 'DOWN', timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => (await this.statuses()).get(server)?.startsWith(status), {
      timeoutMs,
      intervalMs: 50,
      what: () => `haproxy to see ${server} ${status} (stderr: ${this.stderr.slice(-1000)})`,
    });
  }

  /** TERM (haproxy's soft stop), KILL after 5 s; resolves once the process is gone. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await new Promise((r) => c.once('exit', r));
      clearTimeout(timer);
    }
    await waitFor(() => !alive(c.pid!), 5000, `haproxy ${c.pid} gone`);
  }
}
