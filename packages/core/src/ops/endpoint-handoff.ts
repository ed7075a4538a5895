import fs from 'node:fs';

/**
 * How the metrics and health servers' listening sockets cross a USR2 upgrade: the old
 * master passes each one to the new master in the `spawn` slot after the app listeners and
 * names them in `ARB_ENDPOINTS`:
 *
 *     ARB_ENDPOINTS=metrics=5=127.0.0.1%3A9100,health=6=127.0.0.1%3A9200
 *
 * (`what=slot=bind`, the bind as configured, URI-encoded). The new master accepts on a
 * socket whose configured bind it shares, and binds afresh where its config names another
 * address (closing the socket it inherited for the old one).
 */
export const ENDPOINTS_VAR = 'ARB_ENDPOINTS';

export type EndpointKind = 'metrics' | 'health';

/** One endpoint server's socket: in the old master its fd, in the new master its slot. */
export interface EndpointFd {
  readonly what: EndpointKind;
  readonly fd: number;
  /** The address as the old master's config named it (`--health-bind` value). */
  readonly bind: string;
}

/** The value of `ARB_ENDPOINTS` for sockets handed over in `slots` (the child's fds). */
export function encodeEndpoints(list: readonly EndpointFd[]): string {
  return list.map((e) => `${e.what}=${e.fd}=${encodeURIComponent(e.bind)}`).join(',');
}

/** Reads `ARB_ENDPOINTS`; an entry that does not parse is left out (and its fd not used). */
export function decodeEndpoints(text: string | undefined): EndpointFd[] {
  if (!text) return [];
  const out: EndpointFd[] = [];
  for (const item of text.split(',')) {
    const m = /^(metrics|health)=(\d+)=(.+)$/.exec(item);
    if (!m) continue;
    try {
      out.push({ what: m[1] as EndpointKind, fd: Number(m[2]), bind: decodeURIComponent(m[3]!) });
    } catch {
      // a malformed escape: not ours
    }
  }
  return out;
}

/**
 * The inherited endpoint sockets, taken out of `env` (so that no worker sees them): the
 * one to accept on for each kind whose bind is still configured, the others closed.
 */
export function takeInheritedEndpoints(
  env: NodeJS.ProcessEnv,
  wanted: Partial<Record<EndpointKind, string>>,
): Map<EndpointKind, number> {
  const list = decodeEndpoints(env[ENDPOINTS_VAR]);
  delete env[ENDPOINTS_VAR];
  const keep = new Map<EndpointKind, number>();
  for (const e of list) {
    if (wanted[e.what] === e.bind && !keep.has(e.what)) keep.set(e.what, e.fd);
    else {
      try {
        fs.closeSync(e.fd);
      } catch {
        // not open: nothing to give back
      }
    }
  }
  return keep;
}
