import { type RequestLineOptions, requestLine } from '@arb/sock/line-client';
import type { Response } from './protocol.js';

export type RequestOptions = RequestLineOptions;

/**
 * Sends one request to a manager's control socket and returns its reply (`ok: false` is a
 * reply, not thrown). Retries briefly while the socket is missing or refusing (a manager
 * starting up); throws @arb/sock's `LineClientError` when there is no reply.
 */
export function request(
  socketPath: string,
  req: Record<string, unknown>,
  opts: RequestOptions = {},
): Promise<Response> {
  return requestLine(socketPath, req, opts) as Promise<Response>;
}

/** Typed helpers over `request` for one socket. */
export class CompanionClient {
  constructor(
    readonly socketPath: string,
    private readonly opts: RequestOptions = {},
  ) {}

  request(req: Record<string, unknown>): Promise<Response> {
    return request(this.socketPath, req, this.opts);
  }
  status(): Promise<Response> {
    return this.request({ cmd: 'status' });
  }
  start(name: string): Promise<Response> {
    return this.request({ cmd: 'start', name });
  }
  stop(name: string): Promise<Response> {
    return this.request({ cmd: 'stop', name });
  }
  restart(name: string): Promise<Response> {
    return this.request({ cmd: 'restart', name });
  }
  reread(): Promise<Response> {
    return this.request({ cmd: 'reread' });
  }
  signal(name: string, signal: string): Promise<Response> {
    return this.request({ cmd: 'signal', name, signal });
  }
}
