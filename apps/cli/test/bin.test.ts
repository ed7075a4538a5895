import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function arb(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  const dir = cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'arbbin-'));
  if (!cwd) dirs.push(dir);
  const { ARB_CMD_ARGS: _a, PORT: _p, WEB_CONCURRENCY: _w, ...base } = process.env;
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { ...base, ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the arb binary', () => {
  it('--version prints the package version', () => {
    for (const flag of ['--version', '-v']) {
      expect(arb([flag])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    }
  });

  it('--help lists every option and exits 0', () => {
    const r = arb(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: arb \[options\] <app>/);
    for (const flag of [
      '--bind',
      '--workers',
      '--graceful-timeout',
      '--max-requests-jitter',
      '--umask',
      '--ctl-socket',
      '--metrics-bind',
      '--print-config',
      '--check-config',
    ]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it.each([
    [['--bogus', 'a.js'], "arb: command line: unknown option '--bogus'\n"],
    [
      ['--wrokers', '2', 'a.js'],
      "arb: command line: unknown option '--wrokers' (did you mean --workers?)\n",
    ],
    [
      ['-w', 'two', 'a.js'],
      "arb: command line: option '-w, --workers <n>' argument 'two' is invalid. expected a whole number >= 1\n",
    ],
  ])('%j exits 1 with one line on stderr', (args, stderr) => {
    expect(arb(args)).toEqual({ code: 1, stdout: '', stderr });
  });

  it('--print-config prints the resolved config as JSON', () => {
    const r = arb(['--print-config', '-w', '3', 'app.js'], {
      PORT: '7000',
      ARB_CMD_ARGS: '--timeout 9',
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      app: 'app.js',
      workers: 3,
      timeout: 9,
      bind: ['0.0.0.0:7000'],
      hooks: [],
    });
  });

  it('a bad config file names the file, the key and the value', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbbin-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'arb.config.json'), '{"workers": "many", "colour": "red"}');
    const r = arb(['app.js'], {}, dir);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean).sort()).toEqual(
      [
        `arb: ${path.join(dir, 'arb.config.json')}: unknown key 'colour'`,
        `arb: ${path.join(dir, 'arb.config.json')}: workers: must be a number (got "many")`,
      ].sort(),
    );
  });

  it('arb companion without a command is a usage error (exit 2)', () => {
    const r = arb(['companion']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('arb companion: missing command');
  });

  it('arb companion status without a reachable manager exits 2 naming the socket', () => {
    const r = arb(['companion', 'status', '--socket', '/nonexistent/c.sock']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nonexistent/c.sock');
  });
});
