import { type ChildProcess, spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OPTION_GROUPS, OPTIONS } from '../src/options.js';
import { ArbProcess, alive, BIN, cleanup, tempDir } from './harness.js';

// Issue 15, "errors in one line": what a person sees when arb cannot start. Each case runs
// the real bin and compares what arb itself wrote (every stderr line that is not a JSON log
// line) whole, with the exit status, and checks that nothing is left running or behind.

const running: ArbProcess[] = [];
const dirs: string[] = [];
const holders: ChildProcess[] = [];
afterEach(() =>
  cleanup(
    running,
    dirs,
    holders.splice(0).map((h) => async () => {
      if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
      await new Promise<void>((r) => (h.exitCode !== null ? r() : h.once('exit', () => r())));
    }),
  ),
);

function setup(files: Record<string, string> = {}): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries({
    'ok.mjs': 'export default (q, s) => s.end("ok")',
    ...files,
  })) {
    fs.mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    fs.writeFileSync(path.join(d, name), text);
  }
  return d;
}

/** Runs arb in `cwd` to its end: status, its own lines, elapsed ms, what it left. */
async function run(
  args: string[],
  cwd: string,
  opts: { env?: NodeJS.ProcessEnv; uid?: number } = {},
) {
  const started = performance.now();
  const a = new ArbProcess(['--ctl-socket', 'none', ...args], { cwd, env: opts.env });
  running.push(a);
  const code = await a.exited();
  return {
    code,
    own: a.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')),
    stdout: a.stdout,
    ms: performance.now() - started,
    left: [...a.pids].filter((p) => p !== a.pid && alive(p)),
    logs: a.logs,
  };
}

/** A process of its own listening on 127.0.0.1:<port>, as a stray server would. */
async function holdPort(uid?: number): Promise<{ pid: number; port: number }> {
  const h = spawn(
    process.execPath,
    [
      '-e',
      "require('net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port) })",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], uid },
  );
  holders.push(h);
  const port = await new Promise<number>((resolve, reject) => {
    h.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    h.once('exit', () => reject(new Error('the port holder exited')));
  });
  return { pid: h.pid!, port };
}

describe('a port in use', () => {
  it('one line naming the address and the pid on it, at once, exit 1', async () => {
    const { pid, port } = await holdPort();
    const r = await run(['-b', `127.0.0.1:${port}`, 'ok.mjs'], setup());
    expect(r.own).toEqual([`arb: cannot bind 127.0.0.1:${port}: address in use (by pid ${pid})`]);
    expect(r).toMatchObject({ code: 1, left: [] });
    // no retries by default: gunicorn's five attempts took 4 s
    expect(r.ms).toBeLessThan(3000);
    expect(r.logs.map((e) => e.msg)).toEqual([`Starting arb (node ${process.version})`]);
  });

  it('--bind-retries 1: one retry 1 s later, then the same line', async () => {
    const { pid, port } = await holdPort();
    const r = await run(['-b', `127.0.0.1:${port}`, '--bind-retries', '1', 'ok.mjs'], setup());
    expect(r.own).toEqual([
      `arb: cannot bind 127.0.0.1:${port}: address in use (by pid ${pid}) (gave up after 2 attempts)`,
    ]);
    expect(r.logs.map((e) => e.msg)).toContain(
      `cannot listen on 127.0.0.1:${port}: address in use (by pid ${pid}); retrying in 1 second (1 of 1 retries)`,
    );
    expect(r).toMatchObject({ code: 1, left: [] });
    expect(r.ms).toBeGreaterThanOrEqual(1000);
  });

  it('bindRetries in the config file is refused below 0', async () => {
    const cwd = setup({ 'arb.config.json': '{"bindRetries": -1}' });
    const r = await run(['ok.mjs'], cwd);
    expect(r.code).toBe(1);
    expect(r.own).toEqual([`arb: ${cwd}/arb.config.json: bindRetries: must be >= 0 (got -1)`]);
  });

  it("without the parenthesis when the holder's descriptors are not readable (another user)", async (ctx) => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: needs root to run the port holder as another user');
      ctx.skip();
    }
    // the holder runs as nobody; arb (root) could read it, so arb runs as nobody too and
    // the holder as another unprivileged user
    const { port } = await holdPort(65533);
    const cwd = setup();
    fs.chmodSync(cwd, 0o777);
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [BIN, '--ctl-socket', 'none', '-b', `127.0.0.1:${port}`, 'ok.mjs'],
      {
        cwd,
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(stderr.split('\n').filter((l) => l && !l.startsWith('{'))).toEqual([
      `arb: cannot bind 127.0.0.1:${port}: address in use`,
    ]);
    expect(code).toBe(1);
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

describe('an address that cannot be bound', () => {
  it('an unresolvable host: one line naming it, no JSON error, no stack, exit 1', async () => {
    // the resolver's own answer here (ENOTFOUND, or EAI_AGAIN without a DNS server)
    const code = await lookup('garbage').then(
      () => 'resolved',
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(code).not.toBe('resolved');
    const r = await run(['-b', 'garbage', 'ok.mjs'], setup());
    expect(r.own).toEqual([
      `arb: cannot bind garbage:8000: cannot resolve host 'garbage' (${code})`,
    ]);
    expect(r.logs.filter((e) => Number(e.level) >= 50)).toEqual([]);
    expect(r).toMatchObject({ code: 1, left: [] });
  });

  it('an address of no interface here (TEST-NET-1): one line, exit 1', async () => {
    const r = await run(['-b', '192.0.2.1:8080', 'ok.mjs'], setup());
    expect(r.own).toEqual([
      'arb: cannot bind 192.0.2.1:8080: address not available on this machine',
    ]);
    expect(r).toMatchObject({ code: 1, left: [] });
  });
});

describe('an app that does not compile, or throws when imported', () => {
  const unclosed = 'export default function (q, s) {\n  s.end(\n';
  it.each([
    ['ESM', 'src/app.mjs', unclosed, 'SyntaxError: Unexpected end of input'],
    [
      'CJS',
      'src/app.cjs',
      'module.exports = function (q, s) {\n  s.end(\n',
      'SyntaxError: Unexpected end of input',
    ],
    [
      'TS',
      'src/app.ts',
      'export default function (q: any, s: any) {\n  s.end(\n',
      'SyntaxError: Unexpected token',
    ],
  ])(
    '%s: file:line:column, the error, the line and a caret; exit 4',
    async (_kind, file, text, error) => {
      const r = await run(['-b', '127.0.0.1:0', file], setup({ [file]: text }));
      expect(r.own).toEqual([`arb: ${file}:2:9: ${error}`, '      s.end(', '            ^']);
      expect(r).toMatchObject({ code: 4, left: [] });
    },
  );

  it('a token V8 points into: its column', async () => {
    const file = 'app.mjs';
    const r = await run(
      ['-b', '127.0.0.1:0', '--preload', file],
      setup({ [file]: 'const a = {\n\tb: 1,\n\tc 2\n};\nexport default a;\n' }),
    );
    // --preload: the master finds it before binding or starting a worker
    expect(r.own).toEqual([
      'arb: app.mjs:3:4: SyntaxError: Unexpected number',
      '    \tc 2',
      '    \t  ^',
    ]);
    expect(r.logs.some((e) => String(e.msg).startsWith('Booting worker'))).toBe(false);
    expect(r).toMatchObject({ code: 4, left: [] });
  });

  it('a throw at import: one line, at the place it threw', async () => {
    const cwd = setup({
      'throws.mjs':
        'const url = process.env.DATABASE_URL;\nif (!url) throw new Error("no DATABASE_URL");\n',
    });
    const r = await run(['-b', '127.0.0.1:0', '-w', '2', 'throws.mjs'], cwd);
    expect(r.own).toEqual(['arb: throws.mjs:2:17: Error: no DATABASE_URL']);
    expect(r).toMatchObject({ code: 4, left: [] });
  });

  it('an export that is not an app: the loader says why, one line', async () => {
    const r = await run(
      ['-b', '127.0.0.1:0', 'bad.mjs'],
      setup({ 'bad.mjs': 'export default 42;\n' }),
    );
    expect(r.own).toEqual([
      "arb: cannot load app 'bad.mjs': the export is number 42, which is not an app",
    ]);
    expect(r).toMatchObject({ code: 4, left: [] });
  });
});

describe('--help and likely typos', () => {
  it('groups the flags under their headings, in order, and lists the subcommands', async () => {
    const r = await run(['--help'], setup());
    expect(r.code).toBe(0);
    const headings = r.stdout.split('\n').filter((l) => /^\S.*:$/.test(l));
    expect(headings).toEqual([
      'Arguments:',
      ...Object.values(OPTION_GROUPS).map((g) => `${g}:`),
      'Commands (arb <command> --help for each):',
    ]);
    // each flag under its own heading
    const sections = r.stdout.split(/\n(?=\S.*:\n)/);
    for (const spec of OPTIONS) {
      const section = sections.find((s) => s.startsWith(`${OPTION_GROUPS[spec.group]}:`))!;
      expect(section, spec.flags).toContain(`  ${spec.flags} `);
    }
    const commands = sections.at(-1)!.split('\n').slice(1).filter(Boolean);
    expect(commands.map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'arb ctl',
      'arb companion',
      'arb top',
      'arb upgrade',
    ]);
    for (const line of r.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  it.each([
    ['status', 'arb ctl status'],
    ['reload', 'arb ctl reload'],
    ['stop', 'arb ctl shutdown'],
    ['reread', 'arb companion reread'],
  ])('arb %s (no such file) points at %s, exit 1', async (word, meant) => {
    const r = await run([word], setup());
    expect(r.own).toEqual([`arb: no app '${word}'; did you mean '${meant}'?`]);
    expect(r).toMatchObject({ code: 1, left: [] });
  });
});

describe('ARB_CMD_ARGS, split as a shell would, without expansion', () => {
  it('quotes and backslashes honoured; $HOME, *.js and | stay literal', async () => {
    const env = {
      ARB_CMD_ARGS: `-e GREETING=$HOME -e 'A=*.js' -e B="say \\"hi\\" | cat" -e C=it\\'s -w 3`,
    };
    const r = await run(['--print-config', 'ok.mjs'], setup(), { env });
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout) as { env: Record<string, string>; workers: number };
    expect(config.env).toEqual({ GREETING: '$HOME', A: '*.js', B: 'say "hi" | cat', C: "it's" });
    expect(config.workers).toBe(3);
  });

  it('an open quote: one line naming ARB_CMD_ARGS, exit 1', async () => {
    const r = await run(['ok.mjs'], setup(), { env: { ARB_CMD_ARGS: `-e 'A=b` } });
    expect(r.own).toEqual(["arb: ARB_CMD_ARGS: no closing quotation (' at 4)"]);
    expect(r.code).toBe(1);
  });
});

describe('arb companion status finds the socket in the config file of this directory', () => {
  const config = {
    companions: {
      socket: './run/companions.sock',
      workers: [{ name: 'jobs', command: ['sleep', '600'] }],
    },
  };

  /** `arb companion <args>` in `cwd`, as a person types it (no --socket, no variable). */
  async function companion(args: string[], cwd: string) {
    const { ARB_COMPANION_SOCKET: _s, ...env } = process.env;
    const child = spawn(process.execPath, [BIN, 'companion', ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += String(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    return { code, stdout, stderr };
  }

  it('nothing listening there: one line naming the socket and the errno, exit 2', async () => {
    const cwd = setup({ 'arb.config.json': JSON.stringify(config) });
    fs.mkdirSync(path.join(cwd, 'run'));
    const r = await companion(['status'], cwd);
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr: `arb companion: cannot reach companion socket ${cwd}/run/companions.sock: no control socket (ENOENT)\n`,
    });
  });

  it('a running arb: the status of its companions', async () => {
    const cwd = setup({ 'arb.config.json': JSON.stringify(config) });
    fs.mkdirSync(path.join(cwd, 'run'));
    const a = new ArbProcess(['-b', '127.0.0.1:0', '--ctl-socket', 'none', 'ok.mjs'], { cwd });
    running.push(a);
    await a.ready();
    let status:
      | { ok: boolean; companions: { name: string; state: string; pid: number }[] }
      | undefined;
    for (let i = 0; i < 100 && status?.companions?.[0]?.state !== 'RUNNING'; i++) {
      const r = await companion(['status', '--json'], cwd);
      if (r.code === 0) status = JSON.parse(r.stdout);
      else await new Promise((res) => setTimeout(res, 100));
    }
    expect(status).toMatchObject({ ok: true, companions: [{ name: 'jobs', state: 'RUNNING' }] });
    a.pids.add(status!.companions[0]!.pid);
  });

  it('a config file that does not load: one line naming it, exit 2', async () => {
    const cwd = setup({ 'arb.config.mjs': 'export default {;\n' });
    const r = await companion(['status'], cwd);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^arb companion: .*arb\.config\.mjs: cannot load: [^\n]+\n$/);
  });
});
