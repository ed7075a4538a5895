import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './examples.js';
import { npx } from './npm.js';

/** The published packages, by directory. Everything else in the workspace is private. */
export const PUBLISHED = ['packages/sock', 'packages/core', 'packages/companion', 'apps/cli'];

export interface Packed {
  dir: string;
  name: string;
  tarball: string;
  /** The paths in the tarball, without the leading `package/`. */
  files: string[];
  /** package.json as packed (workspace: ranges rewritten). */
  manifest: Record<string, unknown> & { name: string; version: string };
}

const pnpmSpec = (): string => {
  const root = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  return root.packageManager as string; // pnpm@x.y.z, the repository's pinned pnpm
};

/** `pnpm pack` of each published package into `dest`, as a release would make them. */
export async function packAll(dest: string): Promise<Packed[]> {
  return Promise.all(
    PUBLISHED.map(async (dir) => {
      const cwd = path.join(REPO, dir);
      const { name, version } = JSON.parse(fs.readFileSync(path.join(cwd, 'package.json'), 'utf8'));
      await npx(['--yes', pnpmSpec(), 'pack', '--pack-destination', dest], cwd);
      // pnpm's name for it: @scope/name@1.2.3 -> scope-name-1.2.3.tgz
      const tarball = path.join(
        dest,
        `${(name as string).replace(/^@/, '').replace('/', '-')}-${version}.tgz`,
      );
      if (!fs.existsSync(tarball)) throw new Error(`pnpm pack of ${dir} made no ${tarball}`);
      const list = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' });
      const files = list
        .split('\n')
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, ''));
      const manifest = JSON.parse(
        execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
      );
      return { dir, name, tarball, files, manifest };
    }),
  );
}
