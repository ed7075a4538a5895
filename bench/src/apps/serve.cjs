// A plain server for the contenders that are not arb (single process, node:cluster
// workers, PM2 instances, the bare limit's workers). PORT: listen on 127.0.0.1:PORT;
// BENCH_FD: listen on an inherited fd instead. After listening it writes
// BENCH_STATS_DIR/ready-<pid> so the harness knows it serves.
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const handler = require('./handler.cjs');

const server = http.createServer(handler);
server.keepAliveTimeout = 5000;
const onListen = () => {
  if (process.env.BENCH_STATS_DIR) {
    fs.writeFileSync(path.join(process.env.BENCH_STATS_DIR, `ready-${process.pid}`), '1');
  }
  if (process.send) process.send({ type: 'bench-ready', pid: process.pid });
};
if (process.env.BENCH_FD) {
  server.listen({ fd: Number(process.env.BENCH_FD), backlog: 2048 }, onListen);
} else {
  server.listen({ port: Number(process.env.PORT), host: '127.0.0.1', backlog: 2048 }, onListen);
}
const stop = () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
