// Markdown tables from the measured results (printed and written under bench/results/).
import type { CellResult } from './rounds.js';
import { fmt } from './util.js';

export function table(header: string[], rows: (string | number)[][]): string {
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

function shareText(share: number[]): string {
  if (share.length <= 1) return '-';
  const min = share[share.length - 1]!;
  const ratio = min > 0 ? (share[0]! / min).toFixed(2) : 'inf';
  return `${share.map((s) => s.toFixed(0)).join('/')} (max/min ${ratio})`;
}

/** One table per (workers, app, load): req/s, p50, p99, failures, arb/x, balance. */
export function matrixReport(results: CellResult[]): string {
  const out: string[] = [];
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const k = `${r.workers} workers, ${r.app === 'hello' ? 'hello world' : '~1 ms CPU'}, ${
      r.load === 'close' ? 'Connection: close' : 'keep-alive'
    }`;
    const list = groups.get(k) ?? [];
    list.push(r);
    groups.set(k, list);
  }
  for (const [title, list] of groups) {
    const arb = list.find((r) => r.contender === 'arb');
    out.push(`#### ${title}\n`);
    out.push(
      table(
        [
          'contender',
          'req/s (median)',
          'p50 ms',
          'p99 ms',
          'failed',
          'arb / this',
          'per-worker share %',
        ],
        list.map((r) => [
          r.contender,
          fmt(r.rps),
          fmt(r.p50, 2),
          fmt(r.p99, 2),
          r.failed,
          arb ? fmt(arb.rps / r.rps, 2) : '-',
          shareText(r.share),
        ]),
      ),
    );
    const rounds = list[0]?.samples.length ?? 0;
    out.push(
      `\nreq/s per round: ${list
        .map((r) => `${r.contender} ${r.samples.map((s) => fmt(s.rps)).join(', ')}`)
        .join('; ')} (${rounds} rounds)\n`,
    );
  }
  return out.join('\n');
}

/** arb's ratio to each contender per cell, as a compact summary. */
export function ratioSummary(results: CellResult[]): string {
  const cells = new Map<string, CellResult[]>();
  for (const r of results) {
    const k = `w=${r.workers} ${r.app} ${r.load}`;
    const l = cells.get(k) ?? [];
    l.push(r);
    cells.set(k, l);
  }
  const contenders = [...new Set(results.map((r) => r.contender))].filter((c) => c !== 'arb');
  const rows: string[][] = [];
  for (const [k, list] of cells) {
    const arb = list.find((r) => r.contender === 'arb');
    rows.push([
      k,
      ...contenders.map((c) => {
        const x = list.find((r) => r.contender === c);
        return arb && x ? fmt(arb.rps / x.rps, 2) : '-';
      }),
    ]);
  }
  return table(['cell', ...contenders.map((c) => `arb / ${c}`)], rows);
}
