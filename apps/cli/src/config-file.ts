import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './errors.js';

/** Looked for in the working directory, in this order, when no `-c` is given. */
export const CONFIG_NAMES = [
  'arb.config.ts',
  'arb.config.mts',
  'arb.config.js',
  'arb.config.mjs',
  'arb.config.cjs',
  'arb.config.json',
] as const;

/** The config file to use: `-c`'s, else the one in `cwd`, else none. */
export function findConfigFile(explicit: string | undefined, cwd: string): string | undefined {
  if (explicit !== undefined) {
    const abs = path.resolve(cwd, explicit);
    if (!fs.existsSync(abs))
      throw new ConfigError('command line', [`config file ${explicit} not found`]);
    return abs;
  }
  const found = CONFIG_NAMES.map((n) => path.join(cwd, n)).filter((p) => fs.existsSync(p));
  if (found.length > 1) {
    throw new ConfigError(cwd, [
      `several config files (${found.map((f) => path.basename(f)).join(', ')}); keep one or pick one with -c`,
    ]);
  }
  return found[0];
}

const requireCache = createRequire(import.meta.url).cache;
let generation = 0;

function isTopLevelAwait(err: unknown): boolean {
  return /await is only valid|top-level await/i.test(String((err as Error)?.message));
}
/** Modules a config load put in Node's require cache (jiti requires plain CJS natively). */
const loadedByConfig = new Set<string>();

/**
 * Loads a config file afresh (a reload must see the new contents, so nothing is cached):
 * JSON, or a JS/TS module whose default export (or `module.exports`) is the config object
 * or a function (possibly async) returning it.
 */
export async function loadConfigFile(file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    if (file.endsWith('.json')) value = JSON.parse(fs.readFileSync(file, 'utf8'));
    else {
      for (const key of loadedByConfig) delete requireCache[key];
      loadedByConfig.clear();
      const before = new Set(Object.keys(requireCache));
      // jiti's synchronous path transpiles ESM and TS itself; its async path would hand .mjs
      // files to Node's ESM loader, whose cache a reload could never clear.
      // Loaded only for JS/TS config files: it is a large module for the master to carry.
      const { createJiti } = await import('jiti');
      const jiti = createJiti(import.meta.url, {
        moduleCache: false,
        fsCache: false,
        interopDefault: true,
      });
      let mod: unknown;
      try {
        mod = jiti(file);
      } catch (err) {
        if (!isTopLevelAwait(err)) throw err;
        // A top-level await needs a real module evaluation: jiti's async path transpiles a
        // TypeScript file afresh each time; Node's loader caches an .mjs/.js file by URL,
        // so each load gets a URL of its own.
        mod = /\.[cm]?ts$/.test(file)
          ? await jiti.import(file)
          : await import(`${pathToFileURL(file).href}?arb-config=${++generation}`);
      } finally {
        for (const key of Object.keys(requireCache)) {
          if (!before.has(key) && !key.includes(`${path.sep}node_modules${path.sep}`))
            loadedByConfig.add(key);
        }
      }
      // An ES module's namespace has `default`; a CommonJS module is its exports object. The
      // own property, not `.default`: jiti's interop answers a null default with the module.
      const own =
        mod && typeof mod === 'object'
          ? Object.getOwnPropertyDescriptor(mod, 'default')
          : undefined;
      if (own) {
        value = own.value;
        if (value === null || value === undefined) {
          throw new ConfigError(file, [
            `the default export is ${value}: export default defineConfig({...})`,
          ]);
        }
      } else value = mod;
      if (typeof value === 'function') value = await (value as () => unknown)();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(file, [`cannot load: ${message}`]);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(file, [
      'must export a config object (export default defineConfig({...}))',
    ]);
  }
  return value as Record<string, unknown>;
}
