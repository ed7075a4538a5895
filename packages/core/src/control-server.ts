import { chmodSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from './logger.js';

/**
 * A unix stream socket speaking JSON lines, for the master's control socket. The same
 * design as @arb/companion's control socket (which core cannot import): created with
 * mode 0600 from its first instant (bound under umask 0177 at a temporary name, then
 * renamed into place), never deleting a live socket of another process, replacing a stale
 * one, removed on close only if the file is still ours; requests of one connection are
 * answered in order; idle, slow and oversized clients are dropped; a slow reader cannot
 * make the master buffer without end.
 */
export interface LineServerOptions {
  path: string;
  /** Answers one line; its reply line (with the newline) or undefined for none. Must not throw. */
  handle(line: Buffer): Promise<string | undefined>;
  /** The reply sent before closing a connection that broke the rules. */
  errorLine(error: string): string;
  log: Logger;
  /** Close a connection idle this long. Default 60 s. */
  idleTimeoutMs?: number;
  /** A started line must be complete within this. Default 10 s. */
  readTimeoutMs?: number;
  /** Longest line. Default 64 KiB. */
  maxLineBytes?: number;
  /** Most connections at once. Default 64. */
  maxConnections?: number;
}

const MAX_QUEUED_LINES = 64;
const MAX_PENDING_OUTPUT = 4 * 1024 * 1024;

export class SocketInUse extends Error {
  constructor(readonly path: string) {
    super(`${path} is in use by another process`);
  }
}

function identityOf(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.birthtimeNs}`;
}

/** True if something accepts connections on the unix socket `path`. */
export function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (live: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(live);
    };
    // nothing accepted within the timeout: a live but busy server; never delete it
    const timer = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) =>
      done(!(err.code === 'ECONNREFUSED' || err.code === 'ENOENT')),
    );
  });
}

export class LineServer {
  private server: Server | undefined;
  private identity: string | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly opts: LineServerOptions) {}

  get path(): string {
    return this.opts.path;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Binds the socket; throws {@link SocketInUse} when another live process has it. */
  async listen(): Promise<void> {
    const path = this.opts.path;
    let exists = false;
    try {
      const st = lstatSync(path);
      if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
      exists = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (exists) {
      if (await socketIsLive(path)) throw new SocketInUse(path);
      this.opts.log.info({ path }, 'Replacing a stale control socket');
      unlinkSync(path);
    }
    const tmp = join(
      dirname(path),
      `.arbctl-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    );
    const server = createServer({ allowHalfOpen: true }, (sock) => this.serve(sock));
    server.maxConnections = this.opts.maxConnections ?? 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        resolve();
      });
      const old = process.umask(0o177); // bind() happens inside listen(): the file is born 0600
      try {
        server.listen({ path: tmp, backlog: 128 });
      } finally {
        process.umask(old);
      }
    });
    try {
      chmodSync(tmp, 0o600);
      // libuv unlinks the bound (temporary) name on close: a no-op after this rename
      renameSync(tmp, path);
      this.identity = identityOf(path);
    } catch (err) {
      server.close();
      throw err;
    }
    server.on('error', (err) => this.opts.log.error({ err }, 'control socket error'));
    this.server = server;
  }

  /**
   * Stops accepting; open connections get what they were sent (up to `lingerMs`), then go;
   * the file is removed only if it is still the one we bound.
   */
  async close(lingerMs = 1000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise((r) => server.close(r));
    for (const s of this.sockets) s.end();
    const linger = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, lingerMs);
    await closed;
    clearTimeout(linger);
    try {
      if (this.identity !== undefined && identityOf(this.opts.path) === this.identity) {
        unlinkSync(this.opts.path);
      }
    } catch {
      // gone already
    }
    this.identity = undefined;
  }

  private serve(sock: Socket): void {
    const o = this.opts;
    const maxLine = o.maxLineBytes ?? 64 * 1024;
    const readTimeoutMs = o.readTimeoutMs ?? 10_000;
    this.sockets.add(sock);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let discarding = false;
    let queue: Promise<void> = Promise.resolve();
    let queued = 0;
    let lineTimer: NodeJS.Timeout | undefined;
    const clearLineTimer = () => {
      if (lineTimer) clearTimeout(lineTimer);
      lineTimer = undefined;
    };
    const idleMs = o.idleTimeoutMs ?? 60_000;
    sock.setTimeout(idleMs);
    sock.on('timeout', () => sock.destroy());
    sock.on('error', () => {}); // a client that went away
    sock.on('close', () => {
      clearLineTimer();
      this.sockets.delete(sock);
    });
    const write = (text: string) => {
      if (sock.destroyed || !sock.writable || sock.writableEnded) return;
      sock.write(text);
      if (sock.writableLength > MAX_PENDING_OUTPUT) sock.destroy();
    };
    /** Answers what was asked before, then this error, then closes. */
    const giveUp = (error: string) => {
      discarding = true;
      pending = [];
      pendingBytes = 0;
      clearLineTimer();
      o.log.warn(`control socket client dropped: ${error}`);
      queue = queue.then(() => {
        if (sock.destroyed) return;
        sock.end(o.errorLine(error));
        setTimeout(() => sock.destroy(), 2000).unref();
      });
    };
    sock.on('data', (chunk: Buffer) => {
      if (discarding) return;
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl);
        const line = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([...pending, piece]);
        pending = [];
        pendingBytes = 0;
        clearLineTimer();
        start = nl + 1;
        if (line.length > maxLine) {
          giveUp('line too long');
          return;
        }
        if (line.toString('latin1').trim() === '') continue; // blank lines get no reply
        queued += 1;
        if (queued > MAX_QUEUED_LINES) sock.pause();
        queue = queue.then(async () => {
          if (!sock.destroyed) {
            // a reload or an upgrade takes a while: the client waits, it is not idle
            sock.setTimeout(0);
            const reply = await o.handle(line);
            if (reply !== undefined) write(reply);
            if (!sock.destroyed) sock.setTimeout(idleMs);
          }
          queued -= 1;
          if (queued <= MAX_QUEUED_LINES / 2 && sock.isPaused() && !discarding) sock.resume();
        });
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        lineTimer ??= setTimeout(() => giveUp('read timeout'), readTimeoutMs);
        if (pendingBytes > maxLine) giveUp('line too long');
      }
    });
    sock.on('end', () => {
      clearLineTimer();
      // a trailing fragment without a newline is ignored; answer what was asked, then close
      queue = queue.then(() => {
        if (!sock.destroyed) sock.end();
      });
    });
  }
}
