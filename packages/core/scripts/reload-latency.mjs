// Measures HUP -> reload complete: the time from a `reload` ctl request (the master queues
// SIGHUP) to its reply, which comes once the new generation serves and the old one is gone.
// The app takes ~100 ms to boot.
//   node packages/core/scripts/reload-latency.mjs [reloads=10] [workers=4]
// (after: pnpm --filter @arb/core build)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [reloads = 10, workers = 4] = process.argv.slice(2).map(Number);
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arb-reload-'));
const app = path.join(dir, 'app.mjs');
fs.writeFileSync(
  app,
  'await new Promise((r) => setTimeout(r, 100)); // a ~100 ms boot\n' +
    'export default (_req, res) => res.end("ok\\n");\n',
);
const readyFile = path.join(dir, 'ready.json');
const ctl = path.join(dir, 'arb.ctl');
const config = {
  app,
  bind: ['127.0.0.1:0'],
  workers,
  timeout: 30,
  readyFile,
  control: { socket: ctl },
};
const master = spawn(
  process.execPath,
  [path.join(here, '../test/fixtures/run-arbiter.mjs'), JSON.stringify(config)],
  { stdio: ['ignore', 'ignore', 'ignore'] },
);

/** One ctl request; resolves with the parsed reply line. */
function ask(request) {
  return new Promise((resolve, reject) => {
    const s = net.connect(ctl);
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(request)}\n`));
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      s.end();
      resolve(JSON.parse(buf.slice(0, nl)));
    });
    s.on('error', reject);
  });
}

try {
  while (!fs.existsSync(readyFile) || !fs.existsSync(ctl)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ms = [];
  for (let i = 0; i < reloads; i++) {
    const t0 = process.hrtime.bigint();
    const reply = await ask({ cmd: 'reload' });
    const t = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!reply.ok) throw new Error(`reload ${i} failed: ${JSON.stringify(reply)}`);
    ms.push(t);
  }
  ms.sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  console.log(
    `workers=${workers} reloads=${reloads} HUP->reload complete ms: ` +
      `median=${ms[Math.floor(ms.length / 2)].toFixed(0)} mean=${mean.toFixed(0)} ` +
      `min=${ms[0].toFixed(0)} max=${ms.at(-1).toFixed(0)}`,
  );
} finally {
  master.kill('SIGTERM');
  await new Promise((r) => master.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
