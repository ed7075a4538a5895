import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { EarlyExit, resolveConfig } from '../src/resolve.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dir(files: Record<string, string> = {}): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'arbcli-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

function resolve(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  return resolveConfig({ argv, env: opts.env ?? {}, cwd: opts.cwd ?? dir(), version: '9.9.9' });
}

async function problems(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as Error).message.split('\n');
}

const distIndex = fileURLToPath(new URL('../src/index.ts', import.meta.url));

describe('defaults', () => {
  it('follow DESIGN', async () => {
    const { action, config } = await resolve(['app.js']);
    expect(action).toBe('run');
    expect(config).toMatchObject({
      app: 'app.js',
      bind: ['127.0.0.1:8000'],
      workers: 1,
      timeout: 30,
      gracefulTimeout: 30,
      keepAlive: 5,
      backlog: 2048,
      maxRequests: 0,
      maxRequestsJitter: 0,
      reusePort: false,
      umask: 0,
      env: {},
      preload: false,
      logLevel: 'info',
      errorLog: '-',
      hooks: {},
    });
    expect(config.configFile).toBeUndefined();
  });

  it('take PORT and WEB_CONCURRENCY', async () => {
    const { config } = await resolve(['app.js'], { env: { PORT: '5000', WEB_CONCURRENCY: '3' } });
    expect(config.bind).toEqual(['0.0.0.0:5000']);
    expect(config.workers).toBe(3);
  });

  it('name a bad PORT or WEB_CONCURRENCY', async () => {
    expect(
      await problems(resolve(['app.js'], { env: { PORT: 'http', WEB_CONCURRENCY: '0' } })),
    ).toEqual([
      'environment: PORT="http" is not a port number',
      'environment: WEB_CONCURRENCY="0" is not a whole number >= 1',
    ]);
  });
});

describe('precedence: defaults < config file < ARB_CMD_ARGS < command line', () => {
  const file = {
    'arb.config.json': JSON.stringify({
      app: 'file.js',
      workers: 3,
      timeout: 7,
      env: { A: 'file', B: 'file' },
    }),
  };

  it('each layer overrides the one before', async () => {
    const cwd = dir(file);
    const env = { ARB_CMD_ARGS: '-w 4 -e B=env -e "C=with space"' };
    const all = await resolve(['-w', '5', 'cli.js'], { cwd, env });
    expect(all.config).toMatchObject({
      app: 'cli.js',
      workers: 5,
      timeout: 7,
      env: { A: 'file', B: 'env', C: 'with space' },
    });
    const noCli = await resolve([], { cwd, env });
    expect(noCli.config).toMatchObject({ app: 'file.js', workers: 4 });
    const fileOnly = await resolve([], { cwd });
    expect(fileOnly.config).toMatchObject({
      app: 'file.js',
      workers: 3,
      env: { A: 'file', B: 'file' },
    });
    expect(fileOnly.config.configFile).toBe(path.join(cwd, 'arb.config.json'));
  });

  it('a later -b replaces the bind list; -b repeats', async () => {
    const cwd = dir({
      'arb.config.json': JSON.stringify({ bind: ['127.0.0.1:1', '127.0.0.1:2'] }),
    });
    expect((await resolve(['a.js'], { cwd })).config.bind).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    expect(
      (await resolve(['-b', 'unix:/tmp/x.sock', '-b', '[::1]:9', 'a.js'], { cwd })).config.bind,
    ).toEqual(['unix:/tmp/x.sock', '[::1]:9']);
  });

  it('ARB_CMD_ARGS may name the config file; the command line wins', async () => {
    const cwd = dir({ 'one.json': '{"workers":2}', 'two.json': '{"workers":6}' });
    expect(
      (await resolve(['a.js'], { cwd, env: { ARB_CMD_ARGS: '-c one.json' } })).config.workers,
    ).toBe(2);
    expect(
      (await resolve(['-c', 'two.json', 'a.js'], { cwd, env: { ARB_CMD_ARGS: '-c one.json' } }))
        .config.workers,
    ).toBe(6);
  });

  it('ARB_CMD_ARGS runs nothing: a | is a word like any other (as with shlex)', async () => {
    expect(await problems(resolve(['a.js'], { env: { ARB_CMD_ARGS: '-w 2 | rm x' } }))).toEqual([
      'ARB_CMD_ARGS: too many arguments. Expected 1 argument but got 3.',
    ]);
  });

  it('names the source of a bad flag', async () => {
    expect(await problems(resolve(['a.js'], { env: { ARB_CMD_ARGS: '--workers zero' } }))).toEqual([
      "ARB_CMD_ARGS: option '-w, --workers <n>' argument 'zero' is invalid. expected a whole number >= 1",
    ]);
  });
});

describe('config files', () => {
  const body = (ext: string) => {
    switch (ext) {
      case 'json':
        return '{"app":"x.js","workers":2}';
      case 'cjs':
        return 'module.exports = { app: "x.js", workers: 2, onStarting() {} };';
      case 'ts':
      case 'mts':
        return `import { defineConfig } from ${JSON.stringify(distIndex)};\nconst n: number = 2;\nexport default defineConfig({ app: 'x.js', workers: n, onStarting(): void {} });\n`;
      default:
        return 'export default { app: "x.js", workers: 2, onStarting() {} };';
    }
  };

  it.each(['ts', 'mts', 'js', 'mjs', 'cjs', 'json'])(
    'arb.config.%s is found and loaded',
    async (ext) => {
      const name = `arb.config.${ext}`;
      const cwd = dir({ [name]: body(ext), 'package.json': '{"type":"module"}' });
      const { config } = await resolve([], { cwd });
      expect(config).toMatchObject({ app: 'x.js', workers: 2 });
      expect(config.configFile).toBe(path.join(cwd, name));
      expect(Object.keys(config.hooks)).toEqual(ext === 'json' ? [] : ['onStarting']);
    },
  );

  it('a config module may export a (async) function', async () => {
    const cwd = dir({
      'arb.config.mjs': 'export default async () => ({ app: "f.js", workers: 4 });',
    });
    expect((await resolve([], { cwd })).config).toMatchObject({ app: 'f.js', workers: 4 });
  });

  it.each(['mjs', 'ts', 'cjs'])(
    'arb.config.%s is re-imported fresh, with its imports (what a reload needs)',
    async (ext) => {
      const cwd = dir({
        [`arb.config.${ext}`]:
          ext === 'cjs'
            ? 'module.exports = { app: "a.js", workers: require("./n.cjs") };'
            : 'import n from "./n.cjs";\nexport default { app: "a.js", workers: n };',
        'n.cjs': 'module.exports = 2;',
      });
      expect((await resolve([], { cwd })).config.workers).toBe(2);
      fs.writeFileSync(path.join(cwd, 'n.cjs'), 'module.exports = 5;');
      expect((await resolve([], { cwd })).config.workers).toBe(5);
    },
  );

  it('refuses two config files at once and a missing -c file', async () => {
    const cwd = dir({ 'arb.config.js': 'export default {}', 'arb.config.json': '{}' });
    expect((await problems(resolve(['a.js'], { cwd })))[0]).toContain(
      'several config files (arb.config.js, arb.config.json); keep one or pick one with -c',
    );
    expect(await problems(resolve(['-c', 'nope.json', 'a.js']))).toEqual([
      'command line: config file nope.json not found',
    ]);
  });

  it('names a file that cannot be loaded or exports no object', async () => {
    const cwd = dir({
      'bad.json': '{"workers": ',
      'throws.mjs': 'throw new Error("boom at import")',
      'num.mjs': 'export default 3',
    });
    expect((await problems(resolve(['-c', 'bad.json', 'a.js'], { cwd })))[0]).toMatch(
      /bad\.json: cannot load: /,
    );
    expect(await problems(resolve(['-c', 'throws.mjs', 'a.js'], { cwd }))).toEqual([
      `${path.join(cwd, 'throws.mjs')}: cannot load: boom at import`,
    ]);
    expect(await problems(resolve(['-c', 'num.mjs', 'a.js'], { cwd }))).toEqual([
      `${path.join(cwd, 'num.mjs')}: must export a config object (export default defineConfig({...}))`,
    ]);
  });

  it('reports one line per problem, naming the key path and the value', async () => {
    const cwd = dir({
      'arb.config.json': JSON.stringify({
        wrokers: 2,
        workers: 0,
        timeout: 'soon',
        bind: ['127.0.0.1:80', 'http://x'],
        umask: '999',
        logLevel: 'loud',
        logFormat: 'fancy',
        env: { A: 1 },
        ctl: { sock: 'x' },
        onStarting: 'not a function',
      }),
    });
    const file = path.join(cwd, 'arb.config.json');
    expect((await problems(resolve(['a.js'], { cwd }))).sort()).toEqual(
      [
        `${file}: unknown key 'wrokers'`,
        `${file}: workers: must be >= 1 (got 0)`,
        `${file}: timeout: must be a number (got "soon")`,
        `${file}: bind.1: invalid address "http://x": unknown scheme 'http://' (use tcp://, unix: or fd://) (got "http://x")`,
        `${file}: umask: must be an octal mode from 0 to 0o777 (got "999")`,
        `${file}: logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace" (got "loud")`,
        `${file}: logFormat: must be one of "auto", "json", "pretty" (got "fancy")`,
        `${file}: env.A: must be a string (got 1)`,
        `${file}: unknown key 'ctl.sock'`,
        `${file}: onStarting: must be a function (got "not a function")`,
      ].sort(),
    );
  });
});

describe('command line', () => {
  it('requires an app from somewhere', async () => {
    expect(await problems(resolve([]))).toEqual([
      'command line: no app given: arb [options] <path/to/module[:export]> (or set app in the config file)',
    ]);
  });

  it('maps every flag to its key', async () => {
    const { config, action } = await resolve([
      ...[
        '-b',
        ':9000',
        '-w',
        '3',
        '-t',
        '0',
        '--graceful-timeout',
        '2.5',
        '--boot-timeout',
        '12',
        '--keep-alive',
        '1',
      ],
      ...[
        '--backlog',
        '64',
        '--max-requests',
        '100',
        '--max-requests-jitter',
        '10',
        '--reuse-port',
      ],
      ...['--umask', '0o027', '-u', 'nobody', '-g', '65534', '-p', 'run/arb.pid', '-n', 'api'],
      ...[
        '-e',
        'A=1',
        '-e',
        'B=x=y',
        '--preload',
        '--chdir',
        '/srv',
        '--worker-tmp-dir',
        '/dev/shm',
      ],
      ...[
        '--log-level',
        'debug',
        '--log-format',
        'pretty',
        '--error-log',
        'err.log',
        '--access-log',
        '-',
        '--access-log-format',
        '%(h)s',
      ],
      ...['--certfile', 'c.pem', '--keyfile', 'k.pem', '--companion-socket', 'c.sock'],
      ...[
        '--ctl-socket',
        'arb.ctl',
        '--metrics-bind',
        '127.0.0.1:9100',
        '--print-config',
        'app.js:handler',
      ],
    ]);
    expect(action).toBe('print');
    expect(config).toMatchObject({
      app: 'app.js:handler',
      bind: [':9000'],
      workers: 3,
      timeout: 0,
      gracefulTimeout: 2.5,
      bootTimeout: 12,
      keepAlive: 1,
      backlog: 64,
      maxRequests: 100,
      maxRequestsJitter: 10,
      reusePort: true,
      umask: 0o027,
      user: 'nobody',
      group: 65534,
      pidfile: 'run/arb.pid',
      procName: 'api',
      env: { A: '1', B: 'x=y' },
      preload: true,
      chdir: '/srv',
      workerTmpDir: '/dev/shm',
      logLevel: 'debug',
      logFormat: 'pretty',
      errorLog: 'err.log',
      accessLog: '-',
      accessLogFormat: '%(h)s',
      certfile: 'c.pem',
      keyfile: 'k.pem',
      companions: { socket: 'c.sock' },
      ctl: { socket: 'arb.ctl' },
      metrics: { bind: '127.0.0.1:9100' },
    });
  });

  it.each([
    [['--bogus', 'a.js'], "command line: unknown option '--bogus'"],
    [
      ['-w', '-1', 'a.js'],
      "command line: option '-w, --workers <n>' argument '-1' is invalid. expected a whole number >= 1",
    ],
    [
      ['--keep-alive', 'x', 'a.js'],
      "command line: option '--keep-alive <s>' argument 'x' is invalid. expected a number of seconds >= 0",
    ],
    [
      ['-e', 'NOVALUE', 'a.js'],
      "command line: option '-e, --env <key=value>' argument 'NOVALUE' is invalid. expected KEY=VALUE",
    ],
    [
      ['-b', '[::1', 'a.js'],
      `command line: --bind: invalid address "[::1": unclosed '[' in IPv6 address (got "[::1")`,
    ],
    [
      ['--umask', '8', 'a.js'],
      'command line: --umask: must be an octal mode from 0 to 0o777 (got "8")',
    ],
    [['a.js', 'b.js'], 'command line: too many arguments. Expected 1 argument but got 2.'],
    [
      ['--certfile', 'c.pem', 'a.js'],
      'config: certfile and keyfile go together: set both or neither',
    ],
    [['--workers'], "command line: option '-w, --workers <n>' argument missing"],
  ])('%j → one line naming the culprit', async (argv, line) => {
    expect(await problems(resolve(argv))).toEqual([line]);
  });

  it('--help and --version end early with status 0', async () => {
    for (const flag of ['--help', '-h', '--version', '-v']) {
      const err = await resolve([flag]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EarlyExit);
      expect((err as EarlyExit).exitCode).toBe(0);
    }
  });
});

describe('reload.canary', () => {
  it('a --canary-* flag turns it on; flags merge into the file key by key, over false too', async () => {
    expect((await resolve(['app.js'])).config.reload).toBeUndefined();
    expect((await resolve(['app.js', '--canary-seconds', '2'])).config.reload).toEqual({
      canary: { seconds: 2 },
    });
    const file = (canary: unknown) =>
      dir({ 'arb.config.json': JSON.stringify({ reload: { canary } }) });
    const merged = await resolve(['app.js', '--canary-workers', '2'], {
      cwd: file({ seconds: 5, maxP99Ratio: 3 }),
    });
    expect(merged.config.reload).toEqual({ canary: { seconds: 5, maxP99Ratio: 3, workers: 2 } });
    const overFalse = await resolve(['app.js', '--canary-max-error-rate', '0.05'], {
      cwd: file(false),
    });
    expect(overFalse.config.reload).toEqual({ canary: { maxErrorRate: 0.05 } });
  });

  it('--max-memory MB: a number > 0, from the flag or the file; none by default', async () => {
    expect((await resolve(['app.js'])).config.maxMemory).toBeUndefined();
    expect((await resolve(['app.js', '--max-memory', '256'])).config.maxMemory).toBe(256);
    expect((await resolve(['app.js', '--max-memory', '0.5'])).config.maxMemory).toBe(0.5);
    expect(await problems(resolve(['app.js', '--max-memory', '0']))).toEqual([
      "command line: option '--max-memory <mb>' argument '0' is invalid. expected a number of MB > 0",
    ]);
    const cwd = dir({ 'arb.config.json': JSON.stringify({ maxMemory: -1 }) });
    expect(await problems(resolve(['app.js'], { cwd }))).toEqual([
      expect.stringMatching(/maxMemory: must be a number of MB > 0 \(got -1\)$/),
    ]);
  });

  it('names each bad value by its flag or key', async () => {
    expect(await problems(resolve(['app.js', '--canary-seconds', '0']))).toEqual([
      'command line: --canary-seconds: must be > 0 (got 0)',
    ]);
    expect(
      await problems(
        resolve(['app.js'], {
          cwd: dir({
            'arb.config.json': JSON.stringify({ reload: { canary: { workers: 0, secs: 2 } } }),
          }),
        }),
      ),
    ).toEqual([
      expect.stringMatching(/reload\.canary\.workers: must be >= 1 \(got 0\)$/),
      expect.stringMatching(/unknown key 'reload\.canary\.secs'$/),
    ]);
  });
});

describe('devReload', () => {
  it('--reload turns it on; over the file it keeps the file ignore globs and debounce', async () => {
    expect((await resolve(['app.js'])).config.devReload).toBeUndefined();
    expect((await resolve(['app.js', '--reload'])).config.devReload).toBe(true);
    const cwd = dir({
      'arb.config.json': JSON.stringify({ devReload: { ignore: ['*.log'], debounce: 300 } }),
    });
    expect((await resolve(['app.js', '--reload'], { cwd })).config.devReload).toEqual({
      ignore: ['*.log'],
      debounce: 300,
    });
    const off = dir({ 'arb.config.json': JSON.stringify({ devReload: false }) });
    expect((await resolve(['app.js', '--reload'], { cwd: off })).config.devReload).toBe(true);
  });

  it('names each bad value by its key', async () => {
    expect(
      await problems(
        resolve(['app.js'], {
          cwd: dir({
            'arb.config.json': JSON.stringify({
              devReload: { ignore: 'dist', debounce: -1, poll: true },
            }),
          }),
        }),
      ),
    ).toEqual([
      expect.stringMatching(/devReload\.ignore: must be a list \(got "dist"\)$/),
      expect.stringMatching(/devReload\.debounce: must be >= 0 \(got -1\)$/),
      expect.stringMatching(/unknown key 'devReload\.poll'$/),
    ]);
    expect(
      await problems(
        resolve(['app.js'], {
          cwd: dir({ 'arb.config.json': JSON.stringify({ devReload: 'yes' }) }),
        }),
      ),
    ).toEqual([expect.stringMatching(/devReload: must be true or false, or must be an object/)]);
  });
});
