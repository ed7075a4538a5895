export { ConfigError } from './errors.js';
export { type MainContext, main } from './main.js';
export { type ResolvedConfig, resolveConfig } from './resolve.js';
export { type ArbConfig, defineConfig, HOOK_NAMES, type HookName } from './schema.js';
export { version } from './version.js';
