import path from 'node:path';
import { parseCompanions } from '@arb/companion';
import { findConfigFile, loadConfigFile } from './config-file.js';

/**
 * The companion socket named by the config file in `cwd` (`companions.socket`, relative
 * to the config's `chdir` as the manager resolves it), as `arb ctl` finds `./arb.ctl`.
 * Undefined without a config file or without a socket in it; throws `ConfigError` (one
 * line, naming the file) when the file cannot be read.
 */
export async function configSocket(cwd: string): Promise<string | undefined> {
  const file = findConfigFile(undefined, cwd);
  if (!file) return undefined;
  const config = await loadConfigFile(file);
  const companions = config.companions;
  if (!companions || typeof companions !== 'object') return undefined;
  const chdir = typeof config.chdir === 'string' ? config.chdir : '.';
  try {
    return parseCompanions(companions, { baseDir: path.resolve(cwd, chdir) }).socket ?? undefined;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
