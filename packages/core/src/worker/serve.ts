import fs from 'node:fs';
import type http from 'node:http';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AdoptedListener } from '@arb/sock';
import { http as httpModule, https as httpsModule } from '../builtins.js';
import type { Logger } from '../logger.js';
import type { ArbiterSettings } from '../settings.js';
import type { AccessLog } from './access-log.js';
import { ConnectionTracker } from './drain.js';
import { fetchListener } from './fetch-adapter.js';
import type { LoadedApp } from './load-app.js';

export interface ServeOptions {
  settings: ArbiterSettings;
  log: Logger;
  accessLog: AccessLog | undefined;
  /** Called at the start of every request (max-requests counting). */
  onRequest(req: IncomingMessage, res: ServerResponse): void;
}

export interface Serving {
  readonly servers: http.Server[];
  readonly tracker: ConnectionTracker;
}

/**
 * Builds one server per inherited listener around the app and listens on each fd with the
 * configured backlog; resolves once every one listens.
 */
export async function serve(
  app: LoadedApp,
  listeners: readonly AdoptedListener[],
  options: ServeOptions,
): Promise<Serving> {
  const s = options.settings;
  const tls =
    s.certfile && s.keyfile
      ? { cert: fs.readFileSync(s.certfile), key: fs.readFileSync(s.keyfile) }
      : undefined;
  const make = (listener: RequestListener): http.Server =>
    tls
      ? (httpsModule().createServer(tls, listener) as unknown as http.Server)
      : httpModule().createServer(listener);

  let own: http.Server | undefined;
  let handler: RequestListener;
  switch (app.kind) {
    case 'listener':
      handler = guarded(app.listener, options.log);
      break;
    case 'fetch':
      handler = fetchListener(app.handler, { https: tls !== undefined, log: options.log });
      break;
    case 'server':
      own = app.server as http.Server;
      handler = forwardTo(own);
      break;
    case 'fastify':
      await app.app.ready();
      own = app.app.server as http.Server;
      handler = forwardTo(own);
      break;
  }

  const tracker = new ConnectionTracker();
  const servers = listeners.map((_, i) => (i === 0 && own ? own : make(handler)));
  for (const server of servers) {
    server.keepAliveTimeout = s.keepAlive * 1000;
    if (server.headersTimeout <= server.keepAliveTimeout)
      server.headersTimeout = server.keepAliveTimeout + 1000;
    server.on('connection', (socket) => socket.setNoDelay(true));
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      options.accessLog?.track(req, res);
      options.onRequest(req, res);
    });
    // attached last so that its (prepended) request listener runs first
    tracker.attach(server);
  }
  for (let i = 0; i < servers.length; i++)
    await listenFd(servers[i]!, listeners[i]!.fd, listeners[i]!.backlog ?? s.backlog);
  return { servers, tracker };
}

/**
 * A listener for the extra listeners of an app that brought its own server: the server's
 * own request listeners (the app), captured before arb adds its bookkeeping.
 */
function forwardTo(server: http.Server): RequestListener {
  const listeners = server.listeners('request') as RequestListener[];
  return (req, res) => {
    for (const l of listeners) l.call(server, req, res);
  };
}

/**
 * `listen(2)` on an inherited fd with `backlog`. Node 20 ignores `backlog` inside the
 * options object when `fd` is given (only the positional argument reaches libuv, else 511),
 * so it is passed positionally.
 */
export function listenFd(server: http.Server, fd: number, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ fd }, backlog, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * A request listener whose synchronous throw answers 500 instead of killing the worker
 * (gunicorn answers 500 and keeps the worker). An async handler's rejection stays an
 * unhandled rejection: the worker exits 1 and is replaced, Node's default.
 */
function guarded(listener: RequestListener, log: Logger): RequestListener {
  return (req, res) => {
    try {
      listener(req, res);
    } catch (err) {
      log.error({ err, method: req.method, url: req.url }, 'Error handling request');
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('Connection', 'close');
        res.end('Internal Server Error');
      } else res.destroy();
    }
  };
}
