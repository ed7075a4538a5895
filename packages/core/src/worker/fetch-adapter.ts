import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { Logger } from '../logger.js';
import type { FetchHandler } from './load-app.js';

/**
 * Serves a Web-standard `fetch(request)` handler on Node's http server: the request body
 * is streamed in, the response body streamed out (backpressure both ways); the request's
 * signal aborts when the client goes away.
 */
export function fetchListener(
  handler: FetchHandler,
  options: { https: boolean; log: Logger },
): RequestListener {
  const scheme = options.https ? 'https' : 'http';
  return (req, res) => {
    void respond(handler, scheme, req, res).catch((err) => {
      options.log.error({ err }, 'Error in fetch handler');
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end('Internal Server Error');
      } else {
        res.destroy(err as Error);
      }
    });
  };
}

async function respond(
  handler: FetchHandler,
  scheme: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const method = req.method ?? 'GET';
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const init: RequestInit & { duplex?: 'half' } = {
    method,
    headers,
    signal: controller.signal,
  };
  if (hasBody) {
    init.body = Readable.toWeb(req) as unknown as RequestInit['body'];
    init.duplex = 'half';
  }
  const request = new Request(
    `${scheme}://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`,
    init,
  );
  const response = await handler.fetch(request);
  if (!(response instanceof Response))
    throw new TypeError('fetch handler did not return a Response');
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (!response.body || method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(Readable.fromWeb(response.body as unknown as NodeReadableStream), res);
}
