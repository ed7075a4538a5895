/**
 * Node entry for a `target` companion: imports `module:export` and calls it. Spawned by
 * the manager with env ARB_COMPANION_TARGET (`/abs/module.js:export` or `pkg:export`),
 * ARB_COMPANION_NAME and ARB_COMPANION_MANAGER_PID.
 *
 * The export is called with `{ name }`. While its promise is pending the process stays
 * up, even with nothing else on the event loop (a run() that only awaits a signal is
 * common). Once it returns or resolves, the process lives on as long as the work it
 * started keeps the event loop busy, then exits 0; a throw or rejection exits 1. If the manager disappears (ppid changes), the
 * companion's process group gets its stop signal and, 1 s later, SIGKILL.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dropFromEnv } from './drop-privileges.js';
import { splitTarget } from './target.js';

const PARENT_POLL_MS = 250;

function watchManager(managerPid: number, stopSignal: NodeJS.Signals): void {
  const timer = setInterval(() => {
    if (process.ppid === managerPid) return;
    clearInterval(timer);
    try {
      process.kill(-process.pid, stopSignal);
    } catch {
      process.kill(process.pid, stopSignal);
    }
    setTimeout(() => {
      try {
        process.kill(-process.pid, 'SIGKILL');
      } finally {
        process.exit(1);
      }
    }, 1000).unref();
  }, PARENT_POLL_MS);
  // Never keep a finished companion alive just to watch.
  timer.unref();
}

async function importTarget(spec: string): Promise<Record<string, unknown>> {
  if (isAbsolute(spec)) return import(pathToFileURL(spec).href);
  try {
    // Bare specifiers resolve from the companion's cwd (its node_modules), like `node -e`.
    const resolved = createRequire(join(process.cwd(), 'noop.js')).resolve(spec);
    return import(pathToFileURL(resolved).href);
  } catch {
    return import(spec);
  }
}

async function main(): Promise<void> {
  const target = process.env.ARB_COMPANION_TARGET;
  const name = process.env.ARB_COMPANION_NAME ?? 'companion';
  if (!target) throw new Error('ARB_COMPANION_TARGET is not set');
  // Before anything of the companion's is loaded: it never runs with the manager's ids.
  dropFromEnv();
  process.title = `arb companion ${name}`;
  const managerPid = Number(process.env.ARB_COMPANION_MANAGER_PID ?? 0);
  if (managerPid > 0) {
    if (process.ppid !== managerPid) process.exit(0); // manager died while spawning us
    watchManager(
      managerPid,
      (process.env.ARB_COMPANION_STOP_SIGNAL ?? 'SIGTERM') as NodeJS.Signals,
    );
  }
  // Never let the manager's housekeeping variables leak further down.
  delete process.env.ARB_COMPANION_TARGET;
  delete process.env.ARB_COMPANION_STOP_SIGNAL;

  const { module, exportName } = splitTarget(target);
  const ns = await importTarget(module);
  let fn = ns[exportName];
  if (fn === undefined && ns.default && typeof ns.default === 'object') {
    // A CommonJS module's exports arrive as the default export.
    fn = (ns.default as Record<string, unknown>)[exportName];
  }
  if (typeof fn !== 'function') {
    throw new Error(`companion target ${target}: export "${exportName}" is not a function`);
  }
  // A pending promise does not keep Node alive; this timer does, until run() settles.
  const hold = setInterval(() => {}, 1 << 30);
  try {
    await (fn as (ctx: { name: string }) => unknown)({ name });
  } finally {
    clearInterval(hold);
  }
}

main().catch((err: unknown) => {
  const name = process.env.ARB_COMPANION_NAME ?? 'companion';
  process.stderr.write(
    `${JSON.stringify({ level: 50, proc: 'companion', companion: name, pid: process.pid, msg: `companion ${name} crashed`, err: String((err as Error)?.stack ?? err) })}\n`,
  );
  process.exit(1);
});
