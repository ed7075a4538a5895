// What a consumer installs works: the four published packages, packed by pnpm as a release
// would, installed with plain npm into a project outside the repository; there `npx arb`
// serves and reloads an app, and every README example runs as its README shows it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, waitFor } from '@arb/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, readExample } from './examples.js';
import { consumerEnv, npm, npmEntries, npx } from './npm.js';
import { type Packed, PUBLISHED, packAll } from './pack.js';
import { get, Proc, type Target, tcpTarget } from './proc.js';

let root: string; // the temp dir: tarballs, and the consumer project in it
let project: string;
let packed: Packed[];
const running: Proc[] = [];

/** Starts a process in the consumer project (or a directory of it); stopped after the test. */
function start(argv: string[], cwd = project, env?: NodeJS.ProcessEnv): Proc {
  const proc = new Proc(argv, { cwd, env: consumerEnv(env) });
  running.push(proc);
  return proc;
}
const npxArb = (args: string[], cwd = project, env?: NodeJS.ProcessEnv) =>
  start([process.execPath, npmEntries().npx, '--no-install', 'arb', ...args], cwd, env);

/** A directory of the project holding the given README example files. */
function exampleDir(name: string, files: Record<string, string>): string {
  const dir = path.join(project, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

/** Requests `target` until `n` distinct worker pids answered; `pidOf` reads one from a body. */
async function distinctPids(target: Target, n: number, pidOf: (body: string) => number) {
  const seen = new Set<number>();
  await waitFor(
    async () => {
      seen.add(pidOf((await get(target)).body));
      return seen.size >= n;
    },
    { timeoutMs: 15_000, what: () => `${n} distinct workers (saw ${[...seen].join(',')})` },
  );
  return seen;
}
const helloPid = (body: string) => Number(/hello from (\d+)/.exec(body)?.[1]);

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'arb-consumer-'));
  packed = await packAll(root);
  project = path.join(root, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await npm(
    ['install', '--no-audit', '--no-fund', '--loglevel=error', ...packed.map((p) => p.tarball)],
    project,
  );
});

afterEach(() => {
  for (const proc of running.splice(0)) proc.kill();
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('carry LICENSE, README, CHANGELOG and dist, no sources or tests, and real versions', () => {
    expect(packed.map((p) => p.dir)).toEqual(PUBLISHED);
    for (const p of packed) {
      expect(p.files, p.name).toEqual(
        expect.arrayContaining(['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']),
      );
      expect(p.files, p.name).toContain('dist/index.js');
      expect(
        p.files.filter((f) => /^(src|test|examples)\//.test(f)),
        p.name,
      ).toEqual([]);
      const m = p.manifest;
      expect(m.license, p.name).toBe('MIT');
      expect(m.repository, p.name).toMatchObject({ type: 'git', directory: p.dir });
      expect((m.keywords as string[]).length, p.name).toBeGreaterThan(0);
      if (m.name.startsWith('@')) expect(m.publishConfig, p.name).toEqual({ access: 'public' });
      // pnpm rewrites workspace:* to the version of the package it points at
      const deps = { ...(m.dependencies as Record<string, string>) };
      for (const [dep, range] of Object.entries(deps)) {
        expect(range, `${p.name} -> ${dep}`).not.toMatch(/^workspace:/);
        const target = packed.find((q) => q.name === dep);
        if (target) expect(range, `${p.name} -> ${dep}`).toBe(target.manifest.version);
      }
    }
    expect(packed.find((p) => p.name === 'arb')!.files).toContain('bin/arb');
  });
});

describe('in a project that installed the tarballs with npm', () => {
  it('npx arb serves the root README config, reloads on HUP with no failed request, stops on TERM', async () => {
    const dir = exampleDir('app', {
      'arb.config.ts': readExample(EXAMPLES.rootConfig),
      'app.mjs': 'export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n',
      'jobs.mjs': "export const run = () => new Promise((r) => process.once('SIGTERM', r));\n",
    });
    fs.mkdirSync(path.join(dir, 'run'));
    const arb = npxArb(
      ['app.mjs', '-w', '2', '-b', '127.0.0.1:0', '-b', 'unix:./run/app.sock', '-p', 'arb.pid'],
      dir,
    );
    // the launcher runs the master on the node this suite runs on (the one first on PATH)
    await arb.waitLog((e) => e.msg === `Starting arb (node ${process.version})`, 'Starting arb');
    const listening = await arb.waitLog((e) => Array.isArray(e.listeners), 'Listening at');
    const [tcp, unix] = listening.listeners as string[];
    expect(unix).toBe(`unix:${fs.realpathSync(dir)}/run/app.sock`);
    await arb.waitLog(
      (e) => String(e.msg).startsWith('Serving with 2 workers'),
      'Serving with 2 workers',
    );
    const master = Number(fs.readFileSync(path.join(dir, 'arb.pid'), 'utf8'));
    const pidOf = (body: string) => (JSON.parse(body) as { pid: number }).pid;
    const target = tcpTarget(tcp!);
    const first = await distinctPids(target, 2, pidOf);
    expect(pidOf((await get({ socketPath: path.join(dir, 'run/app.sock') })).body)).toBeGreaterThan(
      0,
    );
    // the config's postWorkerInit hook ran in each worker
    for (const pid of first)
      await arb.waitStdout(new RegExp(`worker ready ${pid}\\b`), `hook of ${pid}`);
    // and its companion runs, as `arb companion status` reports
    const status = await npx(
      ['--no-install', 'arb', 'companion', 'status', '--socket', 'run/companions.sock', '--json'],
      dir,
    );
    expect(JSON.parse(status.stdout).companions).toMatchObject([{ name: 'jobs' }]);
    arb.snapshot();

    // HUP under a steady stream of requests: a new generation takes over, nothing fails
    let stop = false;
    const failures: unknown[] = [];
    let served = 0;
    const seen = new Set<number>();
    const load = (async () => {
      while (!stop) {
        try {
          const res = await get(target);
          if (res.status === 200) seen.add(pidOf(res.body));
          else failures.push(res.status);
          served += 1;
        } catch (error) {
          failures.push(error);
        }
      }
    })();
    process.kill(master, 'SIGHUP');
    await arb.waitLog((e) => e.msg === 'Reload complete', 'Reload complete');
    await waitFor(() => [...first].every((pid) => !alive(pid)), {
      timeoutMs: 10_000,
      what: 'the old workers to exit',
    });
    const second = await distinctPids(target, 2, pidOf);
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(0);
    expect([...second].filter((pid) => first.has(pid))).toEqual([]);
    expect([...seen].some((pid) => !first.has(pid))).toBe(true);

    expect(await arb.stop('SIGTERM', master)).toBe(0);
    for (const file of ['run/app.sock', 'run/companions.sock', 'arb.pid', 'arb.ctl']) {
      expect(fs.existsSync(path.join(dir, file)), file).toBe(false);
    }
  });

  it('runs the @arb/sock README example: two workers on TCP and unix, no socket left', async () => {
    const dir = exampleDir('sock', { 'serve.mjs': readExample(EXAMPLES.sockServe) });
    const serve = start([process.execPath, 'serve.mjs'], dir, { PORT: '0' });
    const [, tcp, socketPath] = await serve.waitStdout(
      /master \d+: (\S+) unix:(\S+)\n/,
      'the master line',
    );
    expect(socketPath).toBe(path.join(fs.realpathSync(dir), 'app.sock'));
    const pids = await distinctPids(tcpTarget(tcp!), 2, helloPid);
    expect(pids.has(helloPid((await get({ socketPath: socketPath! })).body))).toBe(true);
    expect(await serve.stop('SIGTERM')).toBe(0);
    expect(fs.existsSync(socketPath!)).toBe(false);
  });

  it('runs the @arb/sock line socket example: one request answered, no socket left', async () => {
    const dir = exampleDir('sock-line', { 'line-socket.mjs': readExample(EXAMPLES.sockLine) });
    const line = start([process.execPath, 'line-socket.mjs'], dir);
    expect(await line.stop(null)).toBe(0);
    expect(line.stdout).toMatch(/^ok: true, now: \d{4}-\d\d-\d\dT/);
    expect(fs.existsSync(path.join(dir, 'time.sock'))).toBe(false);
  });

  it('runs the @arb/core README example: an Arbiter with 2 workers, stopped by TERM', async () => {
    const dir = exampleDir('core', {
      'launch.mjs': readExample(EXAMPLES.coreLaunch),
      'app.mjs': readExample('packages/core/examples/app.mjs'), // the app its comment shows
    });
    const launch = start([process.execPath, 'launch.mjs'], dir, { PORT: '0' });
    const listening = await launch.waitLog((e) => Array.isArray(e.listeners), 'Listening at');
    const [tcp, unix] = listening.listeners as string[];
    await launch.waitLog((e) => String(e.msg).startsWith('serving; master pid'), 'serving');
    await distinctPids(tcpTarget(tcp!), 2, helloPid);
    const socketPath = unix!.replace(/^unix:/, '');
    expect(helloPid((await get({ socketPath })).body)).toBeGreaterThan(0);
    expect(await launch.stop('SIGTERM')).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it('runs the @arb/companion README example and `arb companion status` on its socket', async () => {
    const dir = exampleDir('companion', {
      'supervise.mjs': readExample(EXAMPLES.companionSupervise),
    });
    const supervise = start([process.execPath, 'supervise.mjs'], dir);
    await supervise.waitStdout(/name: 'sleeper'/, 'the status printed');
    const running = await waitFor(
      async () => {
        const { stdout } = await npx(
          ['--no-install', 'arb', 'companion', 'status', '--socket', './companions.sock', '--json'],
          dir,
        );
        const companions = JSON.parse(stdout).companions as {
          name: string;
          state: string;
          pid: number;
        }[];
        return companions.every((c) => c.state === 'RUNNING') ? companions : undefined;
      },
      { timeoutMs: 10_000, what: 'both companions RUNNING' },
    );
    expect(running.map((c) => c.name)).toEqual(['ticker', 'sleeper']);
    expect(running.every((c) => alive(c.pid))).toBe(true);
    expect(await supervise.stop('SIGTERM')).toBe(0);
    expect(running.some((c) => alive(c.pid))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'companions.sock'))).toBe(false);
  });

  it('runs the arb README examples: a typed config, resolveConfig and main', async () => {
    const dir = exampleDir('cli', {
      'arb.config.ts': readExample(EXAMPLES.cliConfig),
      'resolve.mjs': readExample(EXAMPLES.cliResolve),
      'app.mjs': 'export default (req, res) => res.end(String(process.pid));\n',
    });
    const check = start([process.execPath, 'resolve.mjs', '--check-config'], dir);
    expect(await check.stop(null)).toBe(0);
    expect(check.stdout).toContain('run: ./app.mjs with 3 workers on 127.0.0.1:8000');
    expect(check.stdout).toContain('config OK');
    const print = start([process.execPath, 'resolve.mjs', '--print-config'], dir);
    expect(await print.stop(null)).toBe(0);
    const printed = JSON.parse(print.stdout.slice(print.stdout.indexOf('{')));
    expect(printed).toMatchObject({ app: './app.mjs', workers: 2 });
  });
});
