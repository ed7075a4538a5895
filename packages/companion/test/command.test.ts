import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Manager, runCompanionCommand } from '../src/index.js';
import { cleanup, tmp, track, waitFor } from './helpers.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(
  argv: string[],
  opts: { isTTY?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCompanionCommand(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: opts.env ?? {},
    isTTY: opts.isTTY ?? false,
    timeoutMs: 3000,
  });
  return { code, out, err };
}

describe('arb companion: usage', () => {
  const cases: [string[], string][] = [
    [[], 'missing command'],
    [['bogus'], "unknown command 'bogus'"],
    [['start'], 'start requires a companion name'],
    [['stop', '--socket', '/x.sock'], 'stop requires a companion name'],
    [['signal', 'a'], 'signal requires a signal name'],
    [['signal', 'a', 'SIGNOPE'], "unknown signal 'SIGNOPE'"],
    [['reread', 'a'], 'reread takes no name'],
    [['start', 'a', 'b'], 'too many arguments'],
    [['status', '--wat'], 'unknown option --wat'],
    [['status', '--socket'], '--socket needs a path'],
    [
      ['status'],
      'no control socket: pass --socket, set ARB_COMPANION_SOCKET, or set companions.socket in the config file',
    ],
  ];
  for (const [argv, message] of cases) {
    it(`exits 2 for ${JSON.stringify(argv)}`, async () => {
      const r = await run(argv);
      expect(r.code).toBe(2);
      expect(r.err).toContain(message);
      expect(r.err).toContain('usage: arb companion');
      expect(r.out).toBe('');
    });
  }
  it('prints help and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: arb companion');
  });
  it('exits 2 when the socket cannot be reached', async () => {
    const path = join(tmp(), 'none.sock');
    const r = await run(['status', '--socket', path]);
    expect(r.code).toBe(2);
    // one line, not the usage
    expect(r.err).toBe(
      `arb companion: cannot reach companion socket ${path}: no control socket (ENOENT)\n`,
    );
  });
});

describe('arb companion against a manager', () => {
  let m: Manager;
  let sock: string;
  beforeAll(async () => {
    const dir = tmp();
    sock = join(dir, 'c.sock');
    m = new Manager({
      baseDir: dir,
      companions: {
        socket: sock,
        defaults: { startSecs: 0.1, stopTimeout: 2 },
        workers: [
          { name: 'alpha', command: ['sleep', '60'] },
          { name: 'beta', command: ['sleep', '61'] },
        ],
      },
    });
    await m.start();
    await waitFor(() => m.status().every((s) => s.state === 'RUNNING'));
    track(...m.status().map((s) => s.pid!));
  });
  afterAll(() =>
    cleanup(async () => {
      const guard = m.guardPid;
      if (guard) track(guard);
      await m.stop();
    }),
  );

  it('status: JSON when not a terminal or with --json, using ARB_COMPANION_SOCKET', async () => {
    const r = await run(['status'], { env: { ARB_COMPANION_SOCKET: sock } });
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out);
    expect(res.ok).toBe(true);
    expect(res.companions.map((c: { name: string }) => c.name)).toEqual(['alpha', 'beta']);
    const j = await run(['status', '--json', '--socket', sock], { isTTY: true });
    expect(JSON.parse(j.out).ok).toBe(true);
  });

  it('status: a table on a terminal, one name or all', async () => {
    const r = await run(['status', `--socket=${sock}`], { isTTY: true });
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATE\s+PID\s+UPTIME\s+RESTARTS\s+INFO$/);
    expect(lines[1]).toMatch(
      new RegExp(`^alpha\\s+RUNNING\\s+${m.get('alpha')!.pid}\\s+\\d+:\\d\\d:\\d\\d\\s+0\\s+pid `),
    );
    expect(lines).toHaveLength(3);
    const one = await run(['status', 'beta', '-s', sock], { isTTY: true });
    expect(one.out.trim().split('\n')).toHaveLength(2);
    expect(one.out).toContain('beta');
    const none = await run(['status', 'gamma', '-s', sock]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.out)).toMatchObject({ ok: false, error: 'unknown companion gamma' });
  });

  it('stop/start/restart/signal: exit 0 on ok, 1 on ok:false', async () => {
    const stop = await run(['stop', 'beta', '--socket', sock], { isTTY: true });
    expect(stop).toEqual({ code: 0, out: 'beta stopping\n', err: '' });
    await waitFor(() => m.get('beta')!.state === 'STOPPED');
    const again = await run(['restart', 'beta', '--socket', sock], { isTTY: true });
    expect(again).toEqual({ code: 0, out: 'beta started\n', err: '' });
    await waitFor(() => m.get('beta')!.state === 'RUNNING');
    track(m.get('beta')!.pid!);
    const bad = await run(['start', 'nope', '--socket', sock], { isTTY: true });
    expect(bad).toEqual({ code: 1, out: '', err: 'error: unknown companion nope\n' });
    const badJson = await run(['start', 'nope', '--socket', sock, '--json']);
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.out)).toEqual({
      ok: false,
      message: 'unknown companion nope',
      error: 'unknown companion nope',
    });
    const sig = await run(['signal', 'all', 'cont', '--socket', sock], { isTTY: true });
    expect(sig).toEqual({
      code: 0,
      out: 'alpha signalled SIGCONT\nbeta signalled SIGCONT\n',
      err: '',
    });
    const reread = await run(['reread', '--socket', sock]);
    expect(reread.code).toBe(1);
    expect(JSON.parse(reread.out)).toEqual({ ok: false, error: 'reread not configured' });
  });
});
