/**
 * Node entry that runs a `command` companion as another user: `node run-as.js FILE ARGS...`
 * with ARB_COMPANION_UID/ARB_COMPANION_GID set. It switches to those ids with the user's
 * supplementary groups (libuv's spawn `uid`/`gid` would clear them), then runs the
 * command as its child, in its own process group (so the manager's group signals reach
 * it), and exits as the command did: same code, or the same signal.
 *
 * The command is spawned rather than exec'd: `process.execve` is missing before Node 22.15
 * and would hand the program Node's ignored SIGPIPE; a spawn resets every signal.
 */
import { spawn } from 'node:child_process';
import { dropFromEnv } from './drop-privileges.js';

/**
 * Signals that reach the whole group: the command acts on them, this process must not die
 * (nor, for SIGUSR1, open Node's inspector, which a listener prevents).
 */
const FORWARDED: NodeJS.Signals[] = [
  'SIGUSR1',
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR2',
  'SIGWINCH',
  'SIGTTIN',
  'SIGTTOU',
  'SIGALRM',
];

function main(): void {
  const [file, ...args] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node run-as.js FILE [ARGS...]\n');
    process.exit(2);
  }
  try {
    dropFromEnv();
  } catch (err) {
    process.stderr.write(`arb companion: cannot switch user: ${(err as Error).message}\n`);
    process.exit(126);
  }
  process.title = `arb companion ${process.env.ARB_COMPANION_NAME ?? file}`;
  const noop = () => {};
  for (const sig of FORWARDED) process.on(sig, noop);
  const child = spawn(file, args, { stdio: 'inherit' });
  child.on('error', (err) => {
    process.stderr.write(`arb companion: cannot run ${file}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const sig of FORWARDED) process.off(sig, noop);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

main();
