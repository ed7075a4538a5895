// `pnpm bench`: throughput matrix, reload/upgrade under load, recovery, overhead.
// Options (env or flags): --rounds N, --seconds S, --warmup S, --connections C,
// --only matrix,reload,recovery,overhead,roll, --contenders arb,pm2,..., --quick (smoke run).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { barsReport } from './bars.js';
import { ALL, byName, pm2Bin } from './contenders.js';
import { requireWrk } from './load.js';
import { type OverheadResults, overheadBench, overheadReport } from './overhead.js';
import { type RecoveryResults, recoveryBench, recoveryReport } from './recovery.js';
import { type ReloadResults, reloadBench, reloadReport } from './reload.js';
import { matrixReport, ratioSummary } from './report.js';
import { rollBench, rollReport } from './roll.js';
import { type CellResult, type Group, runMatrix } from './rounds.js';
import { ARB_BIN, BENCH_DIR, installAbortCleanup, log, REPO_DIR, sweepLeftovers } from './util.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    contenders: { type: 'string' },
    quick: { type: 'boolean' },
    full4: { type: 'boolean' },
  },
});

const quick = args.quick ?? false;
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const seconds = Number(args.seconds ?? (quick ? 2 : 3));
const warmup = Number(args.warmup ?? 1);
const connections = Number(args.connections ?? 32);
const parts = (args.only ?? 'matrix,reload,recovery,overhead,roll').split(',');
const contenders = args.contenders ? byName(args.contenders.split(',')) : ALL;

function git(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_DIR,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'apps'], {
      cwd: REPO_DIR,
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean).length;
    return `commit ${head}${dirty ? ` + ${dirty} uncommitted files in packages/ and apps/ (work in progress of other engineers; dist/ as built at run time)` : ''}`;
  } catch {
    return 'git unavailable';
  }
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? '?';
  let wrkV = '?';
  try {
    execFileSync('wrk', ['--version'], { encoding: 'utf8' });
  } catch (e) {
    wrkV = String((e as { stdout?: string }).stdout ?? '').split('\n')[0] ?? '?';
  }
  return [
    `date: ${new Date().toISOString()}`,
    `nproc: ${os.availableParallelism()}; CPU: ${cpu}; RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node: ${process.version}; kernel: ${os.release()}; load average at start: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
    `load generator: ${wrkV.trim()}`,
    `arb: ${git()}`,
  ].join('\n');
}

async function main() {
  requireWrk();
  installAbortCleanup();
  if (!existsSync(ARB_BIN)) {
    console.error(`${ARB_BIN} is missing: run \`pnpm build\` first`);
    process.exit(2);
  }
  if (!pm2Bin()) {
    console.error('pm2 (a devDependency of bench/) is missing: run `pnpm install`');
    process.exit(2);
  }
  const started = Date.now();
  const sections: string[] = [];
  const json: Record<string, unknown> = {};
  const head = machine();
  log(head);
  sections.push(`## Machine\n\n\`\`\`\n${head}\n\`\`\``);
  sections.push(
    `Settings: ${rounds} rounds, ${seconds} s per cell after ${warmup} s warm-up, wrk -t1 -c${connections}; contenders alternated in this order every round: ${contenders
      .map((c) => c.name)
      .join(', ')}.`,
  );

  if (parts.includes('matrix')) {
    const groups: Group[] = [
      {
        workers: 2,
        cells: [
          { app: 'hello', load: 'close' },
          { app: 'hello', load: 'keepalive' },
          { app: 'cpu', load: 'close' },
          { app: 'cpu', load: 'keepalive' },
        ],
      },
      {
        workers: 4,
        cells: args.full4
          ? [
              { app: 'hello', load: 'close' },
              { app: 'hello', load: 'keepalive' },
              { app: 'cpu', load: 'close' },
              { app: 'cpu', load: 'keepalive' },
            ]
          : [
              { app: 'hello', load: 'close' },
              { app: 'hello', load: 'keepalive' },
            ],
        skip: ['single'],
      },
    ];
    log(`\n== throughput matrix (${rounds} rounds x ${seconds} s per cell)`);
    const results = await runMatrix({ contenders, groups, rounds, seconds, warmup, connections });
    json.matrix = results;
    const m = matrixReport(results);
    const s = ratioSummary(results);
    log(`\n${s}\n\n${m}`);
    sections.push(
      `## Throughput\n\n### arb / contender (req/s ratio of medians)\n\n${s}\n\n### Tables\n\n${m}`,
    );
  }
  const part = async <T>(
    key: string,
    title: string,
    run: () => Promise<T>,
    report: (r: T) => string,
  ): Promise<void> => {
    if (!parts.includes(key)) return;
    log(`\n== ${title.toLowerCase()}`);
    try {
      const r = await run();
      json[key] = r;
      const text = report(r);
      log(text);
      sections.push(`## ${title}\n\n${text}`);
    } catch (e) {
      log(`  !! ${title} failed: ${(e as Error).stack}`);
      sections.push(`## ${title}\n\nThe harness failed here: ${(e as Error).message}`);
      sweepLeftovers();
    }
  };
  await part(
    'reload',
    'Reload and upgrade under load',
    () => reloadBench({ quick, connections }),
    reloadReport,
  );
  await part('recovery', 'Recovery', () => recoveryBench({ quick }), recoveryReport);
  await part('overhead', 'Overhead', () => overheadBench({ quick }), overheadReport);
  await part('roll', 'Rolling update behind haproxy', () => rollBench({ connections }), rollReport);
  const bars = barsReport({
    matrix: json.matrix as CellResult[] | undefined,
    reload: json.reload as ReloadResults | undefined,
    recovery: json.recovery as RecoveryResults | undefined,
    overhead: json.overhead as OverheadResults | undefined,
  });
  log(`\n== quality bars\n${bars}`);
  sections.splice(2, 0, `## Quality bars\n\n${bars}`);
  await new Promise((r) => setTimeout(r, 1000));
  const left = sweepLeftovers();
  const took = ((Date.now() - started) / 1000).toFixed(0);
  sections.push(
    `Total bench time: ${took} s. Processes of this run still alive at the end: ${left ? `${left} (see the log)` : 'none'}.`,
  );
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `bench-${quick ? 'quick-' : ''}${stamp}`;
  writeFileSync(join(dir, `${name}.md`), `# arb bench ${stamp}\n\n${sections.join('\n\n')}\n`);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(json, null, 2));
  log(`\nwrote bench/results/${name}.md and .json (${took} s)`);
}

main().catch((e) => {
  console.error(e);
  sweepLeftovers();
  process.exit(1);
});
