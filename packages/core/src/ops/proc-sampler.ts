import { cpuPercent, type ProcStats, readProcStats } from '@arb/sock';

/** One process's figures for `arb ctl status`, `arb top` and the metrics. */
export interface ProcFigures {
  rssBytes: number;
  /** CPU time used so far, seconds. */
  cpuSeconds: number;
  /**
   * Percent of one core since the previous look (about a second before); on the first look
   * at a process, its average since it started.
   */
  cpuPercent: number;
}

/** A process to look at, and how long it has run (seconds): the CPU % of a first look. */
export interface SampleTarget {
  pid: number;
  uptime: number;
}

/** Looks closer together than this reuse the previous reading: about one sample a second. */
export const SAMPLE_MIN_INTERVAL_SECONDS = 0.8;

/** A reading not renewed for this long is dropped (its process is gone, or no one looks). */
export const SAMPLE_FORGET_SECONDS = 30;

interface Reading {
  stats: ProcStats;
  at: number;
  cpuPercent: number;
}

/**
 * RSS and CPU of the master's processes, read from `/proc` only when someone looks (a
 * `status` request, a metrics scrape): no timer, so an unwatched master reads nothing.
 * Keeps the previous reading of each pid it was last asked about, for the CPU %.
 */
export class ProcSampler {
  private readings = new Map<number, Reading>();

  constructor(
    /** Monotonic seconds. */
    private readonly now: () => number,
    private readonly read: (pid: number) => ProcStats | undefined = readProcStats,
  ) {}

  /** The figures of each target that could be read. */
  look(targets: readonly SampleTarget[]): Map<number, ProcFigures> {
    const now = this.now();
    const next = new Map<number, Reading>();
    for (const [pid, r] of this.readings) {
      if (now - r.at < SAMPLE_FORGET_SECONDS) next.set(pid, r);
    }
    const out = new Map<number, ProcFigures>();
    for (const { pid, uptime } of targets) {
      const prev = this.readings.get(pid);
      let reading = prev;
      if (!prev || now - prev.at >= SAMPLE_MIN_INTERVAL_SECONDS) {
        const stats = this.read(pid);
        if (!stats) {
          next.delete(pid);
          continue;
        }
        // a pid reused by another process would show its CPU time going backwards
        const percent =
          prev && stats.cpuSeconds >= prev.stats.cpuSeconds
            ? cpuPercent(prev.stats, stats, now - prev.at)
            : uptime > 0
              ? (stats.cpuSeconds / uptime) * 100
              : 0;
        reading = { stats, at: now, cpuPercent: Math.round(percent * 10) / 10 };
      }
      if (!reading) continue;
      next.set(pid, reading);
      out.set(pid, {
        rssBytes: reading.stats.rssBytes,
        cpuSeconds: reading.stats.cpuSeconds,
        cpuPercent: reading.cpuPercent,
      });
    }
    this.readings = next;
    return out;
  }
}
