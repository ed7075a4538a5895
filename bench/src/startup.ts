// `pnpm --filter @arb/bench startup`: how long the CLI's own short commands take as whole
// processes, against `node -e 0` (issue 15: within 2x). Each command runs in turn with the
// baseline (A B A B ...) and the ratio is taken pair by pair, so a machine whose speed drifts
// does not skew it; medians are quoted. `arb ctl status` and `arb companion status` ask a
// running arb (1 worker, one companion) started for the purpose.
// Options: --runs N (pairs per command, default 20), --node PATH (the node to time).

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startArb } from './arb.js';
import { table } from './report.js';
import { ARB_BIN, ARB_LAUNCHER, fmt, log, median, now } from './util.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string' }, node: { type: 'string' } },
});
const runs = Number(args.runs ?? 20);
const node = args.node ?? process.execPath;
// the launcher finds `node` on PATH: the one being timed
const env = { ...process.env, PATH: `${join(node, '..')}:${process.env.PATH ?? ''}` };

/** Wall milliseconds of one whole process; throws when it fails. */
function time(argv: readonly string[], cwd: string): number {
  const t0 = now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = now() - t0;
  if (r.status !== 0) {
    throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  }
  return ms;
}

interface Row {
  command: string;
  ms: number;
  baselineMs: number;
  ratio: number;
}

function pairUp(command: string, argv: readonly string[], cwd: string): Row {
  const base = [node, '-e', '0'];
  time(base, cwd); // warm-up: file cache, and Node's compile cache where it has one
  time(argv, cwd);
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    const x = time(argv, cwd);
    const y = time(base, cwd);
    a.push(x);
    b.push(y);
    ratios.push(x / y);
  }
  return { command, ms: median(a), baselineMs: median(b), ratio: median(ratios) };
}

async function run(): Promise<void> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'arb-startup-'));
  writeFileSync(join(dir, 'app.mjs'), 'export default (req, res) => res.end("ok");\n');
  writeFileSync(
    join(dir, 'arb.config.json'),
    JSON.stringify({
      app: './app.mjs',
      workers: 1,
      bind: '127.0.0.1:0',
      ctl: { socket: './arb.ctl' },
      companions: {
        socket: './companions.sock',
        workers: [{ name: 'idle', command: ['sleep', '600'] }],
      },
    }),
  );
  const arb = await startArb([], {}, 30_000, dir);
  const rows: Row[] = [];
  try {
    const plain = [node, ARB_BIN];
    rows.push(pairUp('arb --version (bin/arb)', [ARB_LAUNCHER, '--version'], dir));
    rows.push(pairUp('node dist/bin.js --version', [...plain, '--version'], dir));
    rows.push(pairUp('arb ctl status (bin/arb)', [ARB_LAUNCHER, 'ctl', 'status', '--json'], dir));
    rows.push(
      pairUp(
        'arb companion status (bin/arb)',
        [ARB_LAUNCHER, 'companion', 'status', '--json', '--socket', 'companions.sock'],
        dir,
      ),
    );
  } finally {
    await arb.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  log(`node ${version}, ${runs} pairs per command, medians`);
  console.log(
    table(
      ['command', 'wall ms', '`node -e 0` ms', 'ratio (median of pairs)'],
      rows.map((r) => [r.command, fmt(r.ms, 0), fmt(r.baselineMs, 0), fmt(r.ratio, 2)]),
    ),
  );
}

await run();
