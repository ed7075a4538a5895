import { LineServer, type LineServerLimits } from '@arb/sock';
import type { Logger } from './logger.js';
import {
  decodeRequest,
  encodeResponse,
  MAX_LINE_BYTES,
  type Request,
  type Response,
} from './protocol.js';

export interface ControlServerOptions extends LineServerLimits {
  path: string;
  /** Answers one decoded request; a throw becomes `internal error: <message>`. */
  handler: (request: Request) => Promise<Response>;
  logger: Logger;
}

/**
 * The manager's control socket: @arb/sock's `LineServer` (mode 0600, limits, never taking
 * over a live socket) speaking the companion protocol. Lines are up to `MAX_LINE_BYTES`.
 */
export class ControlServer {
  private readonly server: LineServer;

  constructor(private readonly opts: ControlServerOptions) {
    const { handler, logger, ...rest } = opts;
    this.server = new LineServer({
      maxLineBytes: MAX_LINE_BYTES,
      ...rest,
      log: logger,
      handle: async (line) => {
        const decoded = decodeRequest(line);
        if (!decoded.ok) return encodeResponse(decoded.response);
        try {
          return encodeResponse(await handler(decoded.request));
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'companion control command failed');
          throw err;
        }
      },
      errorLine: (error) => encodeResponse({ ok: false, error }),
    });
  }

  get path(): string {
    return this.opts.path;
  }

  /** Throws @arb/sock's `SocketInUseError` or `SocketPathError` when the path is unusable. */
  async listen(): Promise<void> {
    await this.server.listen();
    this.opts.logger.info({ path: this.path }, 'control socket listening');
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
