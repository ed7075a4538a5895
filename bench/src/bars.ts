// The quality bars of DESIGN.md, checked against what this run measured.
import type { OverheadResults } from './overhead.js';
import type { RecoveryResults } from './recovery.js';
import type { ReloadResults } from './reload.js';
import { table } from './report.js';
import type { CellResult } from './rounds.js';
import { fmt, median } from './util.js';

export interface BarInput {
  matrix?: CellResult[];
  reload?: ReloadResults;
  recovery?: RecoveryResults;
  overhead?: OverheadResults;
}

type Row = [string, string, string];

function ratios(
  m: CellResult[],
  other: string,
  load: 'close' | 'keepalive',
): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const a of m.filter((r) => r.contender === 'arb' && r.load === load)) {
    const o = m.find(
      (r) => r.contender === other && r.workers === a.workers && r.app === a.app && r.load === load,
    );
    if (o) out.push([`w=${a.workers} ${a.app}`, a.rps / o.rps]);
  }
  return out;
}

function ratioRow(label: string, list: Array<[string, number]>, min: number): Row {
  if (!list.length) return [label, 'not measured', '-'];
  const text = list.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  const bad = list.filter(([, v]) => v < min).length;
  return [label, text, bad === 0 ? 'met' : `MISSED in ${bad}/${list.length}`];
}

export function barsReport(x: BarInput): string {
  const rows: Row[] = [];
  if (x.matrix) {
    rows.push(
      ratioRow(
        'Connection: close req/s >= 1.5x node:cluster RR',
        ratios(x.matrix, 'cluster-rr', 'close'),
        1.5,
      ),
    );
    rows.push(
      ratioRow('Connection: close req/s >= 1.5x PM2', ratios(x.matrix, 'pm2', 'close'), 1.5),
    );
    rows.push(
      ratioRow(
        'keep-alive req/s >= node:cluster RR',
        ratios(x.matrix, 'cluster-rr', 'keepalive'),
        1,
      ),
    );
    rows.push(ratioRow('keep-alive req/s >= PM2', ratios(x.matrix, 'pm2', 'keepalive'), 1));
    rows.push(
      ratioRow(
        'req/s >= 0.95x the bare limit',
        [
          ...ratios(x.matrix, 'bare', 'close').map(([k, v]): [string, number] => [`${k} close`, v]),
          ...ratios(x.matrix, 'bare', 'keepalive').map(([k, v]): [string, number] => [
            `${k} keep-alive`,
            v,
          ]),
        ],
        0.95,
      ),
    );
  }
  if (x.reload) {
    const arbRuns = x.reload.runs.filter((r) => r.who === 'arb (HUP)');
    const text = arbRuns
      .map((r) => `${r.load}: ${r.result.failed} failed / ${r.reloads} reloads`)
      .join(', ');
    const fails = arbRuns.filter((r) => r.result.failed > 0 || r.note).length;
    rows.push([
      '0 failed requests across 10 HUP reloads',
      text,
      fails ? `MISSED in ${fails}/${arbRuns.length}` : 'met',
    ]);
    const ups = x.reload.upgrade;
    const skipped = ups.filter((u) => u.skipped);
    if (skipped.length === ups.length)
      rows.push([
        '0 failed requests across a USR2 upgrade',
        `skipped: ${skipped[0]?.skipped}`,
        '-',
      ]);
    else {
      const t = ups.map((u) =>
        u.skipped
          ? `${u.load}: skipped`
          : `${u.load}: ${u.result!.failed} failed${u.note ? ` (${u.note})` : ''}`,
      );
      const bad = ups.filter((u) => !u.skipped && (u.result!.failed > 0 || u.note)).length;
      rows.push([
        '0 failed requests across a USR2 upgrade',
        t.join(', '),
        bad ? `MISSED in ${bad}/${ups.length}` : 'met',
      ]);
    }
  }
  if (x.recovery) {
    const arb = x.recovery.kill.find((k) => k.contender === 'arb');
    const serving = median((arb?.trials ?? []).map((t) => t.serving));
    const boot = median(
      (arb?.trials ?? []).map((t) => t.boot ?? Number.NaN).filter(Number.isFinite),
    );
    rows.push([
      'killed worker replaced and serving < 300 ms + boot',
      `${fmt(serving)} ms to serving, of which ${fmt(boot)} ms boot: ${fmt(serving - boot)} ms beyond boot`,
      serving - boot < 300 ? 'met' : 'MISSED',
    ]);
    const h = x.recovery.hang;
    const worst = Math.max(...h.map((t) => t.killed));
    const to = h[0]?.timeout ?? 0;
    rows.push([
      'hung worker killed within timeout + 1 s',
      `timeout ${to} s: gone after ${h.map((t) => fmt(t.killed)).join(', ')} ms`,
      Number.isFinite(worst) && worst <= (to + 1) * 1000 ? 'met' : 'MISSED',
    ]);
  }
  if (x.overhead) {
    const m = x.overhead.idle.find((i) => i.contender === 'arb');
    if (m) {
      rows.push([
        'idle master < 0.5% CPU (8 workers)',
        `${fmt(m.cpuPercent, 2)}% over ${fmt(m.seconds, 1)} s`,
        m.cpuPercent < 0.5 ? 'met' : 'MISSED',
      ]);
      rows.push(['master RSS < 60 MB', `${fmt(m.rssMB, 1)} MB`, m.rssMB < 60 ? 'met' : 'MISSED']);
    }
  }
  return table(['bar (DESIGN.md)', 'measured', 'verdict'], rows);
}
