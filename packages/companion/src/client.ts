import { connect } from 'node:net';
import { CompanionClientError } from './errors.js';
import type { Response } from './protocol.js';

export interface RequestOptions {
  /** Whole request budget (connect, send, reply) in ms. Default 5000. */
  timeoutMs?: number;
  /**
   * Keep retrying ENOENT/ECONNREFUSED (a manager that is starting or restarting) for this
   * many ms. Default 1000; 0 disables.
   */
  retryMs?: number;
}

const RETRY_STEP_MS = 100;
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function once(socketPath: string, payload: string, deadline: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: CompanionClientError | null, value?: Response) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(
      () =>
        finish(new CompanionClientError(`no reply from ${socketPath}`, 'ETIMEDOUT', socketPath)),
      Math.max(1, deadline - Date.now()),
    );
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      if (nl === -1) return;
      let value: unknown;
      try {
        value = JSON.parse(all.subarray(0, nl).toString('utf8'));
      } catch {
        finish(new CompanionClientError('invalid reply (not JSON)', 'EBADREPLY', socketPath));
        return;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        finish(new CompanionClientError('invalid reply (not an object)', 'EBADREPLY', socketPath));
        return;
      }
      finish(null, value as Response);
    });
    sock.on('end', () =>
      finish(
        new CompanionClientError('connection closed without a reply', 'EBADREPLY', socketPath),
      ),
    );
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(new CompanionClientError(err.message, err.code ?? 'EIO', socketPath)),
    );
  });
}

/**
 * Send one request to a manager's control socket and return its reply. Retries briefly
 * while the socket is missing or refusing (a manager starting up); throws
 * `CompanionClientError` on failure. The reply may have `ok: false`; that is not thrown.
 */
export async function request(
  socketPath: string,
  req: Record<string, unknown>,
  opts: RequestOptions = {},
): Promise<Response> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const retryMs = opts.retryMs ?? 1000;
  const start = Date.now();
  const deadline = start + timeoutMs;
  const payload = `${JSON.stringify(req)}\n`;
  for (;;) {
    try {
      return await once(socketPath, payload, deadline);
    } catch (err) {
      const e = err as CompanionClientError;
      const elapsed = Date.now() - start;
      if (!RETRYABLE.has(e.code) || elapsed + RETRY_STEP_MS > Math.min(retryMs, timeoutMs)) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, RETRY_STEP_MS));
    }
  }
}

/** Typed helpers over `request` for one socket. */
export class CompanionClient {
  constructor(
    readonly socketPath: string,
    private readonly opts: RequestOptions = {},
  ) {}

  request(req: Record<string, unknown>): Promise<Response> {
    return request(this.socketPath, req, this.opts);
  }
  status(): Promise<Response> {
    return this.request({ cmd: 'status' });
  }
  start(name: string): Promise<Response> {
    return this.request({ cmd: 'start', name });
  }
  stop(name: string): Promise<Response> {
    return this.request({ cmd: 'stop', name });
  }
  restart(name: string): Promise<Response> {
    return this.request({ cmd: 'restart', name });
  }
  reread(): Promise<Response> {
    return this.request({ cmd: 'reread' });
  }
  signal(name: string, signal: string): Promise<Response> {
    return this.request({ cmd: 'signal', name, signal });
  }
}
