// A pre-fork server in 40 lines: the master binds and never accepts; two workers adopt the
// listener and serve. Ctrl-C stops everything. Run: node examples/demo.mjs (after a build).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bind, close, handoff } from '@arb/sock';

const address = process.env.BIND ?? `127.0.0.1:${process.env.PORT ?? 8000}`;
const listeners = await bind([address]);
const { stdio, env } = handoff(listeners);
const worker = fileURLToPath(new URL('./demo-worker.mjs', import.meta.url));

const workers = Array.from({ length: Number(process.env.WORKERS ?? 2) }, () =>
  spawn(process.execPath, [worker], {
    stdio: ['ignore', 'inherit', 'inherit', ...stdio],
    env: { ...process.env, ...env },
  }),
);
console.log(
  `master ${process.pid}: ${listeners.map((l) => l.url).join(', ')} (${workers.length} workers)`,
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(
    workers.map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : 0)),
  );
  close(listeners, { unlink: true });
  console.log(`master ${process.pid}: stopped`);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
