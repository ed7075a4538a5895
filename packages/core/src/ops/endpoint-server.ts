import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '@arb/sock';
import { http as httpModule } from '../builtins.js';
import type { Logger } from '../logger.js';

/** Answers one path of an endpoint server (GET or HEAD; the server refuses other methods). */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * A small HTTP server of the master for operators and orchestrators (`--metrics-bind`,
 * `--health-bind`): TCP `host:port` (port 0 picks one) or `unix:PATH`. Each path it knows
 * has a route; any other path is 404 (a probe pointed at a wrong path must fail, not pass),
 * and a method other than GET/HEAD is 405.
 */
export class EndpointServer {
  private server: http.Server | undefined;
  /** `http://host:port` or `unix:/path` once listening. */
  url: string | undefined;

  constructor(
    /** What it serves, for log lines and errors (`metrics`, `health`). */
    readonly what: string,
    private readonly bind: string,
    private readonly routes: ReadonlyMap<string, Route>,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    const address = parseAddress(this.bind);
    const server = httpModule().createServer((req, res) => {
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
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (address.kind === 'tcp') server.listen({ host: address.host, port: address.port }, done);
      else if (address.kind === 'unix') server.listen(address.path, done);
      else reject(new Error(`${this.what} cannot be served on ${this.bind}`));
    });
    server.on('error', (err) => this.log.error({ err }, `${this.what} server error`));
    this.server = server;
    const a = server.address();
    if (typeof a === 'string') this.url = `unix:${a}`;
    else {
      const { address: host, port } = a as AddressInfo;
      this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    const paths = [...this.routes.keys()].join(', ');
    const name = this.what[0]!.toUpperCase() + this.what.slice(1);
    this.log.info({ [this.what]: this.url }, `${name} at ${this.url} (${paths})`);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    // libuv removes a unix socket file it bound when the server closes
    await new Promise((r) => server.close(r));
  }
}
