// The benchmark app, one request listener for every contender.
//   GET /       hello world
//   GET /cpu    about 1 ms of CPU (a busy loop calibrated at startup), then a short body
//   GET /block  blocks the event loop forever (hung-worker test)
// Every response carries `x-pid`. When BENCH_STATS_DIR is set, the process counts its
// requests and writes the count to BENCH_STATS_DIR/<pid> every 200 ms (balance tables).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const statsDir = process.env.BENCH_STATS_DIR;
let served = 0;
let written = -1;
if (statsDir) {
  const file = path.join(statsDir, String(process.pid));
  const flush = () => {
    if (served === written) return;
    written = served;
    try {
      fs.writeFileSync(file, String(served));
    } catch {}
  };
  flush();
  setInterval(flush, 200).unref();
}

// calibrate: how many iterations of the loop take 1 ms on this machine (median of 5)
function spin(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i * 7) % 1000003;
  return x;
}
const CALIBRATE = 200000;
const samples = [];
for (let k = 0; k < 5; k++) {
  const t = process.hrtime.bigint();
  spin(CALIBRATE);
  samples.push(Number(process.hrtime.bigint() - t) / 1e6);
}
samples.sort((a, b) => a - b);
const perMs = Math.max(1000, Math.round(CALIBRATE / samples[2]));

const HELLO = 'Hello, World!\n';

function handler(req, res) {
  served += 1;
  res.setHeader('x-pid', String(process.pid));
  if (req.url === '/cpu') {
    const v = spin(perMs);
    res.setHeader('content-type', 'text/plain');
    res.end(`cpu ${v}\n`);
    return;
  }
  if (req.url === '/block') {
    for (;;) {}
  }
  res.setHeader('content-type', 'text/plain');
  res.end(HELLO);
}

module.exports = handler;
