import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger, type LogSink } from '../logger.js';
import type { LogFormat } from '../settings.js';

/** Writes one access log line per response, through pino. */
export interface AccessLog {
  readonly sink: LogSink;
  /** Call when a request starts; the line is written when its response is done. */
  track(req: IncomingMessage, res: ServerResponse): void;
}

/** The access log of `dest` (`-` = stdout, else a file), or undefined for none. */
export function createAccessLog(
  dest: string | undefined,
  format: string | undefined,
  logFormat: LogFormat = 'auto',
): AccessLog | undefined {
  if (!dest) return undefined;
  const sink = createLogger({
    proc: 'worker',
    level: 'info',
    format: logFormat,
    dest,
    stdFd: 1,
    base: { log: 'access' },
  });
  return {
    sink,
    track(req, res) {
      const start = process.hrtime.bigint();
      const startedAt = new Date();
      res.once('finish', () => {
        const ns = Number(process.hrtime.bigint() - start);
        const fields = accessFields(req, res, ns, startedAt);
        if (format) sink.log.info(formatAccess(format, req, res, fields));
        else {
          // The line's own `time` is when the response finished; the request's start is
          // `start` (one `time` key per line).
          const { time, ...rest } = fields;
          sink.log.info(
            { ...rest, start: time.toISOString() },
            `${fields.method} ${fields.url} ${fields.status}`,
          );
        }
      });
    },
  };
}

export interface AccessFields {
  remote: string;
  method: string;
  url: string;
  protocol: string;
  status: number;
  bytes: number | undefined;
  referer: string | undefined;
  userAgent: string | undefined;
  /** Microseconds. */
  durationUs: number;
  time: Date;
}

export function accessFields(
  req: IncomingMessage,
  res: ServerResponse,
  ns: number,
  time: Date,
): AccessFields {
  const length = res.getHeader('content-length');
  return {
    remote: req.socket.remoteAddress ?? '-',
    method: req.method ?? '-',
    url: req.url ?? '-',
    protocol: `HTTP/${req.httpVersion}`,
    status: res.statusCode,
    bytes: length === undefined ? undefined : Number(length),
    referer: req.headers.referer,
    userAgent: req.headers['user-agent'],
    durationUs: Math.round(ns / 1000),
    time,
  };
}

/**
 * gunicorn's access log atoms: h l u t r m U q H s B b f a T D M L p, and
 * `%({name}i)s` / `%({name}o)s` for request / response headers.
 */
export function formatAccess(
  format: string,
  req: IncomingMessage,
  res: ServerResponse,
  f: AccessFields,
): string {
  const [path = '', query = ''] = f.url.split('?', 2);
  const atoms: Record<string, string> = {
    h: f.remote,
    l: '-',
    u: '-',
    t: `[${clfDate(f.time)}]`,
    r: `${f.method} ${f.url} ${f.protocol}`,
    m: f.method,
    U: path,
    q: query,
    H: f.protocol,
    s: String(f.status),
    B: String(f.bytes ?? 0),
    b: f.bytes === undefined ? '-' : String(f.bytes),
    f: f.referer ?? '-',
    a: f.userAgent ?? '-',
    T: String(Math.floor(f.durationUs / 1e6)),
    D: String(f.durationUs),
    M: String(Math.floor(f.durationUs / 1000)),
    L: (f.durationUs / 1e6).toFixed(6),
    p: `<${process.pid}>`,
  };
  return format.replace(/%\((\{[^}]+\}[io]|\w)\)s/g, (whole, key: string) => {
    if (key.startsWith('{')) {
      const name = key.slice(1, -2).toLowerCase();
      const value = key.endsWith('i') ? req.headers[name] : res.getHeader(name);
      return value === undefined ? '-' : String(value);
    }
    return atoms[key] ?? whole;
  });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `10/Oct/2000:13:55:36 +0000` (UTC). */
function clfDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
