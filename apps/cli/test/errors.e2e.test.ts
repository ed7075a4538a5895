import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, alive, cleanup, tempDir } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const servers: net.Server[] = [];
afterEach(() =>
  cleanup(
    running,
    dirs,
    servers.splice(0).map((s) => () => new Promise((r) => s.close(r))),
  ),
);

function setup(files: Record<string, string>): string {
  const d = tempDir();
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    fs.writeFileSync(path.join(d, name), text);
  }
  return d;
}

/** Runs arb to its end; returns the status, its stderr lines and what it left behind. */
async function fail(args: string[], files: Record<string, string> = {}) {
  const cwd = setup({ 'ok.mjs': 'export default (q, s) => s.end("ok")', ...files });
  const a = new ArbProcess(['-p', 'arb.pid', '-b', `unix:${cwd}/arb.sock`, ...args], { cwd });
  running.push(a);
  const code = await a.exited();
  const lines = a.stderr.split('\n').filter(Boolean);
  const text = lines.map((l) => {
    try {
      return String((JSON.parse(l) as { msg: string }).msg);
    } catch {
      return l;
    }
  });
  return {
    code,
    lines,
    text,
    last: text.at(-1) ?? '',
    cwd,
    left: fs.readdirSync(cwd).filter((f) => f === 'arb.pid' || f === 'arb.sock'),
    alive: [...a.pids].filter((p) => p !== a.pid && alive(p)),
  };
}

describe('error paths: exit status, one clear line, nothing left behind', () => {
  it('unknown flag → 1', async () => {
    const r = await fail(['--frobnicate', 'ok.mjs']);
    expect(r).toMatchObject({
      code: 1,
      lines: ["arb: command line: unknown option '--frobnicate'"],
      left: [],
      alive: [],
    });
  });

  it('bad config key → 1', async () => {
    const r = await fail(['ok.mjs'], { 'arb.config.json': '{"workerz": 2}' });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/arb\.config\.json: unknown key 'workerz'$/)]);
    expect(r.left).toEqual([]);
  });

  it('missing app file → 4, before anything starts', async () => {
    const r = await fail(['missing.mjs']);
    expect(r.code).toBe(4);
    expect(r.lines).toEqual([
      expect.stringMatching(/^arb: cannot load app 'missing\.mjs': no file .*missing\.mjs$/),
    ]);
    expect(r.left).toEqual([]);
  });

  it('export that is not a handler → 4', async () => {
    const r = await fail(['-w', '2', 'bad.mjs'], { 'bad.mjs': 'export default 42;' });
    expect(r.code).toBe(4);
    expect(r.text.at(-2)).toMatch(
      /^Shutting down: Master\. Reason: .*cannot load app 'bad\.mjs': /,
    );
    expect(r.last).toBe(
      "arb: cannot load app 'bad.mjs': the export is number 42, which is not an app",
    );
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it('app that throws at import → 4', async () => {
    const r = await fail(['-w', '2', 'throws.mjs'], {
      'throws.mjs': 'throw new Error("no DATABASE_URL");',
    });
    expect(r.code).toBe(4);
    // the master's log line, then arb's own line for a person (one-line-errors.e2e.test.ts)
    expect(r.text.at(-2)).toMatch(
      /Reason: .*cannot load app 'throws\.mjs': importing .*throws\.mjs threw: no DATABASE_URL$/,
    );
    expect(r.last).toBe('arb: throws.mjs:1:7: Error: no DATABASE_URL');
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it('app that throws at import with --preload → 4, no worker ever started', async () => {
    const r = await fail(['--preload', 'throws.mjs'], {
      'throws.mjs': 'throw new Error("no DATABASE_URL");',
    });
    expect(r.code).toBe(4);
    expect(r.text.some((t) => t.includes('no DATABASE_URL'))).toBe(true);
    expect(r.text.some((t) => t.startsWith('Booting worker'))).toBe(false);
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it('busy port → 1 at once, naming the address', async () => {
    const busy = net.createServer();
    servers.push(busy);
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const { port } = busy.address() as net.AddressInfo;
    const r = await fail(['-b', `127.0.0.1:${port}`, 'ok.mjs']);
    expect(r.code).toBe(1);
    expect(r.last).toBe(
      `arb: cannot bind 127.0.0.1:${port}: address in use (by pid ${process.pid})`,
    );
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it.each([
    ['a missing directory', 'no/such/dir/arb.pid'],
    ['a path under a file', 'ok.mjs/arb.pid'],
  ])('pidfile in %s → 1, naming the path', async (_what, pidfile) => {
    const r = await fail(['-p', pidfile, 'ok.mjs']);
    expect(r.code).toBe(1);
    expect(r.last).toContain(pidfile);
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it('bad companion spec → 1, naming the companion and the key', async () => {
    const config = {
      companions: {
        workers: [{ name: 'jobs', target: './jobs.mjs:run', command: ['sleep', '1'] }],
      },
    };
    const r = await fail(['ok.mjs'], { 'arb.config.json': JSON.stringify(config) });
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^arb: .*arb\.config\.json: .*jobs.*(target|command)/);
    expect(r).toMatchObject({ left: [], alive: [] });
  });

  it('the same address bound twice → 1, naming it, before anything starts', async () => {
    const r = await fail(['-b', '127.0.0.1:8123', '-b', '127.0.0.1:8123', 'ok.mjs']);
    expect(r).toMatchObject({
      code: 1,
      lines: ['arb: config: bind: 127.0.0.1:8123 is given twice; list each address once'],
      left: [],
      alive: [],
    });
    const v6 = await fail(['-b', '[::1]:8123', '-b', '[0:0::1]:8123', 'ok.mjs']);
    expect(v6).toMatchObject({
      code: 1,
      lines: ['arb: config: bind: [0:0::1]:8123 is given twice; list each address once'],
    });
  });

  it('a config whose default export is null → 1, saying so', async () => {
    const r = await fail(['ok.mjs'], { 'arb.config.mjs': 'export default null;\n' });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      `arb: ${r.cwd}/arb.config.mjs: the default export is null: export default defineConfig({...})`,
    ]);
    expect(r).toMatchObject({ left: [], alive: [] });
  });
});

describe('config files with a top-level await (as node imports them)', () => {
  it.each([
    ['arb.config.mjs', 'const n = await Promise.resolve(2);\nexport default { workers: n };\n'],
    [
      'arb.config.ts',
      'const n: number = await Promise.resolve(2);\nexport default { workers: n };\n',
    ],
  ])('%s loads, and a HUP sees its new contents', async (name, text) => {
    const cwd = setup({
      'ok.mjs': 'export default (q, s) => s.end(String(process.pid))',
      [name]: text,
    });
    const a = new ArbProcess(['-b', '127.0.0.1:0', '--ctl-socket', 'none', 'ok.mjs'], { cwd });
    running.push(a);
    expect((await a.ready()).msg).toBe('Serving with 2 workers');
    fs.writeFileSync(path.join(cwd, name), text.replace('resolve(2)', 'resolve(3)'));
    a.child.kill('SIGHUP');
    await a.log((e) => e.msg === 'Reload complete', 'the reload to complete');
    // 2 workers of the first generation, then 3 of the second
    expect(a.logs.filter((e) => String(e.msg).startsWith('Booting worker')).length).toBe(5);
  });
});
