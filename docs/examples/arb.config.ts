// arb.config.ts
import { defineConfig } from 'arb';

export default defineConfig({
  app: './app.mjs',
  bind: ['127.0.0.1:8000', 'unix:./run/app.sock'],
  workers: 4,
  timeout: 30,
  maxRequests: 10_000,
  maxRequestsJitter: 500,
  companions: {
    socket: './run/companions.sock',
    workers: [{ name: 'jobs', target: './jobs.mjs:run' }],
  },
  postWorkerInit(worker) {
    console.log('worker ready', worker.pid);
  },
});
