import { parseArgs } from 'node:util';
import { LineClientError } from '@arb/sock/line-client';
import { request } from './client.js';
import { parseSignalName, type Response, type StatusEntry } from './protocol.js';

export interface CommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Environment for `ARB_COMPANION_SOCKET`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Human table when true and `--json` is absent; JSON otherwise. */
  isTTY?: boolean;
  /** Request timeout in ms. Default 5000. */
  timeoutMs?: number;
  /**
   * The socket to use when neither `--socket` nor `ARB_COMPANION_SOCKET` names one: `arb`
   * reads it from the config file in the working directory. Throws (one line) when that
   * file cannot be read.
   */
  configSocket?: () => Promise<string | undefined>;
}

export const COMPANION_USAGE = `usage: arb companion <command> [name|all] [--socket PATH] [--json]

commands:
  status [name]          show companions (all, or one)
  start <name|all>       start a stopped, backing-off or FATAL companion
  stop <name|all>        stop and keep stopped
  restart <name|all>     stop (reloadTimeout) and start again
  reread                 re-read the config: add, remove, restart changed
  signal <name|all> <SIG>  send a signal to the companion's process group

options:
  -s, --socket PATH      control socket (default: $ARB_COMPANION_SOCKET, else the
                         companions.socket of the config file in this directory)
  --json                 print the raw JSON reply
  -h, --help             this help

exit status: 0 ok, 1 the manager answered ok:false, 2 usage or connection error
`;

const COMMANDS = new Set(['status', 'start', 'stop', 'restart', 'reread', 'signal']);

class UsageError extends Error {}

interface Parsed {
  help: boolean;
  json: boolean;
  socket: string | undefined;
  positionals: string[];
}

/**
 * The command line, with node:util rather than commander: `arb companion status` is one of
 * the CLI's short commands that must start within 2x of a bare `node` (issue 15), and
 * commander's modules alone cost a third of that. Options anywhere, `--` ends them;
 * `--help` wins over any mistake next to it.
 */
function parse(argv: readonly string[]): Parsed {
  const { tokens } = parseArgs({
    args: [...argv],
    options: {
      socket: { type: 'string', short: 's' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  let help = false;
  let json = false;
  let socket: string | undefined;
  const positionals: string[] = [];
  let error: string | undefined;
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    if (t.name === 'help') help = true;
    if (error !== undefined) continue;
    if (t.name === 'socket') {
      if (!t.value) error = '--socket needs a path';
      else socket = t.value;
    } else if ((t.name === 'json' || t.name === 'help') && t.value === undefined) {
      json ||= t.name === 'json';
    } else {
      error = `unknown option ${t.rawName}${t.value === undefined ? '' : `=${t.value}`}`;
    }
  }
  if (help) return { help: true, json: false, socket: undefined, positionals: [] };
  if (error !== undefined) throw new UsageError(error);
  return { help: false, json, socket, positionals };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function formatSeconds(s: number | null): string {
  if (s === null) return '-';
  const t = Math.floor(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

/** supervisorctl-style table of status entries. */
export function formatStatusTable(entries: readonly Partial<StatusEntry>[]): string {
  const rows = [['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'INFO']];
  for (const e of entries) {
    const desc = String(e.description ?? '');
    const comma = desc.indexOf(', ');
    rows.push([
      String(e.name ?? ''),
      String(e.state ?? ''),
      e.pid == null ? '-' : String(e.pid),
      formatSeconds(e.uptime ?? null),
      String(e.restarts ?? 0),
      comma === -1 ? '' : desc.slice(comma + 2),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function formatHuman(cmd: string, res: Response): string {
  if (cmd === 'status' && Array.isArray(res.companions)) {
    return formatStatusTable(res.companions as StatusEntry[]);
  }
  if (cmd === 'reread' && res.ok) {
    const list = (k: string) => {
      const v = res[k];
      return Array.isArray(v) && v.length > 0 ? v.join(', ') : '-';
    };
    return ['added', 'removed', 'restarted', 'unchanged'].map((k) => `${k}: ${list(k)}\n`).join('');
  }
  if (Array.isArray(res.results)) {
    return (res.results as { name: string; message: string }[])
      .map((r) => `${r.message}\n`)
      .join('');
  }
  return `${String(res.message ?? res.error ?? (res.ok ? 'ok' : 'failed'))}\n`;
}

/**
 * The `arb companion` command: `argv` is everything after `companion`. Returns the exit
 * status: 0 ok, 1 `ok:false`, 2 usage or connection error.
 */
export async function runCompanionCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const env = io.env ?? process.env;
  let parsed: Parsed;
  try {
    parsed = parse(argv);
    if (parsed.help) {
      io.stdout.write(COMPANION_USAGE);
      return 0;
    }
    const [cmd, name, extra, ...rest] = parsed.positionals;
    if (!cmd) throw new UsageError('missing command');
    if (!COMMANDS.has(cmd)) throw new UsageError(`unknown command '${cmd}'`);
    const req: Record<string, unknown> = { cmd };
    if (cmd === 'reread') {
      if (name !== undefined) throw new UsageError('reread takes no name');
    } else if (cmd === 'status') {
      if (extra !== undefined) throw new UsageError('status takes at most one name');
    } else {
      if (name === undefined) throw new UsageError(`${cmd} requires a companion name (or all)`);
      req.name = name;
      if (cmd === 'signal') {
        if (extra === undefined)
          throw new UsageError('signal requires a signal name, e.g. SIGUSR1');
        const sig = parseSignalName(extra);
        if (!sig) throw new UsageError(`unknown signal '${extra}'`);
        req.signal = sig;
        if (rest.length > 0) throw new UsageError('too many arguments');
      } else if (extra !== undefined) {
        throw new UsageError('too many arguments');
      }
    }
    let socket = parsed.socket ?? (env.ARB_COMPANION_SOCKET || undefined);
    if (!socket && io.configSocket) {
      try {
        socket = await io.configSocket();
      } catch (err) {
        io.stderr.write(`arb companion: ${(err as Error).message}\n`);
        return 2;
      }
    }
    if (!socket) {
      throw new UsageError(
        'no control socket: pass --socket, set ARB_COMPANION_SOCKET, or set companions.socket in the config file',
      );
    }

    let res: Response;
    try {
      res = await request(socket, req, { timeoutMs: io.timeoutMs ?? 5000 });
    } catch (err) {
      if (err instanceof LineClientError) {
        // one line: the path once, then why, with the errno
        const why = err.message.replace(` at ${err.socketPath}`, '');
        io.stderr.write(
          `arb companion: cannot reach companion socket ${socket}: ${why} (${err.code})\n`,
        );
        return 2;
      }
      throw err;
    }
    if (cmd === 'status' && name !== undefined && Array.isArray(res.companions)) {
      // One companion, or every copy of a numprocs group.
      const one = (res.companions as StatusEntry[]).filter(
        (e) => e.name === name || e.group === name,
      );
      res =
        one.length > 0
          ? { ...res, companions: one }
          : { ok: false, error: `unknown companion ${name}`, message: `unknown companion ${name}` };
    }
    const human = io.isTTY === true && !parsed.json;
    if (!human) io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    else if (res.ok) io.stdout.write(formatHuman(cmd, res));
    else if (Array.isArray(res.results)) {
      io.stdout.write(formatHuman(cmd, res));
    } else io.stderr.write(`error: ${String(res.error ?? res.message ?? 'failed')}\n`);
    return res.ok === true ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`arb companion: ${err.message}\n${COMPANION_USAGE}`);
      return 2;
    }
    throw err;
  }
}
