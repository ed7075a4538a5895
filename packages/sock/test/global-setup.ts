import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Spawned fixtures import the built package, so build it once before the suite.
export default function setup(): void {
  const pkg = fileURLToPath(new URL('..', import.meta.url));
  const tsup = fileURLToPath(new URL('../../../node_modules/.bin/tsup', import.meta.url));
  execFileSync(tsup, ['--silent'], { cwd: pkg, stdio: 'inherit' });
}
