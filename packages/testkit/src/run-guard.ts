import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive } from './index.js';

/** The variable every process a test run starts inherits: `ARB_TEST_RUN=<id>`. */
export const RUN_MARKER = 'ARB_TEST_RUN';

/** A process the run left behind, as found in /proc. */
export interface StrayProcess {
  pid: number;
  cmdline: string;
  /** Why it counts as the run's: the marker variable, its cwd or its arguments. */
  why: 'marker' | 'cwd' | 'args';
}

/** What a guarded run left behind; thrown by the teardown when anything is listed. */
export class RunLeftovers extends Error {
  constructor(
    readonly suite: string,
    readonly processes: StrayProcess[],
    readonly entries: string[],
    readonly other: string[] = [],
  ) {
    const lines = [
      `${suite}: the test run left things behind (removed now, but a test did not clean up):`,
      ...processes.map((p) => `  process ${p.pid} (${p.why}): ${p.cmdline}`),
      ...entries.map((e) => `  temp entry ${e}`),
      ...other.map((o) => `  ${o}`),
    ];
    super(lines.join('\n'));
    this.name = 'RunLeftovers';
  }
}

export interface RunGuardOptions {
  /** Named in the failure (the package). */
  suite: string;
  /** More leftovers to report, one line each (files the suite must not leave in the source tree). */
  extraCheck?: () => string[];
  /** How long strays get to finish exiting by themselves before they are killed. */
  graceMs?: number;
  /**
   * Entries of the run's temp dir that belong to tools, not tests (removed with it, not
   * reported). Default: `jiti` (the transpile cache of the config loader) and
   * `node-compile-cache` (Node's module compile cache, which arb turns on from 22.1).
   */
  caches?: string[];
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return undefined; // gone meanwhile, or a kernel thread
  }
}

function parentOf(pid: number): number {
  const stat = readProc(pid, 'stat') ?? '';
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Live processes that belong to the run: they carry the marker in their environment (set
 * before the test workers were forked, so every child inherits it unless a test builds
 * its env from scratch), or they work in or name the run's temp dir. The vitest process
 * and its own pool workers carry the marker too and are not counted.
 */
export function runProcesses(marker: string, runDir: string): StrayProcess[] {
  if (process.platform !== 'linux') return [];
  const needle = `\0${RUN_MARKER}=${marker}\0`;
  const found: StrayProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !alive(pid)) continue;
    const cmdline = (readProc(pid, 'cmdline') ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
    let why: StrayProcess['why'] | undefined;
    if (`\0${readProc(pid, 'environ') ?? ''}`.includes(needle)) why = 'marker';
    else if (cmdline.includes(runDir)) why = 'args';
    else {
      try {
        const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
        if (cwd === runDir || cwd.startsWith(`${runDir}/`)) why = 'cwd';
      } catch {
        // gone meanwhile
      }
    }
    if (!why) continue;
    // the pool's workers are vitest's children; anything a test started is theirs (or an orphan)
    if (parentOf(pid) === process.pid) continue;
    found.push({ pid, cmdline, why });
  }
  return found;
}

/**
 * For a vitest `globalSetup`: gives the run a marker and a temp dir of its own, and returns
 * the teardown that fails the run when a process the tests started is still alive or a
 * temp dir is left over. Everything found is killed and removed first, so nothing outlives
 * the run whatever the verdict.
 *
 * The temp dir becomes TMPDIR of the run (os.tmpdir() of the test workers and of every
 * process they start), so `tempDir()` lands in it and only this run's leftovers are seen,
 * even when other runs use the same machine.
 */
export function guardRun(options: RunGuardOptions): () => Promise<void> {
  const previous = { marker: process.env[RUN_MARKER], tmp: process.env.TMPDIR };
  const runDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'arbr-')));
  // Searchable by others: a test that runs workers as nobody gives them a 0755 dir in here.
  fs.chmodSync(runDir, 0o711);
  const marker = `${process.pid}-${path.basename(runDir)}`;
  process.env[RUN_MARKER] = marker;
  process.env.TMPDIR = runDir;

  return async function teardown(): Promise<void> {
    if (previous.marker === undefined) delete process.env[RUN_MARKER];
    else process.env[RUN_MARKER] = previous.marker;
    if (previous.tmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous.tmp;

    let strays = runProcesses(marker, runDir);
    // one that is on its way out (killed just before the end) gets a moment to finish
    const deadline = Date.now() + (options.graceMs ?? 1000);
    while (strays.some((s) => alive(s.pid)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    strays = strays.filter((s) => alive(s.pid));
    for (const s of strays) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    const caches = new Set(options.caches ?? ['jiti', 'node-compile-cache']);
    const entries = fs
      .readdirSync(runDir)
      .filter((e) => !caches.has(e))
      .map((e) => path.join(runDir, e));
    fs.rmSync(runDir, { recursive: true, force: true });
    const extra = options.extraCheck?.() ?? [];
    if (strays.length === 0 && entries.length === 0 && extra.length === 0) return;
    const failure = new RunLeftovers(options.suite, strays, entries, extra);
    // vitest logs an error thrown by a teardown but would still exit 0
    process.exitCode = 1;
    throw failure;
  };
}
