// The limit: a master that binds 127.0.0.1:PORT without listening (the same helper
// node:cluster uses for shared handles), spawns WORKERS children with the socket at
// fd 3, and does nothing else (no supervision, no respawn, no heartbeat).
'use strict';
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const port = Number(process.env.PORT);
const n = Number(process.env.WORKERS || 2);
const handle = net._createServerHandle('127.0.0.1', port, 4, undefined, 0);
if (typeof handle === 'number') throw new Error(`bind failed: ${handle}`);
const children = [];
for (let i = 0; i < n; i++) {
  children.push(
    spawn(process.execPath, [path.join(__dirname, 'serve.cjs')], {
      stdio: ['ignore', 'inherit', 'inherit', handle.fd],
      env: { ...process.env, BENCH_FD: '3' },
    }),
  );
}
const stop = () => {
  for (const c of children) c.kill('SIGTERM');
  let left = children.length;
  for (const c of children) c.once('exit', () => --left === 0 && process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
