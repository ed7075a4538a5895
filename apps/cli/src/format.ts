/** Text helpers shared by `arb ctl status` and `arb top`. */

/** Rows as aligned columns, two spaces apart; the last column is not padded. */
export function table(rows: string[][]): string {
  return tableLines(rows)
    .map((l) => `${l}\n`)
    .join('');
}

/** {@link table}'s lines, without their newlines. */
export function tableLines(
  rows: string[][],
  rightAligned: ReadonlySet<number> = new Set(),
): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => {
        if (rightAligned.has(i)) return c.padStart(widths[i]!);
        return i === r.length - 1 ? c : c.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd(),
  );
}

/** Seconds as `H:MM:SS`; `-` when not a number. */
export function hms(seconds: unknown): string {
  if (typeof seconds !== 'number') return '-';
  const t = Math.floor(seconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
}

/** Bytes as a size a person reads: `812K`, `48.2M`, `1.2G` (powers of 1024); `-` when unknown. */
export function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 || v >= 100 ? Math.round(v) : v.toFixed(1)}${units[u]}`;
}

/** A CPU percentage: `3.1%`; `-` when unknown. */
export function percent(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? `${n.toFixed(1)}%` : '-';
}

/** Seconds as a duration: `850us`, `12.3ms`, `1.20s`; `-` when unknown. */
export function duration(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  if (n < 0.001) return `${Math.round(n * 1e6)}us`;
  if (n < 1) return `${(n * 1000).toFixed(n < 0.1 ? 1 : 0)}ms`;
  return `${n.toFixed(2)}s`;
}
