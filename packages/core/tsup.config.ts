import { defineConfig } from 'tsup';

export default defineConfig({
  // the worker entry is spawned as a file of its own: dist/worker-main.js
  entry: { index: 'src/index.ts', 'worker-main': 'src/worker/worker-main.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url in the CJS build (the worker entry is found relative to the module)
  shims: true,
});
