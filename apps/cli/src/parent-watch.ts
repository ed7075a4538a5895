import { signalOnParentDeath } from '@arb/core';

/**
 * `npx arb ...` runs arb under npm's `sh -c`: a TERM to npx ends npm and that shell, never
 * arb, which would go on serving, orphaned (and `pnpm arb` is the same without `exec` in the
 * script). So a master that a package manager started (npm and pnpm name the script they
 * run in `npm_lifecycle_event`) lives only as long as its parent: once that is gone (the
 * master was re-parented), it stops as on TERM. A supervisor should run the `arb` bin itself
 * (`node_modules/.bin/arb`, or `exec arb` in a script), which gets every signal directly.
 *
 * On Linux with koffi the kernel sends the TERM when the parent dies (`PR_SET_PDEATHSIG`);
 * elsewhere `process.ppid` is checked every `intervalMs`.
 *
 * Not for a master started by an upgrade (`ARB_PID`): its parent is the old master, whose
 * exit is its promotion.
 */
export function stopWithPackageManager(
  env: NodeJS.ProcessEnv,
  stderr: { write(text: string): unknown },
  intervalMs = 500,
): () => void {
  if (!env.npm_lifecycle_event || env.ARB_PID) return () => {};
  const parent = process.ppid;
  let told = false;
  const say = () => {
    if (told) return;
    told = true;
    try {
      stderr.write(
        `arb: the package manager that started arb (pid ${parent}) is gone: stopping (run the arb bin directly under a supervisor)\n`,
      );
    } catch {
      // its terminal may be gone with it
    }
  };
  const gone = () => {
    say();
    process.kill(process.pid, 'SIGTERM');
  };
  if (signalOnParentDeath('SIGTERM')) {
    // the kernel's TERM is the master's usual TERM; this only says why it came
    const tell = () => {
      if (process.ppid !== parent) say();
    };
    process.on('SIGTERM', tell);
    // the parent may have died before the request: then no signal comes
    if (process.ppid !== parent) gone();
    return () => process.off('SIGTERM', tell);
  }
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    gone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
