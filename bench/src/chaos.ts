// `pnpm chaos`: bounded fault-injection runs; each prints what was tried and what was lost.
// Options: --only kill-workers,kill-master,kill-manager,crashloop,fuzz,storm,upgrade,
//          log-disk-full,pids-limit,random-exit,guard-kill
//          --seconds S (kill-workers duration, default 30), --quick (short runs)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ChaosResult, line } from './chaos/common.js';
import { crashLoop } from './chaos/crashloop.js';
import { fuzzSockets } from './chaos/fuzz.js';
import { guardKill } from './chaos/guard-kill.js';
import { killManager, killMaster } from './chaos/kill-master.js';
import { killWorkers } from './chaos/kill-workers.js';
import { logDiskFull } from './chaos/log-disk-full.js';
import { pidsLimit } from './chaos/pids-limit.js';
import { randomExit } from './chaos/random-exit.js';
import { signalStorm } from './chaos/signal-storm.js';
import { upgradeThenKillOld } from './chaos/upgrade.js';
import { requireWrk } from './load.js';
import { table } from './report.js';
import { ARB_BIN, BENCH_DIR, installAbortCleanup, log, sweepLeftovers } from './util.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string' },
    quick: { type: 'boolean' },
  },
});
const quick = args.quick ?? false;
const only = (
  args.only ??
  'kill-workers,kill-master,kill-manager,crashloop,fuzz,storm,upgrade,log-disk-full,pids-limit,random-exit,guard-kill'
).split(',');

const SCENARIOS: Record<string, () => Promise<ChaosResult>> = {
  'kill-workers': () => killWorkers({ seconds: Number(args.seconds ?? (quick ? 5 : 30)) }),
  'kill-master': killMaster,
  'kill-manager': killManager,
  crashloop: () => crashLoop({ seconds: quick ? 6 : 20 }),
  fuzz: () => fuzzSockets(),
  storm: () => signalStorm(),
  upgrade: upgradeThenKillOld,
  'log-disk-full': () => logDiskFull({ seconds: quick ? 6 : 20 }),
  'pids-limit': () => pidsLimit({ seconds: quick ? 6 : 15 }),
  'random-exit': () => randomExit({ seconds: quick ? 6 : 20 }),
  'guard-kill': guardKill,
};

async function main() {
  requireWrk();
  installAbortCleanup();
  if (!existsSync(ARB_BIN)) {
    console.error(`${ARB_BIN} is missing: run \`pnpm build\` first`);
    process.exit(2);
  }
  const started = Date.now();
  const results: ChaosResult[] = [];
  log(
    `arb chaos, ${new Date().toISOString()}, nproc ${os.availableParallelism()}, node ${process.version}`,
  );
  for (const name of only) {
    const fn = SCENARIOS[name];
    if (!fn)
      throw new Error(`unknown scenario ${name} (known: ${Object.keys(SCENARIOS).join(', ')})`);
    log(`\n-- ${name}`);
    let r: ChaosResult;
    try {
      r = await fn();
    } catch (e) {
      r = {
        name,
        tried: 'the scenario itself',
        lost: `harness error: ${(e as Error).message}`,
        pass: false,
      };
    }
    results.push(r);
    log(line(r));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const left = sweepLeftovers();
  if (left) {
    results.push({
      name: 'leftovers at the end of the run',
      tried: 'scan of every process for the bench apps, PM2 homes and chaos companions',
      lost: `${left} processes still alive (killed now)`,
      pass: false,
    });
  }
  const failed = results.filter((r) => !r.pass && !r.skipped);
  const took = ((Date.now() - started) / 1000).toFixed(0);
  const md = table(
    ['scenario', 'tried', 'lost', 'verdict'],
    results.map((r) => [
      r.name,
      r.tried.replace(/\|/g, '/'),
      r.lost.replace(/\|/g, '/'),
      r.skipped ? 'skipped' : r.pass ? 'ok' : '**FAILED**',
    ]),
  );
  log(`\n${md}\n\n${results.length - failed.length}/${results.length} scenarios ok (${took} s)`);
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `chaos-${quick ? 'quick-' : ''}${stamp}`;
  writeFileSync(join(dir, `${name}.md`), `# arb chaos ${stamp}\n\n${md}\n\nTotal: ${took} s.\n`);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(results, null, 2));
  log(`wrote bench/results/${name}.md and .json`);
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  sweepLeftovers();
  process.exit(1);
});
