import { defineConfig } from 'tsup';

export default defineConfig({
  // log: the logger setup, an entry of its own so that socket users never load pino;
  // line-client: all that `arb ctl` and `arb companion` need (a short command loads no more)
  entry: ['src/index.ts', 'src/log.ts', 'src/line-client.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
