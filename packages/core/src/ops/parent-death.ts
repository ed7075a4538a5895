import { constants } from 'node:os';
import { loadLibc } from './libc.js';

const PR_SET_PDEATHSIG = 1;

/**
 * Asks the kernel to send `signal` to this process when its parent dies
 * (`prctl(PR_SET_PDEATHSIG)`, Linux, through the optional koffi): an event, not a watch on
 * `process.ppid`. False when that is not available; the caller then watches by itself.
 */
export function signalOnParentDeath(signal: NodeJS.Signals): boolean {
  const loaded = loadLibc();
  if ('error' in loaded) return false;
  const number = constants.signals[signal];
  if (number === undefined) return false;
  try {
    const prctl = loaded.libc.lib.func(
      'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
    );
    return (prctl(PR_SET_PDEATHSIG, number, 0, 0, 0) as number) === 0;
  } catch {
    return false;
  }
}
