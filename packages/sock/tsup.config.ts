import { defineConfig } from 'tsup';

export default defineConfig({
  // log: the logger setup, an entry of its own so that socket users never load pino
  entry: ['src/index.ts', 'src/log.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
