import { connect } from 'node:net';

/**
 * No reply from a line socket. `code` says why: `ENOENT`/`ECONNREFUSED` (no server:
 * {@link NoSocketError}), `ETIMEDOUT` (a server that does not answer in time:
 * {@link SocketBusyError}), `EBADREPLY` (not one JSON object), or the errno of the failure
 * (`EACCES`...). `socketPath` is the path as given.
 */
export class LineClientError extends Error {
  override readonly name: string = 'LineClientError';
  constructor(
    message: string,
    readonly code: string,
    readonly socketPath: string,
  ) {
    super(message);
  }
}

/** Nothing listens at the path: the file is missing, or stale (ECONNREFUSED). */
export class NoSocketError extends LineClientError {
  override readonly name: string = 'NoSocketError';
  constructor(socketPath: string, code: 'ENOENT' | 'ECONNREFUSED') {
    super(
      code === 'ENOENT'
        ? `no control socket at ${socketPath}`
        : `no control socket at ${socketPath} (nothing listening: a stale file)`,
      code,
      socketPath,
    );
  }
}

/** A server is there but gave no reply within the time allowed. */
export class SocketBusyError extends LineClientError {
  override readonly name: string = 'SocketBusyError';
  constructor(
    socketPath: string,
    readonly timeoutMs: number,
  ) {
    super(
      `control socket busy: no reply from ${socketPath} within ${timeoutMs} ms`,
      'ETIMEDOUT',
      socketPath,
    );
  }
}

export interface RequestLineOptions {
  /** The whole exchange (connect, send, reply), ms. Default 5000. */
  timeoutMs?: number;
  /**
   * Keep retrying a missing or refusing socket (a server starting, or a master being
   * promoted) for this long, ms. Default 1000; 0: one attempt.
   */
  retryMs?: number;
  /**
   * Lines before the reply: the server's progress (objects without `ok`), for a request
   * that asked for them. Without this, the first line is the reply.
   */
  onProgress?: (event: Record<string, unknown>) => void;
}

/** Longest reply read; a status of many companions is large, an endless one is an error. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
const RETRY_STEP_MS = 100;
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/**
 * Sends `request` as one JSON line to the unix socket `socketPath` and resolves to the
 * first reply line, parsed (with `onProgress`: the first line that has `ok`). The reply may say `ok: false`: that is not thrown. Throws
 * {@link LineClientError} (or its subclasses) when there is no usable reply.
 */
export async function requestLine(
  socketPath: string,
  request: Record<string, unknown>,
  options: RequestLineOptions = {},
): Promise<Record<string, unknown>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryMs = options.retryMs ?? 1000;
  const start = Date.now();
  const payload = `${JSON.stringify(request)}\n`;
  for (;;) {
    try {
      return await once(socketPath, payload, timeoutMs, start + timeoutMs, options.onProgress);
    } catch (err) {
      const e = err as LineClientError;
      if (
        !RETRYABLE.has(e.code) ||
        Date.now() - start + RETRY_STEP_MS > Math.min(retryMs, timeoutMs)
      ) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, RETRY_STEP_MS));
    }
  }
}

function once(
  socketPath: string,
  payload: string,
  timeoutMs: number,
  deadline: number,
  onProgress: ((event: Record<string, unknown>) => void) | undefined,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (err: LineClientError | null, value?: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const bad = (why: string) => new LineClientError(why, 'EBADREPLY', socketPath);
    const timer = setTimeout(
      () => finish(new SocketBusyError(socketPath, timeoutMs)),
      Math.max(1, deadline - Date.now()),
    );
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1 && !settled; nl = chunk.indexOf(10, start)) {
        chunks.push(chunk.subarray(start, nl));
        start = nl + 1;
        const text = Buffer.concat(chunks).toString('utf8');
        chunks.length = 0;
        bytes = 0;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return finish(bad('invalid reply (not JSON)'));
        }
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          return finish(bad('invalid reply (not an object)'));
        }
        const o = value as Record<string, unknown>;
        if (onProgress && !('ok' in o)) onProgress(o);
        else return finish(null, o);
      }
      if (start < chunk.length) {
        chunks.push(chunk.subarray(start));
        bytes += chunk.length - start;
        if (bytes > MAX_REPLY_BYTES) finish(bad('reply too long'));
      }
    });
    sock.on('end', () => finish(bad('the connection closed without a reply')));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'EIO';
      finish(
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? new NoSocketError(socketPath, code)
          : new LineClientError(err.message, code, socketPath),
      );
    });
  });
}
