import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { guardRun } from '@arb/testkit';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));

/** Every file and socket under examples/, node_modules aside. */
function sourceEntries(dir = EXAMPLES): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceEntries(p));
    else out.push(p);
  }
  return out;
}

/**
 * The teardown fails the run on a process or temp dir a test left behind, and on anything
 * written into examples/ (the example tests run copies of the examples, never the sources).
 */
export default function setup(): () => Promise<void> {
  const before = new Set(sourceEntries());
  return guardRun({
    suite: 'arb',
    extraCheck: () => {
      const added = sourceEntries().filter((p) => !before.has(p));
      for (const p of added) fs.rmSync(p, { force: true });
      return added.map((p) => `written into the source tree: ${p}`);
    },
  });
}
