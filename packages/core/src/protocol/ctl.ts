/**
 * The master's control protocol (`arb ctl`): one JSON object per line each way, the
 * companion protocol's framing and envelopes (`{"ok": true, ...}` / `{"ok": false,
 * "error": "..."}`). A request may carry an `id` (string or number), echoed in its reply.
 *
 *   {"cmd":"status"}
 *   {"cmd":"workers","action":"add","count":2}     {"cmd":"workers","action":"remove","count":1}
 *   {"cmd":"reload"}        waits for the reload's outcome
 *   {"cmd":"reopen"}
 *   {"cmd":"upgrade"}       waits for the upgrade's outcome (optional "timeout" in seconds)
 *   {"cmd":"shutdown"}      {"cmd":"shutdown","quick":true}
 *
 * `reload` and `upgrade` with `"progress":true` get, before their reply, one line per step
 * as the reload or upgrade advances: `{"event":"progress","cmd":"reload","state":...,
 * "message":...}` (a `CtlProgress`, without `ok`: a client tells it from the reply by that).
 */

/** Longest request line; requests are tiny. */
export const CTL_MAX_LINE_BYTES = 64 * 1024;

export const CTL_COMMANDS = [
  'status',
  'workers',
  'reload',
  'reopen',
  'upgrade',
  'shutdown',
] as const;
export type CtlCommand = (typeof CTL_COMMANDS)[number];

export type CtlRequest =
  | { cmd: 'status' }
  | { cmd: 'workers'; action: 'add' | 'remove'; count: number }
  | { cmd: 'reload'; progress?: boolean }
  | { cmd: 'reopen' }
  | { cmd: 'upgrade'; timeout?: number; progress?: boolean }
  | { cmd: 'shutdown'; quick: boolean };

export type CtlResponse = { ok: boolean; id?: string | number; [key: string]: unknown };

/**
 * One step of a reload or an upgrade. `state` is the machine's own phase name (`reload.ts`,
 * `upgrade.ts`): a phase added there is reported as it is; `message` says it for a person.
 */
export interface CtlProgress {
  event: 'progress';
  cmd: 'reload' | 'upgrade';
  state: string;
  message: string;
  [key: string]: unknown;
}

export type CtlDecoded =
  | { ok: true; request: CtlRequest; id?: string | number }
  | { ok: false; response: CtlResponse };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes and validates one request line (without its newline). */
export function decodeCtlRequest(line: Buffer | string): CtlDecoded {
  let value: unknown;
  try {
    value = JSON.parse(typeof line === 'string' ? line : decoder.decode(line));
  } catch {
    return fail('invalid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('request must be a JSON object');
  }
  const o = value as Record<string, unknown>;
  const id = typeof o.id === 'string' || typeof o.id === 'number' ? o.id : undefined;
  const bad = (error: string): CtlDecoded => fail(error, id);
  const ok = (request: CtlRequest): CtlDecoded =>
    id === undefined ? { ok: true, request } : { ok: true, request, id };
  if (typeof o.cmd !== 'string') return bad("missing 'cmd'");
  switch (o.cmd) {
    case 'status':
    case 'reopen':
      return ok({ cmd: o.cmd });
    case 'reload':
      if (o.progress !== undefined && typeof o.progress !== 'boolean') {
        return bad("'progress' must be true or false");
      }
      return ok(o.progress === true ? { cmd: 'reload', progress: true } : { cmd: 'reload' });
    case 'workers': {
      if (o.action !== 'add' && o.action !== 'remove') {
        return bad('\'workers\' requires an \'action\': "add" or "remove"');
      }
      const count = o.count === undefined ? 1 : o.count;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 10_000) {
        return bad("'count' must be a whole number from 1 to 10000");
      }
      return ok({ cmd: 'workers', action: o.action, count });
    }
    case 'upgrade': {
      if (o.progress !== undefined && typeof o.progress !== 'boolean') {
        return bad("'progress' must be true or false");
      }
      const progress = o.progress === true ? { progress: true } : {};
      if (o.timeout === undefined) return ok({ cmd: 'upgrade', ...progress });
      if (typeof o.timeout !== 'number' || !Number.isFinite(o.timeout) || o.timeout <= 0) {
        return bad("'timeout' must be a number of seconds > 0");
      }
      return ok({ cmd: 'upgrade', timeout: o.timeout, ...progress });
    }
    case 'shutdown':
      if (o.quick !== undefined && typeof o.quick !== 'boolean') {
        return bad("'quick' must be true or false");
      }
      return ok({ cmd: 'shutdown', quick: o.quick === true });
    default:
      return bad(`unknown command '${o.cmd}'`);
  }
}

function fail(error: string, id?: string | number): CtlDecoded {
  return {
    ok: false,
    response: id === undefined ? { ok: false, error } : { ok: false, id, error },
  };
}

/** One progress line. */
export function encodeCtlProgress(progress: CtlProgress): string {
  return `${JSON.stringify(progress)}\n`;
}

/** One reply line. */
export function encodeCtlResponse(response: CtlResponse): string {
  return `${JSON.stringify(response)}\n`;
}
