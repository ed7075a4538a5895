import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Directory of the built entry files. From dist/*.js or dist/*.cjs it is that directory;
 * when this module runs from src (tests), the built files are in ../dist.
 */
function distDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === 'src' ? join(here, '..', 'dist') : here;
}

/** Absolute path of the manager process entry (run it with `node`). */
export function managerEntry(): string {
  return join(distDir(), 'manager-main.js');
}

/** Absolute path of the node entry that runs a `module:export` target companion. */
export function targetRunnerEntry(): string {
  return join(distDir(), 'target-runner.js');
}

/** Absolute path of the guard that kills companions if the manager dies. */
export function guardEntry(): string {
  return join(distDir(), 'guard.js');
}

/** Absolute path of the node entry that runs a `command` companion as another user. */
export function runAsEntry(): string {
  return join(distDir(), 'run-as.js');
}
