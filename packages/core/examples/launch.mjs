// launch.mjs: `node launch.mjs` next to app.mjs, then `curl 127.0.0.1:8000` (PORT=... for
// another port); `kill -TTIN <master pid>` adds a worker; Ctrl-C or TERM stops everything.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Arbiter } from '@arb/core';

const here = path.dirname(fileURLToPath(import.meta.url));
const arbiter = new Arbiter({
  app: path.join(here, 'app.mjs'), // export default (req, res) => res.end(`hello from ${process.pid}\n`)
  bind: [`127.0.0.1:${process.env.PORT ?? 8000}`, 'unix:./app.sock'],
  workers: 2,
  timeout: 10,
  gracefulTimeout: 10,
  whenReady: (server) => server.log.info('listeners are bound; workers come next'),
});
arbiter.serving.then((ok) => ok && arbiter.log.info(`serving; master pid ${process.pid}`));
process.exitCode = await arbiter.run();
