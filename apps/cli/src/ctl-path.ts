import path from 'node:path';

/** The master control socket when `ctl.socket` is not set: `./arb.ctl`, like gunicorn's `./gunicorn.ctl`. */
export const DEFAULT_CTL_SOCKET = 'arb.ctl';
/** `ctl.socket` value that turns the control socket off. */
export const NO_CTL_SOCKET = 'none';

/** The path `arb ctl` and the master agree on: `ARB_CTL_SOCKET`/`--ctl-socket`, else `./arb.ctl`. */
export function ctlSocketPath(value: string | undefined, cwd: string): string | undefined {
  const v = value ?? DEFAULT_CTL_SOCKET;
  if (v === NO_CTL_SOCKET) return undefined;
  return path.resolve(cwd, v);
}
