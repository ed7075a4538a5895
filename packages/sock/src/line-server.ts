import { createServer, type Server, type Socket } from 'node:net';
import { claimSocketPath, type SocketFileId, unlinkSocketIfOurs } from './unix.js';

/** The limits of a {@link LineServer}; every one has a default. */
export interface LineServerLimits {
  /** Longest request line in bytes (without its newline). Default 64 KiB. */
  maxLineBytes?: number;
  /** Connections open at once; one more is told `too many connections` and closed. Default 256. */
  maxConnections?: number;
  /**
   * Requests of one connection read ahead of the one being answered. Default 64; reading
   * also stops once those waiting hold `maxLineBytes`.
   */
  maxQueuedLines?: number;
  /**
   * Close a connection that asked nothing for this long (ms). Blank lines and a line still
   * being written do not count as asking; the time a request takes to answer does not count
   * as idle. Default 60 s.
   */
  idleTimeoutMs?: number;
  /** A started line must be complete within this (ms), however slowly it trickles. Default 10 s. */
  readTimeoutMs?: number;
  /** How long `close()` lets connections take what they were sent before dropping them (ms). Default 1 s. */
  lingerMs?: number;
}

/** Where a {@link LineServer} reports dropped clients and socket errors (a pino logger fits). */
export interface LineServerLog {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface LineServerOptions extends LineServerLimits {
  /** The unix socket path; created with mode 0600 (see {@link claimSocketPath}). */
  path: string;
  /**
   * Answers one request line (without its newline; never blank) with its reply line,
   * newline included, or undefined for no reply. A throw is answered with
   * `errorLine("internal error: <message>")`. Before the reply, `progress` may write lines
   * of its own (a reload's steps, for a client that asked for them); they are dropped
   * while the client has not taken `maxProgressBytes` of them.
   */
  handle(line: Buffer, progress: (line: string) => void): Promise<string | undefined>;
  /**
   * The reply for an error of the socket itself (`line too long`, `read timeout`,
   * `too many connections`, `internal error: ...`). Default `{"ok":false,"error":...}`.
   */
  errorLine?(error: string): string;
  log?: LineServerLog;
}

/** The JSON-lines error envelope both arb protocols use. */
export const jsonErrorLine = (error: string): string => `${JSON.stringify({ ok: false, error })}\n`;

const DEFAULTS: Required<LineServerLimits> = {
  maxLineBytes: 64 * 1024,
  maxConnections: 256,
  maxQueuedLines: 64,
  idleTimeoutMs: 60_000,
  readTimeoutMs: 10_000,
  lingerMs: 1000,
};

/** Progress lines not yet taken by a client beyond which more are dropped (the reply never is). */
const MAX_PROGRESS_BYTES = 64 * 1024;

/** How long a connection that broke a rule may take its last reply before it is dropped. */
const GIVE_UP_GRACE_MS = 2000;

const silent: LineServerLog = { warn() {}, error() {} };

/**
 * A unix stream socket speaking one request line, one reply line: the master's control
 * socket and the companion manager's. The file is mode 0600 from its first instant, a live
 * socket of another process is never taken over, a stale one is replaced, and on close the
 * file is removed only if it is still ours.
 *
 * Per connection, requests are answered in order, one at a time. Memory stays bounded
 * whatever a client does: reading stops while `maxQueuedLines` requests wait or while a
 * reply is not yet taken by the client (so a client that pipelines without reading
 * stalls itself, then is dropped when idle), and while the requests waiting hold
 * `maxLineBytes`; a line longer than `maxLineBytes` or slower
 * than `readTimeoutMs` is answered with an error, after the requests before it, and the
 * connection closed.
 */
export class LineServer {
  private server: Server | undefined;
  private id: SocketFileId | undefined;
  private readonly connections = new Set<Connection>();
  private readonly limits: Required<LineServerLimits>;
  private readonly log: LineServerLog;
  private readonly errorLine: (error: string) => string;

  constructor(private readonly opts: LineServerOptions) {
    const given = Object.fromEntries(
      Object.entries(opts).filter(([k, v]) => k in DEFAULTS && v !== undefined),
    );
    this.limits = { ...DEFAULTS, ...given };
    this.log = opts.log ?? silent;
    this.errorLine = opts.errorLine ?? jsonErrorLine;
  }

  get path(): string {
    return this.opts.path;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /**
   * Binds the socket. Throws `SocketInUseError` when another process listens there (or
   * may: see `isSocketLive`), `SocketPathError` when the path cannot be used.
   */
  async listen(): Promise<void> {
    if (this.server) throw new Error(`${this.path}: already listening`);
    const claimed = await claimSocketPath(
      this.opts.path,
      (tmp) =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
          server.once('error', reject);
          server.listen({ path: tmp, backlog: 511 }, () => {
            server.off('error', reject);
            resolve(server);
          });
        }),
      (server) => server.close(),
      { mode: 0o600 },
    );
    // libuv unlinks the name it bound (the temporary one) on close: a no-op after the rename
    this.server = claimed.value;
    this.id = claimed.id;
    this.server.on('error', (err) => this.log.error({ err, path: this.path }, 'socket error'));
  }

  /**
   * Stops accepting; each connection gets the replies already written, then an end; a
   * request not answered yet gets none; a connection still open after `lingerMs` is
   * dropped. The file is removed if it is still the one we bound.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const c of this.connections) c.shutdown();
    const linger = setTimeout(() => {
      for (const c of this.connections) c.destroy();
    }, this.limits.lingerMs);
    await closed;
    clearTimeout(linger);
    if (this.id !== undefined) unlinkSocketIfOurs(this.opts.path, this.id);
    this.id = undefined;
  }

  private accept(sock: Socket): void {
    sock.on('error', () => {}); // a client that went away
    if (!this.server) {
      sock.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.log.warn({ path: this.path }, 'too many connections: client refused');
      sock.resume(); // read (and drop) until the client leaves, or close() would wait for it
      sock.end(this.errorLine('too many connections'));
      setTimeout(() => sock.destroy(), GIVE_UP_GRACE_MS).unref();
      return;
    }
    const conn = new Connection(sock, this.limits, this.opts.handle, this.errorLine, (why) =>
      this.log.warn({ path: this.path }, `client dropped: ${why}`),
    );
    this.connections.add(conn);
    sock.on('close', () => this.connections.delete(conn));
  }
}

/** One client: its framing, its queue, its timers. */
class Connection {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private answering = false;
  private waitingDrain = false;
  /** Set once no more lines are taken: the peer ended, a rule was broken, the server closes. */
  private done = false;
  /** The error reply sent last, after the requests taken before it. */
  private finalLine: string | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sock: Socket,
    private readonly limits: Required<LineServerLimits>,
    private readonly handle: (
      line: Buffer,
      progress: (line: string) => void,
    ) => Promise<string | undefined>,
    private readonly errorLine: (error: string) => string,
    private readonly dropped: (why: string) => void,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('end', () => this.onEnd());
    sock.on('close', () => this.clearTimers());
    this.armIdle();
  }

  shutdown(): void {
    this.done = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.clearTimers();
    if (!this.sock.destroyed) this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.done) return; // read and dropped, so the client gets its last reply, not a reset
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line =
        this.partial.length === 0 ? Buffer.from(piece) : Buffer.concat([...this.partial, piece]);
      this.partial = [];
      this.partialBytes = 0;
      this.clearLineTimer();
      start = nl + 1;
      if (line.length > this.limits.maxLineBytes) {
        this.giveUp('line too long');
        return;
      }
      if (line.toString('latin1').trim() === '') continue; // blank lines get no reply
      this.queue.push(line);
      this.queuedBytes += line.length;
    }
    if (start < chunk.length) {
      this.partial.push(chunk.subarray(start));
      this.partialBytes += chunk.length - start;
      if (this.partialBytes > this.limits.maxLineBytes) {
        this.giveUp('line too long');
        return;
      }
      this.lineTimer ??= setTimeout(() => this.giveUp('read timeout'), this.limits.readTimeoutMs);
    }
    this.flow();
    void this.pump();
  }

  private onEnd(): void {
    // a trailing fragment without a newline is ignored; answer what was asked, then close
    this.done = true;
    this.clearLineTimer();
    this.flow();
    void this.pump();
  }

  /** Answers what was asked before, then `error`, then closes. */
  private giveUp(error: string): void {
    if (this.done && this.finalLine !== undefined) return;
    this.dropped(error);
    this.done = true;
    this.finalLine = this.errorLine(error);
    this.partial = [];
    this.partialBytes = 0;
    this.clearLineTimer();
    this.flow();
    void this.pump();
  }

  /** Reads while there is room for another request and every reply was taken. */
  private flow(): void {
    const s = this.sock;
    if (s.destroyed) return;
    const full =
      this.queue.length >= this.limits.maxQueuedLines ||
      this.queuedBytes >= this.limits.maxLineBytes ||
      this.waitingDrain;
    if (full && !this.done) s.pause();
    else s.resume();
  }

  private async pump(): Promise<void> {
    if (this.answering) return;
    this.answering = true;
    const s = this.sock;
    while (this.queue.length > 0 && !s.destroyed) {
      const line = this.queue.shift()!;
      this.queuedBytes -= line.length;
      this.flow();
      // a reload or an upgrade takes a while: the client waits, it is not idle
      this.clearIdle();
      let reply: string | undefined;
      const progress = (text: string) => {
        if (s.destroyed || s.writableEnded || s.writableLength > MAX_PROGRESS_BYTES) return;
        s.write(text);
      };
      try {
        reply = await this.handle(line, progress);
      } catch (err) {
        reply = this.errorLine(`internal error: ${(err as Error).message}`);
      }
      this.armIdle();
      if (reply === undefined || s.destroyed || s.writableEnded) continue;
      if (!s.write(reply)) await this.drained();
    }
    this.answering = false;
    if (!this.done || s.destroyed || s.writableEnded) return;
    if (this.finalLine !== undefined) {
      s.end(this.finalLine);
      setTimeout(() => s.destroy(), GIVE_UP_GRACE_MS).unref();
    } else s.end();
  }

  /** Stops reading until the client took the replies written so far (or went away). */
  private drained(): Promise<void> {
    this.waitingDrain = true;
    this.flow();
    return new Promise((resolve) => {
      const done = () => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        this.waitingDrain = false;
        this.flow();
        resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
  }

  private armIdle(): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.dropped('idle');
      this.sock.destroy();
    }, this.limits.idleTimeoutMs);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private clearLineTimer(): void {
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = undefined;
  }

  private clearTimers(): void {
    this.clearIdle();
    this.clearLineTimer();
  }
}
