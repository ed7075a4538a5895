import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guardRun } from '@arb/testkit';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUTS = [
  'index.js',
  'index.cjs',
  'index.d.ts',
  'manager-main.js',
  'target-runner.js',
  'guard.js',
  'run-as.js',
];

function mtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** True when every built file is newer than every source file (and the build config). */
function distIsFresh(): boolean {
  const src = join(packageDir, 'src');
  const newestSource = Math.max(
    mtime(join(packageDir, 'tsup.config.ts')),
    ...readdirSync(src).map((f) => mtime(join(src, f))),
  );
  return OUTPUTS.every((f) => mtime(join(packageDir, 'dist', f)) > newestSource);
}

/**
 * Spawned processes (manager, guard, target runner) run the built JS, so build once
 * before the tests, unless dist is already fresh: rebuilding cleans dist, which would
 * briefly pull it from under anyone else using the package at the same time. The teardown
 * fails the run on a process or temp dir a test left behind.
 */
export default function setup(): () => Promise<void> {
  if (!distIsFresh()) execFileSync('npx', ['tsup'], { cwd: packageDir, stdio: 'pipe' });
  return guardRun({ suite: '@arb/companion' });
}
