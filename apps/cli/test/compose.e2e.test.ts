import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArbProcess,
  alive,
  BIN,
  cleanup,
  copyExample,
  EXAMPLES,
  tempDir,
  waitFor,
} from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

function project(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

function arbSync(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const app = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;
const jobs = `export async function run() {
  await new Promise((r) => process.once('SIGTERM', r));
}
`;

describe('the hello demo (pnpm start)', () => {
  it('serves with 2 workers and runs its companion; arb companion reaches it; TERM stops everything', async () => {
    const cwd = copyExample('hello', dirs);
    const a = new ArbProcess(['-b', '127.0.0.1:0'], { cwd });
    running.push(a);
    const target = await a.tcpTarget();
    const pids = await a.distinctPids(target, 2, (body) => Number(/worker (\d+)/.exec(body)![1]));
    expect(pids.size).toBe(2);
    const socket = path.join(cwd, 'companions.sock');
    const status = await waitFor(
      () => {
        const r = arbSync(['companion', 'status', '--json', '--socket', socket], cwd);
        const body = r.code === 0 ? JSON.parse(r.stdout) : undefined;
        return body?.companions?.[0]?.state === 'RUNNING' ? body : undefined;
      },
      15_000,
      'the jobs companion to run',
    );
    expect(status.companions.map((c: { name: string }) => c.name)).toEqual(['jobs']);
    const jobsPid = status.companions[0].pid as number;
    a.pids.add(jobsPid);
    a.pids.add(status.manager.pid);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    expect(await a.stop()).toBe(0);
    expect(alive(jobsPid)).toBe(false);
    expect(fs.existsSync(socket)).toBe(false);
  });
});

describe('composition', () => {
  it('hooks from a TypeScript config run in the master and in the workers', async () => {
    const cwd = project({
      'app.mjs': app,
      'arb.config.ts': `import fs from 'node:fs';
const log = (what: string) => fs.appendFileSync(${JSON.stringify('hooks.log')}, \`\${what} \${process.pid}\\n\`);
export default {
  app: './app.mjs',
  workers: 2,
  bind: '127.0.0.1:0',
  onStarting: () => log('onStarting'),
  whenReady: () => log('whenReady'),
  postWorkerInit: () => log('postWorkerInit'),
  workerExit: () => log('workerExit'),
  onExit: () => log('onExit'),
};
`,
    });
    const a = new ArbProcess([], { cwd });
    running.push(a);
    const target = await a.tcpTarget();
    const workers = await a.distinctPids(target, 2);
    expect(await a.stop()).toBe(0);
    const lines = fs.readFileSync(path.join(cwd, 'hooks.log'), 'utf8').trim().split('\n');
    const byHook = (h: string) =>
      lines.filter((l) => l.startsWith(`${h} `)).map((l) => Number(l.split(' ')[1]));
    expect(byHook('onStarting')).toEqual([a.pid]);
    expect(byHook('whenReady')).toEqual([a.pid]);
    expect(byHook('onExit')).toEqual([a.pid]);
    expect(new Set(byHook('postWorkerInit'))).toEqual(workers);
    expect(byHook('workerExit').every((p) => p === a.pid || workers.has(p))).toBe(true);
  });

  it('companions configured in the file start with the master and stop with it', async () => {
    const cwd = project({
      'app.mjs': app,
      'jobs.mjs': jobs,
      'arb.config.json': JSON.stringify({
        app: './app.mjs',
        bind: '127.0.0.1:0',
        companions: {
          socket: './c.sock',
          defaults: { startSecs: 0.2, stopTimeout: 2 },
          workers: [
            { name: 'jobs', target: './jobs.mjs:run' },
            { name: 'sleeper', command: ['sleep', '300'] },
          ],
        },
      }),
    });
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const status = await waitFor(
      () => {
        const r = arbSync(['companion', 'status', '--json'], cwd, {
          ARB_COMPANION_SOCKET: path.join(cwd, 'c.sock'),
        });
        const body = r.code === 0 ? JSON.parse(r.stdout) : undefined;
        // (an empty list, before the manager has read its config, is not "all running")
        const list = (body?.companions ?? []) as { state: string }[];
        return list.length === 2 && list.every((c) => c.state === 'RUNNING') ? body : undefined;
      },
      15_000,
      'both companions RUNNING',
    );
    const pids = status.companions.map((c: { pid: number }) => c.pid) as number[];
    for (const p of [...pids, status.manager.pid]) a.pids.add(p);
    expect(status.companions.map((c: { name: string }) => c.name)).toEqual(['jobs', 'sleeper']);
    // arb companion restart through the socket, by name
    const r = arbSync(
      ['companion', 'restart', 'sleeper', '--json', '--socket', path.join(cwd, 'c.sock')],
      cwd,
    );
    expect(r.code).toBe(0);
    expect(await a.stop()).toBe(0);
    for (const p of pids) expect(alive(p)).toBe(false);
    expect(fs.existsSync(path.join(cwd, 'c.sock'))).toBe(false);
  });

  it('HUP re-imports the config: the manager restarts only when the companions changed', async () => {
    const config = (names: string[], workers = 1) =>
      JSON.stringify({
        app: './app.mjs',
        bind: '127.0.0.1:0',
        workers,
        companions: {
          socket: './c.sock',
          defaults: { startSecs: 0.2, stopTimeout: 2 },
          workers: names.map((name) => ({ name, command: ['sleep', '300'] })),
        },
      });
    const cwd = project({ 'app.mjs': app, 'arb.config.json': config(['one']) });
    const socket = path.join(cwd, 'c.sock');
    const a = new ArbProcess([], { cwd });
    running.push(a);
    await a.ready();
    const status = (n: number) =>
      waitFor(
        () => {
          const r = arbSync(['companion', 'status', '--json', '--socket', socket], cwd);
          const body = r.code === 0 ? JSON.parse(r.stdout) : undefined;
          const all = body?.companions;
          return all?.length === n && all.every((c: { state: string }) => c.state === 'RUNNING')
            ? body
            : undefined;
        },
        20_000,
        `${n} companions RUNNING`,
      );
    const first = await status(1);
    const track = (body: { manager: { pid: number }; companions: { pid: number }[] }) => {
      a.pids.add(body.manager.pid);
      for (const c of body.companions) a.pids.add(c.pid);
    };
    track(first);

    // Only the worker count changes: same companions, same manager.
    fs.writeFileSync(path.join(cwd, 'arb.config.json'), config(['one'], 2));
    process.kill(a.pid, 'SIGHUP');
    await a.log((e) => e.msg === 'Reload complete', 'the first reload');
    const same = await status(1);
    expect(same.manager.pid).toBe(first.manager.pid);
    expect(same.companions[0].pid).toBe(first.companions[0].pid);

    // A companion is added: the manager is restarted with the new set.
    fs.writeFileSync(path.join(cwd, 'arb.config.json'), config(['one', 'two'], 2));
    process.kill(a.pid, 'SIGHUP');
    const changed = await status(2);
    track(changed);
    expect(changed.companions.map((c: { name: string }) => c.name)).toEqual(['one', 'two']);
    expect(changed.manager.pid).not.toBe(first.manager.pid);
    expect(alive(first.companions[0].pid)).toBe(false); // never two copies of 'one'
    expect(await a.stop()).toBe(0);
  });

  it('--check-config loads the app: exit 0, or 1 naming the problem', () => {
    const cwd = project({
      'app.mjs': app,
      'bad.mjs': 'export default { nope: 1 };',
      'boom.mjs': 'throw new Error("boom")',
    });
    expect(arbSync(['--check-config', 'app.mjs'], cwd)).toMatchObject({
      code: 0,
      stdout: 'arb: config OK, app app.mjs loads\n',
    });
    const bad = arbSync(['--check-config', 'bad.mjs'], cwd);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^arb: cannot load app 'bad\.mjs': .*\n$/);
    const boom = arbSync(['--check-config', 'boom.mjs'], cwd);
    expect(boom).toMatchObject({ code: 1 });
    expect(boom.stderr).toBe('arb: boom.mjs:1:7: Error: boom\n');
    expect(arbSync(['--check-config', '--workers', '0', 'app.mjs'], cwd).code).toBe(1);
  });

  it('npx arb and pnpm arb run the CLI from the repository root', () => {
    const root = path.resolve(EXAMPLES, '..');
    const npx = spawnSync('npx', ['arb', '--version'], { cwd: root, encoding: 'utf8' });
    expect(npx.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const pnpm = spawnSync('npx', ['--yes', 'pnpm@10.34.9', '--silent', 'arb', '--version'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(pnpm.stdout.trim()).toBe(npx.stdout.trim());
  });
});
