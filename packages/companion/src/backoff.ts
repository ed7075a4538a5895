/** Share of a backoff step removed at random, so companions that fail together spread out. */
export const BACKOFF_JITTER = 0.1;

/**
 * Delay in seconds before retry number `step` (1 for the first retry):
 * `base * 2^(step-1)`, capped at `cap`, minus up to 10% jitter. The jitter only ever
 * shortens the delay, so the cap is never exceeded and successive steps still grow
 * (0.9 * 2d > d).
 */
export function backoffDelay(
  step: number,
  base: number,
  cap: number,
  random: () => number = Math.random,
): number {
  if (step < 1 || base <= 0) return 0;
  const raw = base * 2 ** Math.min(step - 1, 52);
  const capped = Math.min(raw, cap);
  return capped * (1 - BACKOFF_JITTER * random());
}
