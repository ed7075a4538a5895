// Runs examples/app.mjs with 2 workers on 127.0.0.1:8000 and a unix socket.
//   node packages/core/examples/launch.mjs     (after: pnpm --filter @arb/core build)
//   curl http://127.0.0.1:8000/ ; kill -TTIN <master pid> ; Ctrl-C to stop
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Arbiter } from '@arb/core';

const here = path.dirname(fileURLToPath(import.meta.url));
const arbiter = new Arbiter({
  app: path.join(here, 'app.mjs'),
  bind: ['127.0.0.1:8000', 'unix:/tmp/arb-example.sock'],
  workers: 2,
  timeout: 10,
  gracefulTimeout: 10,
  whenReady: (server) => server.log.info('listeners are bound; workers come next'),
});
arbiter.serving.then((ok) => ok && arbiter.log.info(`serving; master pid ${process.pid}`));
process.exitCode = await arbiter.run();
