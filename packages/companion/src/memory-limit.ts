/**
 * `maxMemory` of a companion, the policy: its process's RSS is sampled every
 * {@link MEMORY_SAMPLE_SECONDS} while it is RUNNING (only when some companion has a
 * limit), and it is restarted when every sample over {@link MEMORY_GRACE_SECONDS} was
 * above the limit. One sample at or below it starts the count again: a spike is tolerated.
 * The same rule as the workers' `--max-memory`.
 */

/** Seconds between two samples. */
export const MEMORY_SAMPLE_SECONDS = 1;
/** Seconds every sample must be above the limit before the companion is restarted. */
export const MEMORY_GRACE_SECONDS = 3;

const MB = 1024 * 1024;

/** The verdict on one sample. */
export interface MemoryVerdict {
  /** Monotonic seconds of the first sample of the run above the limit; undefined: below. */
  since: number | undefined;
  /** Above for long enough: restart it. */
  restart: boolean;
  /** The RSS, whole MB (MiB). */
  rssMb: number;
  /** Seconds it has been above (0 when below). */
  seconds: number;
}

/**
 * One sample: `since` is the previous verdict's (undefined after a sample below, or for a
 * new process), `limitMb` the companion's `maxMemory`.
 */
export function memoryVerdict(
  since: number | undefined,
  now: number,
  rssBytes: number,
  limitMb: number,
): MemoryVerdict {
  const rssMb = Math.round(rssBytes / MB);
  if (rssBytes <= limitMb * MB) return { since: undefined, restart: false, rssMb, seconds: 0 };
  const first = since ?? now;
  const seconds = now - first;
  return { since: first, restart: seconds >= MEMORY_GRACE_SECONDS, rssMb, seconds };
}
