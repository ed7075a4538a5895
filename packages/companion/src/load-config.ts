import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const requireForCache = createRequire(import.meta.url);
let generation = 0;

function pick(value: unknown): unknown {
  if (value && typeof value === 'object' && 'companions' in value) {
    return (value as { companions: unknown }).companions;
  }
  return value;
}

/**
 * Load a companions config file afresh (never from a module cache), for start-up and for
 * every reread. `.json` is parsed; `.js`, `.mjs`, `.cjs` are imported and may export
 * (as default or as `companions`) the companions object, `{ companions }` (a whole arb
 * config), or a function (sync or async) returning either. Only the file itself is
 * re-evaluated; modules it imports stay cached.
 */
export async function loadCompanionsFile(file: string): Promise<unknown> {
  const abs = resolve(file);
  const ext = extname(abs);
  if (ext === '.json') return pick(JSON.parse(readFileSync(abs, 'utf8')));
  if (ext !== '.js' && ext !== '.mjs' && ext !== '.cjs') {
    throw new Error(
      `unsupported config file type ${ext || '(none)'}: use .json, .js, .mjs or .cjs`,
    );
  }
  // CommonJS files are cached by filename even when imported with a new query string.
  delete requireForCache.cache[abs];
  const ns = (await import(`${pathToFileURL(abs).href}?arb-reread=${++generation}`)) as Record<
    string,
    unknown
  >;
  let value: unknown = ns.companions ?? ns.default ?? ns;
  if (typeof value === 'function') value = await (value as () => unknown)();
  return pick(value);
}
