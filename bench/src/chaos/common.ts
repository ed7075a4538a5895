// Shared bits of the chaos scenarios: result shape, arb with a companion config, the client.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requestLine } from '@arb/sock';
import { type ArbProcess, startArb } from '../arb.js';
import { APPS_DIR, ARB_BIN, descendants, freePort, procTable, tempDir } from '../util.js';

const run = promisify(execFile);

export interface ChaosResult {
  name: string;
  /** what was tried, in words and numbers */
  tried: string;
  /** what was lost (requests, processes, files), in words and numbers */
  lost: string;
  pass: boolean;
  skipped?: boolean;
  details?: Record<string, unknown>;
}

export const HANDLER = join(APPS_DIR, 'handler.cjs');

export interface ArbWithCompanions {
  arb: ArbProcess;
  port: number;
  dir: string;
  socket: string;
}

/** arb with 2 workers and the given companions, in a temp dir with a JSON config. */
export async function arbWithCompanions(
  companions: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
  workers = 2,
): Promise<ArbWithCompanions> {
  const dir = tempDir('chaos');
  const port = await freePort();
  const socket = join(dir, 'companions.sock');
  const config = {
    app: HANDLER,
    bind: `127.0.0.1:${port}`,
    workers,
    workerTmpDir: dir,
    companions: { socket, ...extra, workers: companions },
  };
  writeFileSync(join(dir, 'arb.config.json'), JSON.stringify(config, null, 2));
  const arb = await startArb(['-c', join(dir, 'arb.config.json')], {}, 30000, dir);
  return { arb, port, dir, socket };
}

export async function companionStatus(
  socket: string,
): Promise<{ ok: boolean; companions?: Array<Record<string, unknown>>; error?: string }> {
  try {
    const { stdout } = await run(
      process.execPath,
      [ARB_BIN, 'companion', 'status', '--socket', socket, '--json'],
      {
        timeout: 5000,
      },
    );
    return JSON.parse(stdout);
  } catch (e) {
    const out = (e as { stdout?: string }).stdout;
    try {
      if (out) return JSON.parse(out);
    } catch {}
    return { ok: false, error: (e as Error).message.split('\n')[0] };
  }
}

export function managerPid(master: number): number | undefined {
  const t = procTable();
  return descendants(master, t).find((p) => p.ppid === master && /companion manager/.test(p.cmd))
    ?.pid;
}

export function line(r: ChaosResult): string {
  const verdict = r.skipped ? 'SKIPPED' : r.pass ? 'ok' : 'FAILED';
  return `[${verdict}] ${r.name}\n    tried: ${r.tried}\n    lost:  ${r.lost}`;
}

/** One request on a JSON-lines control socket (the master's ctl or the companion socket). */
export function ctlRequest(
  path: string,
  req: Record<string, unknown>,
  timeoutMs = 3000,
): Promise<Record<string, unknown> | undefined> {
  return requestLine(path, req, { timeoutMs, retryMs: 0 }).catch(() => undefined);
}
