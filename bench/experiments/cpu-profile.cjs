// Profiling helper for docs/BENCHMARKS.md (not used by `pnpm bench`). Preload it with
// NODE_OPTIONS="--require <this file>" PROF_DIR=/tmp/prof PROF_NAME=arb: every arb worker
// (ARB_FD) or bench worker (BENCH_FD) samples its CPU and writes
// $PROF_DIR/$PROF_NAME-<pid>.cpuprofile when it gets SIGTERM or exits
// (Node refuses --cpu-prof in NODE_OPTIONS). Summarise with `node cpu-profile.cjs FILE...`.
'use strict';
const fs = require('node:fs');

function record() {
  const inspector = require('node:inspector');
  const s = new inspector.Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: 100 });
  s.post('Profiler.start');
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    s.post('Profiler.stop', (_err, res) => {
      const dir = process.env.PROF_DIR || '/tmp';
      const file = `${dir}/${process.env.PROF_NAME || 'worker'}-${process.pid}.cpuprofile`;
      fs.writeFileSync(file, JSON.stringify(res.profile));
    });
  };
  process.prependListener('SIGTERM', stop);
  process.on('exit', stop);
}

function summarise(files) {
  for (const f of files) {
    const p = JSON.parse(fs.readFileSync(f, 'utf8'));
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map();
    const byFile = new Map();
    let total = 0;
    for (const id of p.samples) {
      const cf = byId.get(id).callFrame;
      const file = cf.url
        ? cf.url.replace(/.*\/(packages|bench|node_modules)\//, '$1/').replace(/^node:.*/, 'node:*')
        : cf.functionName;
      const key = `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber}`;
      self.set(key, (self.get(key) || 0) + 1);
      byFile.set(file, (byFile.get(file) || 0) + 1);
      total++;
    }
    const pct = (n) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
    console.log(`== ${f}`);
    for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 10))
      console.log(`  ${pct(v)} ${k}`);
    console.log('  top self time:');
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20))
      console.log(`  ${pct(v)} ${k}`);
  }
}

if (require.main === module) summarise(process.argv.slice(2));
else if (process.env.ARB_FD || process.env.BENCH_FD) record();
