import { LineClientError, requestLine } from '@arb/sock/line-client';
import { ctlSocketPath } from './ctl-path.js';
import { parseSubcommand, UsageError } from './subcommand.js';
import { type ScreenSize, topLines } from './top-view.js';

/** A terminal's output side, as `process.stdout` is one. */
interface TerminalOut {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

/** A terminal's input side, as `process.stdin` is one. */
interface TerminalIn {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  off(event: 'data', listener: (data: Buffer) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface TopIO {
  stdout: TerminalOut;
  stderr: { write(text: string): unknown };
  /** The keys (`q`, Ctrl-C); absent: only signals end the live view. */
  stdin?: TerminalIn;
  /** For `ARB_CTL_SOCKET`. */
  env: NodeJS.ProcessEnv;
  /** Relative socket paths are resolved against it. */
  cwd: string;
  /** stdout is a terminal: the live view; otherwise one snapshot. */
  isTTY?: boolean;
}

export const TOP_USAGE = `usage: arb top [--socket PATH] [--once] [--json] [--interval S]

A live view of the master, its workers and companions, refreshed each second: req/s,
p50/p99 latency, RSS, CPU %, event-loop lag and heartbeat age per worker. q or Ctrl-C quits.
Not on a terminal (or --once): one snapshot as text.

options:
  -s, --socket PATH      control socket (default: $ARB_CTL_SOCKET, else ./arb.ctl)
  --once                 print one snapshot as text and exit
  --json                 print one snapshot as JSON (the master's status reply) and exit
  --interval S           seconds between refreshes (default 1)
  -h, --help             this help

exit status: 0 ok, 1 the master answered ok:false, 2 usage or connection error
`;

/** Each frame waits this long for the master's reply at most. */
const REQUEST_TIMEOUT_MS = 2000;

// plain ANSI (VT100/xterm), understood by every terminal an ssh session runs in
const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_SCREEN_END = '\x1b[J';

interface Parsed {
  help: boolean;
  once: boolean;
  json: boolean;
  socket: string | undefined;
  intervalMs: number;
}

function parse(argv: readonly string[]): Parsed {
  const { help, options, args } = parseSubcommand<{
    socket?: string;
    once?: boolean;
    json?: boolean;
    interval?: string;
  }>(
    {
      socket: { type: 'string', short: 's', value: 'path' },
      once: { type: 'boolean' },
      json: { type: 'boolean' },
      interval: { type: 'string', value: 'seconds' },
    },
    argv,
  );
  if (args.length > 0) throw new UsageError(`unexpected argument '${args[0]}'`);
  if (options.socket === '') throw new UsageError('--socket needs a value');
  let intervalMs = 1000;
  if (options.interval !== undefined) {
    const s = Number(options.interval);
    if (options.interval === '' || !Number.isFinite(s) || s < 0.2)
      throw new UsageError(`--interval needs seconds >= 0.2, got ${options.interval}`);
    intervalMs = s * 1000;
  }
  return {
    help,
    once: options.once === true,
    json: options.json === true,
    socket: options.socket,
    intervalMs,
  };
}

/**
 * `arb top` (`argv` without `top`): one `status` request per refresh over the master's
 * control socket. Resolves to the exit status: 0 ok (or quit), 1 the master answered
 * `ok: false`, 2 usage or connection error.
 */
export async function runTopCommand(argv: readonly string[], io: TopIO): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`arb top: ${err.message}\n${TOP_USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(TOP_USAGE);
    return 0;
  }
  const socket = ctlSocketPath(parsed.socket ?? (io.env.ARB_CTL_SOCKET || undefined), io.cwd);
  if (!socket) {
    io.stderr.write('arb top: no control socket (it is "none")\n');
    return 2;
  }
  const ask = () => requestLine(socket, { cmd: 'status' }, { timeoutMs: REQUEST_TIMEOUT_MS });
  if (parsed.json || parsed.once || io.isTTY !== true) {
    let res: Record<string, unknown>;
    try {
      res = await ask();
    } catch (err) {
      if (!(err instanceof LineClientError)) throw err;
      io.stderr.write(`arb top: cannot reach the master at ${socket}: ${err.message}\n`);
      return 2;
    }
    if (res.ok !== true) {
      io.stderr.write(`arb top: ${String(res.error ?? 'failed')}\n`);
      return 1;
    }
    io.stdout.write(
      parsed.json ? `${JSON.stringify(res, null, 2)}\n` : `${topLines(res).join('\n')}\n`,
    );
    return 0;
  }
  return live(io, socket, ask, parsed.intervalMs);
}

/** The live view, until `q`, Ctrl-C or a terminating signal; the terminal is restored. */
function live(
  io: TopIO,
  socket: string,
  ask: () => Promise<Record<string, unknown>>,
  intervalMs: number,
): Promise<number> {
  const out = io.stdout;
  const input = io.stdin?.isTTY ? io.stdin : undefined;
  let last: Record<string, unknown> = {};
  let error: string | undefined = 'asking the master...';
  let timer: NodeJS.Timeout | undefined;
  let done = false;

  // a pseudo-terminal nobody sized reports 0 x 0
  const size = (): ScreenSize => ({ columns: out.columns || 80, rows: out.rows || 24 });
  const draw = () => {
    if (done) return;
    const s = size();
    const lines = topLines(last, s, error);
    const footer = `q quit   refresh ${intervalMs / 1000}s   ${socket}`.slice(0, s.columns);
    const body = lines.map((l) => `${l}${CLEAR_LINE_END}`).join('\r\n');
    const gap = Math.max(s.rows - lines.length - 1, 0);
    out.write(`${HOME}${body}\r\n${'\r\n'.repeat(gap)}${footer}${CLEAR_SCREEN_END}`);
  };
  const refresh = async () => {
    try {
      const res = await ask();
      if (res.ok === true) {
        last = res;
        error = undefined;
      } else error = String(res.error ?? 'the master answered ok:false');
    } catch (err) {
      if (!(err instanceof LineClientError)) throw err;
      error = `cannot reach the master at ${socket}: ${err.message}`;
    }
    draw();
    if (!done) timer = setTimeout(() => void refresh(), intervalMs);
  };

  return new Promise<number>((resolve) => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const quit = () => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      out.off?.('resize', draw);
      for (const s of signals) process.off(s, quit);
      if (input) {
        input.off('data', onKey);
        input.setRawMode?.(false);
        input.pause();
      }
      out.write(`${CURSOR_SHOW}${ALT_SCREEN_OFF}`);
      resolve(0);
    };
    const onKey = (data: Buffer) => {
      // q, Q, Ctrl-C (raw mode: no SIGINT), Ctrl-D
      const keys = data.toString('latin1');
      if (['q', 'Q', '\x03', '\x04'].some((k) => keys.includes(k))) quit();
    };
    for (const s of signals) process.on(s, quit);
    if (input) {
      input.setRawMode?.(true);
      input.on('data', onKey);
      input.resume();
    }
    out.on?.('resize', draw);
    out.write(`${ALT_SCREEN_ON}${CURSOR_HIDE}`);
    void refresh();
  });
}
