import type http from 'node:http';
import type { Route } from './endpoint-server.js';

/** What the health endpoints ask the master. */
export interface HealthView {
  /** Resolves once the master loop has made a turn; never while it is stuck in a pass. */
  loopTurned(): Promise<void>;
  /** Why the master should get no traffic now (`"stopping"`, ...), or undefined when it should. */
  notReady(): string | undefined;
}

/**
 * How long `/livez` waits for the loop. A pass that takes longer is a stuck master: every
 * pass only reaps, signals and spawns, so a healthy one turns in milliseconds.
 */
export const LIVEZ_WAIT_MS = 2000;

function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  body: object,
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

/**
 * `/livez`: 200 once the master loop answers (the request is queued into the loop's wake-up
 * and answered by its next turn), 503 when it does not within `waitMs`. `/readyz`: 200 while
 * the master wants traffic (a worker serves, not stopping), else 503 with the reason, one
 * line of JSON: what Kubernetes probes and haproxy's `option httpchk` read.
 */
export function healthRoutes(view: HealthView, waitMs = LIVEZ_WAIT_MS): Map<string, Route> {
  const livez: Route = (req, res) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    void Promise.race([view.loopTurned().then(() => true as const), late]).then((turned) => {
      clearTimeout(timer);
      if (turned) answer(req, res, 200, { live: true });
      else
        answer(req, res, 503, {
          live: false,
          reason: `the master loop did not turn within ${waitMs} ms`,
        });
    });
  };
  const readyz: Route = (req, res) => {
    const reason = view.notReady();
    if (reason === undefined) answer(req, res, 200, { ready: true });
    else answer(req, res, 503, { ready: false, reason });
  };
  return new Map([
    ['/livez', livez],
    ['/readyz', readyz],
  ]);
}
