// Measures the idle master: CPU over a window and RSS, with N workers.
//   node packages/core/scripts/idle-cpu.mjs [workers=8] [seconds=20] [timeout=30]
// (after: pnpm --filter @arb/core build)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [workers = 8, seconds = 20, timeout = 30] = process.argv.slice(2).map(Number);
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arb-idle-'));
const readyFile = path.join(dir, 'ready.json');
const config = {
  app: path.join(here, '../examples/app.mjs'),
  bind: ['127.0.0.1:0'],
  workers,
  timeout,
  readyFile,
};
const master = spawn(
  process.execPath,
  [path.join(here, '../test/fixtures/run-arbiter.mjs'), JSON.stringify(config)],
  {
    stdio: ['ignore', 'ignore', 'ignore'],
  },
);
const ticks = () => {
  const f = fs
    .readFileSync(`/proc/${master.pid}/stat`, 'utf8')
    .slice(fs.readFileSync(`/proc/${master.pid}/stat`, 'utf8').lastIndexOf(')') + 2)
    .split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
};
while (!fs.existsSync(readyFile)) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 1000));
const a = ticks();
await new Promise((r) => setTimeout(r, seconds * 1000));
const b = ticks();
const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${master.pid}/status`, 'utf8'))[1];
console.log(
  `workers=${workers} timeout=${timeout}s window=${seconds}s master cpu=${(((b - a) / 100 / seconds) * 100).toFixed(3)}% (${b - a} ticks) rss=${(rss / 1024).toFixed(1)}MB`,
);
master.kill('SIGTERM');
await new Promise((r) => master.once('exit', r));
fs.rmSync(dir, { recursive: true, force: true });
