/*
 * The worker process entry (dist/worker-main.js): spawned by the master with the listeners
 * at fd 3.., its heartbeat file after them, an IPC channel, and ARB_WORKER (JSON).
 */
import { WORKER_ENV, type WorkerPayload } from '../protocol/worker.js';
import { WorkerRuntime } from './runtime.js';

const raw = process.env[WORKER_ENV];
if (!raw) {
  process.stderr.write('arb worker: started without ARB_WORKER; run it through the arb master\n');
  process.exit(3);
}
delete process.env[WORKER_ENV];
const payload = JSON.parse(raw) as WorkerPayload;
void new WorkerRuntime(payload).run();
