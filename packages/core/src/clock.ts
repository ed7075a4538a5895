/**
 * Seconds on the system-wide monotonic clock (CLOCK_MONOTONIC): never jumps with the wall
 * clock, and is the same in every process, which the heartbeat files rely on.
 */
export function monotonic(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}
