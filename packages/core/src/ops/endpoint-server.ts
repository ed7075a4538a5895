import type http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  claimSocketPath,
  parseAddress,
  type SocketFileId,
  socketFileId,
  unlinkSocketIfOurs,
} from '@arb/sock';
import { http as httpModule } from '../builtins.js';
import type { Logger } from '../logger.js';

/** Answers one path of an endpoint server (GET or HEAD; the server refuses other methods). */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The response header naming the master that answered (which one, across an upgrade). */
export const MASTER_PID_HEADER = 'X-Arb-Master-Pid';

/** How long a closing server lets the requests it already accepted finish. */
const CLOSE_LINGER_MS = 1000;
/** How long a connection accepted just before the close has to send its request. */
const READ_GRACE_MS = 200;

/**
 * A small HTTP server of the master for operators and orchestrators (`--metrics-bind`,
 * `--health-bind`): TCP `host:port` (port 0 picks one) or `unix:PATH`. Each path it knows
 * has a route; any other path is 404 (a probe pointed at a wrong path must fail, not pass),
 * and a method other than GET/HEAD is 405. Every answer names the master's pid in
 * `X-Arb-Master-Pid`.
 *
 * Its listening socket survives a USR2 upgrade: the old master hands `fd` to the new one,
 * which accepts on it with {@link listen}`(fd)` (see `endpoint-handoff.ts`), so a probe is
 * never refused while the masters change. A unix socket file is created under a temporary
 * name and renamed into place (`claimSocketPath`): libuv unlinks the name it bound when the
 * server closes, which must not be the path the new master still serves on.
 */
export class EndpointServer {
  private server: http.Server | undefined;
  /** The unix socket file this server may remove (it created it, or claimed it on promotion). */
  private ownFile: { path: string; id: SocketFileId } | undefined;
  /** `http://host:port` or `unix:/path` once listening. */
  url: string | undefined;

  constructor(
    /** What it serves, for log lines and errors (`metrics`, `health`). */
    readonly what: string,
    /** The address as configured (what a new master compares its own with). */
    readonly bind: string,
    private readonly routes: ReadonlyMap<string, Route>,
    private readonly log: Logger,
  ) {}

  /** The listening socket's descriptor (what a new master inherits), once listening. */
  get fd(): number | undefined {
    const handle = (this.server as unknown as { _handle?: { fd?: unknown } } | undefined)?._handle;
    return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
  }

  /** Binds the configured address, or accepts on `inheritedFd` (a socket the old master passed). */
  async listen(inheritedFd?: number): Promise<void> {
    const address = parseAddress(this.bind);
    const server = httpModule().createServer((req, res) => this.answer(req, res));
    server.keepAliveTimeout = 5000;
    const listening = (target: Parameters<http.Server['listen']>[0]) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(target, () => {
          server.off('error', reject);
          resolve();
        });
      });
    if (inheritedFd !== undefined) await listening({ fd: inheritedFd });
    else if (address.kind === 'tcp') await listening({ host: address.host, port: address.port });
    else if (address.kind === 'unix') {
      const claimed = await claimSocketPath(
        address.path,
        (tmp) => listening({ path: tmp }).then(() => server),
        (s) => s.close(),
      );
      this.ownFile = { path: claimed.path, id: claimed.id };
    } else throw new Error(`${this.what} cannot be served on ${this.bind}`);
    server.on('error', (err) => this.log.error({ err }, `${this.what} server error`));
    this.server = server;
    if (address.kind === 'unix') this.url = `unix:${address.path}`;
    else {
      const { address: host, port } = server.address() as AddressInfo;
      this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    const paths = [...this.routes.keys()].join(', ');
    const name = this.what[0]!.toUpperCase() + this.what.slice(1);
    const how = inheritedFd === undefined ? '' : ' (inherited from the previous master)';
    this.log.info({ [this.what]: this.url }, `${name} at ${this.url} (${paths})${how}`);
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader(MASTER_PID_HEADER, String(process.pid));
    if (!this.server) res.setHeader('Connection', 'close'); // closing: no keep-alive
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = this.routes.get(path);
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : `not found: ${path}\n`);
      return;
    }
    route(req, res);
  }

  /**
   * A promoted master takes over the unix socket file the previous master created: its own
   * final stop removes it.
   */
  claimFile(): void {
    if (this.ownFile || !this.url?.startsWith('unix:')) return;
    const path = this.url.slice(5);
    const id = socketFileId(path);
    if (id !== undefined) this.ownFile = { path, id };
  }

  /**
   * Stops accepting (connections still queued on a socket a new master shares are its to
   * accept), lets the requests already accepted finish for up to a second, then drops what
   * is left. The unix file is removed only with `unlink` (no new master serves on it).
   */
  async close(unlink = true): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise((r) => server.once('close', r));
    // stop accepting only: http's close() also drops the connections just accepted whose
    // request is not read yet (a reset probe); those get their answer first
    net.Server.prototype.close.call(server);
    await sleep(READ_GRACE_MS);
    server.close(); // now the idle keep-alive connections go
    const linger = setTimeout(() => server.closeAllConnections(), CLOSE_LINGER_MS);
    await closed;
    clearTimeout(linger);
    if (unlink && this.ownFile) unlinkSocketIfOurs(this.ownFile.path, this.ownFile.id);
    this.ownFile = undefined;
  }
}
