import { LineClientError, requestLine } from '@arb/sock';
import { ctlSocketPath } from './ctl-path.js';
import { parseSubcommand, subcommand, UsageError } from './subcommand.js';

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
  reload                 HUP: new config, new generation; waits and reports the outcome
  reopen                 reopen the log files (USR1)
  upgrade                start a new master, hand over to it; waits and reports the outcome
  shutdown [--quick]     graceful stop (TERM), or quick (INT)

options:
  -s, --socket PATH      control socket (default: $ARB_CTL_SOCKET, else ./arb.ctl)
  --json                 print the raw JSON reply
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
  const command = subcommand('arb ctl')
    .option('-s, --socket <path>')
    .option('--json')
    .option('--quick')
    .option('--timeout <seconds>');
  const { help, options, args } = parseSubcommand<{
    socket?: string;
    json?: boolean;
    quick?: boolean;
    timeout?: string;
  }>(command, argv);
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

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}

function hms(seconds: unknown): string {
  if (typeof seconds !== 'number') return '-';
  const t = Math.floor(seconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
}

type Obj = Record<string, unknown>;

/** `arb ctl status` for a terminal. */
export function formatStatus(res: Obj): string {
  const m = (res.master ?? {}) as Obj;
  let out = `master ${m.pid} (${m.proc_name}), ${m.role}, up ${hms(m.uptime)}, ${m.workers_target} workers wanted, generation ${m.generation}, reload ${m.reload}\n`;
  const listeners = (res.listeners ?? []) as Obj[];
  out += `listening: ${listeners.map((l) => l.url ?? l.address).join(', ') || '-'}\n`;
  if (m.metrics) out += `metrics: ${m.metrics}/metrics\n`;
  const workers = (res.workers ?? []) as Obj[];
  out += '\n';
  out += table([
    ['PID', 'AGE', 'GEN', 'STATE', 'BOOTED', 'UPTIME', 'REQUESTS', 'HEARTBEAT'],
    ...workers.map((w) => [
      String(w.pid ?? '-'),
      String(w.age),
      String(w.generation ?? 0),
      String(w.state),
      w.booted ? 'yes' : 'no',
      hms(w.uptime),
      String(w.requests ?? 0),
      w.last_heartbeat == null ? '-' : `${w.last_heartbeat}s ago`,
    ]),
  ]);
  const c = res.companions;
  if (Array.isArray(c)) {
    out += '\n';
    out += table([
      ['COMPANION', 'STATE', 'PID', 'RESTARTS'],
      ...(c as Obj[]).map((e) => [
        String(e.name),
        String(e.state),
        String(e.pid ?? '-'),
        String(e.restarts ?? 0),
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
  if (cmd === 'upgrade' && parsed.timeout !== undefined) req.timeout = parsed.timeout;
  let res: Obj;
  try {
    res = await requestLine(socket, req, { timeoutMs });
  } catch (err) {
    if (!(err instanceof LineClientError)) throw err;
    io.stderr.write(`arb ctl: cannot reach the master at ${socket}: ${err.message}\n`);
    return 2;
  }
  if (io.isTTY !== true || parsed.json) io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
  else if (res.ok === true) io.stdout.write(formatHuman(cmd, res));
  else io.stderr.write(`error: ${String(res.error ?? 'failed')}\n`);
  return res.ok === true ? 0 : 1;
}
