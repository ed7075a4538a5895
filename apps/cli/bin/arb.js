#!/usr/bin/env node
// The `arb` command. A committed launcher rather than dist/bin.js itself, so that the
// package manager can link the command before the first build.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('arb: not built yet: run `pnpm build` in the repository first\n');
  process.exit(1);
}
await import(entry.href);
