import { createRequire } from 'node:module';

/**
 * libc, reached through `koffi` (an FFI with prebuilt binaries shipped inside npm packages,
 * no compiler needed): the few system calls Node core does not offer (sd_notify's datagram,
 * waitid and prctl for PID 1 duties). `koffi` is an optional dependency: without it, or off
 * Linux, `loadLibc` says why and every caller falls back to doing nothing.
 */

/** The little of koffi's API used here (it is an optional dependency: no type import). */
export interface KoffiLib {
  func(signature: string): (...args: unknown[]) => unknown;
}
interface Koffi {
  load(name: string): KoffiLib;
  errno(): number;
}

/** libc, and the `errno` of the last call made through it (0 when unknown). */
export interface Libc {
  lib: KoffiLib;
  errno(): number;
}

let cached: { libc: Libc } | { error: string } | undefined;

/** libc through koffi, or the reason (one sentence) it is not usable. Loaded once. */
export function loadLibc(): { libc: Libc } | { error: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    cached = { error: `only supported on Linux (this is ${process.platform})` };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as Koffi;
    let lib: KoffiLib | undefined;
    let lastErr: unknown;
    for (const name of [
      'libc.so.6',
      `libc.musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`,
    ]) {
      try {
        lib = koffi.load(name);
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!lib) throw lastErr;
    const errno = () => {
      try {
        return koffi.errno();
      } catch {
        return 0;
      }
    };
    cached = { libc: { lib, errno } };
  } catch (err) {
    cached = { error: `the optional dependency koffi is not usable: ${(err as Error).message}` };
  }
  return cached;
}
