// node:cluster contender. NODE_CLUSTER_SCHED_POLICY=rr|none picks the scheduling
// (read by node at startup). WORKERS workers, each running serve.cjs; the primary
// respawns a worker that dies (what a hand-written cluster script does).
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

if (cluster.isPrimary) {
  const n = Number(process.env.WORKERS || 2);
  cluster.setupPrimary({ exec: path.join(__dirname, 'serve.cjs') });
  let stopping = false;
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('exit', () => {
    if (!stopping) cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    const t = setInterval(() => {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    }, 20);
    setTimeout(() => process.exit(0), 3000).unref();
    t.unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
