// A load loop for the reload/upgrade scenarios: new connections and keep-alive connections
// in parallel, counting failures and recording which app version answered each request.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Target } from './harness.js';

export interface Answer {
  version: string;
  pid: number;
  /** Date.now() when the request was sent. */
  sentAt: number;
}

export interface LoadOptions {
  /** Loops that open a new connection per request. */
  fresh?: number;
  /** Loops that keep one connection alive across requests. */
  keepAlive?: number;
}

/**
 * Runs until `stop()`. A keep-alive request that fails on a *reused* connection before any
 * byte of response is retried once, as HTTP clients do (Node's docs, RFC 9112 §9.3.1: the
 * server may close an idle connection at any time); those are counted in `retried` and are
 * not failures, but arb's drain serves a request that arrives on an idle connection, so the
 * reload and upgrade tests also expect `retried` to stay 0. Everything else that is not a
 * 200 is a failure.
 */
export class LoadLoop {
  readonly answers: Answer[] = [];
  readonly failures: string[] = [];
  retried = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly agents: http.Agent[] = [];

  constructor(
    private readonly targets: Target[],
    options: LoadOptions = {},
  ) {
    const fresh = options.fresh ?? 3;
    const keepAlive = options.keepAlive ?? 2;
    let n = 0;
    for (let i = 0; i < fresh; i++) this.loops.push(this.loop(false, this.pick(n++)));
    for (let i = 0; i < keepAlive; i++) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      this.agents.push(agent);
      this.loops.push(this.loop(agent, this.pick(n++)));
    }
  }

  get count(): number {
    return this.answers.length;
  }

  /** The versions that answered requests sent at or after `since` (Date.now()). */
  versionsSince(since: number): Set<string> {
    return new Set(this.answers.filter((a) => a.sentAt >= since).map((a) => a.version));
  }

  answersSince(since: number): number {
    return this.answers.filter((a) => a.sentAt >= since).length;
  }

  /** Waits until `n` more requests have been answered (the loop is really running). */
  async progress(n: number, timeoutMs = 20_000): Promise<void> {
    const target = this.count + n;
    const deadline = Date.now() + timeoutMs;
    while (this.count < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `load loop stalled at ${this.count}; failures: ${this.failures.slice(0, 5)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await Promise.all(this.loops);
    for (const a of this.agents) a.destroy();
    // ARB_LOAD_REPORT=1 prints the totals (answered, failed, retried on a reused connection)
    if (process.env.ARB_LOAD_REPORT) {
      process.stderr.write(
        `load: ${this.count} answered, ${this.failures.length} failed, ${this.retried} retried\n`,
      );
    }
  }

  private pick(i: number): Target {
    return this.targets[i % this.targets.length]!;
  }

  private async loop(agent: http.Agent | false, target: Target): Promise<void> {
    while (this.running) {
      const sentAt = Date.now();
      try {
        const res = await this.once(agent, target);
        if (res.status !== 200) {
          this.failures.push(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
          continue;
        }
        const body = JSON.parse(res.body) as { version: string; pid: number };
        this.answers.push({ version: body.version, pid: body.pid, sentAt });
      } catch (err) {
        this.failures.push(
          `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`,
        );
        // a failure must not turn into a tight loop
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private async once(
    agent: http.Agent | false,
    target: Target,
  ): Promise<{ status: number; body: string }> {
    try {
      return await request(agent, target);
    } catch (err) {
      if ((err as { reusedSocketNoResponse?: boolean }).reusedSocketNoResponse) {
        this.retried += 1;
        return request(agent, target);
      }
      throw err;
    }
  }
}

function request(
  agent: http.Agent | false,
  target: Target,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request({ ...target, path: '/', agent, timeout: 15_000 }, (res) => {
      responded = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      if (req.reusedSocket && !responded) {
        Object.assign(err, { reusedSocketNoResponse: true });
      }
      reject(err);
    });
    req.end();
  });
}

/** Writes the versioned test app (`{version, pid}` as JSON) or a broken one. */
export function writeApp(dir: string, version: string | 'broken', importDelayMs = 0): void {
  const file = path.join(dir, 'app.mjs');
  const source =
    version === 'broken'
      ? "throw new Error('broken release: this module fails at import');\n"
      : `await new Promise((r) => setTimeout(r, ${importDelayMs})); // a slow boot
const version = ${JSON.stringify(version)};
export default (req, res) => {
  // a little work, so that some requests are in flight when a worker retires
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version, pid: process.pid }));
  }, 2);
};
`;
  // write + rename: a worker never imports a half-written file
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, source);
  fs.renameSync(tmp, file);
}
