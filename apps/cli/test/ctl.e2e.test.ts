import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCtlCommand } from '../src/ctl-command.js';
import { arb, ctlJson, rawExchange } from './ctl-helpers.js';
import { ArbProcess, alive, cleanup, request, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const extraPids: number[] = [];
const dirs: string[] = [];
afterEach(async () => {
  // new masters started by an upgrade first: their processes are in the old one's logs
  for (const pid of extraPids.splice(0)) {
    if (alive(pid)) process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), 15_000, `pid ${pid} to exit`).catch(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
  }
  await cleanup(running, dirs);
});

const APP = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;

function project(files: Record<string, string> = {}): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), APP);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

async function start(cwd: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const a = new ArbProcess(['-b', '127.0.0.1:0', ...args], { cwd, env });
  running.push(a);
  await a.ready();
  await a.log((e) => typeof e.ctl === 'string', 'Control socket listening');
  return a;
}

type Worker = { pid: number; state: string; requests: number; booted: boolean };

async function liveWorkers(cwd: string): Promise<Worker[]> {
  const r = await ctlJson(['status'], cwd);
  return (r.body.workers as Worker[]).filter((w) => w.state === 'ready' || w.state === 'booting');
}

describe('arb ctl', () => {
  it('status: master, listeners, workers (pid, age, booted, requests, heartbeat), no companions', async () => {
    const cwd = project();
    const startedAt = Date.now();
    const a = await start(cwd, ['-w', '2', 'app.mjs']);
    const socket = path.join(cwd, 'arb.ctl');
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    const target = await a.tcpTarget();
    for (let i = 0; i < 10; i++) await request(target);
    // the workers' counts reach the master in batches, about once a second
    const status = await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        const served = (r.body.workers as Worker[]).reduce((n, w) => n + w.requests, 0);
        return served === 10 ? r : undefined;
      },
      10_000,
      '10 requests counted',
    );
    expect(status.code).toBe(0);
    const body = status.body as {
      ok: boolean;
      master: unknown;
      listeners: unknown[];
      workers: (Worker & { age: number; uptime: number; last_heartbeat: number })[];
      companions: unknown;
    };
    expect(body.ok).toBe(true);
    expect(body.master).toMatchObject({
      pid: a.pid,
      role: 'master',
      workers_target: 2,
      ctl_socket: socket,
      systemd: { socket_activated: false, notify: false },
    });
    expect(body.listeners).toHaveLength(1);
    expect(body.workers).toHaveLength(2);
    // seconds, rounded to 1/100: spawned after this test started, and a worker is stamped
    // at its spawn, so its heartbeat is never older than its uptime (nor than the 30 s
    // timeout it would have been killed at)
    const testSeconds = (Date.now() - startedAt) / 1000;
    for (const w of body.workers) {
      expect(w).toMatchObject({ state: 'ready', booted: true });
      expect(typeof w.pid).toBe('number');
      expect(w.age).toBeGreaterThan(0);
      expect(w.uptime).toBeGreaterThan(0);
      expect(w.uptime).toBeLessThanOrEqual(testSeconds + 0.01);
      expect(w.last_heartbeat).toBeGreaterThanOrEqual(0);
      expect(w.last_heartbeat).toBeLessThanOrEqual(w.uptime + 0.01);
      expect(w.last_heartbeat).toBeLessThan(30);
    }
    expect(body.companions).toBeNull();

    // the table, as a terminal shows it
    let out = '';
    const code = await runCtlCommand(['status'], {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => true },
      env: {},
      cwd,
      isTTY: true,
    });
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`^master ${a.pid} \\(app\\), master, up `));
    expect(out).toMatch(/PID +AGE +GEN +STATE +BOOTED +UPTIME +REQUESTS +RSS +CPU +HEARTBEAT/);
    expect(out.match(/ ready +yes +\d+:\d\d:\d\d +\d+ +[\d.]+M +[\d.]+% /g)).toHaveLength(2);
    expect(out).toMatch(/, RSS [\d.]+M, CPU [\d.]+%\n/);

    // ARB_CTL_SOCKET is the client's default, from any directory
    const elsewhere = await ctlJson(['status'], '/', { ARB_CTL_SOCKET: socket });
    expect(elsewhere.body.ok).toBe(true);
    expect(await a.stop()).toBe(0);
    expect(fs.existsSync(socket)).toBe(false);
  });

  it('workers add N / remove N change the worker count', async () => {
    const cwd = project();
    await start(cwd, ['-w', '1', 'app.mjs']);
    const add = await ctlJson(['workers', 'add', '2'], cwd);
    expect(add).toMatchObject({ code: 0, body: { ok: true, added: 2, previous: 1, total: 3 } });
    await waitFor(
      async () => (await liveWorkers(cwd)).filter((w) => w.booted).length === 3,
      20_000,
      '3 workers',
    );
    const remove = await ctlJson(['workers', 'remove', '5'], cwd);
    expect(remove).toMatchObject({
      code: 0,
      body: { ok: true, removed: 2, previous: 3, total: 1 },
    });
    await waitFor(
      async () => ((await ctlJson(['status'], cwd)).body.workers as Worker[]).length === 1,
      20_000,
      'one worker left',
    );
    const one = await ctlJson(['workers', 'add'], cwd);
    expect(one.body).toMatchObject({ ok: true, added: 1, total: 2 });
  });

  it('reload reports its outcome: completed, refused for a bad config', async () => {
    const cwd = project({ 'arb.config.mjs': 'export default { app: "app.mjs", workers: 2 };\n' });
    const a = await start(cwd);
    const before = new Set((await liveWorkers(cwd)).map((w) => w.pid));
    const ok = await ctlJson(['reload'], cwd);
    expect(ok.code).toBe(0);
    expect(ok.body).toMatchObject({ ok: true, outcome: 'completed', generation: 1 });
    const after = await liveWorkers(cwd);
    expect(after).toHaveLength(2);
    for (const w of after) expect(before.has(w.pid)).toBe(false);
    const target = await a.tcpTarget();
    expect((await request(target)).status).toBe(200);

    fs.writeFileSync(
      path.join(cwd, 'arb.config.mjs'),
      'export default { app: "app.mjs", workers: -1 };\n',
    );
    const refused = await ctlJson(['reload'], cwd);
    expect(refused.code).toBe(1);
    expect(refused.body).toMatchObject({ ok: false, outcome: 'refused', generation: 1 });
    expect((await request(target)).status).toBe(200);
  });

  it('reload reports a rolled-back generation, and the old one keeps serving', async () => {
    const cwd = project({ 'arb.config.mjs': 'export default { app: "app.mjs", workers: 2 };\n' });
    const a = await start(cwd);
    const target = await a.tcpTarget();
    const before = new Set((await liveWorkers(cwd)).map((w) => w.pid));
    fs.writeFileSync(path.join(cwd, 'app.mjs'), 'throw new Error("broken release");\n');
    const r = await ctlJson(['reload'], cwd);
    expect(r.code).toBe(1);
    expect(r.body).toMatchObject({ ok: false, outcome: 'rolled_back' });
    expect(String(r.body.error)).toMatch(/rolled back/);
    const after = await liveWorkers(cwd);
    expect(new Set(after.map((w) => w.pid))).toEqual(before);
    expect((await request(target)).status).toBe(200);
  });

  it('an unpromoted new master (USR2) answers at <socket>.2 and takes <socket> once promoted', async () => {
    const cwd = project();
    const a = await start(cwd, ['-w', '1', 'app.mjs']);
    const socket = path.join(cwd, 'arb.ctl');
    process.kill(a.pid, 'SIGUSR2');
    const second = await waitFor(
      async () => {
        const r = await ctlJson(['status', '--socket', `${socket}.2`], cwd);
        return r.body.ok ? r : undefined;
      },
      20_000,
      'the new master at arb.ctl.2',
    );
    const master = second.body.master as { pid: number; role: string; parent_master_pid: number };
    extraPids.push(master.pid);
    expect(master).toMatchObject({
      role: 'new master (waiting for promotion)',
      parent_master_pid: a.pid,
    });
    expect(fs.statSync(`${socket}.2`).mode & 0o777).toBe(0o600);
    // the plain path still reaches the old master, which knows its new one
    const old = await ctlJson(['status'], cwd);
    expect(old.body.master).toMatchObject({ pid: a.pid, new_master_pid: master.pid });
    // only the serving master changes things
    const refused = await ctlJson(['reload', '--socket', `${socket}.2`], cwd);
    expect(refused).toMatchObject({ code: 1, body: { ok: false } });
    expect(String(refused.body.error)).toMatch(/waits for promotion/);
    // finish the dance: TERM the old master; the new one is promoted and moves to arb.ctl
    process.kill(a.pid, 'SIGTERM');
    expect(await a.exited()).toBe(0);
    await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        return (
          (r.body.master as { pid?: number; role?: string } | undefined)?.role === 'master' &&
          (r.body.master as { pid: number }).pid === master.pid
        );
      },
      20_000,
      'the promoted master at arb.ctl',
    );
    expect(fs.existsSync(`${socket}.2`)).toBe(false);
  });

  it('reopen, and shutdown --quick stops the master and removes the socket', async () => {
    const cwd = project();
    const a = await start(cwd, ['app.mjs']);
    const reopen = await ctlJson(['reopen'], cwd);
    expect(reopen.body).toMatchObject({ ok: true });
    await a.log((e) => e.msg === 'Reopened log files', 'Reopened log files');
    const down = await ctlJson(['shutdown', '--quick'], cwd);
    expect(down.body).toMatchObject({ ok: true, mode: 'quick' });
    expect(await a.exited()).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'arb.ctl'))).toBe(false);
    expect(await a.stop()).toBe(0);
  });

  it('shutdown is graceful by default', async () => {
    const cwd = project();
    const a = await start(cwd, ['app.mjs']);
    const r = await arb(['ctl', 'shutdown'], cwd);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, mode: 'graceful' });
    expect(await a.exited()).toBe(0);
    await a.log((e) => e.msg === 'Handling signal: term', 'TERM handled');
  });

  it('upgrade hands over to a new master, which then owns the control socket', async () => {
    const cwd = project();
    const a = await start(cwd, ['-w', '2', 'app.mjs']);
    const target = await a.tcpTarget();
    const up = await ctlJson(['upgrade'], cwd);
    expect(up.code).toBe(0);
    expect(up.body).toMatchObject({ ok: true, old_pid: a.pid });
    const newPid = up.body.new_pid as number;
    extraPids.push(newPid);
    expect(await a.exited()).toBe(0);
    // promoted, it listens at the plain path
    const status = await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        return (r.body.master as { pid?: number; role?: string } | undefined)?.role === 'master' &&
          (r.body.master as { pid: number }).pid === newPid
          ? r
          : undefined;
      },
      20_000,
      'the new master on the control socket',
    );
    expect((status.body.workers as Worker[]).length).toBe(2);
    // its workers were started as `[app.2]`: promoted, they carry the plain name again
    const title = (pid: number) =>
      fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '');
    await waitFor(
      () => (status.body.workers as Worker[]).every((w) => title(w.pid) === 'arb: worker [app]'),
      5000,
      'the plain worker title after promotion',
    );
    expect(title(newPid)).toMatch(/^arb: master \[app\]/);
    expect((await request(target)).status).toBe(200);
    const down = await ctlJson(['shutdown'], cwd);
    expect(down.body.ok).toBe(true);
    await waitFor(() => !alive(newPid), 20_000, 'the new master to stop');
    expect(fs.existsSync(path.join(cwd, 'arb.ctl'))).toBe(false);
  });

  it('answers malformed requests with errors, caps line size, serves concurrent clients', async () => {
    const cwd = project();
    const a = await start(cwd, ['app.mjs']);
    const socket = path.join(cwd, 'arb.ctl');
    const bad = await rawExchange(
      socket,
      [
        'not json',
        '[1,2]',
        '{"nocmd":1}',
        '{"cmd":"bogus","id":7}',
        '{"cmd":"workers","action":"add","count":0}',
        '{"cmd":"workers","action":"grow"}',
        '{"cmd":"shutdown","quick":"yes"}',
        '{"cmd":"upgrade","timeout":-1}',
        '',
        '{"cmd":"status","id":"s1"}',
      ]
        .map((l) => `${l}\n`)
        .join(''),
      { lines: 9 },
    );
    const replies = bad.lines.map((l) => JSON.parse(l));
    expect(replies.slice(0, 8)).toEqual([
      { ok: false, error: 'invalid JSON' },
      { ok: false, error: 'request must be a JSON object' },
      { ok: false, error: "missing 'cmd'" },
      { ok: false, id: 7, error: "unknown command 'bogus'" },
      { ok: false, error: "'count' must be a whole number from 1 to 10000" },
      { ok: false, error: '\'workers\' requires an \'action\': "add" or "remove"' },
      { ok: false, error: "'quick' must be true or false" },
      { ok: false, error: "'timeout' must be a number of seconds > 0" },
    ]);
    expect(replies[8]).toMatchObject({ id: 's1', ok: true });

    // invalid UTF-8 is invalid JSON
    const utf = await rawExchange(socket, Buffer.from([0xff, 0xfe, 0x0a]), { lines: 1 });
    expect(JSON.parse(utf.lines[0]!)).toEqual({ ok: false, error: 'invalid JSON' });

    // an oversized line: an error, then the connection is closed
    const big = await rawExchange(socket, `{"cmd":"status","pad":"${'x'.repeat(200_000)}"}\n`);
    expect(big.closed).toBe(true);
    expect(big.lines.map((l) => JSON.parse(l))).toEqual([{ ok: false, error: 'line too long' }]);

    // clients that go away mid-request, and many at once
    for (let i = 0; i < 5; i++) await rawExchange(socket, '{"cmd":"sta', { timeoutMs: 50 });
    const many = await Promise.all(
      Array.from({ length: 20 }, () => rawExchange(socket, '{"cmd":"status"}\n', { lines: 1 })),
    );
    for (const r of many) expect(JSON.parse(r.lines[0]!).ok).toBe(true);
    expect(alive(a.pid)).toBe(true);
    expect((await ctlJson(['status'], cwd)).body.ok).toBe(true);
  });

  it('usage and connection errors exit 2; a live socket of another master is left alone', async () => {
    const cwd = project();
    for (const args of [
      [],
      ['bogus'],
      ['workers'],
      ['workers', 'add', 'x'],
      ['reload', 'now'],
      ['status', '--quick'],
      ['--nope'],
    ]) {
      const r = await arb(['ctl', ...args], cwd);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^arb ctl: /);
    }
    const none = await arb(['ctl', 'status'], cwd);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/cannot reach the master at .*arb\.ctl/);
    const help = await arb(['ctl', '--help'], cwd);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: arb ctl <command>/);

    const first = await start(cwd, ['app.mjs']);
    const second = new ArbProcess(['-b', '127.0.0.1:0', 'app.mjs'], { cwd });
    running.push(second);
    await second.ready();
    await second.log(
      (e) => typeof e.msg === 'string' && e.msg.startsWith('Failed to start control socket'),
      'the in-use warning',
    );
    const status = await ctlJson(['status'], cwd);
    expect((status.body.master as { pid: number }).pid).toBe(first.pid);
    expect(await second.stop()).toBe(0);
    // the second master did not remove the first one's socket
    expect((await ctlJson(['status'], cwd)).body.ok).toBe(true);
    // --ctl-socket none: no socket at all
    const third = new ArbProcess(['-b', '127.0.0.1:0', '--ctl-socket', 'none', 'app.mjs'], { cwd });
    running.push(third);
    await third.ready();
    expect(third.logs.some((e) => typeof e.ctl === 'string')).toBe(false);
  });

  it('a stale socket file is replaced', async () => {
    const cwd = project();
    const socket = path.join(cwd, 'arb.ctl');
    // a socket file nobody listens on: bind a server, then kill it without cleanup
    const { spawnSync } = await import('node:child_process');
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(fs.statSync(socket).isSocket()).toBe(true);
    await start(cwd, ['app.mjs']);
    expect((await ctlJson(['status'], cwd)).body.ok).toBe(true);
  });
});
