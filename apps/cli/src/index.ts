import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The version of the `arb` package. */
export const version: string = (require('../package.json') as { version: string }).version;

export { ConfigError } from './errors.js';
export { type MainContext, main } from './main.js';
export { type ResolvedConfig, resolveConfig } from './resolve.js';
export { type ArbConfig, defineConfig, HOOK_NAMES, type HookName } from './schema.js';
