import { readFileSync } from 'node:fs';
import { LineClientError, requestLine } from '@arb/sock/line-client';
import { ctlSocketPath } from './ctl-path.js';
import { bytes, hms, percent, table } from './format.js';
import { parseSubcommand, UsageError } from './subcommand.js';

export interface CtlIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** For `ARB_CTL_SOCKET`. */
  env: NodeJS.ProcessEnv;
  /** Relative socket paths are resolved against it. */
  cwd: string;
  /** Tables when true and `--json` is absent; JSON otherwise. */
  isTTY?: boolean;
}

export const CTL_USAGE = `usage: arb ctl <command> [--socket PATH] [--json] [--timeout S]

commands:
  status                 the master, its listeners, workers and companions
  workers add [N]        keep N more workers (default 1)
  workers remove [N]     keep N fewer workers (at least 1 is kept)
  reload                 HUP: new config, new generation; prints its steps, then the outcome
  reopen                 reopen the log files (USR1)
  upgrade                start a new master, hand over to it; prints its steps and waits
                         until the new master is promoted (the old one gone)
  shutdown [--quick]     graceful stop (TERM), or quick (INT)

options:
  -s, --socket PATH      control socket (default: $ARB_CTL_SOCKET, else ./arb.ctl)
  --json                 print the raw JSON reply (reload, upgrade: a JSON line per step first)
  --timeout S            seconds to wait for the reply (default 5; reload and upgrade 600)
  -h, --help             this help

exit status: 0 ok, 1 the master answered ok:false, 2 usage or connection error
`;

interface Parsed {
  help: boolean;
  json: boolean;
  quick: boolean;
  socket: string | undefined;
  timeout: number | undefined;
  positionals: string[];
}

function parse(argv: readonly string[]): Parsed {
  const { help, options, args } = parseSubcommand<{
    socket?: string;
    json?: boolean;
    quick?: boolean;
    timeout?: string;
  }>(
    {
      socket: { type: 'string', short: 's', value: 'path' },
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      timeout: { type: 'string', value: 'seconds' },
    },
    argv,
  );
  if (options.socket === '') throw new UsageError('--socket needs a value');
  let timeout: number | undefined;
  if (options.timeout !== undefined) {
    timeout = Number(options.timeout);
    if (options.timeout === '' || !Number.isFinite(timeout) || timeout <= 0)
      throw new UsageError(`--timeout needs seconds > 0, got ${options.timeout}`);
  }
  return {
    help,
    json: options.json === true,
    quick: options.quick === true,
    socket: options.socket,
    timeout,
    positionals: args,
  };
}

/** The request for the command line's positionals. */
function toRequest(p: Parsed): Record<string, unknown> {
  const [cmd, ...rest] = p.positionals;
  const none = () => {
    if (rest.length > 0) throw new UsageError(`${cmd} takes no arguments`);
  };
  if (p.quick && cmd !== 'shutdown') throw new UsageError('--quick goes with shutdown');
  switch (cmd) {
    case undefined:
      throw new UsageError('missing command');
    case 'status':
    case 'reload':
    case 'reopen':
    case 'upgrade':
      none();
      return { cmd };
    case 'shutdown':
      none();
      return { cmd, quick: p.quick };
    case 'workers': {
      const [action, n, ...more] = rest;
      if (action !== 'add' && action !== 'remove') {
        throw new UsageError('workers needs add or remove');
      }
      if (more.length > 0) throw new UsageError('too many arguments');
      if (n !== undefined && !/^\d+$/.test(n)) throw new UsageError(`not a count: ${n}`);
      const count = n === undefined ? 1 : Number(n);
      if (count < 1) throw new UsageError('the count must be at least 1');
      return { cmd, action, count };
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

type Obj = Record<string, unknown>;

/** `arb ctl status` for a terminal. */
export function formatStatus(res: Obj): string {
  const m = (res.master ?? {}) as Obj;
  let out = `master ${m.pid} (${m.proc_name}), ${m.role}, up ${hms(m.uptime)}, ${m.workers_target} workers wanted, generation ${m.generation}, reload ${m.reload}, RSS ${bytes(m.rss_bytes)}, CPU ${percent(m.cpu_percent)}\n`;
  const listeners = (res.listeners ?? []) as Obj[];
  out += `listening: ${listeners.map((l) => l.url ?? l.address).join(', ') || '-'}\n`;
  if (m.metrics) out += `metrics: ${m.metrics}/metrics\n`;
  const workers = (res.workers ?? []) as Obj[];
  out += '\n';
  out += table([
    ['PID', 'AGE', 'GEN', 'STATE', 'BOOTED', 'UPTIME', 'REQUESTS', 'RSS', 'CPU', 'HEARTBEAT'],
    ...workers.map((w) => [
      String(w.pid ?? '-'),
      String(w.age),
      String(w.generation ?? 0),
      String(w.state),
      w.booted ? 'yes' : 'no',
      hms(w.uptime),
      String(w.requests ?? 0),
      bytes(w.rss_bytes),
      percent(w.cpu_percent),
      w.last_heartbeat == null ? '-' : `${w.last_heartbeat}s ago`,
    ]),
  ]);
  const c = res.companions;
  if (Array.isArray(c)) {
    out += '\n';
    out += table([
      ['COMPANION', 'STATE', 'PID', 'RESTARTS', 'RSS', 'CPU'],
      ...(c as Obj[]).map((e) => [
        String(e.name),
        String(e.state),
        String(e.pid ?? '-'),
        String(e.restarts ?? 0),
        bytes(e.rss_bytes),
        percent(e.cpu_percent),
      ]),
    ]);
  } else if (c && typeof c === 'object') {
    out += `\ncompanions: ${String((c as Obj).error)}\n`;
  }
  return out;
}

function formatHuman(cmd: string, res: Obj): string {
  if (cmd === 'status') return formatStatus(res);
  if (cmd === 'workers') {
    const n = res.added ?? res.removed;
    return `${res.added !== undefined ? 'added' : 'removed'} ${n}: ${res.previous} → ${res.total} workers\n`;
  }
  if (cmd === 'reload') return `reload ${res.outcome} (generation ${res.generation})\n`;
  if (cmd === 'upgrade')
    return `upgraded: new master ${res.new_pid} took over from ${res.old_pid}\n`;
  if (cmd === 'shutdown') return `shutting down (${res.mode})\n`;
  return `${String(res.message ?? 'ok')}\n`;
}

/**
 * `arb ctl ...` (`argv` without `ctl`). Resolves to the exit status: 0 ok, 1 the master
 * answered `ok: false`, 2 usage or connection error.
 */
export async function runCtlCommand(argv: readonly string[], io: CtlIO): Promise<number> {
  let parsed: Parsed;
  let req: Record<string, unknown>;
  try {
    parsed = parse(argv);
    if (parsed.help) {
      io.stdout.write(CTL_USAGE);
      return 0;
    }
    req = toRequest(parsed);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`arb ctl: ${err.message}\n${CTL_USAGE}`);
    return 2;
  }
  const socket = ctlSocketPath(parsed.socket ?? (io.env.ARB_CTL_SOCKET || undefined), io.cwd);
  if (!socket) {
    io.stderr.write('arb ctl: no control socket (it is "none")\n');
    return 2;
  }
  const cmd = req.cmd as string;
  const long = cmd === 'reload' || cmd === 'upgrade';
  const timeoutMs = (parsed.timeout ?? (long ? 600 : 5)) * 1000;
  const deadline = Date.now() + timeoutMs;
  if (cmd === 'upgrade' && parsed.timeout !== undefined) req.timeout = parsed.timeout;
  const human = io.isTTY === true && !parsed.json;
  // a reload's or an upgrade's steps: for a person on stdout; for a program, JSON lines
  // with --json, else on stderr (stdout keeps the one JSON reply it always had)
  const step = (event: Obj) => {
    if (parsed.json) io.stdout.write(`${JSON.stringify(event)}\n`);
    else if (human) io.stdout.write(`${String(event.message)}\n`);
    else io.stderr.write(`arb ctl: ${String(event.message)}\n`);
  };
  if (long) req.progress = true;
  let res: Obj;
  try {
    res = await requestLine(socket, req, { timeoutMs, ...(long ? { onProgress: step } : {}) });
  } catch (err) {
    if (!(err instanceof LineClientError)) throw err;
    io.stderr.write(`arb ctl: cannot reach the master at ${socket}: ${err.message}\n`);
    return 2;
  }
  if (cmd === 'upgrade' && res.ok === true) {
    const failure = await awaitPromotion(socket, res, deadline, step);
    if (failure !== undefined) res = { ...res, ok: false, error: failure };
  }
  if (!human) io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
  else if (res.ok === true) io.stdout.write(formatHuman(cmd, res));
  if (res.ok === true) return 0;
  // the line a person reads, whatever stdout is
  if (cmd === 'upgrade' && typeof res.old_pid === 'number') {
    const error = String(res.error ?? 'failed');
    io.stderr.write(
      error.startsWith('upgrade ')
        ? `arb ctl: ${error}\n`
        : `arb ctl: upgrade failed: ${error}; master ${res.old_pid} keeps serving\n`,
    );
  } else if (human) io.stderr.write(`error: ${String(res.error ?? 'failed')}\n`);
  return 1;
}

/**
 * After the old master said the upgrade succeeded (its workers are gone, it exits): waits
 * until the new master is promoted, i.e. serves the control socket at the plain path as
 * the master, as `arb upgrade --pid` waits for the pidfile. Resolves to why not, or
 * undefined once it is.
 */
async function awaitPromotion(
  socket: string,
  res: Obj,
  deadline: number,
  step: (event: Obj) => void,
): Promise<string | undefined> {
  const newPid = res.new_pid as number;
  const oldPid = res.old_pid as number;
  step({
    event: 'progress',
    cmd: 'upgrade',
    state: 'promoting',
    new_pid: newPid,
    message: `waiting for master ${oldPid} to exit and new master ${newPid} to be promoted`,
  });
  for (;;) {
    if (!alive(newPid)) return `upgrade failed: new master ${newPid} exited before it was promoted`;
    try {
      const status = await requestLine(
        socket,
        { cmd: 'status' },
        { timeoutMs: Math.max(100, Math.min(2000, deadline - Date.now())), retryMs: 0 },
      );
      const m = (status.master ?? {}) as Obj;
      if (m.pid === newPid && m.role === 'master') {
        step({
          event: 'progress',
          cmd: 'upgrade',
          state: 'promoted',
          new_pid: newPid,
          message: `new master ${newPid} promoted; master ${oldPid} gone`,
        });
        return undefined;
      }
    } catch (err) {
      if (!(err instanceof LineClientError)) throw err;
      // between the old master's exit and the new one's promotion, no one serves the socket
    }
    if (Date.now() >= deadline) {
      return `upgrade incomplete: new master ${newPid} serves but was not promoted in time (master ${oldPid} ${alive(oldPid) ? 'still runs' : 'is gone'})`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The process exists (possibly another user's) and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}
