import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { guardRun } from '@arb/testkit';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Newest modification time under `dir` (files only). */
function newest(dir: string): number {
  let t = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The e2e tests spawn real masters and workers: they need dist/ built from the current
 * sources. Rebuilt only when stale, so that a second run does not wipe dist/ (tsup cleans
 * it) under the feet of a run in progress. The teardown fails the run on a process or temp
 * dir a test left behind.
 */
export default function setup(): () => Promise<void> {
  const built = path.join(pkgDir, 'dist', 'worker-main.js');
  const sources = Math.max(
    newest(path.join(pkgDir, 'src')),
    fs.statSync(path.join(pkgDir, 'tsup.config.ts')).mtimeMs,
    fs.statSync(path.join(pkgDir, 'package.json')).mtimeMs,
  );
  const index = path.join(pkgDir, 'dist', 'index.js');
  const fresh =
    fs.existsSync(built) && fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources;
  if (!fresh) execFileSync('npx', ['tsup', '--silent'], { cwd: pkgDir, stdio: 'inherit' });
  return guardRun({ suite: '@arb/core' });
}
