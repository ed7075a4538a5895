import fs from 'node:fs';
import path from 'node:path';
import type { MainContext } from './main.js';
import { parseSubcommand, UsageError } from './subcommand.js';

/**
 * `arb upgrade --pid FILE [--timeout S]`: the whole USR2 upgrade in one step, driven from
 * outside with the documented signals and pidfiles (docs/UPGRADES.md):
 *
 * 1. USR2 to the master named in FILE: it starts a new master on the same sockets;
 * 2. wait for `FILE.2`: a re-exec'd master writes it once its workers serve;
 * 3. WINCH then TERM to the old master: its workers drain, it exits without unlinking
 *    the sockets;
 * 4. wait until the new master has promoted itself (FILE holds its pid).
 *
 * If the new master exits or does not serve within the timeout, it is stopped (TERM) and
 * the old master keeps serving: exit 1. Exit 0 on success, 2 on a usage error.
 */
export async function runUpgradeCommand(
  argv: readonly string[],
  ctx: MainContext,
): Promise<number> {
  let parsed: ReturnType<typeof parseSubcommand<{ pid?: string; timeout?: string }>>;
  try {
    parsed = parseSubcommand(
      {
        pid: { type: 'string', short: 'p', value: 'file' },
        timeout: { type: 'string', value: 'seconds' },
      },
      argv,
    );
    if (parsed.args.length > 0) throw new UsageError(`unexpected argument ${parsed.args[0]}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    ctx.stderr.write(`arb upgrade: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    ctx.stdout.write(USAGE);
    return 0;
  }
  const pidfile = parsed.options.pid;
  const timeout = parsed.options.timeout === undefined ? 120 : Number(parsed.options.timeout);
  if (!pidfile || !Number.isFinite(timeout) || timeout <= 0) {
    ctx.stderr.write(`arb upgrade: --pid FILE is required, --timeout a positive number\n${USAGE}`);
    return 2;
  }
  const file = path.resolve(ctx.cwd, pidfile);
  const say = (line: string) => ctx.stdout.write(`arb upgrade: ${line}\n`);
  const fail = (line: string) => {
    ctx.stderr.write(`arb upgrade: ${line}\n`);
    return 1;
  };

  const old = readPid(file);
  if (old === undefined || !isAlive(old)) return fail(`no running master in ${file}`);
  // as PID 1 of its namespace the master refuses USR2 (its exit would end the namespace,
  // the new master with it): say so at once instead of waiting for a new master
  if (old === 1) return fail((await import('@arb/core')).PID1_UPGRADE_REFUSED);
  const other = readPid(`${file}.2`);
  if (other !== undefined && isAlive(other)) {
    return fail(`an upgrade is already in progress: ${file}.2 names live pid ${other}`);
  }

  process.kill(old, 'SIGUSR2');
  say(`USR2 sent to master ${old}; waiting for the new master to serve`);
  const deadline = Date.now() + timeout * 1000;
  const seen = new Set<number>();
  let newPid: number | undefined;
  for (;;) {
    const candidate = readPid(`${file}.2`);
    if (candidate !== undefined && candidate !== old && isAlive(candidate)) {
      newPid = candidate;
      break;
    }
    if (!isAlive(old)) return fail(`the old master ${old} exited during the upgrade`);
    const children = reexecChildren(old);
    for (const c of children) seen.add(c);
    if (seen.size > 0 && children.length === 0) {
      return fail(`the new master exited before serving; master ${old} keeps serving`);
    }
    if (Date.now() > deadline) {
      for (const c of children) tryKill(c, 'SIGTERM');
      return fail(
        `the new master did not serve within ${timeout}s and was stopped; master ${old} keeps serving`,
      );
    }
    await sleep(100);
  }

  say(`new master ${newPid} serves; retiring master ${old}`);
  tryKill(old, 'SIGWINCH');
  tryKill(old, 'SIGTERM');
  const promoted = await poll(
    () => !isAlive(old) && readPid(file) === newPid,
    deadline + 60_000, // the old workers' drain (gracefulTimeout) comes on top
  );
  if (!promoted) {
    return fail(
      isAlive(old)
        ? `master ${old} did not exit; new master ${newPid} serves, check both`
        : `master ${newPid} was not promoted (${file} does not name it)`,
    );
  }
  say(`done: master ${newPid} promoted, master ${old} gone`);
  return 0;
}

const USAGE = `usage: arb upgrade --pid FILE [--timeout S]
  Upgrades the master named in FILE in one step (USR2, wait for FILE.2, WINCH+TERM the old
  master, wait for promotion). Exit 0 on success; 1 on failure (the old master keeps
  serving); 2 on a usage error.
`;

function readPid(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The process exists and is not a zombie. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * Children of `master` that are a re-exec'd master of it, via /proc: `ARB_PID=master` in
 * its environment until it sets its title, `arb: master [...]` as its title after that
 * (setting the title overwrites the original argv and environment block).
 */
function reexecChildren(master: number): number[] {
  let list: string;
  try {
    list = fs.readFileSync(`/proc/${master}/task/${master}/children`, 'utf8');
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const p of list.trim().split(/\s+/).filter(Boolean)) {
    try {
      const title = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      const isMaster = title.startsWith('arb: master') || env.includes(`ARB_PID=${master}`);
      if (isMaster && isAlive(Number(p))) found.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

async function poll(check: () => boolean, until: number): Promise<boolean> {
  while (Date.now() <= until) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
