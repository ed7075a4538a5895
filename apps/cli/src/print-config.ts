import type { ResolvedConfig } from './resolve.js';

/** The resolved config as JSON; hooks are listed by name (functions do not serialise). */
export function printConfig(config: ResolvedConfig): string {
  const { hooks, ...plain } = config;
  return `${JSON.stringify({ ...plain, hooks: Object.keys(hooks).sort() }, null, 2)}\n`;
}
