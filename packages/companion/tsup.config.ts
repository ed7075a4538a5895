import { defineConfig } from 'tsup';

export default defineConfig({
  // index: the library; command: `arb companion ...` alone (a client loads no logger, no
  // manager: docs/BENCHMARKS.md). The others are process entries spawned with `node <file>`
  // (manager-main: the manager; target-runner: a `module:export` companion; guard; run-as:
  // a command companion under another user).
  entry: [
    'src/index.ts',
    'src/command.ts',
    'src/manager-main.ts',
    'src/target-runner.ts',
    'src/guard.ts',
    'src/run-as.ts',
  ],
  format: ['esm', 'cjs'],
  dts: { entry: ['src/index.ts', 'src/command.ts'] },
  clean: true,
  sourcemap: true,
  // import.meta.url in the CJS build (entries.ts locates the process entries with it).
  shims: true,
  target: 'node20',
});
