import path from 'node:path';
import type { AppFailure } from '@arb/core';

// How `arb` tells a person why it could not start: one line that names the culprit, no
// stack (the master's log, when it has one, keeps the details).

/** Errors of @arb/sock and @arb/core that carry everything the user needs in their message. */
const ONE_LINERS = new Set([
  'AddressError',
  'InheritError',
  'ReusePortError',
  'PidfileError',
  'SettingError',
  'DevReloadError',
]);

/**
 * The lines for an error that stopped the master before it started, or undefined for an
 * error `arb` does not know (the master logs it, stack and all).
 */
export function startErrorLines(err: unknown, cwd: string): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { address?: string; reason?: string; code?: string };
  if (e.name === 'AppLoadError') {
    const { thrown, where } = err as Error & Pick<AppFailure, 'thrown' | 'where'>;
    return appFailureLines({ message: err.message, thrown, where }, cwd);
  }
  if (e.code === 'ERR_ARB_BIND' && e.address && e.reason) {
    return `arb: cannot bind ${e.address}: ${e.reason}\n`;
  }
  if (ONE_LINERS.has(e.name)) return `arb: ${err.message.split('\n')[0]}\n`;
  return undefined;
}

/**
 * Why the app could not be loaded: `arb: app.mjs:2:5: SyntaxError: Unexpected end of input`
 * and, for a syntax error, the line with a caret under the column; for a throw, one line at
 * the place it threw; else the loader's own message.
 */
export function appFailureLines(failure: AppFailure, cwd: string): string {
  const { thrown, where } = failure;
  if (!thrown || !where) return `arb: ${failure.message}\n`;
  const file = path.relative(cwd, where.file) || where.file;
  const place = `${file}:${where.line}${where.column ? `:${where.column}` : ''}`;
  let out = `arb: ${place}: ${thrown}\n`;
  if (thrown.startsWith('SyntaxError') && where.text !== undefined && where.column) {
    // the caret keeps the line's tabs, so it lands under the column on any tab width
    const pad = where.text.slice(0, where.column - 1).replace(/[^\t]/g, ' ');
    out += `    ${where.text}\n    ${pad}^\n`;
  }
  return out;
}
