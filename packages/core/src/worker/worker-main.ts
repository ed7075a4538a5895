/*
 * The worker process entry (dist/worker-main.js): spawned by the master with the listeners
 * at fd 3.., its heartbeat file after them, an IPC channel, and ARB_WORKER (JSON).
 */
import module from 'node:module';
import { WORKER_ENV, type WorkerPayload } from '../protocol/worker.js';

// Node.js >= 22.1 caches the bytecode of the runtime and the app across boots: a worker
// boots on about 10% less CPU (docs/BENCHMARKS.md). NODE_DISABLE_COMPILE_CACHE=1 turns it off.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const raw = process.env[WORKER_ENV];
if (!raw) {
  process.stderr.write('arb worker: started without ARB_WORKER; run it through the arb master\n');
  process.exit(3);
}
delete process.env[WORKER_ENV];
const payload = JSON.parse(raw) as WorkerPayload;
// Imported after the cache is on, so that the runtime itself is cached.
void import('./runtime.js').then(({ WorkerRuntime }) => new WorkerRuntime(payload).run());
