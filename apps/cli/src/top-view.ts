import { bytes, duration, hms, percent, tableLines } from './format.js';

type Obj = Record<string, unknown>;

/** The screen's size, characters. */
export interface ScreenSize {
  columns: number;
  rows: number;
}

/**
 * One `arb top` frame from a `status` reply: the master, each worker, each companion, as
 * plain lines (no escape sequences), cut to `size` when given. `error` replaces the
 * figures when the master could not be asked (the last figures are kept, marked stale).
 */
export function topLines(res: Obj, size?: ScreenSize, error?: string): string[] {
  const m = (res.master ?? {}) as Obj;
  const workers = (res.workers ?? []) as Obj[];
  const lines: string[] = [];
  lines.push(
    `arb top - master ${m.pid ?? '-'} (${m.proc_name ?? '?'}), up ${hms(m.uptime)}, generation ${m.generation ?? '-'}, reload ${m.reload ?? '-'}`,
  );
  const live = workers.filter((w) => w.state === 'booting' || w.state === 'ready').length;
  const rps = workers.reduce(
    (a, w) => a + (typeof w.req_per_sec === 'number' ? w.req_per_sec : 0),
    0,
  );
  lines.push(
    `workers ${live}/${m.workers_target ?? '-'}, ${fixed(rps)} req/s; master RSS ${bytes(m.rss_bytes)}, CPU ${percent(m.cpu_percent)}`,
  );
  if (error) lines.push(`! ${error}`);
  lines.push('');
  const workerRows = tableLines(
    [
      ['PID', 'AGE', 'STATE', 'UPTIME', 'REQ/S', 'P50', 'P99', 'RSS', 'CPU', 'LAG', 'HEARTBEAT'],
      ...workers.map((w) => [
        String(w.pid ?? '-'),
        String(w.age ?? '-'),
        String(w.state ?? '-'),
        hms(w.uptime),
        fixed(w.req_per_sec),
        duration(w.p50),
        duration(w.p99),
        bytes(w.rss_bytes),
        percent(w.cpu_percent),
        duration(w.lag),
        typeof w.last_heartbeat === 'number' ? `${w.last_heartbeat.toFixed(1)}s` : '-',
      ]),
    ],
    new Set([4, 5, 6, 7, 8, 9, 10]),
  );
  const companions = res.companions;
  const companionRows: string[] = [];
  if (Array.isArray(companions) && companions.length > 0) {
    companionRows.push(
      '',
      ...tableLines(
        [
          ['COMPANION', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'RSS', 'CPU'],
          ...(companions as Obj[]).map((c) => [
            String(c.name),
            String(c.state),
            String(c.pid ?? '-'),
            hms(c.uptime ?? undefined),
            String(c.restarts ?? 0),
            bytes(c.rss_bytes),
            percent(c.cpu_percent),
          ]),
        ],
        new Set([4, 5, 6]),
      ),
    );
  } else if (companions && typeof companions === 'object' && !Array.isArray(companions)) {
    companionRows.push('', `companions: ${String((companions as Obj).error)}`);
  }
  if (!size) return [...lines, ...workerRows, ...companionRows];
  // a short screen: the header and the companions stay, workers past the room are counted
  const footer = 1;
  const room = size.rows - lines.length - companionRows.length - footer;
  let shown = workerRows;
  if (workerRows.length > Math.max(room, 2)) {
    const keep = Math.max(room - 1, 1);
    shown = [...workerRows.slice(0, keep), `... ${workerRows.length - keep} more workers`];
  }
  const all = [...lines, ...shown, ...companionRows].slice(0, Math.max(size.rows - footer, 1));
  return all.map((l) => cut(l, size.columns));
}

function fixed(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(1) : '-';
}

function cut(line: string, columns: number): string {
  return line.length > columns ? line.slice(0, Math.max(columns, 1)) : line;
}
