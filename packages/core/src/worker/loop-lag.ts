import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** The delay monitor's sampling period, ms: a libuv timer, no JavaScript runs per sample. */
export const LOOP_LAG_RESOLUTION_MS = 20;

/**
 * A worker's event-loop lag: how late the loop ran a timer due every
 * {@link LOOP_LAG_RESOLUTION_MS}, measured by `perf_hooks.monitorEventLoopDelay` (native,
 * no cost per request). Read once per stats interval.
 */
export class LoopLag {
  private readonly histogram: IntervalHistogram;

  constructor(private readonly resolutionMs = LOOP_LAG_RESOLUTION_MS) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  /**
   * The longest delay since the previous call, seconds, then starts over. The histogram
   * holds the whole period between samples, so the period is taken off: 0 on an idle loop.
   */
  take(): number {
    const h = this.histogram;
    const max = h.count > 0 ? h.max / 1e9 : 0;
    h.reset();
    return Math.max(0, Math.round((max - this.resolutionMs / 1000) * 1e4) / 1e4);
  }

  stop(): void {
    this.histogram.disable();
  }
}
