import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { guardRun } from '@arb/testkit';

// Spawned fixtures import the built package, so build it once before the suite. The
// teardown fails the run on a process or temp dir a test left behind.
export default function setup(): () => Promise<void> {
  const pkg = fileURLToPath(new URL('..', import.meta.url));
  const tsup = fileURLToPath(new URL('../../../node_modules/.bin/tsup', import.meta.url));
  execFileSync(tsup, ['--silent'], { cwd: pkg, stdio: 'inherit' });
  return guardRun({ suite: '@arb/sock' });
}
