import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { BIN } from './harness.js';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `arb <args>` to completion without blocking the event loop. */
export function arb(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { ARB_CTL_SOCKET: _s, ...base } = process.env;
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * `arb ctl <args> --json` parsed: the reply (`body`), and before it the progress events a
 * reload or an upgrade prints, one JSON line each (`events`).
 */
export async function ctlJson(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{
  code: number | null;
  body: Record<string, unknown>;
  events: Record<string, unknown>[];
  stderr: string;
}> {
  const r = await arb(['ctl', ...args, '--json'], cwd, env);
  const lines = r.stdout.split('\n');
  const events: Record<string, unknown>[] = [];
  while (lines[0]?.startsWith('{"event":"progress"')) events.push(JSON.parse(lines.shift()!));
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(lines.join('\n')) as Record<string, unknown>;
  } catch {
    // none (usage or connection error)
  }
  return { code: r.code, body, events, stderr: r.stderr };
}

/** Writes raw bytes to a unix socket and collects the reply lines until it closes (or `lines` came). */
export function rawExchange(
  socketPath: string,
  payload: string | Buffer,
  opts: { lines?: number; timeoutMs?: number } = {},
): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let buf = '';
    const lines: string[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ lines, closed });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 10_000);
    s.on('connect', () => s.write(payload));
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (opts.lines !== undefined && lines.length >= opts.lines) finish(false);
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** GET a URL, or a path over a unix socket. */
export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Prometheus text → `name{labels}` → value (labels as printed). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
