import { defineConfig } from 'arb';

export default defineConfig({
  app: './app.mjs',
  bind: '127.0.0.1:8000',
  workers: 2,
  timeout: 30,
  gracefulTimeout: 10,
  companions: {
    socket: './companions.sock',
    restartDelay: 1,
    workers: [{ name: 'jobs', target: './jobs.mjs:run', stopTimeout: 5 }],
  },
  whenReady() {
    console.log('arb: ready; try curl 127.0.0.1:8000, kill -HUP / -TTIN / -TTOU the master');
  },
});
