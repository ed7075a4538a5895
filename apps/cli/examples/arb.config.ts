// arb.config.ts: a typed config file; hooks get their real signatures.
import { defineConfig } from 'arb';

export default defineConfig({
  app: './app.mjs',
  workers: 2,
  postWorkerInit(worker) {
    console.log(`worker ${worker.pid} (age ${worker.age}) ready`);
  },
});
