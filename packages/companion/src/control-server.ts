import { chmodSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { SocketInUseError, SocketPathError } from './errors.js';
import type { Logger } from './logger.js';
import {
  decodeRequest,
  encodeResponse,
  MAX_LINE_BYTES,
  type Request,
  type Response,
} from './protocol.js';

export interface ControlServerOptions {
  path: string;
  /** Answers one decoded request; must not throw (errors become `internal error`). */
  handler: (request: Request) => Promise<Response>;
  logger: Logger;
  /** Close a connection with no traffic for this long. Default 60 s. */
  idleTimeoutMs?: number;
  /** Longest unterminated line buffered. Default 1 MiB. */
  maxLineBytes?: number;
  /** A started request line must be complete within this. Default 10 s. */
  readTimeoutMs?: number;
}

/** Requests of one connection waiting for their turn before its reading is paused. */
const MAX_QUEUED_LINES = 256;

/** Replies not yet read by a client beyond this are dropped with the connection. */
const MAX_PENDING_OUTPUT = 4 * 1024 * 1024;

function fileIdentity(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.birthtimeNs}`;
}

/** Connect to a unix socket: true if something accepts, false if refused or absent. */
export function probeSocket(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      // Accepting nothing within the timeout: a live but busy server. Never delete it.
      s.destroy();
      resolve(true);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(false);
      else reject(new SocketPathError(path, err.message));
    });
  });
}

/**
 * The manager's control socket. Created with mode 0600 from the first instant (bound under
 * umask 0177), never deleting a live socket of another process, replacing a stale one,
 * and removed on close only if the file is still ours (same inode).
 */
export class ControlServer {
  private server: Server | null = null;
  /** Identity of the file we bound (inode numbers alone get reused at once on tmpfs). */
  private identity: string | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger;
  private readonly idleTimeoutMs: number;
  private readonly maxLineBytes: number;
  private readonly readTimeoutMs: number;

  constructor(private readonly opts: ControlServerOptions) {
    this.log = opts.logger;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.maxLineBytes = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.readTimeoutMs = opts.readTimeoutMs ?? 10_000;
  }

  get path(): string {
    return this.opts.path;
  }

  async listen(): Promise<void> {
    const path = this.opts.path;
    let st: ReturnType<typeof lstatSync> | null = null;
    try {
      st = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SocketPathError(path, (err as Error).message);
      }
    }
    if (st) {
      if (!st.isSocket()) throw new SocketPathError(path, 'exists and is not a socket');
      if (await probeSocket(path)) throw new SocketInUseError(path);
      this.log.info({ path }, 'replacing stale control socket');
      unlinkSync(path);
    }
    const tmpPath = join(
      dirname(path),
      `.arbc-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    );
    const server = createServer({ allowHalfOpen: true }, (sock) => this.serve(sock));
    server.maxConnections = 1024;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.close();
        reject(
          err.code === 'EADDRINUSE'
            ? new SocketInUseError(path)
            : new SocketPathError(path, err.message),
        );
      };
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        resolve();
      });
      // bind() happens synchronously inside listen(): the file is born 0600.
      const old = process.umask(0o177);
      try {
        server.listen({ path: tmpPath, backlog: 511 });
      } finally {
        process.umask(old);
      }
    });
    try {
      chmodSync(tmpPath, 0o600);
      // libuv unlinks the bound path when the server closes, whoever owns that path by
      // then; binding a temporary name and renaming it into place makes that unlink a
      // no-op, and close() removes the real path only if it is still our file.
      renameSync(tmpPath, path);
    } catch (err) {
      server.close();
      throw new SocketPathError(path, (err as Error).message);
    }
    this.identity = fileIdentity(path);
    server.on('error', (err) => this.log.error({ err: err.message }, 'control socket error'));
    this.server = server;
    this.log.info({ path }, 'control socket listening');
  }

  /** Stop accepting, drop connections, remove the socket file if it is still ours. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      if (this.identity !== null && fileIdentity(this.opts.path) === this.identity) {
        unlinkSync(this.opts.path);
      }
    } catch {
      // Already gone.
    }
    this.identity = null;
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    /** Set once we stopped listening to this client (line too long, read timeout). */
    let discarding = false;
    let queue: Promise<void> = Promise.resolve();
    let ended = false;
    let queued = 0;
    let lineTimer: NodeJS.Timeout | null = null;

    const clearLineTimer = () => {
      if (lineTimer) clearTimeout(lineTimer);
      lineTimer = null;
    };
    // An idle or stuck client costs a descriptor, never the event loop.
    sock.setTimeout(this.idleTimeoutMs, () => sock.destroy());
    sock.on('error', () => {
      // EPIPE/ECONNRESET from a client that went away: nothing to do.
    });
    sock.on('close', () => {
      clearLineTimer();
      this.sockets.delete(sock);
    });

    const reply = (response: Response) => {
      if (sock.destroyed || !sock.writable) return;
      sock.write(encodeResponse(response));
      if (sock.writableLength > MAX_PENDING_OUTPUT) sock.destroy();
    };

    /** Answer what was asked before, then this error, then close. */
    const giveUp = (error: string, why: string) => {
      discarding = true;
      pending = [];
      pendingBytes = 0;
      clearLineTimer();
      this.log.warn(why);
      queue = queue.then(() => {
        if (sock.destroyed) return;
        sock.end(encodeResponse({ ok: false, error }));
        // Keep reading (and discarding) so the client gets the reply rather than a reset.
        setTimeout(() => sock.destroy(), 2000).unref();
      });
    };

    const handleLine = async (line: Buffer) => {
      if (sock.destroyed) return;
      const decoded = decodeRequest(line);
      if (!decoded.ok) {
        reply(decoded.response);
        return;
      }
      let response: Response;
      try {
        response = await this.opts.handler(decoded.request);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'companion control command failed');
        response = { ok: false, error: `internal error: ${(err as Error).message}` };
      }
      reply(response);
    };

    sock.on('data', (chunk: Buffer) => {
      if (discarding) return;
      let start = 0;
      let nl = chunk.indexOf(10);
      while (nl !== -1) {
        const piece = chunk.subarray(start, nl);
        const line = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        pendingBytes = 0;
        clearLineTimer();
        // Blank lines get no reply (reference §4.2).
        if (line.toString('latin1').trim() !== '') {
          const copy = Buffer.from(line);
          queued++;
          // A client pipelining faster than we answer is paused, not buffered without end.
          if (queued > MAX_QUEUED_LINES) sock.pause();
          queue = queue.then(async () => {
            await handleLine(copy);
            queued--;
            if (queued <= MAX_QUEUED_LINES / 2 && sock.isPaused() && !discarding) sock.resume();
          });
        }
        start = nl + 1;
        nl = chunk.indexOf(10, start);
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        // A line must be complete within the read timeout, however slowly it trickles in.
        lineTimer ??= setTimeout(
          () => giveUp('read timeout', 'companion control request not completed in time; closing'),
          this.readTimeoutMs,
        );
      }
      if (pendingBytes > this.maxLineBytes) {
        giveUp(
          'line too long',
          `companion control line exceeded ${this.maxLineBytes} bytes; closing`,
        );
      }
    });
    sock.on('end', () => {
      if (ended) return;
      ended = true;
      clearLineTimer();
      // A trailing fragment without a newline is ignored (reference); answer what was
      // asked, then close our side.
      queue = queue.then(() => {
        if (!sock.destroyed) sock.end();
      });
    });
  }
}
