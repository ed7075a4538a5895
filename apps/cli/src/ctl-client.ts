import { connect } from 'node:net';

/** A failure to talk to the master (not an `ok: false` reply). */
export class CtlClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface CtlRequestOptions {
  /** The whole exchange (connect, send, reply), ms. Default 5000. */
  timeoutMs?: number;
  /** Keep retrying a missing or refusing socket (a master starting, or being promoted), ms. Default 1000. */
  retryMs?: number;
}

const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function once(
  socketPath: string,
  payload: string,
  deadline: number,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: CtlClientError | null, value?: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(
      () => finish(new CtlClientError(`no reply from ${socketPath} in time`, 'ETIMEDOUT')),
      Math.max(1, deadline - Date.now()),
    );
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      if (nl === -1) {
        if (all.length > 16 * 1024 * 1024)
          finish(new CtlClientError('reply too long', 'EBADREPLY'));
        return;
      }
      let value: unknown;
      try {
        value = JSON.parse(all.subarray(0, nl).toString('utf8'));
      } catch {
        return finish(new CtlClientError('invalid reply (not JSON)', 'EBADREPLY'));
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return finish(new CtlClientError('invalid reply (not an object)', 'EBADREPLY'));
      }
      finish(null, value as Record<string, unknown>);
    });
    sock.on('end', () =>
      finish(new CtlClientError('the master closed the connection without a reply', 'EBADREPLY')),
    );
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(new CtlClientError(err.message, err.code ?? 'EIO')),
    );
  });
}

/**
 * Sends one request to a master's control socket and returns its reply (which may say
 * `ok: false`; that is not thrown). Throws {@link CtlClientError} when there is no reply.
 */
export async function ctlRequest(
  socketPath: string,
  req: Record<string, unknown>,
  opts: CtlRequestOptions = {},
): Promise<Record<string, unknown>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const retryMs = opts.retryMs ?? 1000;
  const start = Date.now();
  const payload = `${JSON.stringify(req)}\n`;
  for (;;) {
    try {
      return await once(socketPath, payload, start + timeoutMs);
    } catch (err) {
      const e = err as CtlClientError;
      if (!RETRYABLE.has(e.code) || Date.now() - start + 100 > Math.min(retryMs, timeoutMs)) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
