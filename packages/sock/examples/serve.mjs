// serve.mjs: `node serve.mjs`, then `curl 127.0.0.1:8000` (PORT=... for another port);
// Ctrl-C or TERM stops it. The same file is the master (it binds, spawns and never accepts)
// and, started with ARB_FD set, a worker.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { adopt, bind, close, handoff, listenOn } from '@arb/sock';

if (process.env.ARB_FD) {
  // worker: a server listens only once, so one http.Server per adopted listener
  const servers = [];
  for (const listener of adopt()) {
    const server = http.createServer((_req, res) => res.end(`hello from ${process.pid}\n`));
    await listenOn(server, listener); // = server.listen({ fd: listener.fd, backlog })
    servers.push(server);
  }
  process.on('SIGINT', () => {}); // Ctrl-C reaches the whole group: the master decides
  process.on('SIGTERM', () => {
    for (const server of servers) server.close().closeIdleConnections();
  });
} else {
  // master: bind without listening and hand both sockets to 2 workers (their fd 3 and 4)
  const listeners = await bind([`127.0.0.1:${process.env.PORT ?? 8000}`, 'unix:./app.sock']);
  const { stdio, env } = handoff(listeners); // env: ARB_FD=3,4 ARB_LISTENERS ARB_BACKLOG
  const workers = [1, 2].map(() =>
    spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      stdio: ['ignore', 'inherit', 'inherit', ...stdio],
      env: { ...process.env, ...env },
    }),
  );
  console.log(`master ${process.pid}: ${listeners.map((l) => l.url).join(' ')}`);
  const exited = (w) => w.exitCode ?? w.signalCode ?? new Promise((r) => w.once('exit', r));
  const stop = async () => {
    for (const worker of workers) worker.kill('SIGTERM');
    await Promise.all(workers.map(exited));
    close(listeners, { unlink: true }); // removes ./app.sock, which this process created
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
