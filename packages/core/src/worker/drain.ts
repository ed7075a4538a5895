import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

interface Conn {
  /** Requests in progress on this connection. */
  active: Set<ServerResponse>;
  /** Responses finished on it. */
  served: number;
  timer?: NodeJS.Timeout;
}

/**
 * During a drain, a connection with no request in progress (fresh, or idle between
 * keep-alive requests) is closed after this long unless a request arrives, which is then
 * served with `Connection: close`. Closing an idle keep-alive connection at once would race
 * a client that is sending its next request on it right then: it would see a reset.
 */
export const DRAIN_IDLE_GRACE_MS = 1000;

/**
 * Tracks the connections of the worker's servers so that a drain loses no request:
 * http's own `server.close()` (Node ≥ 19) also closes every connection without a request
 * in progress — including one just accepted whose request is still in flight, which the
 * client would see as a reset. Here, draining stops accepting, gives every connection with
 * no request in progress a short grace to send one (served with `Connection: close`), and
 * ends each busy connection once its response is done.
 */
export class ConnectionTracker {
  private readonly conns = new Map<net.Socket, Conn>();
  draining = false;
  private onEmpty: (() => void) | undefined;
  /**
   * The response of the request whose handler is running, through every callback and
   * promise it starts: an uncaught error names the request it came from.
   */
  private readonly context = new AsyncLocalStorage<ServerResponse>();

  /** The response of the request the running code serves, if any. */
  currentResponse(): ServerResponse | undefined {
    return this.context.getStore();
  }

  /** Follows `server`'s connections and requests. Call before the app's own listeners run. */
  attach(server: net.Server): void {
    // every 'request' listener (the app's, or a Fastify/own server's) runs in the request's
    // context; wrapping emit is the one place that covers them all
    const emit = server.emit as (event: string | symbol, ...args: unknown[]) => boolean;
    const context = this.context;
    server.emit = function (this: net.Server, event: string | symbol, ...args: unknown[]) {
      if (event === 'request') {
        return context.run(args[1] as ServerResponse, () => emit.call(this, event, ...args));
      }
      return emit.call(this, event, ...args);
    } as typeof server.emit;
    const event = server instanceof tls.Server ? 'secureConnection' : 'connection';
    server.on(event, (socket: net.Socket) => {
      const conn: Conn = { active: new Set(), served: 0 };
      this.conns.set(socket, conn);
      if (this.draining) this.armIdleTimer(socket, conn);
      socket.once('close', () => {
        if (conn.timer) clearTimeout(conn.timer);
        this.conns.delete(socket);
        this.checkEmpty();
      });
    });
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) =>
      this.onRequest(req, res),
    );
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const conn = this.conns.get(socket);
    if (!conn) return;
    if (conn.timer) {
      clearTimeout(conn.timer);
      conn.timer = undefined;
    }
    conn.active.add(res);
    if (this.draining) res.setHeader('Connection', 'close');
    res.once('close', () => {
      conn.active.delete(res);
      conn.served += 1;
      if (!this.draining || conn.active.size > 0) return;
      // A response that went out before the drain said keep-alive: the client may send
      // again on it, so it gets the idle grace rather than an immediate close.
      if (String(res.getHeader('connection')).toLowerCase() === 'close') socket.destroySoon();
      else this.armIdleTimer(socket, conn);
    });
  }

  /** Requests in progress on all connections. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.active.size;
    return n;
  }

  /** Marks the responses still to be written `Connection: close` (max requests, drain). */
  closeAfterResponses(): void {
    for (const conn of this.conns.values()) {
      for (const res of conn.active) if (!res.headersSent) res.setHeader('Connection', 'close');
    }
  }

  /**
   * Stops accepting on `servers` and waits until every connection is gone, at most
   * `timeoutMs`; then the stragglers are destroyed. Resolves true when nothing was cut.
   */
  async drain(servers: readonly net.Server[], timeoutMs: number): Promise<boolean> {
    this.draining = true;
    for (const server of servers) {
      // net's close, not http's: http's also drops connections whose request is in flight
      if (server.listening) net.Server.prototype.close.call(server);
    }
    this.closeAfterResponses();
    for (const [socket, conn] of this.conns) {
      if (conn.active.size === 0) this.armIdleTimer(socket, conn);
    }
    if (this.conns.size === 0) return true;
    const done = new Promise<boolean>((resolve) => {
      this.onEmpty = () => resolve(true);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const clean = await Promise.race([done, timeout]);
    if (timer) clearTimeout(timer);
    if (!clean) for (const socket of this.conns.keys()) socket.destroy();
    return clean;
  }

  private armIdleTimer(socket: net.Socket, conn: Conn): void {
    if (conn.timer) return;
    conn.timer = setTimeout(() => {
      conn.timer = undefined;
      if (conn.active.size === 0) socket.destroy();
    }, DRAIN_IDLE_GRACE_MS);
  }

  private checkEmpty(): void {
    if (this.draining && this.conns.size === 0 && this.onEmpty) {
      const f = this.onEmpty;
      this.onEmpty = undefined;
      f();
    }
  }
}
